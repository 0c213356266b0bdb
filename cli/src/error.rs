//! Everything that can go wrong, with an explanation for people: what
//! failed, why, and what to do next.

use mfad_protocol::{ClientError, ErrorCode, FrameError, Response};
use std::io;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum CliError {
    #[error("{}", client_message(.0))]
    Client(#[from] ClientError),
    /// The daemon answered with an error.
    #[error("{message}")]
    Daemon { code: ErrorCode, message: String },
    #[error("unexpected reply from mfad: {0}")]
    Unexpected(&'static str),
    #[error("the code was wrong {tries} times; TOTP is not active for {user}")]
    WrongCodes {
        user: String,
        tries: u32,
        expires: String,
        /// How to name the account again in the suggested commands.
        user_flag: String,
    },
    #[error("no code given: standard input ended")]
    NoCode { user_flag: String },
    #[error("cannot read from standard input: {0}")]
    Input(io::Error),
    #[error("cannot write the output: {0}")]
    Output(io::Error),
    #[error("cannot encode the output as JSON: {0}")]
    Json(serde_json::Error),
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Pam(#[from] crate::pam::PamError),
    #[error("cannot run {program}: {}", io_text(.source))]
    Exec { program: String, source: io::Error },
    #[error("aborted; nothing was changed")]
    Aborted,
    #[error("cannot read {path}: {}", io_text(.source))]
    ReadFile { path: String, source: io::Error },
    #[error("cannot create {path}: {}", io_text(.source))]
    CreateFile { path: String, source: io::Error },
    /// A result that is a failure and is already on stdout: a policy mfad
    /// does not accept (`invalid_policy`), or a failed `doctor` check.
    #[error("{message}")]
    Rejected {
        code: &'static str,
        message: String,
        hint: String,
    },
}

impl CliError {
    /// 2 for a command line that cannot work as given, 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            // As a shell says it: not found, or found and not runnable.
            CliError::Exec { source, .. } if source.kind() == io::ErrorKind::NotFound => 127,
            CliError::Exec { .. } => 126,
            _ => 1,
        }
    }

    /// A stable name for `--json` output: the daemon's code, or a local one.
    pub fn code(&self) -> String {
        let local = match self {
            CliError::Daemon { code, .. } => {
                return serde_json::to_value(code)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_else(|| "unknown".to_owned());
            }
            CliError::Client(ClientError::Connect { .. }) => "connect",
            CliError::Client(ClientError::WrongDaemon { .. }) => "wrong_daemon",
            CliError::Client(ClientError::Version { .. }) => "unsupported_version",
            CliError::Client(ClientError::Frame(FrameError::Timeout)) => "timeout",
            CliError::Client(_) => "protocol",
            CliError::Unexpected(_) => "unexpected_reply",
            CliError::WrongCodes { .. } => "wrong_code",
            CliError::NoCode { .. } | CliError::Input(_) => "input",
            CliError::Output(_) | CliError::Json(_) => "output",
            CliError::Usage(_) => "usage",
            CliError::Pam(_) => "pam",
            CliError::Exec { .. } => "exec",
            CliError::Aborted => "aborted",
            CliError::ReadFile { .. } => "input",
            CliError::CreateFile { .. } => "output",
            CliError::Rejected { code, .. } => code,
        };
        local.to_owned()
    }

    /// What to do next, when there is something useful to say.
    pub fn hint(&self) -> Option<String> {
        let text = match self {
            CliError::Client(err) => return client_hint(err),
            CliError::Daemon { code, message } => {
                return daemon_hint(*code, message).map(str::to_owned);
            }
            CliError::Unexpected(_) => {
                "mfactl and mfad are probably from different releases; install matching versions."
                    .to_owned()
            }
            CliError::WrongCodes {
                expires, user_flag, ..
            } => format!(
                "Check that your phone sets its clock automatically. The pending enrollment is kept until {expires}: \
                 confirm it with `mfactl enroll totp{user_flag} --confirm-code -`, or start again with `mfactl enroll totp{user_flag}`."
            ),
            CliError::NoCode { user_flag } => format!(
                "Rerun `mfactl enroll totp{user_flag}` on a terminal, or confirm the pending enrollment with `mfactl enroll totp{user_flag} --confirm-code -`."
            ),
            CliError::Rejected { hint, .. } => hint.clone(),
            CliError::Pam(crate::pam::PamError::NoTerminal(_)) => {
                "Run it on a terminal: PAM asks for your password there.".to_owned()
            }
            CliError::Pam(_) => {
                "Nothing was changed or run. The PAM stack is the admin's (/etc/pam.d/SERVICE); \
                 check the password or code and try again."
                    .to_owned()
            }
            CliError::CreateFile { source, .. } if source.kind() == io::ErrorKind::AlreadyExists => {
                "Name a file that does not exist yet: mfactl never overwrites one (no codes were issued).".to_owned()
            }
            _ => return None,
        };
        Some(text)
    }

    /// True when stdout is gone (`mfactl audit | head`): nothing to report.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, CliError::Output(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }

    /// True when stdout already holds the command's result (which is a
    /// failure), so that `--json` must not add an error document.
    pub fn result_printed(&self) -> bool {
        matches!(self, CliError::Rejected { .. })
    }
}

fn client_message(err: &ClientError) -> String {
    match err {
        ClientError::Connect { path, source } => {
            format!("cannot connect to {}: {}", path.display(), io_text(source))
        }
        ClientError::Frame(FrameError::Timeout) => "mfad did not answer in time".to_owned(),
        ClientError::Frame(FrameError::Closed) => {
            "mfad closed the connection without answering".to_owned()
        }
        ClientError::Frame(FrameError::Io(e)) => {
            format!("lost the connection to mfad: {}", io_text(e))
        }
        other => other.to_string(),
    }
}

fn client_hint(err: &ClientError) -> Option<String> {
    let text = match err {
        ClientError::Connect { source, .. } => match source.kind() {
            io::ErrorKind::PermissionDenied => {
                "This user may not open the socket; check the permissions of the socket and its directory (`ls -ld /run/mfad`), or pass --socket PATH.".to_owned()
            }
            _ => "Is mfad running? Try `systemctl status mfad`, or pass --socket PATH.".to_owned(),
        },
        ClientError::WrongDaemon { path, .. } => format!(
            "Another program may be squatting the socket path; check who listens on it (`ss -xlp | grep {}`) and whether --socket is right.",
            path.display()
        ),
        ClientError::Version { .. } => {
            "mfactl and mfad are from different releases; install matching versions.".to_owned()
        }
        ClientError::Frame(FrameError::Timeout) => {
            "mfad may be overloaded or stuck; try again, raise --timeout, or look at `journalctl -u mfad`.".to_owned()
        }
        ClientError::Frame(_) => "Look at `journalctl -u mfad` for the daemon's side.".to_owned(),
        ClientError::PeerCred(_) | ClientError::Timeouts(_) => return None,
    };
    Some(text)
}

/// The daemon's refusals name what was refused: acting on another account
/// (so acting on one's own is the way out), or an admin's request (where
/// it is not, even on one's own account).
const OTHER_ACCOUNT: &str = "you may act only on your own account";
/// The daemon's refusal of what is root's alone (the key ring).
const ONLY_ROOT: &str = "only root may do this";

fn daemon_hint(code: ErrorCode, message: &str) -> Option<&'static str> {
    Some(match code {
        ErrorCode::PermissionDenied if message.contains(OTHER_ACCOUNT) => {
            "Leave out --user to act on your own account; root and members of the mfad admin group may name another."
        }
        ErrorCode::PermissionDenied if message.contains(ONLY_ROOT) => "Run it as root.",
        ErrorCode::PermissionDenied => {
            "Only root and members of the mfad admin group may do this; ask one of them."
        }
        ErrorCode::NoSuchUser => {
            "Check the spelling of the user name; `mfactl user list` shows the users mfad knows."
        }
        ErrorCode::NotEnrolled => "Enroll first with `mfactl enroll totp`.",
        ErrorCode::AlreadyEnrolled => {
            "Use `mfactl user reset NAME` first, or --replace as an admin."
        }
        ErrorCode::NoPendingEnrollment => {
            "Start again with `mfactl enroll totp`, or `mfactl phone set` / `mfactl email set` for a phone number or address."
        }
        ErrorCode::NotFound => "List the ids with `mfactl sessions list` or `mfactl devices list`.",
        ErrorCode::WrongCode => {
            "Check the code and type it again: each code works once, and only for a limited time."
        }
        ErrorCode::NotConfigured => {
            "Ask an administrator to set up the channel in /etc/mfad/mfad.toml ([sms] or [email])."
        }
        ErrorCode::DeliveryFailed => {
            "Check the destination, then try again later; an administrator finds the provider's answer in `mfactl audit`."
        }
        ErrorCode::TooManyCodes => "Wait, then try again: codes are rate-limited.",
        ErrorCode::Busy => "mfad is busy; wait a moment and try again.",
        ErrorCode::Timeout => "mfad gave up waiting; try again.",
        ErrorCode::UnsupportedVersion | ErrorCode::UnsupportedRequest => {
            "mfactl and mfad are from different releases; install matching versions."
        }
        ErrorCode::Unknown => "mfad is newer than mfactl; install matching versions.",
        ErrorCode::Internal => "Look at `journalctl -u mfad` for details.",
        ErrorCode::BadRequest | ErrorCode::FrameTooLarge => return None,
    })
}

