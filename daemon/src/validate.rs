//! Bounds on what clients may send, checked before anything is looked up.

use mfad_protocol::AuthStart;

const MAX_NAME: usize = 256;
const MAX_AUTH_INFO: usize = 32 * 1024;

/// A user name the daemon will store or look up: non-empty, bounded, and
/// free of control characters and of ':' (which the otpauth label uses).
pub fn user_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the user name is empty".to_owned());
    }
    if name.len() > MAX_NAME {
        return Err(format!("the user name is longer than {MAX_NAME} bytes"));
    }
    if name.chars().any(|c| c.is_control() || c == ':') {
        return Err("the user name contains a control character or ':'".to_owned());
    }
    Ok(())
}

pub fn auth_start(s: &AuthStart) -> Result<(), String> {
    user_name(&s.user)?;
    for (field, value) in [
        ("service", Some(s.service.as_str())),
        ("rhost", s.rhost.as_deref()),
        ("tty", s.tty.as_deref()),
        ("ruser", s.ruser.as_deref()),
        ("reason", s.reason.as_deref()),
    ] {
        let Some(value) = value else { continue };
        if value.len() > MAX_NAME || value.chars().any(char::is_control) {
            return Err(format!(
                "{field} is longer than {MAX_NAME} bytes or holds control characters"
            ));
        }
    }
    if s.service.is_empty() {
        return Err("the service name is empty".to_owned());
    }
    // One line per method that passed; a key is at most a few KiB.
    if s.ssh_auth_info
        .as_ref()
        .is_some_and(|i| i.len() > MAX_AUTH_INFO || i.chars().any(|c| c.is_control() && c != '\n'))
    {
        return Err(format!(
            "ssh_auth_info is longer than {MAX_AUTH_INFO} bytes or holds control characters"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(user_name("alice").is_ok());
        assert!(user_name("").is_err());
        assert!(user_name("a:b").is_err());
        assert!(user_name("a\nb").is_err());
        assert!(user_name(&"a".repeat(257)).is_err());
        let ok = AuthStart {
            user: "a".into(),
            service: "sshd".into(),
            ..Default::default()
        };
        assert!(auth_start(&ok).is_ok());
        let bad = AuthStart {
            rhost: Some("1.2.3.4\r\n".into()),
            ..ok.clone()
        };
        assert!(auth_start(&bad).unwrap_err().contains("rhost"));
        let bad = AuthStart {
            service: String::new(),
            ..ok
        };
        assert!(auth_start(&bad).is_err());
    }
}
