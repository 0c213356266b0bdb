//! Sending the code of a sent-code step (SMS, email): the one piece of a
//! login that waits on a provider. The send is audited here, beside it.

use super::checks::{Attempt, CheckError, until};
use super::latency::Ending;
use super::machine::Sent;
use crate::audit::Decision as Audit;
use crate::config::CodeProfile;
use crate::delivery::{DeliveryError, address};
use crate::directory::{self, DirContact, Directory, Lookup, Pick};
use crate::factor::otp::{self, Purpose, secs};
use crate::io::FrameIo;
use crate::store::SentCode;
use crate::store::crypto::Purpose as Sealed;
use crate::{Daemon, clock};
use mfad_protocol::{Channel, Response};
use std::time::Duration;
use tokio::time::{Instant, sleep};

/// How long a decoy code "lives" when the channel is not configured.
const DECOY_VALIDITY: Duration = Duration::from_secs(300);

pub(crate) fn profile(d: &Daemon, channel: Channel) -> Option<&CodeProfile> {
    match channel {
        Channel::Sms => d.config.sms.as_ref().map(|c| &c.code),
        Channel::Email => d.config.email.as_ref().map(|c| &c.code),
    }
}

/// The verified destination of `user` for `channel`, opened.
pub(crate) fn destination(
    d: &Daemon,
    user: &str,
    channel: Channel,
) -> Result<Option<String>, CheckError> {
    Ok(contact(d, user, channel)?.map(|p| p.to))
}

/// The destination login codes go to, and whether the directory gave it:
/// the one place that weighs the directory against `mfactl`
/// ([`directory::choose`]).
pub(crate) fn contact(
    d: &Daemon,
    user: &str,
    channel: Channel,
) -> Result<Option<Pick>, CheckError> {
    let local = match d
        .store
        .contact(user, channel.name())?
        .and_then(|c| c.address)
    {
        Some(sealed) => {
            let plain = d.vault.open(user, Sealed::Contact(channel), &sealed)?;
            Some(
                String::from_utf8(plain.to_vec())
                    .map_err(|_| CheckError::Broken("a stored destination is not UTF-8"))?,
            )
        }
        None => None,
    };
    let Some(dir) = &d.directory else {
        return Ok(local.map(|to| Pick {
            to,
            from_directory: false,
        }));
    };
    let cfg = dir.config();
    Ok(directory::choose(
        local,
        directory_contact(dir, user, channel),
        cfg.contacts,
        cfg.local_contacts,
    ))
}

/// The directory's destination for `channel`, checked as `mfactl` checks
/// one; a value that is not an address counts as none.
pub(crate) fn directory_contact(dir: &Directory, user: &str, channel: Channel) -> DirContact {
    let entry = match dir.lookup(user) {
        Lookup::Found(entry) => entry,
        Lookup::NoSuchUser => return DirContact::Absent,
        Lookup::Unavailable => return DirContact::Unavailable,
    };
    let value = match channel {
        Channel::Sms => entry.phone.as_deref(),
        Channel::Email => entry.email.as_deref(),
    };
    match value.map(|v| address::parse(channel, v)) {
        Some(Ok(to)) => DirContact::Present(to),
        Some(Err(problem)) => {
            log::warn!(
                "directory: the {} of {user:?} is unusable: {problem}",
                channel.destination()
            );
            DirContact::Absent
        }
        None => DirContact::Absent,
    }
}

/// A destination for a user who has none, the same on every login of that
/// user, so that the prompt does not tell who has one. Nothing is ever
/// sent to it; it is masked as a real one, and counted under the same caps.
fn decoy_destination(d: &Daemon, user: &str, channel: Channel) -> Result<String, CheckError> {
    let h = d
        .vault
        .keyed_hash("decoy-destination", user, channel.name().as_bytes())?;
    Ok(match channel {
        Channel::Sms => {
            let from = d.config.sms.as_ref().and_then(|s| s.from.as_deref());
            decoy_number(from, &h)
        }
        Channel::Email => {
            let domain = d
                .config
                .email
                .as_ref()
                .and_then(|e| {
                    e.from
                        .rsplit_once('@')
                        .map(|(_, dom)| dom.trim_end_matches('>').to_owned())
                })
                .unwrap_or_else(|| "example.com".to_owned());
            format!("{}@{domain}", char::from(b'a' + h[0] % 26))
        }
    })
}

/// A number from the hash `h`: shaped like the sender's number (its country
/// code and length) when the sender is one, since most users are where it
/// is; else a plausible one.
fn decoy_number(from: Option<&str>, h: &[u8]) -> String {
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let (head, len) = match from.and_then(|f| f.strip_prefix('+')) {
        Some(n) if digits(n) && (8..=15).contains(&n.len()) => (n[..2].to_owned(), n.len()),
        _ => (format!("{}{}", h[0] % 9 + 1, h[1] % 10), 12),
    };
    let rest: String = h[2..]
        .iter()
        .take(len - 2)
        .map(|b| char::from(b'0' + b % 10))
        .collect();
    format!("+{head}{rest}")
}

