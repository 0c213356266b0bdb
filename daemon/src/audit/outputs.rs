//! The writer thread: takes records from the bounded queue and writes them
//! to the configured outputs: the systemd journal, a JSON-lines file with
//! size-based rotation, and a syslog collector. It runs on a thread of its own so that a slow
//! disk or collector never holds a tokio worker, let alone a login.
//!
//! While the collector is down, records go to the spill file; the thread
//! connects again with a growing pause, sends the spill in order, then
//! carries on. Records beyond the spill's size cap are counted as dropped.

use super::journald::Journal;
use super::record::Record;
use super::stream;
use super::syslog::{self, Conn};
use crate::config::{AuditConfig, JsonFileConfig, SyslogConfig, Transport};
use crate::files::{FileError, Reading, check_ancestors, check_trusted};
use rustls::ClientConfig;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, sync_channel};
use std::time::{Duration, Instant};

const FIRST_RETRY: Duration = Duration::from_secs(1);
const LAST_RETRY: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("`audit.syslog.ca_file`: {0}")]
    Ca(String),
    /// Whoever can replace an output's directory can forge or drop records.
    #[error("[audit] output: {0}")]
    Untrusted(#[from] FileError),
    #[error("`audit.json_file.path` {path}: {source}")]
    File { path: PathBuf, source: io::Error },
    #[error("cannot start the audit writer: {0}")]
    Thread(io::Error),
}

/// Installs the stream and, when an output is configured, starts the
/// writer thread. Problems with the configured files stop the start-up.
pub fn start(config: &AuditConfig) -> Result<(), OutputError> {
    let journal = match &config.journald {
        Some(path) => {
            let journal = Journal::open(path).map_err(OutputError::Thread)?;
            if journal.is_none() {
                log::warn!(
                    "audit.journald is on but no journal listens at {}: not run by systemd; \
                     the journald output is off",
                    path.display()
                );
            }
            journal
        }
        None => None,
    };
    if journal.is_none() && config.json_file.is_none() && config.syslog.is_none() {
        stream::install(None);
        return Ok(());
    }
    let file = config.json_file.clone().map(JsonFile::open).transpose()?;
    let syslog = config.syslog.clone().map(SyslogOut::new).transpose()?;
    let (tx, rx) = sync_channel(config.queue);
    let writer = Writer {
        journal,
        file,
        syslog,
    };
    std::thread::Builder::new()
        .name("mfad-audit".to_owned())
        .spawn(move || writer.run(&rx))
        .map_err(OutputError::Thread)?;
    stream::install(Some(tx));
    Ok(())
}

struct Writer {
    journal: Option<Journal>,
    file: Option<JsonFile>,
    syslog: Option<SyslogOut>,
}

