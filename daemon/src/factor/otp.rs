//! Codes sent by SMS or email: random digits from the OS CSPRNG, shown in
//! two groups (`123-456`) if the profile says so, stored only as salted
//! keyed hashes ([`Stored`]), valid for a short time and once.
//!
//! The life of a code (one per user, channel and purpose: a new send
//! replaces the old code; the cooldown, the hourly cap and single use are
//! enforced atomically) is in `store::otp`.

use super::hashed::Stored;
use crate::config::CodeProfile;
use crate::store::crypto::{CryptoError, Vault, random_bytes};
use crate::store::{Issue, SendLimits, Store};
use mfad_protocol::Channel;
use std::fmt;
use std::time::Duration;
use zeroize::Zeroizing;

/// What a sent code is for: a login, or confirming a new destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Login,
    Verify,
}

impl Purpose {
    pub fn name(self) -> &'static str {
        match self {
            Purpose::Login => "login",
            Purpose::Verify => "verify",
        }
    }
}

/// Why no code was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    Cooldown { wait: i64 },
    Capped { until: i64, cap: u32 },
}

impl fmt::Display for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Held::Cooldown { wait } => write!(f, "A new code can be sent in {wait} s"),
            Held::Capped { until, cap } => write!(
                f,
                "No more codes can be sent before {} (at most {cap} an hour)",
                mfad_protocol::time::utc(*until)
            ),
        }
    }
}

/// Why no code could be made.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// A code made and stored as the live one: to be sent once; its salt voids
/// it if the send fails.
pub struct Issued {
    pub code: Zeroizing<String>,
    pub salt: Vec<u8>,
}

pub fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Makes a new code for `user` and stores it as the live code of the
/// channel and purpose (voiding the previous one), if the hourly cap and,
/// with `cooldown`, the resend cooldown allow.
#[allow(clippy::too_many_arguments)]
pub fn issue(
    store: &dyn Store,
    vault: &Vault,
    user: &str,
    channel: Channel,
    purpose: Purpose,
    profile: &CodeProfile,
    cooldown: bool,
    now: i64,
) -> Result<Result<Issued, Held>, IssueError> {
    let (code, stored) = generate(vault, user, profile)?;
    Ok(record(
        store, user, channel, purpose, &stored, profile, cooldown, now,
    )?
    .map(|()| Issued {
        code,
        salt: stored.salt,
    }))
}

/// As [`issue`] for a user without the factor: a login code that no answer
/// matches, stored and counted as a real one is (validity, tries, resend
/// cooldown, hourly cap), so that every answer about it is the one a real
/// code would get. Its salt voids it, as a real one's does.
pub fn issue_decoy(
    store: &dyn Store,
    user: &str,
    channel: Channel,
    profile: &CodeProfile,
    cooldown: bool,
    now: i64,
) -> Result<Result<Vec<u8>, Held>, IssueError> {
    let stored = Stored::decoy()?;
    Ok(record(
        store,
        user,
        channel,
        Purpose::Login,
        &stored,
        profile,
        cooldown,
        now,
    )?
    .map(|()| stored.salt))
}

#[allow(clippy::too_many_arguments)]
fn record(
    store: &dyn Store,
    user: &str,
    channel: Channel,
    purpose: Purpose,
    stored: &Stored,
    profile: &CodeProfile,
    cooldown: bool,
    now: i64,
) -> Result<Result<(), Held>, IssueError> {
    let limits = SendLimits {
        cooldown_secs: if cooldown {
            secs(profile.resend_cooldown)
        } else {
            0
        },
        hourly_cap: profile.hourly_cap,
    };
    let expires = now.saturating_add(secs(profile.validity));
    let issue = store.issue_code(user, channel.name(), purpose, stored, now, expires, &limits)?;
    Ok(match issue {
        Issue::Issued => Ok(()),
        Issue::Cooldown { wait } => Err(Held::Cooldown { wait }),
        Issue::Capped { until } => Err(Held::Capped {
            until,
            cap: profile.hourly_cap,
        }),
    })
}

/// A new code as the user will see it, and its stored form.
pub fn generate(
    vault: &Vault,
    user: &str,
    profile: &CodeProfile,
) -> Result<(Zeroizing<String>, Stored), CryptoError> {
    let mut digits = Zeroizing::new(String::with_capacity(profile.length + 1));
    while digits.len() < profile.length {
        let random = random_bytes::<32>()?;
        // Bytes of 250 and above are dropped, so every digit is equally likely.
        for &b in random.iter().filter(|&&b| b < 250) {
            if digits.len() == profile.length {
                break;
            }
            digits.push(char::from(b'0' + b % 10));
        }
    }
    let stored = Stored::new(vault, user, &digits)?;
    Ok((display(&digits, profile.grouping), stored))
}

/// `123456` as `123-456` (the first group the longer one for odd lengths).
fn display(digits: &str, grouping: bool) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(digits.len() + 1));
    let split = digits.len().div_ceil(2);
    for (i, c) in digits.chars().enumerate() {
        if grouping && i == split {
            out.push('-');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn profile(length: usize, grouping: bool) -> CodeProfile {
        CodeProfile {
            length,
            grouping,
            validity: Duration::from_secs(300),
            resend_cooldown: Duration::from_secs(30),
            attempts: 3,
            hourly_cap: 5,
        }
    }

    #[test]
    fn codes_have_the_profiles_shape_and_verify_in_any_spelling() {
        let v = Vault::random();
        let (code, stored) = generate(&v, "alice", &profile(6, true)).unwrap();
        assert_eq!(code.len(), 7);
        assert_eq!(code.as_bytes()[3], b'-');
        assert!(stored.matches(&v, "alice", &code).unwrap());
        assert!(stored.matches(&v, "alice", &code.replace('-', "")).unwrap());
        assert!(
            stored
                .matches(&v, "alice", &code.replace('-', " "))
                .unwrap()
        );
        let (code, _) = generate(&v, "alice", &profile(9, false)).unwrap();
        assert_eq!(code.len(), 9);
        assert!(code.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(display("12345678", true).as_str(), "1234-5678");
        assert_eq!(display("1234567", true).as_str(), "1234-567");
    }

    #[test]
    fn digits_are_spread_evenly() {
        let v = Vault::random();
        let mut counts = [0u32; 10];
        for _ in 0..500 {
            let (code, _) = generate(&v, "a", &profile(10, false)).unwrap();
            for b in code.bytes() {
                counts[usize::from(b - b'0')] += 1;
            }
        }
        // 5000 digits: each about 500; a broken generator is far off.
        assert!(
            counts.iter().all(|&n| (350..650).contains(&n)),
            "{counts:?}"
        );
    }
}
