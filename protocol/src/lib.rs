//! The contract between `pam_mfa.so`, `mfad` and `mfactl`.
//!
//! A frame is a 4-byte big-endian length followed by that many bytes of UTF-8
//! JSON. The length counts the body only, and a body is 1 to [`MAX_FRAME`]
//! bytes. Every request names the protocol [`PROTOCOL_VERSION`] it speaks.
//!
//! This crate stays free of tokio and threads: the PAM module links it.

mod client;
mod frame;
mod message;
pub mod paths;
mod secret;
mod strict;
pub mod time;

pub use client::{Client, ClientError, ClientOptions};
pub use frame::{FrameError, LEN_PREFIX, body_len, encode, read_frame, write_frame};
pub use message::*;
pub use secret::SecretString;

/// The protocol major version this build speaks. Additive changes (a new
/// optional field, a new request type) keep it; anything else bumps it.
pub const PROTOCOL_VERSION: u32 = 1;

/// Versions the daemon answers.
pub const SUPPORTED_VERSIONS: &[u32] = &[1];

/// The largest frame body accepted, in bytes (the 4-byte prefix not counted).
pub const MAX_FRAME: usize = 64 * 1024;