impl Writer {
    fn run(mut self, rx: &Receiver<Arc<Record>>) {
        if let Some(s) = &mut self.syslog {
            s.reconnect();
        }
        loop {
            let next = match self.syslog.as_ref().and_then(SyslogOut::retry_in) {
                Some(wait) => rx.recv_timeout(wait),
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match next {
                Ok(record) => {
                    let json = record.json();
                    if let Some(j) = &self.journal
                        && let Err(e) = j.send(&record)
                    {
                        log::error!("cannot write an audit record to the journal: {e}");
                        stream::count_dropped(1);
                    }
                    if let Some(f) = &mut self.file {
                        f.write(&json);
                    }
                    if let Some(s) = &mut self.syslog {
                        s.deliver(&record, &json);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    if let Some(s) = &mut self.syslog {
                        s.reconnect();
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }
}

/// JSON lines, one record each; `path` becomes `path.1` when full.
struct JsonFile {
    config: JsonFileConfig,
    file: Option<File>,
    size: u64,
}

impl JsonFile {
    fn open(config: JsonFileConfig) -> Result<Self, OutputError> {
        check_ancestors(&config.path)?;
        let file = append(&config.path).map_err(|source| OutputError::File {
            path: config.path.clone(),
            source,
        })?;
        let size = file.metadata().map_or(0, |m| m.len());
        Ok(Self {
            config,
            file: Some(file),
            size,
        })
    }

    fn write(&mut self, json: &str) {
        let line = format!("{json}\n");
        let len = line.len() as u64;
        if self.size > 0 && self.size + len > self.config.max_bytes {
            self.rotate();
        }
        let result = match &mut self.file {
            Some(file) => file.write_all(line.as_bytes()),
            None => append(&self.config.path).and_then(|mut file| {
                let written = file.write_all(line.as_bytes());
                self.file = Some(file);
                written
            }),
        };
        match result {
            Ok(()) => self.size += len,
            Err(e) => {
                log::error!(
                    "cannot write the audit file {}: {e}",
                    self.config.path.display()
                );
                self.file = None;
                stream::count_dropped(1);
            }
        }
    }

    fn rotate(&mut self) {
        self.file = None;
        self.size = 0;
        let path = &self.config.path;
        let numbered = |n: u32| {
            let mut name = path.as_os_str().to_owned();
            name.push(format!(".{n}"));
            PathBuf::from(name)
        };
        let result = if self.config.keep == 0 {
            std::fs::remove_file(path)
        } else {
            (1..self.config.keep)
                .rev()
                .filter(|&n| numbered(n).exists())
                .try_for_each(|n| std::fs::rename(numbered(n), numbered(n + 1)))
                .and_then(|()| std::fs::rename(path, numbered(1)))
        };
        if let Err(e) = result {
            log::error!("cannot rotate the audit file {}: {e}", path.display());
        }
    }
}

/// Opens `path` for appending, creating it private to root.
fn append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

struct SyslogOut {
    config: SyslogConfig,
    tls: Option<Arc<ClientConfig>>,
    /// `Some` only while the spill file is empty: records keep their order.
    conn: Option<Conn>,
    retry_at: Instant,
    pause: Duration,
    spilled: u64,
    pid: u32,
}

impl SyslogOut {
    fn new(config: SyslogConfig) -> Result<Self, OutputError> {
        // The CA decides which collector gets the records.
        let tls = match &config.transport {
            Transport::Tls { ca_file } => {
                check_trusted(ca_file, Reading::Anyone)?;
                Some(syslog::tls_config(ca_file).map_err(OutputError::Ca)?)
            }
            Transport::Udp | Transport::Tcp => None,
        };
        // What waits in the spill is sent as mfad's own.
        check_ancestors(&config.spill_file)?;
        // What an earlier run could not send waits in the spill file.
        let spilled = std::fs::metadata(&config.spill_file).map_or(0, |m| m.len());
        Ok(Self {
            config,
            tls,
            conn: None,
            retry_at: Instant::now(),
            pause: FIRST_RETRY,
            spilled,
            pid: std::process::id(),
        })
    }

    /// How long until the next attempt to connect; `None` while connected.
    fn retry_in(&self) -> Option<Duration> {
        match self.conn {
            Some(_) => None,
            None => Some(self.retry_at.saturating_duration_since(Instant::now())),
        }
    }

    fn deliver(&mut self, record: &Record, json: &str) {
        if self.conn.is_none() && Instant::now() >= self.retry_at {
            self.reconnect();
        }
        if let Some(conn) = &mut self.conn {
            match conn.send(record, json, self.pid) {
                Ok(()) => return,
                Err(e) => self.down(&e),
            }
        }
        self.spill(json);
    }

    /// Connects and sends the spill; on failure, waits longer next time.
    fn reconnect(&mut self) {
        if self.conn.is_some() || Instant::now() < self.retry_at {
            return;
        }
        match Conn::open(&self.config, self.tls.as_ref()) {
            Ok(conn) => {
                self.conn = Some(conn);
                match self.send_spill() {
                    Ok(0) => {}
                    Ok(n) => log::info!(
                        "audit collector {}:{} reachable: sent {n} records held while it was down",
                        self.config.host,
                        self.config.port
                    ),
                    Err(e) => return self.down(&e),
                }
                self.pause = FIRST_RETRY;
            }
            Err(e) => self.down(&e),
        }
    }

    fn down(&mut self, e: &io::Error) {
        if self.conn.take().is_some() || self.pause == FIRST_RETRY {
            log::warn!(
                "audit collector {}:{} unreachable ({e}); holding records in {} and retrying",
                self.config.host,
                self.config.port,
                self.config.spill_file.display()
            );
        }
        self.retry_at = Instant::now() + self.pause;
        self.pause = (self.pause * 2).min(LAST_RETRY);
    }

    /// Sends the spill file in order; what was not sent stays in it.
    fn send_spill(&mut self) -> io::Result<usize> {
        if self.spilled == 0 {
            return Ok(0);
        }
        let path = self.config.spill_file.clone();
        let lines: Vec<String> = match File::open(&path) {
            Ok(f) => BufReader::new(f).lines().collect::<io::Result<_>>()?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let Some(conn) = &mut self.conn else {
            return Ok(0);
        };
        for (i, line) in lines.iter().enumerate() {
            // A line that is no record (a torn write at a crash) is skipped.
            let Ok(record) = serde_json::from_str::<Record>(line) else {
                continue;
            };
            if let Err(e) = conn.send(&record, line, self.pid) {
                self.keep_spill(&lines[i..])?;
                return Err(e);
            }
        }
        std::fs::remove_file(&path)?;
        self.spilled = 0;
        Ok(lines.len())
    }

    /// Rewrites the spill file with the records still to send.
    fn keep_spill(&mut self, rest: &[String]) -> io::Result<()> {
        let path = &self.config.spill_file;
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".new");
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        let text: String = rest.iter().map(|l| format!("{l}\n")).collect();
        file.write_all(text.as_bytes())?;
        std::fs::rename(&tmp, path)?;
        self.spilled = text.len() as u64;
        Ok(())
    }

    fn spill(&mut self, json: &str) {
        let line = format!("{json}\n");
        let len = line.len() as u64;
        if self.spilled + len > self.config.spill_max_bytes {
            stream::count_dropped(1);
            return;
        }
        match append(&self.config.spill_file).and_then(|mut f| f.write_all(line.as_bytes())) {
            Ok(()) => self.spilled += len,
            Err(e) => {
                log::error!(
                    "cannot write the audit spill file {}: {e}",
                    self.config.spill_file.display()
                );
                stream::count_dropped(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::Body;
    use crate::audit::{Decision, Event};

    fn record(n: i64) -> Record {
        let e = Event::admin("alice", &format!("event {n}"), Decision::Done, 0, n);
        Body::of(&e, Some(n), None).sealed()
    }

    #[test]
    fn the_json_file_rotates_by_size_and_keeps_what_it_is_told() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let line_len = record(1).json().len() as u64 + 1;
        let mut file = JsonFile::open(JsonFileConfig {
            path: path.clone(),
            max_bytes: line_len * 2,
            keep: 2,
        })
        .unwrap();
        for n in 1..=7 {
            file.write(&record(n).json());
        }
        let seqs = |p: &Path| -> Vec<i64> {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str::<Record>(l).unwrap().body.seq.unwrap())
                .collect()
        };
        assert_eq!(seqs(&path), vec![7]);
        assert_eq!(seqs(&dir.path().join("audit.jsonl.1")), vec![5, 6]);
        assert_eq!(seqs(&dir.path().join("audit.jsonl.2")), vec![3, 4]);
        assert!(!dir.path().join("audit.jsonl.3").exists());
    }
}
