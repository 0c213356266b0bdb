//! Trusted devices in a login: a key trusted earlier stands in for the
//! factors; after the factors, the user may choose to trust the key.

use super::{Attempt, reason_for};
use crate::audit::Decision as Audit;
use crate::clock;
use crate::device::SshKey;
use crate::io::FrameIo;
use crate::store::NewDevice;
use mfad_protocol::{Request, Response};

/// Keyed hashes of device keys are bound to this domain and the user.
const DOMAIN: &str = "trusted-device";

fn key_hash(att: &Attempt<'_>, key: &SshKey) -> Result<[u8; 32], String> {
    att.d
        .vault
        .keyed_hash(DOMAIN, &att.start.user, &key.blob)
        .map_err(|e| e.to_string())
}

/// Whether `key` is trusted for this user now, by a trust given within the
/// last `days` (the rule's window: a rule tightened later shortens the
/// trusts given under a longer one); a use is audited.
pub fn is_trusted(att: &Attempt<'_>, key: &SshKey, days: u32) -> Result<bool, String> {
    let hash = key_hash(att, key)?;
    let event = att.event(
        "device",
        Audit::Allow,
        &format!("trusted device {}", key.label()),
    );
    let now = clock::now();
    let since = now.saturating_sub(i64::from(days) * 86_400);
    let used = att
        .d
        .store
        .use_trusted_device(&att.start.user, &hash, now, since, &event)
        .map_err(|e| e.to_string())?;
    if used.is_some() {
        event.log();
    }
    Ok(used.is_some())
}

/// Asks whether to trust `key` for `days`; default no. `Ok(None)`: the
/// conversation ended. `Ok(Some(text))`: what to tell the user.
pub async fn offer(
    att: &Attempt<'_>,
    io: &mut FrameIo,
    key: &SshKey,
    days: u32,
) -> Result<Option<String>, String> {
    let text = format!(
        "Trust this device ({}) for {days} days, so that logins with this key skip the code? [y/N] ",
        key.label()
    );
    if io
        .send(Response::Prompt { echo: true, text })
        .await
        .is_err()
    {
        return Ok(None);
    }
    let answer = match io.read().await {
        Ok(Request::Answer { text }) => text,
        Ok(_) => return Ok(None),
        Err(err) => {
            att.record("device", Audit::Deny, reason_for(&err));
            io.report(&err).await;
            return Ok(None);
        }
    };
    let yes = matches!(
        answer.expose().trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    );
    if !yes {
        return Ok(Some(String::new()));
    }
    let now = clock::now();
    let expires = now.saturating_add(i64::from(days) * 86_400);
    let hash = key_hash(att, key)?;
    let fingerprint = key.fingerprint();
    let event = att.event(
        "device",
        Audit::Done,
        &format!("device trusted for {days} days: {}", key.label()),
    );
    att.d
        .store
        .trust_device(
            &NewDevice {
                user: &att.start.user,
                key_hash: &hash,
                key_type: &key.key_type,
                fingerprint: &fingerprint,
                first_ip: att.start.rhost.as_deref(),
                created_at: now,
                expires_at: expires,
            },
            &event,
        )
        .map_err(|e| e.to_string())?;
    event.log();
    Ok(Some(format!(
        "This device is trusted until {}.",
        mfad_protocol::time::utc(expires)
    )))
}
