//! Frames over a tokio Unix stream, with the deadlines that keep a silent or
//! slow client from holding a connection: the idle timeout between frames
//! (the user typing), a short one within a frame once it has started (a
//! client writes a frame at once; one trickling bytes is hostile or broken),
//! and one for the whole conversation.

use crate::config::LimitsConfig;
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
    frame: Duration,
    deadline: Instant,
}

impl FrameIo {
    pub fn new(stream: UnixStream, limits: &LimitsConfig) -> Self {
        Self {
            stream,
            idle: limits.idle_timeout,
            frame: limits.frame_timeout,
            deadline: Instant::now() + limits.conversation_timeout,
        }
    }

    pub async fn read(&mut self) -> Result<Request, ReadError> {
        let mut first = [0u8; 1];
        let until = self.deadline.min(Instant::now() + self.idle);
        match timeout_at(until, self.stream.read(&mut first)).await {
            Err(_) => return Err(ReadError::Timeout),
            Ok(Ok(0)) => return Err(ReadError::Closed),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(ReadError::Frame(e.into())),
        }
        let until = self.deadline.min(Instant::now() + self.frame);
        match timeout_at(until, read_body(&mut self.stream, first[0])).await {
            Err(_) => Err(ReadError::Timeout),
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

/// Reads the rest of a frame whose first byte has arrived; the prefix is
/// checked before the body is allocated.
async fn read_body(stream: &mut UnixStream, first: u8) -> Result<Zeroizing<Vec<u8>>, FrameError> {
    let mut prefix = [first, 0, 0, 0];
    let mut got = 1;
    while got < LEN_PREFIX {
        match stream.read(&mut prefix[got..]).await? {
            0 => return Err(FrameError::Truncated),
            n => got += n,
        }
    }
    let len = body_len(prefix)?;
    let mut body = Zeroizing::new(vec![0u8; len]);
    stream.read_exact(&mut body).await?;
    Ok(body)
}