/// The login code that can still be used: neither expired nor void, and
/// of the kind asked for (a decoy record for a user without the factor, a
/// real code otherwise), so that neither stands in for the other after the
/// user gained or lost the destination.
fn live(
    d: &Daemon,
    user: &str,
    channel: Channel,
    profile: &CodeProfile,
    decoy: bool,
    now: i64,
) -> Result<Option<SentCode>, CheckError> {
    Ok(d.store
        .sent_code(user, channel.name(), Purpose::Login)?
        .filter(|c| c.stored.is_decoy() == decoy)
        .filter(|c| c.expires > now && c.failures < profile.attempts))
}

/// Sends (or keeps) the code of a sent-code step. A first send tells the
/// user before the provider is asked, which may take seconds: pam_mfa then
/// knows mfad is alive, so a slow provider never passes for an unreachable
/// daemon (failmode=open).
///
/// A decoy (a user without the destination) goes the same way: a record
/// that no answer matches is stored as a code would be, so the cooldown,
/// the carry-over of a recent code, expiry, tries and the hourly cap answer
/// as for a real code; only the provider is not asked, and the wait is as
/// long as a real send of late ([`Latencies`](super::latency::Latencies)).
pub async fn deliver(
    att: &Attempt<'_>,
    io: &mut FrameIo,
    channel: Channel,
    resend: bool,
    decoy: bool,
) -> Result<Sent, CheckError> {
    let (d, user) = (att.d, att.user());
    let Some(profile) = profile(d, channel) else {
        // An unconfigured channel is a decoy for everyone: nothing to tell
        // apart, so nothing is kept.
        let masked = address::mask(channel, &decoy_destination(d, user, channel)?);
        if !resend {
            tell_sending(io, &masked).await;
        }
        return Ok(Sent::Live {
            masked,
            left: DECOY_VALIDITY,
        });
    };
    let real = match decoy {
        true => None,
        false => destination(d, user, channel)?,
    };
    let decoy = real.is_none();
    let to = match real {
        Some(to) => to,
        None => decoy_destination(d, user, channel)?,
    };
    let masked = address::mask(channel, &to);
    let now = clock::now();
    if !resend
        && let Some(live) = live(d, user, channel, profile, decoy, now)?
            .filter(|c| now - c.sent_at < secs(profile.resend_cooldown))
    {
        // Not a send: `sent` rows match the provider's bill. A decoy's
        // sends are not audited, so neither is its carry-over.
        if !decoy {
            att.d.record(&att.event(
                channel.name(),
                Audit::Done,
                &format!(
                    "no new code: the one sent to {masked} {} s ago stands",
                    now - live.sent_at
                ),
            ));
        }
        return Ok(Sent::Live {
            masked,
            left: until(live.expires, now),
        });
    }
    if !resend {
        tell_sending(io, &masked).await;
    }
    send(att, channel, profile, &to, decoy, &masked, resend).await
}

async fn tell_sending(io: &mut FrameIo, masked: &str) {
    let _ = io
        .send(Response::Info {
            text: format!("Sending a code to {masked}..."),
        })
        .await;
}

