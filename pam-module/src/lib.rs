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

use conv::{Conversation, Level, Log};
use flow::Settings;
use pamio::{PamConv, PamLog};
use pamsm::{Pam, PamError, PamFlags, PamServiceModule};
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
    flow::authenticate(&Settings::new(&args, silent), start, &mut conv, &mut log)
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

    // Sessions are not yet reported to the daemon (a later issue); succeed meanwhile.
    fn open_session(pamh: Pam, _: PamFlags, _: Vec<String>) -> PamError {
        guarded(&pamh, "open_session", || PamError::SUCCESS)
    }

    // See open_session.
    fn close_session(pamh: Pam, _: PamFlags, _: Vec<String>) -> PamError {
        guarded(&pamh, "close_session", || PamError::SUCCESS)
    }
}
