//! `[audit]` in the daemon configuration: where the audit stream goes.
//! Raw form, defaults and checks.

use super::ConfigError;
use serde::Deserialize;
use std::path::{Path, PathBuf};

const DEFAULT_QUEUE: usize = 10_000;
const DEFAULT_FILE_MAX_BYTES: u64 = 100 << 20;
const DEFAULT_FILE_KEEP: u32 = 5;
const DEFAULT_SPILL_MAX_BYTES: u64 = 256 << 20;
const SPILL_NAME: &str = "audit-spill.jsonl";
const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAudit {
    queue: Option<usize>,
    journald: Option<bool>,
    journald_socket: Option<PathBuf>,
    json_file: Option<RawJsonFile>,
    syslog: Option<RawSyslog>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJsonFile {
    path: PathBuf,
    max_bytes: Option<u64>,
    keep: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSyslog {
    url: String,
    ca_file: Option<PathBuf>,
    spill_file: Option<PathBuf>,
    spill_max_bytes: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// Events held in memory for the outputs; beyond, they are counted as
    /// dropped.
    pub queue: usize,
    /// The journal's socket, when records go to journald.
    pub journald: Option<PathBuf>,
    pub json_file: Option<JsonFileConfig>,
    pub syslog: Option<SyslogConfig>,
}

#[derive(Debug, Clone)]
pub struct JsonFileConfig {
    pub path: PathBuf,
    /// Rotate when the file would grow past this.
    pub max_bytes: u64,
    /// Rotated files kept (`path.1` the newest).
    pub keep: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
    Tls { ca_file: PathBuf },
}

#[derive(Debug, Clone)]
pub struct SyslogConfig {
    pub transport: Transport,
    pub host: String,
    pub port: u16,
    /// Records the collector has not taken yet, sent first on reconnect.
    pub spill_file: PathBuf,
    pub spill_max_bytes: u64,
}

impl AuditConfig {
    pub fn describe(&self) -> String {
        let file = self.json_file.as_ref().map_or("off".to_owned(), |f| {
            format!(
                "{:?}, rotated at {} bytes, {} kept",
                f.path, f.max_bytes, f.keep
            )
        });
        let syslog = self.syslog.as_ref().map_or("off".to_owned(), |s| {
            let how = match &s.transport {
                Transport::Udp => "udp".to_owned(),
                Transport::Tcp => "tcp".to_owned(),
                Transport::Tls { ca_file } => format!("tls, CA {ca_file:?}"),
            };
            format!(
                "{}:{} ({how}), spill {:?} up to {} bytes",
                s.host, s.port, s.spill_file, s.spill_max_bytes
            )
        });
        let journald = self.journald.as_ref().map_or("off".to_owned(), |p| {
            format!("{p:?} (when it exists: under systemd)")
        });
        format!(
            "audit: queue {} events; journald {journald}; json_file {file}; syslog {syslog}\n",
            self.queue
        )
    }
}

pub(super) fn check(
    raw: RawAudit,
    path: &Path,
    database: &Path,
) -> Result<AuditConfig, ConfigError> {
    let invalid = |key: &'static str, problem: &str| ConfigError::Invalid {
        path: path.to_owned(),
        key,
        problem: problem.to_owned(),
    };
    let queue = raw.queue.unwrap_or(DEFAULT_QUEUE);
    if !(1..=1_000_000).contains(&queue) {
        return Err(invalid("audit.queue", "must be 1 to 1000000"));
    }
    let json_file = raw
        .json_file
        .map(|f| {
            if !f.path.is_absolute() {
                return Err(invalid("audit.json_file.path", "must be an absolute path"));
            }
            let max_bytes = f.max_bytes.unwrap_or(DEFAULT_FILE_MAX_BYTES);
            if max_bytes < 4096 {
                return Err(invalid(
                    "audit.json_file.max_bytes",
                    "must be at least 4096",
                ));
            }
            let keep = f.keep.unwrap_or(DEFAULT_FILE_KEEP);
            if keep > 1000 {
                return Err(invalid("audit.json_file.keep", "must be 0 to 1000"));
            }
            Ok(JsonFileConfig {
                path: f.path,
                max_bytes,
                keep,
            })
        })
        .transpose()?;
    let syslog = raw
        .syslog
        .map(|s| {
            let url = url::Url::parse(&s.url).map_err(|e| {
                invalid(
                    "audit.syslog.url",
                    &format!("is not a URL ({e}); write udp://, tcp:// or tls://HOST:PORT"),
                )
            })?;
            let transport = match (url.scheme(), s.ca_file) {
                ("udp", None) => Transport::Udp,
                ("tcp", None) => Transport::Tcp,
                ("tls", Some(ca_file)) => Transport::Tls { ca_file },
                ("tls", None) => {
                    return Err(invalid(
                        "audit.syslog.ca_file",
                        "is needed with tls://: the CA that signed the collector's certificate",
                    ));
                }
                ("udp" | "tcp", Some(_)) => {
                    return Err(invalid("audit.syslog.ca_file", "is for tls:// only"));
                }
                _ => {
                    return Err(invalid(
                        "audit.syslog.url",
                        "must start with udp://, tcp:// or tls://",
                    ));
                }
            };
            let host = url
                .host_str()
                .map(|h| h.trim_matches(['[', ']']).to_owned())
                .filter(|h| !h.is_empty())
                .ok_or_else(|| invalid("audit.syslog.url", "has no host"))?;
            let port = url.port().ok_or_else(|| {
                invalid(
                    "audit.syslog.url",
                    "has no port (514 for udp and tcp, 6514 for tls are usual)",
                )
            })?;
            let spill_file = s
                .spill_file
                .unwrap_or_else(|| database.parent().unwrap_or(Path::new("/")).join(SPILL_NAME));
            Ok(SyslogConfig {
                transport,
                host,
                port,
                spill_file,
                spill_max_bytes: s.spill_max_bytes.unwrap_or(DEFAULT_SPILL_MAX_BYTES),
            })
        })
        .transpose()?;
    let journald = raw
        .journald
        .unwrap_or(false)
        .then(|| raw.journald_socket.unwrap_or_else(|| JOURNAL_SOCKET.into()));
    Ok(AuditConfig {
        queue,
        journald,
        json_file,
        syslog,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AuditConfig, ConfigError> {
        let raw: RawAudit = toml::from_str(text).unwrap();
        check(
            raw,
            Path::new("mfad.toml"),
            Path::new("/var/lib/mfad/mfad.db"),
        )
    }

    #[test]
    fn syslog_urls() {
        let c = parse("[syslog]\nurl = \"tls://siem.example.org:6514\"\nca_file = \"/etc/ca.pem\"")
            .unwrap();
        let s = c.syslog.unwrap();
        assert_eq!(s.host, "siem.example.org");
        assert_eq!(s.port, 6514);
        assert_eq!(
            s.spill_file,
            PathBuf::from("/var/lib/mfad/audit-spill.jsonl")
        );
        let s = parse("[syslog]\nurl = \"udp://[::1]:514\"")
            .unwrap()
            .syslog
            .unwrap();
        assert_eq!((s.transport, s.host.as_str()), (Transport::Udp, "::1"));
        for (text, key) in [
            ("[syslog]\nurl = \"tls://h:6514\"", "audit.syslog.ca_file"),
            ("[syslog]\nurl = \"tcp://h\"", "audit.syslog.url"),
            ("[syslog]\nurl = \"http://h:1\"", "audit.syslog.url"),
            (
                "[json_file]\npath = \"audit.jsonl\"",
                "audit.json_file.path",
            ),
            ("queue = 0", "audit.queue"),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
    }
}
