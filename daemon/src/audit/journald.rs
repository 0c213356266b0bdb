//! Records to the systemd journal, each field its own journal field
//! (`MFAD_USER`, `MFAD_DECISION`, …), through journald's native protocol:
//! one datagram per entry on its socket, `NAME=value` lines, and the
//! length-prefixed form for a value that holds a newline.

use super::record::Record;
use super::syslog::FACILITY;
use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

pub struct Journal {
    socket: UnixDatagram,
    path: PathBuf,
}

impl Journal {
    /// `None` when no journal listens at `path`: mfad is not run by
    /// systemd, and this output stays off.
    pub fn open(path: &Path) -> io::Result<Option<Journal>> {
        if !path.exists() {
            return Ok(None);
        }
        Ok(Some(Journal {
            socket: UnixDatagram::unbound()?,
            path: path.to_owned(),
        }))
    }

    pub fn send(&self, record: &Record) -> io::Result<()> {
        self.socket.send_to(&entry(record), &self.path).map(|_| ())
    }
}

/// The datagram of one record.
pub fn entry(record: &Record) -> Vec<u8> {
    let b = &record.body;
    let mut out = Vec::with_capacity(1024);
    let message = format!(
        "audit {} user={:?} service={:?} decision={} reason={:?}",
        b.kind, b.user, b.service, b.decision, b.reason
    );
    field(&mut out, "MESSAGE", &message);
    field(&mut out, "PRIORITY", &record.severity().to_string());
    field(&mut out, "SYSLOG_FACILITY", &FACILITY.to_string());
    field(&mut out, "SYSLOG_IDENTIFIER", "mfad");
    for (name, value) in record.fields() {
        field(
            &mut out,
            &format!("MFAD_{}", name.to_ascii_uppercase()),
            &value,
        );
    }
    out
}

fn field(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    if value.contains('\n') {
        out.push(b'\n');
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        out.push(b'=');
    }
    out.extend_from_slice(value.as_bytes());
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::Body;
    use crate::audit::{Decision, Event};

    #[test]
    fn fields_in_the_native_protocol() {
        let e = Event::admin("alice", "two\nlines", Decision::Refused, 0, 0);
        let entry = entry(&Body::of(&e, Some(9), Some("ab".into())).sealed());
        let text = String::from_utf8_lossy(&entry);
        assert!(text.contains("\nPRIORITY=4\n"), "{text}");
        assert!(text.contains("\nMFAD_USER=alice\n"), "{text}");
        assert!(text.contains("\nMFAD_SEQ=9\n"), "{text}");
        assert!(text.contains("\nMFAD_TYPE=admin\n"), "{text}");
        let mut reason = b"\nMFAD_REASON\n".to_vec();
        reason.extend_from_slice(&9u64.to_le_bytes());
        reason.extend_from_slice(b"two\nlines\n");
        assert!(entry.windows(reason.len()).any(|w| w == reason), "{text}");
    }
}
