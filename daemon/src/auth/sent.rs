//! Challenges with a sent code (SMS, email): the send before the prompt,
//! a prompt that says where the code went and how long it lives (sshd shows
//! info text only with the next prompt, so it is all in the prompt), resends
//! on `r` within the cooldown and the hourly cap, and the check.

use super::challenge::{Outcome, wrong};
use super::{Attempt, Verdict};
use crate::audit::Decision as Audit;
use crate::config::CodeProfile;
use crate::delivery::{DeliveryError, address, lifetime};
use crate::factor::hashed::Stored;
use crate::factor::otp::{self, Purpose, secs};
use crate::io::FrameIo;
use crate::store::SentCode;
use crate::store::crypto::Purpose as Sealed;
use crate::{Daemon, clock};
use mfad_protocol::{Channel, Decision, Response, SecretString};
use std::time::Duration;

/// Why a sent-code challenge could not go on.
pub(super) enum Stop {
    /// End the attempt with this verdict (already audited).
    Verdict(Verdict),
    /// Something broke inside mfad.
    Internal(String),
}

impl<E: std::fmt::Display> From<E> for Stop {
    fn from(e: E) -> Self {
        Stop::Internal(e.to_string())
    }
}

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
) -> Result<Option<String>, String> {
    let row = d
        .store
        .contact(user, channel.name())
        .map_err(|e| e.to_string())?;
    let Some(sealed) = row.and_then(|c| c.address) else {
        return Ok(None);
    };
    let plain = d
        .vault
        .open(user, Sealed::Contact(channel), &sealed)
        .map_err(|e| e.to_string())?;
    String::from_utf8(plain.to_vec())
        .map(Some)
        .map_err(|_| "a stored destination is not UTF-8".to_owned())
}

/// The login code that can still be used: neither expired nor void.
fn live(
    d: &Daemon,
    user: &str,
    channel: Channel,
    profile: &CodeProfile,
    now: i64,
) -> Result<Option<SentCode>, Stop> {
    Ok(d.store
        .sent_code(user, channel.name(), Purpose::Login)?
        .filter(|c| c.expires > now && c.failures < profile.attempts))
}

fn until(expires: i64, now: i64) -> Duration {
    Duration::from_secs(u64::try_from(expires - now).unwrap_or(0))
}

/// The prompt for a code that is on its way.
fn prompt(masked: &str, left: Duration, note: &str) -> String {
    format!(
        "{note}Code sent to {masked}, valid {}. Enter it, or r for a new code: ",
        lifetime(left)
    )
}

/// Sends the first code of a challenge and returns the prompt. A code sent
/// to this user within the cooldown (another login moments ago) is kept
/// instead of sending a second one.
pub(super) async fn start(
    att: &Attempt<'_>,
    io: &mut FrameIo,
    channel: Channel,
    dummy: bool,
) -> Result<String, Stop> {
    if dummy {
        return Ok("Verification code: ".to_owned());
    }
    let (d, user) = (att.d, att.start.user.as_str());
    let profile = profile(d, channel).ok_or("the channel is not configured")?;
    let to = destination(d, user, channel)?.ok_or("the destination vanished")?;
    let masked = address::mask(channel, &to);
    let now = clock::now();
    if let Some(live) = live(d, user, channel, profile, now)?
        .filter(|c| now - c.sent_at < secs(profile.resend_cooldown))
    {
        // Not a send: `sent` rows match the provider's bill.
        att.record(
            channel.name(),
            Audit::Done,
            &format!(
                "no new code: the one sent to {masked} {} s ago stands",
                now - live.sent_at
            ),
        );
        return Ok(prompt(&masked, until(live.expires, now), ""));
    }
    // Said before the provider is asked, which may take seconds: the user
    // knows what is happening, and pam_mfa knows mfad is alive, so a slow
    // provider can never pass for an unreachable daemon (failmode=open).
    // A client that is gone shows at the prompt.
    let _ = io
        .send(Response::Info {
            text: format!("Sending a code to {masked}..."),
        })
        .await;
    send(att, channel, profile, &to, &masked, false).await
}

/// A new code on `r`, if the cooldown and the hourly cap allow; otherwise
/// the prompt again, saying when.
pub(super) async fn resend(att: &Attempt<'_>, channel: Channel) -> Result<String, Stop> {
    let (d, user) = (att.d, att.start.user.as_str());
    let profile = profile(d, channel).ok_or("the channel is not configured")?;
    let to = destination(d, user, channel)?.ok_or("the destination vanished")?;
    let masked = address::mask(channel, &to);
    send(att, channel, profile, &to, &masked, true).await
}

