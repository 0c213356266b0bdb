//! The benchmark's accounts, the clock, and TOTP codes computed in-process
//! with totp-rs (the benchmark is no test: it needs thousands of codes, and
//! an `oathtool` process per code would cost more than the login itself).

use std::time::{Duration, SystemTime, UNIX_EPOCH};
use totp_rs::{Algorithm, Builder, Secret, Totp};

/// The TOTP period of both modules (mfad's default, google-authenticator's).
pub const PERIOD: u64 = 30;
const DIGITS: u8 = 6;

/// Time since the Unix epoch by the host clock, which the daemon reads too.
#[allow(clippy::disallowed_methods)] // The benchmark reads the daemon's clock.
pub fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// How long until the current step ends.
fn left_in_step() -> Duration {
    let period = Duration::from_secs(PERIOD);
    let now = now();
    let into = Duration::from_nanos((now.as_nanos() % period.as_nanos()) as u64);
    period - into
}

/// Sleeps into the next step when less than `margin` is left in this one,
/// so that a code computed now still means the same step to the daemon.
pub fn avoid_step_end(margin: Duration) {
    let left = left_in_step();
    if left < margin {
        std::thread::sleep(left + Duration::from_millis(50));
    }
}

/// One enrolled account: its name and its TOTP secret.
pub struct BenchUser {
    pub name: String,
    pub secret_base32: String,
    totp: Totp,
}

impl BenchUser {
    pub fn new(name: String, secret_base32: &str) -> Self {
        let secret = Secret::try_from_base32(secret_base32)
            .unwrap_or_else(|e| panic!("the daemon offered a bad base32 secret: {e:?}"));
        let totp = Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(DIGITS)
            .with_secret(secret)
            .with_skew(0)
            .with_step_duration(PERIOD)
            .build()
            .expect("build the TOTP generator");
        Self {
            name,
            secret_base32: secret_base32.to_owned(),
            totp,
        }
    }

    /// The code at Unix time `unix_secs`.
    pub fn code_at(&self, unix_secs: u64) -> String {
        self.totp.generate(unix_secs).to_string()
    }

    /// A well-formed code that is valid in no step within two of the one at
    /// `unix_secs` (so neither module can take it as a match or as skew
    /// within its window): the right code plus one, or the next free value.
    pub fn wrong_code(&self, unix_secs: u64) -> String {
        let near: Vec<String> = (0..=4)
            .map(|k| self.code_at((unix_secs + k * PERIOD).saturating_sub(2 * PERIOD)))
            .collect();
        let mut value: u32 = near[2].parse().expect("a numeric code");
        loop {
            value = (value + 1) % 1_000_000;
            let code = format!("{value:06}");
            if !near.contains(&code) {
                return code;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, 6 digits: the key is ASCII "12345678901234567890".
    #[test]
    fn matches_rfc6238() {
        let user = BenchUser::new("u".into(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(user.code_at(59), "287082");
        assert_eq!(user.code_at(1_111_111_109), "081804");
        let wrong = user.wrong_code(59);
        assert_eq!(wrong.len(), 6);
        assert_ne!(wrong, "287082");
    }
}
