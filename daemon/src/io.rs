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

/// Bytes read ahead per `read` call: a whole request frame usually fits,
/// so it takes one system call instead of three (first byte, rest of the
/// length prefix, body).
const READ_AHEAD: usize = 1024;

pub struct FrameIo {
    stream: UnixStream,
    idle: Duration,
    frame: Duration,
    deadline: Instant,
    /// Read, not yet taken: `ahead[..filled]`. Codes pass through it, so it
    /// is wiped when the connection ends.
    ahead: Zeroizing<Vec<u8>>,
    filled: usize,
}

impl FrameIo {
    pub fn new(stream: UnixStream, limits: &LimitsConfig) -> Self {
        Self {
            stream,
            idle: limits.idle_timeout,
            frame: limits.frame_timeout,
            deadline: Instant::now() + limits.conversation_timeout,
            ahead: Zeroizing::new(vec![0; READ_AHEAD]),
            filled: 0,
        }
    }

    pub async fn read(&mut self) -> Result<Request, ReadError> {
        if self.filled == 0 {
            let until = self.deadline.min(Instant::now() + self.idle);
            match timeout_at(until, self.read_ahead()).await {
                Err(_) => return Err(ReadError::Timeout),
                Ok(Ok(0)) => return Err(ReadError::Closed),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(ReadError::Frame(e.into())),
            }
        }
        let until = self.deadline.min(Instant::now() + self.frame);
        match timeout_at(until, self.read_body()).await {
            Err(_) => Err(ReadError::Timeout),
            Ok(Err(e)) => Err(ReadError::Frame(e)),
            Ok(Ok(body)) => parse_request(&body).map_err(ReadError::Request),
        }
    }

    /// Reads what the client has sent, up to the room left ahead.
    async fn read_ahead(&mut self) -> std::io::Result<usize> {
        let n = self.stream.read(&mut self.ahead[self.filled..]).await?;
        self.filled += n;
        Ok(n)
    }

    /// The body of the frame whose first bytes are ahead; the prefix is
    /// checked before the body is allocated. Bytes of a next frame stay
    /// ahead.
    async fn read_body(&mut self) -> Result<Zeroizing<Vec<u8>>, FrameError> {
        while self.filled < LEN_PREFIX {
            if self.read_ahead().await? == 0 {
                return Err(FrameError::Truncated);
            }
        }
        let mut prefix = [0; LEN_PREFIX];
        prefix.copy_from_slice(&self.ahead[..LEN_PREFIX]);
        let len = body_len(prefix)?;
        let mut body = Zeroizing::new(vec![0u8; len]);
        let have = (self.filled - LEN_PREFIX).min(len);
        let taken = LEN_PREFIX + have;
        body[..have].copy_from_slice(&self.ahead[LEN_PREFIX..taken]);
        self.ahead.copy_within(taken..self.filled, 0);
        self.filled -= taken;
        self.stream.read_exact(&mut body[have..]).await?;
        Ok(body)
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
