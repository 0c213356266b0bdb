//! The PAM authentication conversation: policy, lock check, prompt, code
//! check, verdict, audit. Its state lives in this function and dies with the
//! connection: there are no flow ids to guess.

use crate::audit::{Decision as Audit, Event};
use crate::authz::{Access, Target, authorize};
use crate::factor::totp::{self, Check};
use crate::io::{FrameIo, ReadError};
use crate::peer::{self, Peer};
use crate::policy::{Requirement, Unenrolled};
use crate::store::crypto::Purpose;
use crate::{Daemon, clock, validate};
use mfad_protocol::{AuthStart, Decision, ErrorCode, Request, Response};
use std::time::Duration;

const CHANNEL: &str = "totp";
const PROMPT: &str = "Verification code: ";

/// How one attempt ended, before it is reported.
enum Outcome {
    Allow(Event),
    Deny {
        message: String,
        reason: &'static str,
    },
}

pub async fn run(d: &Daemon, peer: &Peer, io: &mut FrameIo, start: AuthStart) {
    if let Err(problem) = validate::auth_start(&start) {
        io.send_error(ErrorCode::BadRequest, problem).await;
        return;
    }
    if peer.uid != 0 {
        let target = Target::Named(peer::uid_of(&start.user));
        if let Err(denied) = authorize(peer::Role::User, peer.uid, target, Access::Authenticate) {
            let event = Event::auth(
                &start,
                CHANNEL,
                Audit::Refused,
                "peer_not_allowed",
                peer.uid,
                clock::now(),
            );
            d.record(&event);
            io.send_error(ErrorCode::PermissionDenied, denied.0).await;
            return;
        }
    }
    let policy = d.policy();
    let (requirement, rule) = policy.decide(&start.service);
    let verdict = match requirement {
        Requirement::None => {
            d.record(&Event::auth(
                &start,
                "none",
                Audit::Allow,
                &format!("policy {rule}: none"),
                peer.uid,
                clock::now(),
            ));
            (Decision::Allow, String::new())
        }
        Requirement::Deny => {
            d.record(&Event::auth(
                &start,
                "none",
                Audit::Deny,
                &format!("policy {rule}: deny"),
                peer.uid,
                clock::now(),
            ));
            (
                Decision::Deny,
                format!("Access to {} is refused by the MFA policy.", start.service),
            )
        }
        Requirement::Totp => match totp_step(d, peer, io, &start, policy.unenrolled).await {
            Some(verdict) => verdict,
            None => return,
        },
    };
    let _ = io
        .send(Response::Verdict {
            decision: verdict.0,
            message: verdict.1,
        })
        .await;
}

