//! Authentication factors. Each factor the policy can name has its checks
//! here; a login asks for them through `login::checks`.

pub mod backup;
pub mod hashed;
pub mod otp;
pub mod totp;
