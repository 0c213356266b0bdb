//! Authentication factors.

pub mod totp;
