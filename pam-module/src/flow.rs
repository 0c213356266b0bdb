//! The relay: one connection to the daemon, its prompts passed through the
//! PAM conversation until a verdict, and one `match` from outcome to PAM code.
//!
//! Written over the traits in `conv` so it is tested without libpam.

use crate::args::{Args, FailMode};
use crate::conv::{ConvError, Conversation, Env, Level, Log};
use mfad_protocol::{
    AuthStart, Client, ClientError, ClientOptions, Decision, ErrorCode, FrameError, Request,
    Response, SecretString,
};
use pamsm::PamError;
use std::time::Duration;

/// What the user sees whenever the daemon cannot give a proper answer.
pub const UNAVAILABLE_MSG: &str = "MFA service unavailable; contact your administrator.";
/// Responses accepted on one connection before a verdict; a daemon that
/// keeps talking is broken, and must not hold the login in a loop.
pub const MAX_FRAMES: usize = 32;
/// Per-frame write timeout; the read timeout comes from `timeout=`.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest daemon-supplied text copied into a log line.
const MAX_LOG_TEXT: usize = 300;
/// The PAM environment variable that carries the daemon's one-time ticket
/// from the authentication to the session hook, which removes it.
pub const TICKET_VAR: &str = "MFAD_TICKET";

/// Everything one authentication needs besides the items.
#[derive(Debug, Clone)]
pub struct Settings {
    pub client: ClientOptions,
    pub failmode: FailMode,
    pub debug: bool,
    /// PAM_SILENT: no messages to the user (prompts still go through).
    pub silent: bool,
}

impl Settings {
    pub fn new(args: &Args, silent: bool) -> Self {
        Self {
            client: ClientOptions {
                socket: args.socket.clone(),
                read_timeout: args.timeout,
                write_timeout: WRITE_TIMEOUT,
                // A socket served by anyone but root is a squatter.
                daemon_uid: Some(0),
            },
            failmode: args.failmode,
            debug: args.debug,
            silent,
        }
    }
}

/// How a conversation with the daemon ended.
enum Outcome {
    Verdict(Decision, String, Option<SecretString>),
    ConvFailed(ConvError),
    /// No daemon there: the socket is missing or nothing listens on it. The
    /// only case `failmode=open` may step aside for.
    Unreachable(String),
    /// The daemon refused this caller (`permission_denied`).
    Refused(String),
    /// Anything else that is not a proper conversation. Never fails open.
    Broken(String),
}

/// Runs one authentication and returns the PAM code for it.
pub fn authenticate(
    s: &Settings,
    start: AuthStart,
    conv: &mut dyn Conversation,
    log: &mut dyn Log,
    env: &mut dyn Env,
) -> PamError {
    let outcome = relay(s, start, conv, log);
    let show = |conv: &mut dyn Conversation, text: &str, as_error: bool| {
        if !s.silent && !text.is_empty() {
            if as_error {
                conv.error(text);
            } else {
                conv.info(text);
            }
        }
    };
    match outcome {
        Outcome::Verdict(decision @ (Decision::Allow | Decision::Pass), message, ticket) => {
            show(conv, &message, false);
            // A ticket that cannot be stored costs only the session's record
            // of its factors (a later step-up asks for everything).
            if let Some(ticket) = ticket
                && let Err(rc) = env.set(TICKET_VAR, ticket.expose())
            {
                log.log(
                    Level::Warning,
                    &format!("cannot keep the session ticket (PAM error {rc})"),
                );
            }
            match decision {
                // Nothing verified: the other modules of the stack decide.
                Decision::Pass => PamError::IGNORE,
                _ => PamError::SUCCESS,
            }
        }
        Outcome::Verdict(Decision::Deny, message, _) => {
            show(conv, &message, true);
            PamError::AUTH_ERR
        }
        Outcome::Verdict(Decision::Locked, message, _) => {
            show(conv, &message, true);
            PamError::MAXTRIES
        }
        Outcome::ConvFailed(err) => {
            log.log(Level::Notice, &format!("conversation ended: {err}"));
            PamError::CONV_ERR
        }
        Outcome::Unreachable(why) if s.failmode == FailMode::Open => {
            log.log(
                Level::Warning,
                &format!("failing open (failmode=open), MFA skipped: {}", clean(&why)),
            );
            PamError::IGNORE
        }
        Outcome::Unreachable(why) | Outcome::Broken(why) => {
            log.log(
                Level::Err,
                &format!("denying, MFA unavailable: {}", clean(&why)),
            );
            show(conv, UNAVAILABLE_MSG, true);
            PamError::AUTHINFO_UNAVAIL
        }
        Outcome::Refused(message) => {
            log.log(
                Level::Err,
                &format!("the daemon refused this request: {}", clean(&message)),
            );
            show(conv, UNAVAILABLE_MSG, true);
            PamError::PERM_DENIED
        }
    }
}

