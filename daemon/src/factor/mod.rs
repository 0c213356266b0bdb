//! Authentication factors. Each factor the policy can name has its checks
//! here and its challenge in `auth::challenge`.

pub mod backup;
pub mod hashed;
pub mod otp;
pub mod totp;

use crate::Daemon;
use crate::policy::Factor;

/// Whether `user` can answer `factor` now. A sent-code factor needs its
/// channel configured and a verified destination.
pub fn enrolled(d: &Daemon, user: &str, factor: Factor) -> Result<bool, String> {
    match factor {
        Factor::Totp => d.store.totp_info(user).map(|r| r.is_some()),
        Factor::Backup => d.store.backup_codes_left(user).map(|n| n > 0),
        Factor::Sms | Factor::Email => match factor.channel() {
            Some(c) if d.delivery.configured(c) => d.store.has_verified_contact(user, c.name()),
            _ => Ok(false),
        },
    }
    .map_err(|e| e.to_string())
}
