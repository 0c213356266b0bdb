//! Frames over a tokio Unix stream, with the idle and conversation deadlines
//! that keep a silent or slow client from holding a connection forever.

use mfad_protocol::{
    ErrorCode, FrameError, LEN_PREFIX, Request, RequestError, Response, ResponseEnvelope, body_len,
    encode, parse_request,
};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::time::{Instant, timeout_at};
use zeroize::Zeroizing;

/// How long a single response write may take before the client is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why no request could be read. `Closed` is the normal end.
#[derive(Debug)]
pub enum ReadError {
    Closed,
    Timeout,
    /// The frame was unusable; the connection must be closed after telling
    /// the client.
    Frame(FrameError),
    /// The frame was fine but its request was not; the connection may go on.
    Request(RequestError),
}

pub struct FrameIo {
    stream: UnixStream,
    idle: Duration,
    deadline: Instant,
}

impl FrameIo {
    pub fn new(stream: UnixStream, idle: Duration, conversation: Duration) -> Self {
        Self {
            stream,
            idle,
            deadline: Instant::now() + conversation,
        }
    }

    pub async fn read(&mut self) -> Result<Request, ReadError> {
        let until = self.deadline.min(Instant::now() + self.idle);
        match timeout_at(until, read_body(&mut self.stream)).await {
            Err(_) => Err(ReadError::Timeout),
            Ok(Err(FrameError::Closed)) => Err(ReadError::Closed),
            Ok(Err(e)) => Err(ReadError::Frame(e)),
            Ok(Ok(body)) => parse_request(&body).map_err(ReadError::Request),
        }
    }

    pub async fn send(&mut self, response: Response) -> Result<(), FrameError> {
        let frame = encode(&ResponseEnvelope::new(response))?;
        match tokio::time::timeout(WRITE_TIMEOUT, self.stream.write_all(&frame)).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(FrameError::Timeout),
        }
    }

    /// Sends an error response, ignoring a client that has already gone.
    pub async fn send_error(&mut self, code: ErrorCode, message: impl Into<String>) {
        let _ = self
            .send(Response::Error {
                code,
                message: message.into(),
                supported: Vec::new(),
            })
            .await;
    }

    /// Tells the client what was wrong with its frame or request.
    pub async fn report(&mut self, err: &ReadError) {
        match err {
            ReadError::Closed => {}
            ReadError::Timeout => {
                self.send_error(ErrorCode::Timeout, "timed out waiting for the client")
                    .await
            }
            ReadError::Frame(FrameError::TooLarge(n)) => {
                let msg = format!(
                    "frame of {n} bytes is over the {}-byte limit",
                    mfad_protocol::MAX_FRAME
                );
                self.send_error(ErrorCode::FrameTooLarge, msg).await
            }
            ReadError::Frame(e) => self.send_error(ErrorCode::BadRequest, e.to_string()).await,
            ReadError::Request(e) => {
                let _ = self.send(e.to_response()).await;
            }
        }
    }
}

/// Reads one frame body; the prefix is checked before the body is allocated.
async fn read_body(stream: &mut UnixStream) -> Result<Zeroizing<Vec<u8>>, FrameError> {
    let mut prefix = [0u8; LEN_PREFIX];
    let mut got = 0;
    while got < LEN_PREFIX {
        match stream.read(&mut prefix[got..]).await? {
            0 if got == 0 => return Err(FrameError::Closed),
            0 => return Err(FrameError::Truncated),
            n => got += n,
        }
    }
    let len = body_len(prefix)?;
    let mut body = Zeroizing::new(vec![0u8; len]);
    stream.read_exact(&mut body).await?;
    Ok(body)
}
