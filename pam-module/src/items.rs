//! The PAM items the daemon needs to choose a policy rule.

use crate::pamio;
use mfad_protocol::{AuthStart, REASON_ENV};
use pamsm::{Pam, PamLibExt, PamResult};
use std::ffi::CStr;

/// sshd's record of the methods that passed before keyboard-interactive
/// (OpenSSH 7.8+, `ExposeAuthInfo` not needed for the PAM copy).
const SSH_AUTH_INFO: &str = "SSH_AUTH_INFO_0";

/// Reads user, service, rhost, tty, ruser, sshd's `SSH_AUTH_INFO_0` and
/// the application's `MFAD_REASON`
/// (from the PAM environment: pam_getenv, never getenv). The `Err` text is
/// for the log.
pub fn auth_start(pamh: &Pam) -> Result<AuthStart, String> {
    // Prompts for a user name when the application has not set one.
    let user = required(pamh.get_user(None), "user")?;
    let service = required(pamh.get_service(), "service")?;
    Ok(AuthStart {
        user,
        service,
        rhost: optional(pamh.get_rhost(), "rhost")?,
        tty: match pamio::tty(pamh) {
            Ok(tty) => tty.filter(|t| !t.is_empty()),
            Err(rc) => return Err(format!("cannot read PAM_TTY (error {rc})")),
        },
        ruser: optional(pamh.get_ruser(), "ruser")?,
        ssh_auth_info: optional(pamh.getenv(SSH_AUTH_INFO), SSH_AUTH_INFO)?,
        // Passed on as the application set it; mfad checks it.
        reason: optional(pamh.getenv(REASON_ENV), REASON_ENV)?,
    })
}

/// A user or service name must be present, non-empty and UTF-8: the daemon
/// matches rules on it, and a lossy copy could match the wrong account.
fn required(item: PamResult<Option<&CStr>>, name: &str) -> Result<String, String> {
    match item {
        Ok(Some(text)) if !text.is_empty() => match text.to_str() {
            Ok(text) => Ok(text.to_owned()),
            Err(_) => Err(format!("the PAM {name} is not valid UTF-8")),
        },
        Ok(_) => Err(format!("no PAM {name} is set")),
        Err(e) => Err(format!("cannot read the PAM {name}: {e}")),
    }
}

/// Informational items; an odd byte is replaced rather than failing the login.
fn optional(item: PamResult<Option<&CStr>>, name: &str) -> Result<Option<String>, String> {
    match item {
        Ok(Some(text)) if !text.is_empty() => Ok(Some(text.to_string_lossy().into_owned())),
        Ok(_) => Ok(None),
        Err(e) => Err(format!("cannot read the PAM {name}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pamsm::PamError;

    #[test]
    fn required_items() {
        assert_eq!(required(Ok(Some(c"alice")), "user").unwrap(), "alice");
        for bad in [Ok(None), Ok(Some(c"")), Err(PamError::CONV_ERR)] {
            assert!(required(bad, "user").is_err());
        }
        let not_utf8 = c"al\xffce";
        let err = required(Ok(Some(not_utf8)), "user").unwrap_err();
        assert!(err.contains("UTF-8"), "{err}");
    }

    #[test]
    fn optional_items() {
        assert_eq!(
            optional(Ok(Some(c"10.0.0.1")), "rhost").unwrap().as_deref(),
            Some("10.0.0.1")
        );
        assert_eq!(optional(Ok(Some(c"")), "rhost").unwrap(), None);
        assert_eq!(optional(Ok(None), "rhost").unwrap(), None);
        assert!(optional(Err(PamError::BAD_ITEM), "rhost").is_err());
    }
}
