//! RFC 5424 messages to a syslog collector: structured data
//! `[mfad@32473 …]` with the record's fields, and the record's JSON as the
//! message. Over UDP (one datagram each), or TCP and TLS with octet-counted
//! framing (RFC 6587 3.4.1; RFC 5425).
//!
//! 32473 is the private enterprise number RFC 5612 reserves for examples;
//! mfad has none of its own, and collectors match the SD-ID as a string.

use super::record::Record;
use crate::config::{SyslogConfig, Transport};
use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, recv};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub const SD_ID: &str = "mfad@32473";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A collector that takes longer than this to accept a message is treated as
/// down: the record is spilled and the connection opened again.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// LOG_AUTHPRIV.
pub const FACILITY: u8 = 10;

/// The RFC 5424 message of `record` (whose JSON is `json`), from process
/// `pid`.
pub fn message(record: &Record, json: &str, pid: u32) -> String {
    let b = &record.body;
    format!(
        "<{}>1 {} {} mfad {pid} {} {} {}",
        FACILITY * 8 + record.severity(),
        b.time,
        header_field(&b.host),
        header_field(&b.kind),
        structured_data(record),
        json
    )
}

/// A header field: printable US-ASCII without spaces, `-` when empty.
fn header_field(s: &str) -> String {
    let clean: String = s
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect();
    if clean.is_empty() {
        "-".to_owned()
    } else {
        clean
    }
}

fn structured_data(record: &Record) -> String {
    let mut sd = format!("[{SD_ID}");
    for (name, value) in record.fields() {
        sd.push_str(&format!(" {name}=\"{}\"", param_value(&value)));
    }
    sd.push(']');
    sd
}

/// RFC 5424 6.3.3: `"`, `\` and `]` are escaped with a backslash.
fn param_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The roots a TLS collector's certificate must chain to.
pub fn tls_config(ca_file: &Path) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca_file)
        .map_err(|e| format!("cannot read {}: {e}", ca_file.display()))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("{}: {e}", ca_file.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("{}: {e}", ca_file.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("{} holds no certificate", ca_file.display()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// An open connection to the collector.
pub enum Conn {
    Udp(UdpSocket),
    Tcp(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Conn {
    pub fn open(cfg: &SyslogConfig, tls: Option<&Arc<ClientConfig>>) -> io::Result<Conn> {
        let addr = (cfg.host.as_str(), cfg.port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(ErrorKind::NotFound, "the host has no address"))?;
        if cfg.transport == Transport::Udp {
            let bind = if addr.is_ipv4() {
                "0.0.0.0:0"
            } else {
                "[::]:0"
            };
            let socket = UdpSocket::bind(bind)?;
            socket.connect(addr)?;
            return Ok(Conn::Udp(socket));
        }
        let tcp = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
        tcp.set_write_timeout(Some(WRITE_TIMEOUT))?;
        tcp.set_nodelay(true)?;
        let Some(tls) = tls else {
            return Ok(Conn::Tcp(tcp));
        };
        let name = ServerName::try_from(cfg.host.clone())
            .map_err(|e| io::Error::new(ErrorKind::InvalidInput, e))?;
        let conn = ClientConnection::new(Arc::clone(tls), name).map_err(io::Error::other)?;
        let mut stream = StreamOwned::new(conn, tcp);
        // Handshake now, so a bad certificate shows at connect time.
        stream.sock.set_read_timeout(Some(CONNECT_TIMEOUT))?;
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        stream.sock.set_read_timeout(None)?;
        Ok(Conn::Tls(Box::new(stream)))
    }

    /// Sends one record; an error means the collector may not have it.
    pub fn send(&mut self, record: &Record, json: &str, pid: u32) -> io::Result<()> {
        let msg = message(record, json, pid);
        if let Conn::Udp(socket) = self {
            socket.send(msg.as_bytes())?;
            return Ok(());
        }
        // A collector that went away leaves the socket readable at its end;
        // writing first would put this record into a dead connection.
        if !self.alive() {
            return Err(io::Error::new(
                ErrorKind::ConnectionAborted,
                "the collector closed the connection",
            ));
        }
        let framed = format!("{} {msg}", msg.len());
        match self {
            Conn::Udp(_) => Ok(()),
            Conn::Tcp(s) => s.write_all(framed.as_bytes()).and_then(|()| s.flush()),
            Conn::Tls(s) => s.write_all(framed.as_bytes()).and_then(|()| s.flush()),
        }
    }

    /// Whether the collector still holds the connection open. It never
    /// sends us anything but TLS housekeeping, which is read and discarded.
    fn alive(&mut self) -> bool {
        let tcp = match self {
            Conn::Udp(_) => return true,
            Conn::Tcp(s) => &*s,
            Conn::Tls(s) => &s.sock,
        };
        // The usual case in one system call: nothing to read, still open.
        let mut byte = [0u8; 1];
        match recv(
            tcp.as_raw_fd(),
            &mut byte,
            MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT,
        ) {
            Err(Errno::EAGAIN) => return true,
            Ok(0) | Err(_) => return false,
            Ok(_) => {}
        }
        let Ok(sock) = tcp.try_clone() else {
            return false;
        };
        if sock.set_nonblocking(true).is_err() {
            return false;
        }
        let mut buf = [0u8; 1024];
        let alive = loop {
            let read = match self {
                Conn::Udp(_) => break true,
                Conn::Tcp(s) => s.read(&mut buf),
                Conn::Tls(s) => s.read(&mut buf),
            };
            match read {
                Ok(0) => break false,
                Ok(_) => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break true,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break false,
            }
        };
        sock.set_nonblocking(false).is_ok() && alive
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::Body;
    use crate::audit::{Decision, Event};

    #[test]
    fn rfc5424_with_escaped_structured_data() {
        let mut e = Event::admin("al\"i]ce", "unlock", Decision::Refused, 1000, 1_795_460_645);
        e.rhost = Some("10.0.0.1".into());
        let record = Body::of(&e, Some(3), Some("ab".into())).sealed();
        let msg = message(&record, &record.json(), 42);
        let host = crate::audit::host();
        assert!(
            msg.starts_with(&format!("<84>1 2026-11-23T19:04:05Z {host} mfad 42 admin [mfad@32473 schema=\"mfad.audit.v1\" seq=\"3\" type=\"admin\"")),
            "{msg}"
        );
        assert!(msg.contains(r#"user="al\"i\]ce""#), "{msg}");
        assert!(msg.contains(r#"rhost="10.0.0.1""#), "{msg}");
        assert!(!msg.contains("tty="), "absent fields are left out: {msg}");
        assert!(msg.ends_with(&format!("] {}", record.json())), "{msg}");
    }
}
