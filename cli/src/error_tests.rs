use super::*;
use std::path::PathBuf;

#[test]
fn missing_socket_explains_what_to_do() {
    let err = CliError::from(ClientError::Connect {
        path: PathBuf::from("/run/mfad/mfad.sock"),
        source: io::Error::from_raw_os_error(2),
    });
    assert_eq!(
        err.to_string(),
        "cannot connect to /run/mfad/mfad.sock: No such file or directory"
    );
    assert!(err.hint().unwrap().contains("systemctl status mfad"));
    assert_eq!((err.code().as_str(), err.exit_code()), ("connect", 1));
}

#[test]
fn daemon_errors_keep_their_code_and_get_a_hint() {
    let err = CliError::Daemon {
        code: ErrorCode::AlreadyEnrolled,
        message: "alice already has TOTP".into(),
    };
    assert_eq!(err.code(), "already_enrolled");
    assert!(err.hint().unwrap().contains("mfactl user reset NAME"));
    let denied = CliError::Daemon {
        code: ErrorCode::PermissionDenied,
        message: "user list: this needs root or membership of the mfad admin group".into(),
    };
    let hint = denied.hint().unwrap();
    assert!(hint.contains("mfad admin group"), "{hint}");
    assert!(!hint.contains("own account"), "{hint}");
    let other = CliError::Daemon {
        code: ErrorCode::PermissionDenied,
        message: "status: you may act only on your own account".into(),
    };
    assert!(other.hint().unwrap().contains("Leave out --user"));
    // A wrong verification code is not an authenticator's.
    let wrong = CliError::Daemon {
        code: ErrorCode::WrongCode,
        message: "the code does not match (2 tries left for this code)".into(),
    };
    assert!(!wrong.hint().unwrap().contains("authenticator"));
    let old = CliError::Daemon {
        code: ErrorCode::UnsupportedVersion,
        message: "v9".into(),
    };
    assert!(old.hint().unwrap().contains("different releases"));
}

#[test]
fn timeouts_and_unexpected_replies() {
    let err = CliError::from(ClientError::Frame(FrameError::Timeout));
    assert_eq!(err.code(), "timeout");
    assert!(err.hint().unwrap().contains("--timeout"));
    let err = unexpected(&Response::Users { users: vec![] });
    assert_eq!(err.to_string(), "unexpected reply from mfad: users");
    assert_eq!(CliError::Usage("x".into()).exit_code(), 2);
}

#[test]
fn a_rejected_policy_keeps_stdout_to_the_result() {
    let err = CliError::Rejected {
        code: "invalid_policy",
        message: "p.toml is not a valid policy".into(),
        hint: "Fix it.".into(),
    };
    assert_eq!(
        (err.code().as_str(), err.exit_code()),
        ("invalid_policy", 1)
    );
    assert_eq!(err.hint().as_deref(), Some("Fix it."));
    assert!(err.result_printed());
    assert!(!CliError::Aborted.result_printed());
    let codes = Response::BackupCodes {
        user: "u".into(),
        codes: vec![],
        message: String::new(),
    };
    assert_eq!(
        unexpected(&codes).to_string(),
        "unexpected reply from mfad: backup_codes"
    );
}
