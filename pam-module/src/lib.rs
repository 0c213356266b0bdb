//! pam_mfa.so: a thin, synchronous relay between libpam and the mfad daemon.
//!
//! This file is the FFI shell: it guards every hook against panics, reads the
//! arguments and items, and hands over to `flow`. It holds no policy, no
//! secrets and no global state.

pub mod args;
pub mod conv;
pub mod flow;
mod items;
mod pamio;
pub mod session;

use conv::{Conversation, Env, Level, Log};
use flow::Settings;
use pamio::{PamConv, PamEnv, PamLog};
use pamsm::{Pam, PamError, PamFlags, PamServiceModule};
use session::Hook;
use std::panic::{AssertUnwindSafe, catch_unwind};

pub struct PamMfa;

pamsm::pam_module!(PamMfa);

/// A panic unwinding into sshd or sudo aborts them (pamsm does not catch it):
/// catch it here and fail closed, whatever `failmode` says.
fn guarded(pamh: &Pam, hook: &str, body: impl FnOnce() -> PamError) -> PamError {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(code) => code,
        Err(_) => {
            PamLog(pamh).log(Level::Err, &format!("internal error (panic) in {hook}"));
            PamError::SERVICE_ERR
        }
    }
}

fn authenticate(pamh: &Pam, flags: PamFlags, args: &[String]) -> PamError {
    let silent = flags.contains(PamFlags::SILENT);
    let mut log = PamLog(pamh);
    let mut conv = PamConv(pamh);
    let args = match args::parse(args) {
        Ok(args) => args,
        Err(e) => {
            // Control characters from the pam.d line must not reach the log raw.
            log.log(
                Level::Err,
                &format!("{}; denying", flow::clean(&e.to_string())),
            );
            if !silent {
                conv.error(flow::UNAVAILABLE_MSG);
            }
            return PamError::SERVICE_ERR;
        }
    };
    let start = match items::auth_start(pamh) {
        Ok(start) => start,
        Err(why) => {
            log.log(Level::Err, &format!("{why}; denying"));
            return PamError::AUTH_ERR;
        }
    };
    #[cfg(feature = "test-panic")]
    test_panic(&start.user);
    flow::authenticate(
        &Settings::new(&args, silent),
        start,
        &mut conv,
        &mut log,
        &mut PamEnv(pamh),
    )
}

/// The `test-panic` feature's trigger (see pam-module/Cargo.toml).
#[cfg(feature = "test-panic")]
#[allow(clippy::panic)]
fn test_panic(user: &str) {
    if user == "mfa-test-panic" {
        panic!("test-panic: a login as {user}");
    }
}

fn session(pamh: &Pam, hook: Hook, flags: PamFlags, args: &[String]) -> PamError {
    let mut log = PamLog(pamh);
    let mut env = PamEnv(pamh);
    let args = match args::parse(args) {
        Ok(args) => args,
        Err(e) => {
            // The ticket must not reach the shell even on a bad line.
            env.remove(flow::TICKET_VAR);
            log.log(
                Level::Err,
                &format!("{}; session not reported", flow::clean(&e.to_string())),
            );
            return PamError::SUCCESS;
        }
    };
    let login = match items::auth_start(pamh) {
        Ok(login) => login,
        Err(why) => {
            env.remove(flow::TICKET_VAR);
            log.log(Level::Err, &format!("{why}; session not reported"));
            return PamError::SUCCESS;
        }
    };
    let settings = Settings::new(&args, flags.contains(PamFlags::SILENT));
    session::report(&settings, hook, login, &mut env, &mut log)
}

impl PamServiceModule for PamMfa {
    fn authenticate(pamh: Pam, flags: PamFlags, args: Vec<String>) -> PamError {
        guarded(&pamh, "authenticate", || authenticate(&pamh, flags, &args))
    }

    // sudo and doas call pam_setcred; we set no credentials, so succeed.
    fn setcred(pamh: Pam, _: PamFlags, _: Vec<String>) -> PamError {
        guarded(&pamh, "setcred", || PamError::SUCCESS)
    }

    // Account checks belong to other modules (pam_unix, pam_access).
    fn acct_mgmt(pamh: Pam, _: PamFlags, _: Vec<String>) -> PamError {
        guarded(&pamh, "acct_mgmt", || PamError::IGNORE)
    }

    // Factors are changed with mfactl, not passwd.
    fn chauthtok(pamh: Pam, _: PamFlags, _: Vec<String>) -> PamError {
        guarded(&pamh, "chauthtok", || PamError::IGNORE)
    }

    // Reports the session (with its audit session id, read by the daemon)
    // so a later sudo in it can count the factors this login passed.
    fn open_session(pamh: Pam, flags: PamFlags, args: Vec<String>) -> PamError {
        guarded(&pamh, "open_session", || {
            session(&pamh, Hook::Open, flags, &args)
        })
    }

    fn close_session(pamh: Pam, flags: PamFlags, args: Vec<String>) -> PamError {
        guarded(&pamh, "close_session", || {
            session(&pamh, Hook::Close, flags, &args)
        })
    }
}
