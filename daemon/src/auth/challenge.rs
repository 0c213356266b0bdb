//! One factor's challenge: lock check, prompt, check of the answer, and the
//! failure bookkeeping every factor shares (counters, delay, audit).

use super::sent::{self, Stop};
use super::{Attempt, Verdict, reason_for};
use crate::audit::{Decision as Audit, Event};
use crate::config::LockoutConfig;
use crate::factor::backup;
use crate::factor::totp::{self, Check};
use crate::io::FrameIo;
use crate::policy::Factor;
use crate::store::crypto::Purpose;
use crate::{Daemon, clock};
use mfad_protocol::{Decision, ErrorCode, Request, Response, SecretString};
use std::time::Duration;

pub(crate) enum Step {
    Passed,
    /// The attempt ends with this verdict.
    Verdict(Verdict),
    /// The conversation ended without a verdict to send.
    Ended,
}

/// How one check of an answer came out, before it is recorded.
pub(super) enum Outcome {
    Allow(Event),
    Deny { message: String, reason: String },
}

/// Prompts (and new codes on `r`) a sent-code challenge may go through
/// before an answer must come.
const MAX_PROMPTS: usize = 6;

/// The first prompt of a challenge; for a sent code, after sending it.
async fn opening(
    att: &Attempt<'_>,
    io: &mut FrameIo,
    factor: Factor,
    dummy: bool,
) -> Result<String, Stop> {
    Ok(match factor {
        Factor::Totp => "Verification code: ".to_owned(),
        Factor::Backup if dummy => "Backup code: ".to_owned(),
        Factor::Backup => format!(
            "Backup code ({} left): ",
            att.d.store.backup_codes_left(&att.start.user)?
        ),
        Factor::Sms | Factor::Email => match factor.channel() {
            Some(channel) => sent::start(att, io, channel, dummy).await?,
            None => {
                return Err(Stop::Internal(
                    "a sent-code factor without a channel".into(),
                ));
            }
        },
    })
}

/// `r` (any case, blanks around it) asks for a new code.
fn wants_resend(answer: &SecretString) -> bool {
    answer.expose().trim().eq_ignore_ascii_case("r")
}

/// Challenges `factor`. With `dummy`, the user has no such factor: the same
/// work is done against a stand-in and the answer always fails.
pub(crate) async fn challenge(
    att: &Attempt<'_>,
    io: &mut FrameIo,
    factor: Factor,
    dummy: bool,
    step: Option<(usize, usize)>,
) -> Step {
    let channel = factor.name();
    let user = att.start.user.as_str();
    let note = step.map_or(String::new(), |(i, n)| format!(" (chain step {i} of {n})"));
    match att
        .d
        .store
        .locked_until(user, channel, att.source, clock::now())
    {
        Ok(Some(until)) => {
            att.record(channel, Audit::Locked, &format!("locked{note}"));
            return Step::Verdict((Decision::Locked, locked_message(until)));
        }
        Ok(None) => {}
        Err(e) => return ended(internal(att, io, e).await),
    }
    let mut text = match opening(att, io, factor, dummy).await {
        Ok(text) => text,
        Err(Stop::Verdict(verdict)) => return Step::Verdict(verdict),
        Err(Stop::Internal(e)) => return ended(internal(att, io, e).await),
    };
    let mut prompts = 0;
    let answer = loop {
        prompts += 1;
        if io
            .send(Response::Prompt { echo: false, text })
            .await
            .is_err()
        {
            return Step::Ended;
        }
        let answer = match io.read().await {
            Ok(Request::Answer { text }) => text,
            Ok(_) => {
                att.record(channel, Audit::Deny, "protocol error");
                io.send_error(ErrorCode::BadRequest, "expected an answer to the prompt")
                    .await;
                return Step::Ended;
            }
            Err(err) => {
                att.record(channel, Audit::Deny, &format!("{}{note}", reason_for(&err)));
                io.report(&err).await;
                return Step::Ended;
            }
        };
        match factor.channel() {
            Some(ch) if !dummy && prompts < MAX_PROMPTS && wants_resend(&answer) => {
                text = match sent::resend(att, ch).await {
                    Ok(text) => text,
                    Err(Stop::Verdict(verdict)) => return Step::Verdict(verdict),
                    Err(Stop::Internal(e)) => return ended(internal(att, io, e).await),
                };
            }
            _ => break answer,
        }
    };
    let now = clock::now();
    let checked = match factor {
        Factor::Totp => check_totp(att, &answer, now, dummy, &note),
        Factor::Backup => check_backup(att, &answer, now, dummy, &note),
        Factor::Sms | Factor::Email => match factor.channel() {
            Some(ch) => sent::check(att, ch, &answer, now, dummy, &note),
            None => Err("a sent-code factor without a channel".to_owned()),
        },
    };
    match checked {
        Err(e) => ended(internal(att, io, e).await),
        Ok(Outcome::Allow(event)) => {
            event.log();
            Step::Passed
        }
        Ok(Outcome::Deny { message, reason }) => {
            let failed = att.event(channel, Audit::Deny, &format!("{reason}{note}"));
            let state = match att.d.store.record_failure(
                user,
                att.source,
                now,
                &lockout(att.d, factor),
                &failed,
            ) {
                Ok(state) => state,
                Err(e) => return ended(internal(att, io, e).await),
            };
            failed.log();
            let delay = failure_delay(att.d, state.consecutive);
            // A zero sleep would still wait for tokio's next 1 ms timer tick.
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            Step::Verdict(match state.locked_until {
                Some(until) => (
                    Decision::Locked,
                    format!("{message} {}", locked_message(until)),
                ),
                None => (Decision::Deny, message),
            })
        }
    }
}