fn relay(
    s: &Settings,
    start: AuthStart,
    conv: &mut dyn Conversation,
    log: &mut dyn Log,
) -> Outcome {
    let mut debug = |msg: &str| {
        if s.debug {
            log.log(Level::Debug, msg);
        }
    };
    let mut client = match Client::connect(&s.client) {
        Ok(client) => client,
        Err(e) => return failed(e),
    };
    debug("connected to mfad, sending auth_start");
    if let Err(e) = client.send(&Request::AuthStart(start)) {
        return failed(e);
    }
    for _ in 0..MAX_FRAMES {
        let response = match client.recv() {
            Ok(r) => r,
            Err(e) => return failed(e),
        };
        match response {
            Response::Prompt { echo, text } => {
                debug(if echo {
                    "received prompt (echo on)"
                } else {
                    "received prompt (echo off)"
                });
                let mut answer = match conv.prompt(&text, echo) {
                    Ok(answer) => answer,
                    Err(e) => return Outcome::ConvFailed(e),
                };
                // Moves the buffer: the answer is never copied into a plain String.
                let text = SecretString::new(std::mem::take(&mut *answer));
                if let Err(e) = client.send(&Request::Answer { text }) {
                    return failed(e);
                }
                debug("sent answer");
            }
            Response::Info { text } => {
                debug("received info");
                if !s.silent {
                    conv.info(&text);
                }
            }
            Response::ErrorMsg { text } => {
                debug("received error_msg");
                if !s.silent {
                    conv.error(&text);
                }
            }
            Response::Verdict {
                decision,
                message,
                ticket,
            } => {
                debug(&format!("received verdict {decision:?}"));
                return Outcome::Verdict(decision, message, ticket);
            }
            Response::Error {
                code: ErrorCode::PermissionDenied,
                message,
                ..
            } => return Outcome::Refused(message),
            Response::Error { code, message, .. } => {
                return Outcome::Broken(format!("daemon error {code:?}: {message}"));
            }
            other => {
                return Outcome::Broken(format!(
                    "unexpected {} response in an authentication",
                    kind(&other)
                ));
            }
        }
    }
    Outcome::Broken(format!("no verdict after {MAX_FRAMES} frames"))
}

/// Sorts client errors: only "no daemon there" (ENOENT, ECONNREFUSED) counts
/// as unreachable (DESIGN security rule 1). A daemon that accepted the
/// connection and then stalls (wedged, stopped, a slow SMS provider) or
/// sends garbage is there: failing open for it would let whoever can wedge
/// mfad log in without a second factor.
fn failed(err: ClientError) -> Outcome {
    match err {
        err if err.no_daemon() => Outcome::Unreachable(err.to_string()),
        ClientError::Frame(FrameError::Timeout) => {
            Outcome::Broken("timed out waiting for mfad, which accepted the connection".to_owned())
        }
        other => Outcome::Broken(other.to_string()),
    }
}

/// A frame type name for logs, never its content.
fn kind(response: &Response) -> &'static str {
    match response {
        Response::Pong { .. } => "pong",
        Response::Status(_) => "status",
        Response::EnrollmentOffer(_) => "enrollment_offer",
        Response::Users { .. } => "users",
        Response::Done { .. } => "done",
        Response::Audit { .. } => "audit",
        _ => "conversation",
    }
}

/// Daemon text for a log line: no control characters, bounded length.
pub(crate) fn clean(text: &str) -> String {
    text.chars()
        .take(MAX_LOG_TEXT)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests;
