//! Phone numbers and email addresses: `mfactl phone|email set|verify|clear`.
//! A new destination gets a code and stays pending until the code comes
//! back; only then do login codes go there. Admins may set one verified
//! outright. Every change is audited; destinations are sealed at rest and
//! shown masked.

use crate::admin::{Refusal, done};
use crate::audit::{Decision, Event};
use crate::config::LocalContacts;
use crate::delivery::{DeliveryError, address, lifetime};
use crate::directory::DirContact;
use crate::factor::otp::{self, Purpose};
use crate::peer::{self, Peer, Role};
use crate::store::crypto::Purpose as Sealed;
use crate::{Daemon, clock, login};
use mfad_protocol::{Channel, ContactInfo, ErrorCode, Response, SecretString};

/// The mfactl command for a channel: `phone` or `email`.
fn command(channel: Channel) -> &'static str {
    match channel {
        Channel::Sms => "phone",
        Channel::Email => "email",
    }
}

/// With `local_contacts = "refuse"` the directory is the authority for
/// the users it gives a destination: `mfactl` may set only that very
/// destination (to confirm it, under `contacts = "confirm"`).
fn beside_directory(d: &Daemon, user: &str, channel: Channel, to: &str) -> Result<(), Refusal> {
    let Some(dir) = d
        .directory
        .as_ref()
        .filter(|dir| dir.config().local_contacts == LocalContacts::Refuse)
    else {
        return Ok(());
    };
    match login::directory_contact(dir, user, channel) {
        DirContact::Absent => Ok(()),
        DirContact::Present(theirs) if theirs == to => Ok(()),
        DirContact::Present(theirs) => Err(Refusal::new(
            ErrorCode::PermissionDenied,
            format!(
                "the directory gives {user} the {} {}, and mfad.toml has                  `local_contacts = \"refuse\"`: change it in the directory",
                channel.destination(),
                address::mask(channel, &theirs)
            ),
        )),
        DirContact::Unavailable => Err(Refusal::new(
            ErrorCode::Busy,
            "the directory cannot be reached to check this destination; try again later",
        )),
    }
}

/// Seals `to` and stores it, verified or waiting for its code, with the
/// audit row of the change.
#[allow(clippy::too_many_arguments)]
fn store_destination(
    d: &Daemon,
    peer: &Peer,
    user: &str,
    channel: Channel,
    to: &str,
    verified: bool,
    action: &str,
    now: i64,
) -> Result<(), Refusal> {
    let purpose = if verified {
        Sealed::Contact(channel)
    } else {
        Sealed::PendingContact(channel)
    };
    let sealed = d.vault.seal(user, purpose, to.as_bytes())?;
    let event = Event::admin(user, action, Decision::Done, peer.uid, now);
    d.store
        .put_contact(user, channel.name(), &sealed, verified, now, &event)?;
    event.log();
    Ok(())
}

pub async fn set(
    d: &Daemon,
    peer: &Peer,
    user: &str,
    channel: Channel,
    input: &SecretString,
    verified: bool,
    force: bool,
) -> Result<Response, Refusal> {
    let cmd = command(channel);
    let user = user.to_owned();
    let profile = login::code_profile(d, channel).ok_or_else(|| {
        Refusal::new(
            ErrorCode::NotConfigured,
            format!(
                "mfad cannot send to {}es: its configuration has no [{}] section",
                channel.destination(),
                channel.name()
            ),
        )
    })?;
    let to = address::parse(channel, input.expose())
        .map_err(|p| Refusal::new(ErrorCode::BadRequest, p))?;
    beside_directory(d, &user, channel, &to)?;
    let masked = address::mask(channel, &to);
    let warning = crate::admin::unknown_account(d, peer, &user, &format!("{cmd} set"), force)?
        .map_or(String::new(), |w| format!(" {w}"));
    let now = clock::now();
    if verified {
        let action =
            format!("{cmd} set to {masked}, verified by an admin without a code.{warning}");
        store_destination(d, peer, &user, channel, &to, true, &action, now)?;
        return Ok(done(format!(
            "{masked} is now the verified {} of {user}.{warning}",
            channel.destination()
        )));
    }
    let issued = match otp::issue(
        &*d.store,
        &d.vault,
        &user,
        channel,
        Purpose::Verify,
        profile,
        true,
        now,
    )? {
        Ok(issued) => issued,
        Err(held) => {
            d.record(&Event::admin(
                &user,
                &format!("{cmd} set to {masked} refused: {held}"),
                Decision::Refused,
                peer.uid,
                now,
            ));
            return Err(Refusal::new(
                ErrorCode::TooManyCodes,
                format!("{held}; try again then"),
            ));
        }
    };
    // Only users are capped per uid: an admin's requests are trusted (and
    // may set a destination verified outright anyway). The global caps
    // hold for everyone.
    let asked_by =
        (peer::role(peer, d.config.admin_group.as_deref()) == Role::User).then_some(peer.uid);
    // Sent before the destination is stored, so a send that fails or is
    // capped leaves the user's destinations as they were.
    match d
        .delivery
        .send_verification(channel, &to, &issued.code, profile, asked_by)
        .await
    {
        Ok(receipt) => {
            let action = format!("{cmd} set to {masked}, pending verification.{warning}");
            store_destination(d, peer, &user, channel, &to, false, &action, now)?;
            let id = receipt.id.map_or(String::new(), |id| format!(" ({id})"));
            d.record(&Event::admin(
                &user,
                &format!("verification code sent to {masked}{id}"),
                Decision::Sent,
                peer.uid,
                now,
            ));
            Ok(done(format!(
                "A code was sent to {masked}; it is valid for {}. Confirm with `mfactl {cmd} verify CODE{}`.{warning}",
                lifetime(profile.validity),
                user_flag(peer, &user)
            )))
        }
        Err(e) => {
            d.store
                .void_code(&user, channel.name(), Purpose::Verify, &issued.salt)?;
            d.record(&Event::admin(
                &user,
                &format!("verification code to {masked} not sent: {e}"),
                Decision::Failed,
                peer.uid,
                now,
            ));
            let code = if matches!(e, DeliveryError::Capped(_)) {
                ErrorCode::TooManyCodes
            } else {
                ErrorCode::DeliveryFailed
            };
            Err(Refusal::new(
                code,
                login::delivery_failure(channel, &masked, &e),
            ))
        }
    }
}