/// Issues and sends a code to `to`, or with `decoy` stores a decoy and
/// sends nothing.
async fn send(
    att: &Attempt<'_>,
    channel: Channel,
    profile: &CodeProfile,
    to: &str,
    decoy: bool,
    masked: &str,
    resend: bool,
) -> Result<Sent, CheckError> {
    let (d, user) = (att.d, att.user());
    let what = match (decoy, resend) {
        (false, true) => "resend",
        (false, false) => "send",
        (true, true) => "decoy resend (no destination)",
        (true, false) => "decoy send (no destination)",
    };
    let began = Instant::now();
    let now = clock::now();
    // A first send of a login is not held back by the cooldown (a second
    // login right after the first needs a code too); the hourly cap holds
    // every send.
    let issued = match decoy {
        false => otp::issue(
            &*d.store,
            &d.vault,
            user,
            channel,
            Purpose::Login,
            profile,
            resend,
            now,
        )?
        .map(Ok),
        true => otp::issue_decoy(&*d.store, user, channel, profile, resend, now)?.map(Err),
    };
    let issued = match issued {
        Ok(issued) => issued,
        Err(held) => {
            att.d.record(&att.event(
                channel.name(),
                Audit::Refused,
                &format!("{what} refused: {held}"),
            ));
            let live = live(d, user, channel, profile, decoy, now)?
                .map(|c| (masked.to_owned(), until(c.expires, now)));
            return Ok(Sent::Held {
                why: held.to_string(),
                live,
            });
        }
    };
    let issued = match issued {
        Ok(issued) => issued,
        Err(salt) => {
            // Where the caps would hold a real send back, the decoy is held
            // back the same way (and, never sent, never counted).
            if let Some(capped) = d.delivery.would_cap(channel, to, now)? {
                d.store
                    .void_code(user, channel.name(), Purpose::Login, &salt)?;
                return Ok(Sent::Failed {
                    message: failure_message(channel, masked, &DeliveryError::Capped(capped)),
                });
            }
            // As long as a real send of late, and failing as they do.
            let (wait, ending) = d.latencies.draw(channel, getrandom::u64().unwrap_or(0));
            sleep(wait).await;
            if ending != Ending::Sent {
                d.store
                    .void_code(user, channel.name(), Purpose::Login, &salt)?;
                return Ok(Sent::Failed {
                    message: failed(channel, masked, ending),
                });
            }
            return Ok(Sent::Live {
                masked: masked.to_owned(),
                left: profile.validity,
            });
        }
    };
    match d
        .delivery
        .send_code(channel, to, &issued.code, profile)
        .await
    {
        Ok(receipt) => {
            d.latencies.record(channel, began.elapsed(), Ending::Sent);
            let id = receipt.id.map_or(String::new(), |id| format!(" ({id})"));
            let done = if resend { "resent" } else { "sent" };
            att.d.record(&att.event(
                channel.name(),
                Audit::Sent,
                &format!("code {done} to {masked}{id}"),
            ));
            Ok(Sent::Live {
                masked: masked.to_owned(),
                left: profile.validity,
            })
        }
        Err(e) => {
            if let Some(ending) = ending_of(&e) {
                d.latencies.record(channel, began.elapsed(), ending);
            }
            d.store
                .void_code(user, channel.name(), Purpose::Login, &issued.salt)?;
            let service = match channel {
                Channel::Sms => "the SMS provider",
                Channel::Email => "the mail server",
            };
            if !e.logged() {
                log::warn!("cannot {what} a code to {masked} for {user:?}: {service}: {e}");
            }
            att.d.record(&att.event(
                channel.name(),
                Audit::Deny,
                &format!("delivery failed: {service}: {e}"),
            ));
            Ok(Sent::Failed {
                message: failure_message(channel, masked, &e),
            })
        }
    }
}

/// What the user is told when a code cannot be sent.
pub(crate) fn failure_message(channel: Channel, masked: &str, e: &DeliveryError) -> String {
    match e.tell(masked) {
        Some(told) => told,
        None => failed(channel, masked, ending_of(e).unwrap_or(Ending::Refused)),
    }
}

/// How a failed send of a provider ended for the person waiting (`None`
/// for a cap, which has words of its own and is not the provider's).
fn ending_of(e: &DeliveryError) -> Option<Ending> {
    match e {
        DeliveryError::Capped(_) => None,
        DeliveryError::Timeout(_) => Some(Ending::Timeout),
        DeliveryError::Connect(_) => Some(Ending::Unreachable),
        _ => Some(Ending::Refused),
    }
}

/// What the person waiting is told of a provider's failure.
fn failed(channel: Channel, masked: &str, ending: Ending) -> String {
    let service = match channel {
        Channel::Sms => "The text message service",
        Channel::Email => "The mail server",
    };
    let why = match ending {
        Ending::Timeout => "did not answer in time",
        Ending::Unreachable => "cannot be reached",
        Ending::Refused | Ending::Sent => "refused the message",
    };
    format!(
        "No code could be sent to {masked}: {service} {why}. Try again in a few minutes, \
         use another method, or ask an administrator."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decoy_number_looks_like_the_senders_masked() {
        let h = [7u8, 3, 1, 2, 5, 8, 9, 4, 6, 0, 1, 2, 3, 4, 5, 6, 7];
        let sms = |to: &str| address::mask(Channel::Sms, to);
        let decoy = decoy_number(Some("+447700900999"), &h);
        assert_eq!(decoy.len(), "+447700900999".len(), "{decoy}");
        assert_eq!(sms(&decoy), "+44*******012");
        assert_eq!(sms(&decoy_number(Some("+15550001111"), &h)), "+15******601");
        // A sender name: a plausible shape of its own.
        assert_eq!(sms(&decoy_number(Some("Example"), &h)), "+83*******012");
        assert_eq!(decoy_number(None, &h), decoy_number(Some("Example"), &h));
        // Counted under a real country code, as the caps count real ones.
        assert_eq!(
            crate::delivery::caps::prefix_key(Channel::Sms, &decoy).as_deref(),
            Some("+44")
        );
    }
}
