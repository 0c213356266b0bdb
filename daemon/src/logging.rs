//! Logging to syslog (authpriv) and to stderr. Some machines have no
//! /dev/log: the daemon then says so once and logs to stderr only. Under
//! systemd, stderr is the journal, and so is /dev/log: each line goes to
//! syslog only (it keeps its facility and priority), so the journal holds
//! it once.

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::fmt::Display;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use syslog::{Facility, LogFormat, LoggerBackend, Severity};

struct Logger {
    syslog: Option<Mutex<syslog::Logger<LoggerBackend, Rfc3164>>>,
    stderr: bool,
    level: LevelFilter,
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let msg = record.args().to_string();
        // One write per line, so lines from concurrent tasks never interleave.
        if self.stderr {
            let line = format!("mfad: {}: {msg}\n", record.level().as_str().to_lowercase());
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
        if let Some(syslog) = &self.syslog {
            let mut s = syslog.lock().unwrap_or_else(|p| p.into_inner());
            let _ = match record.level() {
                Level::Error => s.err(&msg),
                Level::Warn => s.warning(&msg),
                Level::Info => s.info(&msg),
                Level::Debug | Level::Trace => s.debug(&msg),
            };
        }
    }

    fn flush(&self) {}
}

/// The lines of syslog's `Formatter3164` (facility authpriv, a UTC time
/// stamp, no host name), byte for byte, without its cost: it parses its time
/// format description again for every line, a twentieth of a login's CPU.
struct Rfc3164 {
    pid: u32,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

impl<T: Display> LogFormat<T> for Rfc3164 {
    fn format<W: Write>(&self, w: &mut W, severity: Severity, message: T) -> syslog::Result<()> {
        let now = time::OffsetDateTime::now_utc();
        let month = MONTHS[usize::from(u8::from(now.month())) - 1];
        write!(
            w,
            "<{}>{month} {:02} {:02}:{:02}:{:02} mfad[{}]: {message}",
            Facility::LOG_AUTHPRIV as u8 | severity as u8,
            now.day(),
            now.hour(),
            now.minute(),
            now.second(),
            self.pid,
        )
        .map_err(syslog::Error::Write)
    }
}

/// Installs the logger. Call once, before anything logs.
pub fn init(syslog_socket: Option<&Path>, debug: bool) {
    let formatter = Rfc3164 {
        pid: std::process::id(),
    };
    let mut problem = None;
    let syslog = syslog_socket.and_then(|path| match syslog::unix_custom(formatter, path) {
        Ok(logger) => Some(Mutex::new(logger)),
        Err(e) => {
            problem = Some(format!(
                "cannot log to syslog at {}: {e}; logging to stderr only",
                path.display()
            ));
            None
        }
    });
    let level = if debug {
        LevelFilter::Debug
    } else {
        LevelFilter::Info
    };
    let stderr = syslog.is_none() || !stderr_is_journal();
    if log::set_boxed_logger(Box::new(Logger {
        syslog,
        stderr,
        level,
    }))
    .is_ok()
    {
        log::set_max_level(level);
    }
    if let Some(problem) = problem {
        log::warn!("{problem}");
    }
}

/// Whether stderr is systemd's journal: $JOURNAL_STREAM names the device
/// and inode of the stream systemd connected (a redirected stderr is not).
fn stderr_is_journal() -> bool {
    let Some(var) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(stat) = nix::sys::stat::fstat(std::io::stderr()) else {
        return false;
    };
    names_stream(&var.to_string_lossy(), stat.st_dev, stat.st_ino)
}

/// Whether `journal_stream` ("DEVICE:INODE") names this device and inode.
fn names_stream(journal_stream: &str, dev: u64, ino: u64) -> bool {
    journal_stream
        .split_once(':')
        .and_then(|(d, i)| Some((d.parse::<u64>().ok()?, i.parse::<u64>().ok()?)))
        == Some((dev, ino))
}

#[cfg(test)]
mod tests {
    use super::{Rfc3164, names_stream};
    use syslog::{Facility, Formatter3164, LogFormat, Severity};

    #[test]
    fn lines_are_those_of_formatter3164() {
        let theirs = Formatter3164 {
            facility: Facility::LOG_AUTHPRIV,
            hostname: None,
            process: "mfad".into(),
            pid: 42,
        };
        let ours = Rfc3164 { pid: 42 };
        for severity in [Severity::LOG_ERR, Severity::LOG_INFO, Severity::LOG_DEBUG] {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            theirs
                .format(&mut a, severity, "audit user=\"alice\"")
                .unwrap();
            ours.format(&mut b, severity, "audit user=\"alice\"")
                .unwrap();
            // The same second, unless the clock ticked between the two.
            let (a, b) = (String::from_utf8(a).unwrap(), String::from_utf8(b).unwrap());
            assert_eq!(a.len(), b.len(), "{a:?} {b:?}");
            assert_eq!(a.split_once(' ').unwrap().0, b.split_once(' ').unwrap().0);
            assert_eq!(
                a.rsplit_once("mfad[").unwrap().1,
                b.rsplit_once("mfad[").unwrap().1
            );
        }
    }

    #[test]
    fn the_journal_stream_is_named_by_device_and_inode() {
        assert!(names_stream("8:12345", 8, 12345));
        assert!(!names_stream("8:12345", 8, 12346));
        assert!(!names_stream("9:12345", 8, 12345));
        assert!(!names_stream("", 8, 12345));
        assert!(!names_stream("8:", 8, 12345));
        assert!(!names_stream("8:12345:1", 8, 12345));
    }
}
