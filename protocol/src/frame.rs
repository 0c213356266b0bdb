//! Length-prefixed JSON frames over any blocking `Read`/`Write`.

use crate::MAX_FRAME;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::io::{self, Read, Write};
use thiserror::Error;
use zeroize::Zeroizing;

/// Bytes in the length prefix.
pub const LEN_PREFIX: usize = 4;

#[derive(Debug, Error)]
pub enum FrameError {
    #[error("the peer closed the connection")]
    Closed,
    #[error("the connection closed in the middle of a frame")]
    Truncated,
    #[error("empty frame (length 0)")]
    Empty,
    #[error("frame of {0} bytes is over the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    #[error("timed out waiting for the peer")]
    Timeout,
    #[error("malformed message: {0}")]
    Json(#[from] serde_json::Error),
    #[error("i/o error: {0}")]
    Io(io::Error),
}

impl From<io::Error> for FrameError {
    fn from(err: io::Error) -> Self {
        match err.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => FrameError::Timeout,
            io::ErrorKind::UnexpectedEof => FrameError::Truncated,
            _ => FrameError::Io(err),
        }
    }
}

/// Checks a length prefix before anything is allocated for the body.
pub fn body_len(prefix: [u8; LEN_PREFIX]) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(prefix) as usize;
    match len {
        0 => Err(FrameError::Empty),
        n if n > MAX_FRAME => Err(FrameError::TooLarge(n)),
        n => Ok(n),
    }
}

/// Room for a typical frame, so that serializing an answer does not grow
/// (and so copy, unwiped) the buffer.
const TYPICAL_FRAME: usize = 1024;

/// Serializes `msg` into one complete frame (prefix and body). The buffer is
/// wiped on drop: a frame may carry a typed code.
pub fn encode<T: Serialize>(msg: &T) -> Result<Zeroizing<Vec<u8>>, FrameError> {
    let mut buf = Zeroizing::new(Vec::with_capacity(TYPICAL_FRAME));
    buf.extend_from_slice(&[0u8; LEN_PREFIX]);
    serde_json::to_writer(&mut *buf, msg)?;
    let len = buf.len() - LEN_PREFIX;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    // Cannot truncate: len <= MAX_FRAME < u32::MAX.
    buf[..LEN_PREFIX].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(buf)
}

/// Writes one frame in a single `write_all`, so a frame is never interleaved.
pub fn write_frame<W: Write, T: Serialize>(w: &mut W, msg: &T) -> Result<(), FrameError> {
    let buf = encode(msg)?;
    w.write_all(&buf)?;
    Ok(())
}

/// Reads one frame and decodes it. A clean end of stream before the first
/// byte is [`FrameError::Closed`]; an end inside a frame is
/// [`FrameError::Truncated`].
pub fn read_frame<R: Read, T: DeserializeOwned>(r: &mut R) -> Result<T, FrameError> {
    let mut prefix = [0u8; LEN_PREFIX];
    let mut got = 0;
    while got < LEN_PREFIX {
        match r.read(&mut prefix[got..]) {
            Ok(0) if got == 0 => return Err(FrameError::Closed),
            Ok(0) => return Err(FrameError::Truncated),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let len = body_len(prefix)?;
    let mut body = Zeroizing::new(vec![0u8; len]);
    r.read_exact(&mut body)?;
    crate::strict::unique_keys(&body)?;
    Ok(serde_json::from_slice(&body)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::io::Cursor;

    fn frame_of(body: &[u8]) -> Vec<u8> {
        let mut v = (body.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    /// A JSON string whose serialized body is exactly `n` bytes.
    fn json_body(n: usize) -> Vec<u8> {
        let mut body = vec![b'"'];
        body.extend(std::iter::repeat_n(b'a', n - 2));
        body.push(b'"');
        body
    }

    #[test]
    fn round_trip() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &serde_json::json!({"a": 1})).unwrap();
        let v: Value = read_frame(&mut Cursor::new(buf)).unwrap();
        assert_eq!(v["a"], 1);
    }

    #[test]
    fn empty_frame_is_refused() {
        let r: Result<Value, _> = read_frame(&mut Cursor::new(frame_of(b"")));
        assert!(matches!(r, Err(FrameError::Empty)));
    }

    #[test]
    fn exactly_max_is_accepted_and_one_over_refused() {
        let v: Value = read_frame(&mut Cursor::new(frame_of(&json_body(MAX_FRAME)))).unwrap();
        assert_eq!(v.as_str().unwrap().len(), MAX_FRAME - 2);

        let r: Result<Value, _> = read_frame(&mut Cursor::new(frame_of(&json_body(MAX_FRAME + 1))));
        assert!(matches!(r, Err(FrameError::TooLarge(n)) if n == MAX_FRAME + 1));
    }

    #[test]
    fn huge_prefix_is_refused_before_allocating() {
        let r: Result<Value, _> = read_frame(&mut Cursor::new(u32::MAX.to_be_bytes().to_vec()));
        assert!(matches!(r, Err(FrameError::TooLarge(_))));
    }

    #[test]
    fn encode_refuses_oversized_messages() {
        let big = "x".repeat(MAX_FRAME);
        assert!(matches!(encode(&big), Err(FrameError::TooLarge(_))));
        assert!(encode(&"x".repeat(MAX_FRAME - 2)).is_ok());
    }

    #[test]
    fn truncated_body_and_prefix() {
        let mut f = frame_of(b"{\"a\":1}");
        f.truncate(f.len() - 2);
        let r: Result<Value, _> = read_frame(&mut Cursor::new(f));
        assert!(matches!(r, Err(FrameError::Truncated)));

        let r: Result<Value, _> = read_frame(&mut Cursor::new(vec![0u8, 0]));
        assert!(matches!(r, Err(FrameError::Truncated)));

        let r: Result<Value, _> = read_frame(&mut Cursor::new(Vec::new()));
        assert!(matches!(r, Err(FrameError::Closed)));
    }

    #[test]
    fn garbage_body_is_a_json_error() {
        let r: Result<Value, _> = read_frame(&mut Cursor::new(frame_of(b"\xff\xfe not json")));
        assert!(matches!(r, Err(FrameError::Json(_))));
    }
}