fn ended(_: Option<Verdict>) -> Step {
    Step::Ended
}

fn check_totp(
    att: &Attempt<'_>,
    code: &SecretString,
    now: i64,
    dummy: bool,
    note: &str,
) -> Result<Outcome, String> {
    let d = att.d;
    let user = att.start.user.as_str();
    let record = if dummy {
        None
    } else {
        d.store.totp(user).map_err(|e| e.to_string())?
    };
    let (aad_user, sealed, params) = match &record {
        Some(r) => (user, r.sealed_secret.as_slice(), r.params),
        None => ("", d.dummy.sealed.as_slice(), d.dummy.params),
    };
    let secret = d
        .vault
        .open(aad_user, Purpose::TotpSecret, sealed)
        .map_err(|e| e.to_string())?;
    let check = totp::check(&secret, params, code.expose(), now, d.config.totp.window)
        .map_err(|e| e.to_string())?;
    Ok(match (record.is_some(), check) {
        (false, _) => wrong("Wrong code.", "not enrolled"),
        (true, Check::Wrong) => wrong("Wrong code.", "wrong code"),
        (true, Check::Skewed { drift }) => Outcome::Deny {
            message: format!(
                "That code is not valid now: the clock of your authenticator seems off by about {} seconds. Set it to the network time and try again.",
                drift.unsigned_abs().saturating_mul(params.period)
            ),
            reason: "code from a neighbouring time window (clock skew)".to_owned(),
        },
        (true, Check::Match { step, drift }) => {
            let reason = if drift == 0 {
                format!("ok{note}")
            } else {
                format!("ok (clock drift {drift} step){note}")
            };
            let allowed = att.event("totp", Audit::Allow, &reason);
            if d.store
                .accept_totp_step(user, step, now, &allowed)
                .map_err(|e| e.to_string())?
            {
                Outcome::Allow(allowed)
            } else {
                Outcome::Deny {
                    message: "That code was already used. Wait for the next code, then try again."
                        .to_owned(),
                    reason: "code already used".to_owned(),
                }
            }
        }
    })
}

fn check_backup(
    att: &Attempt<'_>,
    code: &SecretString,
    now: i64,
    dummy: bool,
    note: &str,
) -> Result<Outcome, String> {
    let d = att.d;
    let user = att.start.user.as_str();
    let mut candidates = if dummy {
        Vec::new()
    } else {
        d.store
            .unused_backup_codes(user)
            .map_err(|e| e.to_string())?
    };
    if candidates.is_empty() {
        // The work of one comparison, for an answer that cannot match.
        candidates.push((-1, backup::Stored::never()));
    }
    let found =
        backup::find(&d.vault, user, code.expose(), &candidates).map_err(|e| e.to_string())?;
    let Some(id) = found.filter(|_| !dummy) else {
        return Ok(wrong(
            "Wrong backup code.",
            if dummy { "not enrolled" } else { "wrong code" },
        ));
    };
    let left = candidates.len() - 1;
    let allowed = att.event(
        "backup",
        Audit::Allow,
        &format!("ok, {left} backup codes left{note}"),
    );
    Ok(
        if d.store
            .consume_backup_code(user, id, now, &allowed)
            .map_err(|e| e.to_string())?
        {
            Outcome::Allow(allowed)
        } else {
            wrong(
                "That backup code was already used.",
                "backup code already used",
            )
        },
    )
}

/// The lockout a factor's failures count against: a sent-code channel
/// locks a source after its profile's `attempts`.
fn lockout(d: &Daemon, factor: Factor) -> LockoutConfig {
    let mut lockout = d.config.lockout.clone();
    if let Some(profile) = factor.channel().and_then(|ch| sent::profile(d, ch)) {
        lockout.threshold = profile.attempts;
        lockout.account_threshold = lockout.account_threshold.max(profile.attempts);
    }
    lockout
}

pub(super) fn wrong(message: &str, reason: &str) -> Outcome {
    Outcome::Deny {
        message: message.to_owned(),
        reason: reason.to_owned(),
    }
}

/// The deliberate pause before a failure verdict: it grows with the number
/// of consecutive failures, up to the configured maximum.
fn failure_delay(d: &Daemon, consecutive: u32) -> Duration {
    let l = &d.config.lockout;
    l.failure_delay
        .saturating_mul(consecutive)
        .min(l.failure_delay_max)
}

fn locked_message(until: i64) -> String {
    format!(
        "Too many failed attempts: verification is locked until {}. Try again later or ask an administrator to unlock your account.",
        mfad_protocol::time::utc(until)
    )
}

/// Logs an internal failure, audits and reports it, and fails closed.
pub(crate) async fn internal(
    att: &Attempt<'_>,
    io: &mut FrameIo,
    err: impl std::fmt::Display,
) -> Option<Verdict> {
    log::error!(
        "authentication of {:?} for {:?} failed internally: {err}",
        att.start.user,
        att.start.service
    );
    att.record("none", Audit::Deny, "internal error");
    io.send_error(ErrorCode::Internal, "internal error in mfad; see its log")
        .await;
    None
}