/// Runs the TOTP step. `None` means the conversation ended without a verdict
/// to send (the client left, or an error was already reported).
async fn totp_step(
    d: &Daemon,
    peer: &Peer,
    io: &mut FrameIo,
    start: &AuthStart,
    unenrolled: Unenrolled,
) -> Option<(Decision, String)> {
    let user = start.user.as_str();
    let source = start
        .rhost
        .as_deref()
        .filter(|r| !r.is_empty())
        .unwrap_or("local");
    let event = |decision, reason: &str| {
        Event::auth(start, CHANNEL, decision, reason, peer.uid, clock::now())
    };
    let record = match d.store.totp(user) {
        Ok(r) => r,
        Err(e) => return internal(d, peer, io, start, e).await,
    };
    if record.is_none() && unenrolled == Unenrolled::Allow {
        d.record(&event(
            Audit::Allow,
            "not enrolled; policy allows unenrolled users",
        ));
        return Some((Decision::Allow, String::new()));
    }
    match d.store.locked_until(user, CHANNEL, source, clock::now()) {
        Ok(Some(until)) => {
            d.record(&event(Audit::Locked, "locked"));
            return Some((Decision::Locked, locked_message(until)));
        }
        Ok(None) => {}
        Err(e) => return internal(d, peer, io, start, e).await,
    }
    if io
        .send(Response::Prompt {
            echo: false,
            text: PROMPT.to_owned(),
        })
        .await
        .is_err()
    {
        return None;
    }
    let code = match io.read().await {
        Ok(Request::Answer { text }) => text,
        Ok(_) => {
            io.send_error(ErrorCode::BadRequest, "expected an answer to the prompt")
                .await;
            d.record(&event(Audit::Deny, "protocol error"));
            return None;
        }
        Err(err) => {
            let reason = match err {
                ReadError::Closed => "conversation aborted",
                ReadError::Timeout => "timed out waiting for the code",
                _ => "malformed answer",
            };
            d.record(&event(Audit::Deny, reason));
            io.report(&err).await;
            return None;
        }
    };
    // An unknown user runs the same work on a dummy secret, so that text and
    // timing look like a wrong code.
    let (aad_user, sealed, params) = match &record {
        Some(r) => (user, r.sealed_secret.as_slice(), r.params),
        None => ("", d.dummy.sealed.as_slice(), d.dummy.params),
    };
    let now = clock::now();
    let checked = d
        .vault
        .open(aad_user, Purpose::TotpSecret, sealed)
        .map_err(|e| e.to_string())
        .and_then(|secret| {
            totp::check(&secret, params, code.expose(), now, d.config.totp.window)
                .map_err(|e| e.to_string())
        });
    let outcome = match (record.is_some(), checked) {
        (_, Err(e)) => return internal(d, peer, io, start, e).await,
        (false, Ok(_)) => wrong("not enrolled"),
        (true, Ok(Check::Wrong)) => wrong("wrong code"),
        (true, Ok(Check::Skewed { drift })) => Outcome::Deny {
            message: format!(
                "That code is not valid now: the clock of your authenticator seems off by about {} seconds. Set it to the network time and try again.",
                drift.unsigned_abs().saturating_mul(params.period)
            ),
            reason: "code from a neighbouring time window (clock skew)",
        },
        (true, Ok(Check::Match { step, drift })) => {
            let reason = if drift == 0 {
                "ok".to_owned()
            } else {
                format!("ok (clock drift {drift} step)")
            };
            let allowed = event(Audit::Allow, &reason);
            match d.store.accept_totp_step(user, step, now, &allowed) {
                Ok(true) => Outcome::Allow(allowed),
                Ok(false) => Outcome::Deny {
                    message: "That code was already used. Wait for the next code, then try again."
                        .to_owned(),
                    reason: "code already used",
                },
                Err(e) => return internal(d, peer, io, start, e).await,
            }
        }
    };
    match outcome {
        Outcome::Allow(allowed) => {
            allowed.log();
            Some((Decision::Allow, String::new()))
        }
        Outcome::Deny { message, reason } => {
            let failed = event(Audit::Deny, reason);
            let state = match d
                .store
                .record_failure(user, source, now, &d.config.lockout, &failed)
            {
                Ok(state) => state,
                Err(e) => return internal(d, peer, io, start, e).await,
            };
            failed.log();
            let delay = failure_delay(d, state.consecutive);
            // A zero sleep would still wait for tokio's next 1 ms timer tick.
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            Some(match state.locked_until {
                Some(until) => (
                    Decision::Locked,
                    format!("{message} {}", locked_message(until)),
                ),
                None => (Decision::Deny, message),
            })
        }
    }
}

fn wrong(reason: &'static str) -> Outcome {
    Outcome::Deny {
        message: "Wrong code.".to_owned(),
        reason,
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

/// Logs an internal failure, reports it and fails closed.
async fn internal(
    d: &Daemon,
    peer: &Peer,
    io: &mut FrameIo,
    start: &AuthStart,
    err: impl std::fmt::Display,
) -> Option<(Decision, String)> {
    log::error!(
        "authentication of {:?} for {:?} failed internally: {err}",
        start.user,
        start.service
    );
    d.record(&Event::auth(
        start,
        CHANNEL,
        Audit::Deny,
        "internal error",
        peer.uid,
        clock::now(),
    ));
    io.send_error(ErrorCode::Internal, "internal error in mfad; see its log")
        .await;
    None
}