/// ` --user NAME` when the caller acted on another account.
fn user_flag(peer: &Peer, user: &str) -> String {
    match crate::peer::name_of(peer.uid) {
        Some(own) if own == user => String::new(),
        _ => format!(" --user {user}"),
    }
}

pub fn verify(
    d: &Daemon,
    peer: &Peer,
    user: &str,
    channel: Channel,
    code: &SecretString,
) -> Result<Response, Refusal> {
    let cmd = command(channel);
    let user = user.to_owned();
    let attempts = login::code_profile(d, channel).map_or(1, |p| p.attempts);
    let now = clock::now();
    let refuse = |why: &str| {
        d.record(&Event::admin(
            &user,
            &format!("{cmd} verify refused: {why}"),
            Decision::Refused,
            peer.uid,
            now,
        ));
    };
    let Some(pending) = d
        .store
        .contact(&user, channel.name())?
        .and_then(|c| c.pending)
    else {
        return Err(Refusal::new(
            ErrorCode::NoPendingEnrollment,
            format!(
                "no {} is waiting for a code; set one with `mfactl {cmd} set`",
                channel.destination()
            ),
        ));
    };
    // Expired codes are purged, so a missing one has most likely expired.
    let sent = d
        .store
        .sent_code(&user, channel.name(), Purpose::Verify)?
        .filter(|s| s.expires > now && s.failures < attempts);
    let Some(sent) = sent else {
        refuse("the code expired or is void");
        return Err(Refusal::new(
            ErrorCode::WrongCode,
            format!(
                "the code for the waiting {} has expired or had too many wrong tries; \
                 run `mfactl {cmd} set` again for a new one",
                channel.destination()
            ),
        ));
    };
    if !sent.stored.matches(&d.vault, &user, code.expose())? {
        let failures =
            d.store
                .code_failed(&user, channel.name(), Purpose::Verify, &sent.stored.salt)?;
        refuse("wrong code");
        let left = attempts.saturating_sub(failures);
        return Err(Refusal::new(
            ErrorCode::WrongCode,
            format!("the code does not match ({left} tries left for this code)"),
        ));
    }
    let to = d
        .vault
        .open(&user, Sealed::PendingContact(channel), &pending)?;
    let masked = address::mask(channel, &String::from_utf8_lossy(&to));
    let sealed = d.vault.seal(&user, Sealed::Contact(channel), &to)?;
    let event = Event::admin(
        &user,
        &format!("{cmd} {masked} verified"),
        Decision::Done,
        peer.uid,
        now,
    );
    if !d.store.verify_contact(
        &user,
        channel.name(),
        &sent.stored.salt,
        &sealed,
        now,
        &event,
    )? {
        refuse("the code was already used");
        return Err(Refusal::new(
            ErrorCode::WrongCode,
            "that code was already used",
        ));
    }
    event.log();
    Ok(done(format!(
        "{masked} is verified: login codes by {} go there now.",
        channel.name()
    )))
}

pub fn clear(d: &Daemon, peer: &Peer, user: &str, channel: Channel) -> Result<Response, Refusal> {
    let cmd = command(channel);
    let user = user.to_owned();
    let event = Event::admin(
        &user,
        &format!("{cmd} cleared"),
        Decision::Done,
        peer.uid,
        clock::now(),
    );
    let existed = d.store.clear_contact(&user, channel.name(), &event)?;
    event.log();
    Ok(done(if existed {
        format!("Removed the {} of {user}.", channel.destination())
    } else {
        format!("{user} had no {}.", channel.destination())
    }))
}

/// The destinations of `user`, masked, for `status`: the one login codes
/// go to (from the store or the directory) and any waiting for its code.
pub(crate) fn info(d: &Daemon, user: &str) -> Result<Vec<ContactInfo>, Refusal> {
    let mut out = Vec::new();
    for channel in Channel::ALL {
        let row = d.store.contact(user, channel.name())?;
        let pick = login::contact(d, user, channel)?;
        if row.is_none() && pick.is_none() {
            continue;
        }
        let pending = match row.as_ref().and_then(|r| r.pending.as_ref()) {
            Some(sealed) => {
                let plain = d
                    .vault
                    .open(user, Sealed::PendingContact(channel), sealed)?;
                Some(address::mask(channel, &String::from_utf8_lossy(&plain)))
            }
            None => None,
        };
        let from_directory = pick.as_ref().is_some_and(|p| p.from_directory);
        out.push(ContactInfo {
            channel,
            verified: pick.map(|p| address::mask(channel, &p.to)),
            verified_at: row.and_then(|r| r.verified_at).filter(|_| !from_directory),
            pending,
            from_directory,
        });
    }
    Ok(out)
}
