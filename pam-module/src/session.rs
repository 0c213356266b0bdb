//! The session hooks: report the opened and closed login session to the
//! daemon. The daemon identifies the session itself (the caller's pid and
//! its audit session id); we only hand back the ticket of the
//! authentication, which must never reach the user's shell.

use crate::conv::{Env, Level, Log};
use crate::flow::{Settings, TICKET_VAR, clean};
use mfad_protocol::{
    AuthStart, Client, ClientError, Request, Response, SecretString, SessionReport,
};
use pamsm::PamError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    Open,
    Close,
}

/// Reports the session. Always PAM_SUCCESS: the login has already been
/// authenticated, and a session the daemon does not know only means that a
/// later step-up asks for every factor again. Failures are logged.
pub fn report(
    s: &Settings,
    hook: Hook,
    login: AuthStart,
    env: &mut dyn Env,
    log: &mut dyn Log,
) -> PamError {
    // Take the ticket out first, whatever happens next.
    let ticket = env.get(TICKET_VAR).map(SecretString::new);
    env.remove(TICKET_VAR);
    let report = SessionReport {
        user: login.user,
        service: login.service,
        ticket: if hook == Hook::Open { ticket } else { None },
        rhost: login.rhost,
        tty: login.tty,
    };
    let request = match hook {
        Hook::Open => Request::SessionOpen(report),
        Hook::Close => Request::SessionClose(report),
    };
    let what = match hook {
        Hook::Open => "open",
        Hook::Close => "close",
    };
    match call(s, &request) {
        Ok(Response::Done { .. }) => {
            if s.debug {
                log.log(Level::Debug, &format!("session {what} reported"));
            }
        }
        Ok(Response::Error { message, .. }) => log.log(
            Level::Err,
            &format!(
                "mfad did not record the session {what}: {}",
                clean(&message)
            ),
        ),
        Ok(_) => log.log(
            Level::Err,
            &format!("unexpected reply from mfad to the session {what}"),
        ),
        Err(e) => log.log(
            Level::Err,
            &format!(
                "cannot report the session {what} to mfad: {}",
                clean(&e.to_string())
            ),
        ),
    }
    PamError::SUCCESS
}

fn call(s: &Settings, request: &Request) -> Result<Response, ClientError> {
    Client::connect(&s.client)?.call(request)
}
