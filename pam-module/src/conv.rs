//! The seams `flow` works through: the application's conversation, the log
//! and the PAM environment. libpam implements them in `pamio`; tests script
//! them.

use std::fmt;
use zeroize::Zeroizing;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Err,
    Warning,
    Notice,
    Debug,
}

/// Where log lines go: pam_syslog in the module, a vector in tests.
pub trait Log {
    fn log(&mut self, level: Level, msg: &str);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvError {
    /// The conversation function returned this PAM error.
    Failed(i32),
    /// It succeeded but gave no answer (e.g. Ctrl-D).
    NoResponse,
}

impl fmt::Display for ConvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConvError::Failed(rc) => write!(f, "the conversation function failed (PAM error {rc})"),
            ConvError::NoResponse => f.write_str("the conversation function gave no answer"),
        }
    }
}

/// The application's side of the login: the terminal, sshd's
/// keyboard-interactive, a display manager.
pub trait Conversation {
    fn prompt(&mut self, text: &str, echo: bool) -> Result<Zeroizing<String>, ConvError>;
    fn info(&mut self, text: &str);
    fn error(&mut self, text: &str);
}

/// The PAM environment (pam_getenv/pam_putenv): the one channel from the
/// authentication to the session hooks that survives sshd's fork.
pub trait Env {
    fn get(&self, name: &str) -> Option<String>;
    /// Sets `name=value`; the `Err` is libpam's code.
    fn set(&mut self, name: &str, value: &str) -> Result<(), i32>;
    /// Removes `name`, so it never reaches the user's shell.
    fn remove(&mut self, name: &str);
}
