//! The one connection a command uses, opened on first use.

use crate::error::CliError;
use mfad_protocol::{Client, ClientError, ClientOptions, ErrorCode, FrameError, Request, Response};
use std::io;

/// Something that answers requests: mfad over its socket, or a script in
/// tests.
pub trait Daemon {
    /// Sends one request and returns the reply as received (an `error`
    /// reply is not turned into `Err` here).
    fn call(&mut self, request: &Request) -> Result<Response, CliError>;

    /// Sends one request and hands each reply to `each` until the daemon
    /// closes the connection (`audit --follow`). No reply is awaited with a
    /// timeout: the stream may be quiet for hours.
    fn stream(
        &mut self,
        request: &Request,
        each: &mut dyn FnMut(Response) -> Result<(), CliError>,
    ) -> Result<(), CliError>;
}

pub struct Session {
    opts: ClientOptions,
    client: Option<Client>,
}

impl Session {
    pub fn new(opts: ClientOptions) -> Self {
        Self { opts, client: None }
    }
}

impl Daemon for Session {
    fn call(&mut self, request: &Request) -> Result<Response, CliError> {
        // mfad drops a connection that sits idle (or open) too long, which
        // happens while someone scans a QR code and types a code. When it
        // had given up before this request, it never saw the request, and
        // sending it once more on a new connection is safe.
        if let Some(mut client) = self.client.take()
            && let Some(resp) = reuse(&mut client, request)?
        {
            self.client = Some(client);
            return Ok(resp);
        }
        let mut client = Client::connect(&self.opts)?;
        client.send(request)?;
        let resp = client.recv()?;
        self.client = Some(client);
        Ok(resp)
    }

    fn stream(
        &mut self,
        request: &Request,
        each: &mut dyn FnMut(Response) -> Result<(), CliError>,
    ) -> Result<(), CliError> {
        let opts = ClientOptions {
            read_timeout: QUIET_STREAM,
            ..self.opts.clone()
        };
        let mut client = Client::connect(&opts)?;
        client.send(request)?;
        loop {
            match client.recv() {
                Ok(resp) => each(resp)?,
                Err(ClientError::Frame(FrameError::Closed)) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// A year: how long a stream may go without an event.
const QUIET_STREAM: std::time::Duration = std::time::Duration::from_secs(365 * 86_400);

/// One exchange on a connection used before; `None` when the daemon had
/// already closed it or timed it out, without reading this request.
fn reuse(client: &mut Client, request: &Request) -> Result<Option<Response>, CliError> {
    match client.send(request) {
        Ok(()) => {}
        Err(err) if peer_gone(&err) => return Ok(None),
        Err(err) => return Err(err.into()),
    }
    match client.recv()? {
        // mfad sends `timeout` only when it stops waiting for a request.
        Response::Error {
            code: ErrorCode::Timeout,
            ..
        } => Ok(None),
        resp => Ok(Some(resp)),
    }
}

fn peer_gone(err: &ClientError) -> bool {
    matches!(
        err,
        ClientError::Frame(FrameError::Io(e)) if matches!(
            e.kind(),
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset | io::ErrorKind::NotConnected
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use mfad_protocol::{ResponseEnvelope, parse_request, read_frame, write_frame};
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::net::{UnixListener, UnixStream};
    use std::sync::mpsc;
    use std::time::Duration;

    fn pong(n: u32) -> Response {
        Response::Pong {
            daemon_version: format!("fake {n}"),
            protocol: 1,
        }
    }

    fn answer(stream: &mut UnixStream, resp: Response) {
        let body: serde_json::Value = read_frame(stream).unwrap();
        parse_request(body.to_string().as_bytes()).unwrap();
        write_frame(stream, &ResponseEnvelope::new(resp)).unwrap();
    }

    fn version(resp: Response) -> String {
        match resp {
            Response::Pong { daemon_version, .. } => daemon_version,
            other => panic!("{other:?}"),
        }
    }

    /// A stand-in for mfad that closes the first connection after one
    /// reply, and times the second one out before it reads anything.
    #[test]
    fn a_connection_the_daemon_gave_up_on_is_replaced_once() {
        let dir = std::env::temp_dir().join(format!("mfactl-conn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        let uid = std::fs::metadata(&path).unwrap().uid();
        let (closed, wait_closed) = mpsc::channel();
        let (timed_out, wait_timed_out) = mpsc::channel();
        let server = std::thread::spawn(move || {
            let mut first = listener.accept().unwrap().0;
            answer(&mut first, pong(1));
            drop(first);
            closed.send(()).unwrap();
            let mut second = listener.accept().unwrap().0;
            answer(&mut second, pong(2));
            let timeout = Response::Error {
                code: ErrorCode::Timeout,
                message: "timed out waiting for the client".into(),
                supported: vec![],
            };
            write_frame(&mut second, &ResponseEnvelope::new(timeout)).unwrap();
            timed_out.send(()).unwrap();
            let mut third = listener.accept().unwrap().0;
            answer(&mut third, pong(3));
            second
        });
        let mut session = Session::new(ClientOptions {
            socket: path,
            read_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(5),
            daemon_uid: Some(uid),
        });
        assert_eq!(version(session.call(&Request::Ping).unwrap()), "fake 1");
        wait_closed.recv().unwrap();
        assert_eq!(version(session.call(&Request::Ping).unwrap()), "fake 2");
        wait_timed_out.recv().unwrap();
        assert_eq!(version(session.call(&Request::Ping).unwrap()), "fake 3");
        drop(server.join().unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