/// An I/O error as words, without the "(os error 2)" suffix.
fn io_text(err: &io::Error) -> String {
    let text = err.to_string();
    match text.find(" (os error ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// The wire name of a response type, for "unexpected reply" errors.
pub fn response_kind(resp: &Response) -> &'static str {
    match resp {
        Response::Pong { .. } => "pong",
        Response::Prompt { .. } => "prompt",
        Response::Info { .. } => "info",
        Response::ErrorMsg { .. } => "error_msg",
        Response::Verdict { .. } => "verdict",
        Response::Error { .. } => "error",
        Response::Status(_) => "status",
        Response::EnrollmentOffer(_) => "enrollment_offer",
        Response::Users { .. } => "users",
        Response::Done { .. } => "done",
        Response::Audit { .. } => "audit",
        Response::AuditVerified(_) => "audit_verified",
        Response::AuditEvent { .. } => "audit_event",
        Response::BackupCodes { .. } => "backup_codes",
        Response::PolicyLoaded { .. } => "policy_loaded",
        Response::PolicyVersions { .. } => "policy_versions",
        Response::PolicyStatus { .. } => "policy_status",
        Response::PolicyText { .. } => "policy_text",
        Response::Explanation(_) => "explanation",
        Response::Sessions { .. } => "sessions",
        Response::Devices { .. } => "devices",
        Response::DirectoryChecked { .. } => "directory check",
        Response::StoreChecked { .. } => "store check",
        Response::Keys { .. } => "keys",
        Response::GroupSources { .. } => "group sources",
    }
}

/// An answer that does not fit the request.
pub fn unexpected(resp: &Response) -> CliError {
    CliError::Unexpected(response_kind(resp))
}

#[cfg(test)]
#[path = "error_tests.rs"]
mod tests;
