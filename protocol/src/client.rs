//! A small blocking client, shared by the PAM module and mfactl.
//!
//! It uses no threads and no global state, so it is safe inside any process
//! that loads the PAM module, including after fork.

use crate::frame::{FrameError, read_frame, write_frame};
use crate::message::{Request, RequestEnvelope, Response, ResponseEnvelope};
use crate::{PROTOCOL_VERSION, paths};
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use std::io;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;
use thiserror::Error;

/// Pauses between connection attempts, to ride out a daemon restart without
/// hanging a login: three attempts within about half a second.
const CONNECT_BACKOFF: [Duration; 2] = [Duration::from_millis(150), Duration::from_millis(300)];

#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub socket: PathBuf,
    /// How long to wait for each reply from the daemon.
    pub read_timeout: Duration,
    pub write_timeout: Duration,
    /// The uid the daemon must run as; a socket held by anyone else is
    /// refused before anything is sent. `None` skips the check.
    pub daemon_uid: Option<u32>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            socket: PathBuf::from(paths::SOCKET),
            read_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(2),
            daemon_uid: Some(0),
        }
    }
}

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("cannot connect to the mfad socket {path}: {source}")]
    Connect { path: PathBuf, source: io::Error },
    #[error(
        "the socket {path} is served by uid {uid}, not by the mfad daemon (uid {expected}); refusing to talk to it"
    )]
    WrongDaemon {
        path: PathBuf,
        uid: u32,
        expected: u32,
    },
    #[error("cannot read the peer credentials of the mfad socket: {0}")]
    PeerCred(nix::Error),
    #[error("cannot set socket timeouts: {0}")]
    Timeouts(io::Error),
    #[error("the daemon speaks protocol version {got}, this client speaks {PROTOCOL_VERSION}")]
    Version { got: u32 },
    #[error(transparent)]
    Frame(#[from] FrameError),
}

pub struct Client {
    stream: UnixStream,
}

impl Client {
    pub fn connect(opts: &ClientOptions) -> Result<Self, ClientError> {
        let mut attempt = 0;
        let stream = loop {
            match UnixStream::connect(&opts.socket) {
                Ok(stream) => break stream,
                Err(e) if is_transient(&e) && attempt < CONNECT_BACKOFF.len() => {
                    std::thread::sleep(CONNECT_BACKOFF[attempt]);
                    attempt += 1;
                }
                Err(source) => {
                    return Err(ClientError::Connect {
                        path: opts.socket.clone(),
                        source,
                    });
                }
            }
        };
        if let Some(expected) = opts.daemon_uid {
            let cred = getsockopt(&stream, PeerCredentials).map_err(ClientError::PeerCred)?;
            if cred.uid() != expected {
                return Err(ClientError::WrongDaemon {
                    path: opts.socket.clone(),
                    uid: cred.uid(),
                    expected,
                });
            }
        }
        stream
            .set_read_timeout(Some(opts.read_timeout))
            .map_err(ClientError::Timeouts)?;
        stream
            .set_write_timeout(Some(opts.write_timeout))
            .map_err(ClientError::Timeouts)?;
        Ok(Self { stream })
    }

    pub fn send(&mut self, request: &Request) -> Result<(), ClientError> {
        write_frame(&mut self.stream, &RequestEnvelope::new(request))?;
        Ok(())
    }

    /// Reads the next response. An unknown response type or another protocol
    /// version is an error, so that callers fail closed.
    pub fn recv(&mut self) -> Result<Response, ClientError> {
        let envelope: ResponseEnvelope = read_frame(&mut self.stream)?;
        if envelope.version != PROTOCOL_VERSION {
            return Err(ClientError::Version {
                got: envelope.version,
            });
        }
        Ok(envelope.response)
    }

    /// Sends one request and returns the first response.
    pub fn call(&mut self, request: &Request) -> Result<Response, ClientError> {
        self.send(request)?;
        self.recv()
    }
}

impl ClientError {
    /// True only when no daemon is there at all: the socket is missing or
    /// nothing listens on it. Once a connection is accepted, every later
    /// failure (a timeout, EOF, a bad frame) means a daemon that is there
    /// but not answering properly, which a caller must never treat as absent.
    pub fn no_daemon(&self) -> bool {
        matches!(self, ClientError::Connect { source, .. } if is_transient(source))
    }
}

/// Errors that a daemon restart produces: the socket is briefly missing or
/// not yet listening.
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn missing_socket_is_a_connect_error_after_retries() {
        let dir = std::env::temp_dir().join(format!("mfad-proto-{}", std::process::id()));
        let opts = ClientOptions {
            socket: dir.join("none.sock"),
            ..Default::default()
        };
        let started = std::time::Instant::now();
        let err = Client::connect(&opts).err().unwrap();
        assert!(matches!(err, ClientError::Connect { .. }), "{err}");
        assert!(started.elapsed() >= Duration::from_millis(400));
    }

    #[test]
    fn socket_held_by_another_uid_is_refused() {
        let dir = std::env::temp_dir().join(format!("mfad-proto-uid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        let _ = std::fs::remove_file(&path);
        let _listener = UnixListener::bind(&path).unwrap();
        let me = nix::unistd::getuid().as_raw();
        let opts = ClientOptions {
            socket: path.clone(),
            daemon_uid: Some(me + 1),
            ..Default::default()
        };
        let err = Client::connect(&opts).err().unwrap();
        assert!(
            matches!(err, ClientError::WrongDaemon { uid, .. } if uid == me),
            "{err}"
        );
        let opts = ClientOptions {
            socket: path,
            daemon_uid: Some(me),
            ..Default::default()
        };
        assert!(Client::connect(&opts).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
