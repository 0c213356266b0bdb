//! Logging to syslog (authpriv) and to stderr. Some machines have no
//! /dev/log: the daemon then says so once and logs to stderr only.

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use syslog::{Facility, Formatter3164, LoggerBackend};

struct Logger {
    syslog: Option<Mutex<syslog::Logger<LoggerBackend, Formatter3164>>>,
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
        let line = format!("mfad: {}: {msg}\n", record.level().as_str().to_lowercase());
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
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

/// Installs the logger. Call once, before anything logs.
pub fn init(syslog_socket: Option<&Path>, debug: bool) {
    let formatter = Formatter3164 {
        facility: Facility::LOG_AUTHPRIV,
        hostname: None,
        process: "mfad".into(),
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
    if log::set_boxed_logger(Box::new(Logger { syslog, level })).is_ok() {
        log::set_max_level(level);
    }
    if let Some(problem) = problem {
        log::warn!("{problem}");
    }
}
