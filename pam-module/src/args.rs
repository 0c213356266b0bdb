//! Module arguments from the pam.d line.
//!
//! Anything we do not understand is an error: a typo such as `failmode=opne`
//! must not silently fall back to a default the administrator did not choose.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Seconds to wait for each reply from the daemon unless `timeout=` says otherwise.
pub const DEFAULT_TIMEOUT: u64 = 5;
/// Allowed range for `timeout=`: long enough for SMS delivery, short enough
/// that a hung daemon cannot hold a login for minutes.
pub const TIMEOUT_RANGE: std::ops::RangeInclusive<u64> = 1..=120;

/// What to do when the daemon cannot be reached or does not answer in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailMode {
    /// Deny (PAM_AUTHINFO_UNAVAIL). The default.
    Closed,
    /// Step aside (PAM_IGNORE). Never applies to protocol or permission errors.
    Open,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub socket: PathBuf,
    pub timeout: Duration,
    pub failmode: FailMode,
    pub debug: bool,
}

impl Default for Args {
    fn default() -> Self {
        Self {
            socket: PathBuf::from(mfad_protocol::paths::SOCKET),
            timeout: Duration::from_secs(DEFAULT_TIMEOUT),
            failmode: FailMode::Closed,
            debug: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgError {
    Unknown(String),
    Malformed { arg: String, why: &'static str },
    Repeated(&'static str),
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgError::Unknown(arg) => write!(f, "unknown module argument {arg:?}"),
            ArgError::Malformed { arg, why } => write!(f, "bad module argument {arg:?}: {why}"),
            ArgError::Repeated(key) => write!(f, "module argument {key} given more than once"),
        }
    }
}

/// Parses the module arguments. Pure, so it is tested without libpam.
pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Args, ArgError> {
    let mut out = Args::default();
    let mut seen: Vec<&'static str> = Vec::new();
    for arg in args {
        let arg = arg.as_ref();
        let (key, value) = match arg.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (arg, None),
        };
        let malformed = |why| ArgError::Malformed {
            arg: arg.to_owned(),
            why,
        };
        // Repeats are refused: with two values, which one did the admin mean?
        let key: &'static str = match key {
            "socket" => "socket",
            "timeout" => "timeout",
            "failmode" => "failmode",
            "debug" => "debug",
            _ => return Err(ArgError::Unknown(arg.to_owned())),
        };
        if seen.contains(&key) {
            return Err(ArgError::Repeated(key));
        }
        seen.push(key);
        match (key, value) {
            ("debug", None) => out.debug = true,
            ("debug", Some(_)) => return Err(malformed("debug takes no value")),
            (_, None) => return Err(malformed("expected key=value")),
            ("socket", Some(path)) => {
                if !path.starts_with('/') {
                    return Err(malformed("the socket path must be absolute"));
                }
                out.socket = PathBuf::from(path);
            }
            ("timeout", Some(secs)) => {
                let secs: u64 = secs
                    .parse()
                    .map_err(|_| malformed("expected a whole number of seconds"))?;
                if !TIMEOUT_RANGE.contains(&secs) {
                    return Err(malformed("the timeout must be 1 to 120 seconds"));
                }
                out.timeout = Duration::from_secs(secs);
            }
            ("failmode", Some("closed")) => out.failmode = FailMode::Closed,
            ("failmode", Some("open")) => out.failmode = FailMode::Open,
            ("failmode", Some(_)) => return Err(malformed("expected closed or open")),
            _ => return Err(ArgError::Unknown(arg.to_owned())),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(args: &[&str]) -> Args {
        parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    #[test]
    fn defaults() {
        let a = ok(&[]);
        assert_eq!(a.socket, PathBuf::from("/run/mfad/mfad.sock"));
        assert_eq!(a.timeout, Duration::from_secs(5));
        assert_eq!(a.failmode, FailMode::Closed);
        assert!(!a.debug);
    }

    #[test]
    fn accepted_arguments() {
        let a = ok(&["socket=/tmp/x.sock", "timeout=1", "failmode=open", "debug"]);
        assert_eq!(a.socket, PathBuf::from("/tmp/x.sock"));
        assert_eq!(a.timeout, Duration::from_secs(1));
        assert_eq!(a.failmode, FailMode::Open);
        assert!(a.debug);
        assert_eq!(ok(&["timeout=120"]).timeout, Duration::from_secs(120));
        assert_eq!(ok(&["failmode=closed"]).failmode, FailMode::Closed);
    }

    #[test]
    fn refused_arguments() {
        let table: &[(&[&str], &str)] = &[
            (&["bogus"], "unknown"),
            (&["bogus=1"], "unknown"),
            (&["Debug"], "unknown"),
            (&[""], "unknown"),
            (&["debug=1"], "no value"),
            (&["socket"], "key=value"),
            (&["socket="], "absolute"),
            (&["socket=run/mfad.sock"], "absolute"),
            (&["timeout=0"], "1 to 120"),
            (&["timeout=121"], "1 to 120"),
            (&["timeout=-1"], "whole number"),
            (&["timeout=5s"], "whole number"),
            (&["timeout="], "whole number"),
            (&["failmode=opne"], "closed or open"),
            (&["failmode=OPEN"], "closed or open"),
            (&["failmode"], "key=value"),
            (&["debug", "debug"], "more than once"),
            (&["failmode=open", "failmode=closed"], "more than once"),
        ];
        for (args, needle) in table {
            let err = parse(args).expect_err(&format!("{args:?} must be refused"));
            let text = err.to_string();
            assert!(text.contains(needle), "{args:?}: {text}");
        }
    }

    #[test]
    fn a_bad_argument_anywhere_fails_the_whole_line() {
        assert!(parse(&["debug", "failmode=open", "nonsense"]).is_err());
    }
}