async fn send(
    att: &Attempt<'_>,
    channel: Channel,
    profile: &CodeProfile,
    to: &str,
    masked: &str,
    resend: bool,
) -> Result<String, Stop> {
    let (d, user) = (att.d, att.start.user.as_str());
    let what = if resend { "resend" } else { "send" };
    let now = clock::now();
    let issued = otp::issue(
        &d.store,
        &d.vault,
        user,
        channel,
        Purpose::Login,
        profile,
        // A first send of a login is not held back by the cooldown (a
        // second login right after the first needs a code too); the
        // hourly cap holds every send.
        resend,
        now,
    )?;
    let issued = match issued {
        Ok(issued) => issued,
        Err(held) => {
            att.record(
                channel.name(),
                Audit::Refused,
                &format!("{what} refused: {held}"),
            );
            let held = format!("{held}. ");
            return match live(d, user, channel, profile, now)? {
                Some(c) => Ok(prompt(masked, until(c.expires, now), &held)),
                None => Err(Stop::Verdict((
                    Decision::Deny,
                    format!("{held}Log in again later, or use another method."),
                ))),
            };
        }
    };
    match d
        .delivery
        .send_code(channel, to, &issued.code, profile)
        .await
    {
        Ok(receipt) => {
            let id = receipt.id.map_or(String::new(), |id| format!(" ({id})"));
            let done = if resend { "resent" } else { "sent" };
            let reason = format!("code {done} to {masked}{id}");
            att.record(channel.name(), Audit::Sent, &reason);
            Ok(prompt(masked, profile.validity, ""))
        }
        Err(e) => {
            d.store
                .void_code(user, channel.name(), Purpose::Login, &issued.salt)?;
            let service = match channel {
                Channel::Sms => "the SMS provider",
                Channel::Email => "the mail server",
            };
            if !e.logged() {
                log::warn!("cannot {what} a code to {masked} for {user:?}: {service}: {e}");
            }
            att.record(
                channel.name(),
                Audit::Deny,
                &format!("delivery failed: {service}: {e}"),
            );
            Err(Stop::Verdict((
                Decision::Deny,
                failure_message(channel, masked, &e),
            )))
        }
    }
}

/// What the user is told when a code cannot be sent.
pub(crate) fn failure_message(channel: Channel, masked: &str, e: &DeliveryError) -> String {
    if let Some(told) = e.tell(masked) {
        return told;
    }
    let service = match channel {
        Channel::Sms => "The text message service",
        Channel::Email => "The mail server",
    };
    let why = match e {
        DeliveryError::Timeout(_) => "did not answer in time",
        DeliveryError::Connect(_) => "cannot be reached",
        _ => "refused the message",
    };
    format!(
        "No code could be sent to {masked}: {service} {why}. Try again in a few minutes, \
         use another method, or ask an administrator."
    )
}

/// Checks a typed login code against the live one.
pub(super) fn check(
    att: &Attempt<'_>,
    channel: Channel,
    typed: &SecretString,
    now: i64,
    dummy: bool,
    note: &str,
) -> Result<Outcome, String> {
    let (d, user) = (att.d, att.start.user.as_str());
    let name = channel.name();
    let attempts = profile(d, channel).map_or(1, |p| p.attempts);
    let sent = if dummy {
        None
    } else {
        d.store
            .sent_code(user, name, Purpose::Login)
            .map_err(|e| e.to_string())?
    };
    // The work of one comparison whatever the state of the code.
    let stored = sent
        .as_ref()
        .map_or_else(Stored::never, |c| c.stored.clone());
    let matches = stored
        .matches(&d.vault, user, typed.expose())
        .map_err(|e| e.to_string())?;
    let Some(sent) = sent else {
        return Ok(if dummy {
            wrong("Wrong code.", "not enrolled")
        } else {
            wrong(
                "That code is no longer valid: it expired, was used, or was replaced by a newer one. Log in again for a new code.",
                "no live code (expired, used or replaced)",
            )
        });
    };
    if sent.expires <= now {
        return Ok(wrong(
            "That code has expired. Log in again for a new code.",
            "code expired",
        ));
    }
    if sent.failures >= attempts {
        return Ok(wrong(
            "That code is void after too many wrong tries. Log in again for a new code.",
            "code void after too many wrong tries",
        ));
    }
    if !matches {
        let failures = d
            .store
            .code_failed(user, name, Purpose::Login, &sent.stored.salt)
            .map_err(|e| e.to_string())?;
        return Ok(if failures >= attempts {
            wrong(
                "Wrong code. That was the last try for this code: log in again for a new one.",
                "wrong code; the code is now void",
            )
        } else {
            wrong("Wrong code.", "wrong code")
        });
    }
    let allowed = att.event(name, Audit::Allow, &format!("ok{note}"));
    Ok(
        if d.store
            .consume_login_code(user, name, &sent.stored.salt, now, &allowed)
            .map_err(|e| e.to_string())?
        {
            Outcome::Allow(allowed)
        } else {
            wrong("That code was already used.", "code already used")
        },
    )
}
