//! `mfactl import`: a TOTP factor moved over from another tool (Google
//! Authenticator's PAM module, pam_oath). mfactl reads the old files (they
//! stay as they are); mfad checks what it can honour, seals the secret as
//! an enrollment would and activates it with the old scratch codes as
//! backup codes, in one transaction with one audit row.

use crate::admin::{Refusal, done};
use crate::audit::{Decision, Event};
use crate::config::TotpAlgorithm;
use crate::factor::backup::Stored;
use crate::peer::Peer;
use crate::store::crypto::Purpose;
use crate::store::{NewTotp, TotpParams};
use crate::{Daemon, clock};
use mfad_protocol::{ErrorCode, ImportTotp, Response};
use zeroize::Zeroizing;

/// RFC 4226 (R6): a shared secret of at least 128 bits; the TOTP check
/// refuses shorter ones, so they are refused here rather than at login.
const MIN_SECRET: usize = 16;

pub fn totp(d: &Daemon, peer: &Peer, i: &ImportTotp) -> Result<Response, Refusal> {
    let user = i.user.as_str();
    let refuse = |why: String| {
        d.record(&Event::admin(
            user,
            &format!("import from {} refused: {why}", i.source),
            Decision::Refused,
            peer.uid,
            clock::now(),
        ));
        Refusal::new(ErrorCode::BadRequest, why)
    };
    if d.store.totp_summary(user)?.is_some() {
        let why = format!(
            "{user} already has an active TOTP factor; `mfactl user reset {user}` first to replace it"
        );
        refuse(why.clone());
        return Err(Refusal::new(ErrorCode::AlreadyEnrolled, why));
    }
    let typed = Zeroizing::new(i.secret.expose().trim().to_ascii_uppercase());
    // Wiped on drop (totp-rs's zeroize feature).
    let secret = totp_rs::Secret::try_from_base32(typed.as_str())
        .map_err(|_| refuse("the secret is not base32".to_owned()))?;
    let secret = secret.as_bytes();
    if secret.len() < MIN_SECRET {
        return Err(refuse(format!(
            "the secret has {} bits; mfad needs at least 128: enroll {user} anew",
            secret.len() * 8
        )));
    }
    if !(6..=8).contains(&i.digits) || !(15..=300).contains(&i.period) {
        return Err(refuse(format!(
            "{} digits every {} s is not supported (6 to 8 digits, 15 to 300 s)",
            i.digits, i.period
        )));
    }
    let params = TotpParams {
        algorithm: TotpAlgorithm::SHA1,
        digits: i.digits,
        period: i.period,
    };
    let sealed = d.vault.seal(user, Purpose::TotpSecret, secret)?;
    let codes = i
        .scratch
        .iter()
        .map(|c| Stored::new(&d.vault, user, c.expose()))
        .collect::<Result<Vec<_>, _>>()?;
    let now = clock::now();
    let event = Event::admin(
        user,
        &format!(
            "totp imported from {} ({} digits, {} s), {} scratch codes as backup codes",
            i.source,
            i.digits,
            i.period,
            codes.len()
        ),
        Decision::Done,
        peer.uid,
        now,
    );
    let totp = NewTotp {
        sealed: &sealed,
        params,
        // No code of it has been used here yet.
        step: 0,
        now,
    };
    // An import without scratch codes keeps the backup codes the user has.
    let backup = (!codes.is_empty()).then_some(codes.as_slice());
    d.store.enroll_totp(user, &totp, backup, &event)?;
    event.log();
    Ok(done(format!(
        "{user}: TOTP imported ({} digits, {} s){}.",
        i.digits,
        i.period,
        match codes.len() {
            0 => String::new(),
            n => format!(", {n} scratch codes kept as backup codes"),
        }
    )))
}
