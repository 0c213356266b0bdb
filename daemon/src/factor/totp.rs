//! TOTP (RFC 6238) through totp-rs: code checks that report the matching
//! time step, so the store can accept each step at most once.

use crate::store::TotpParams;
use crate::store::crypto::{CryptoError, constant_time_eq, random_bytes};
use serde::Deserialize;
use totp_rs::{Algorithm, Builder, Totp};
use zeroize::Zeroizing;

/// The hash a TOTP factor uses (RFC 6238 allows these three).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum TotpAlgorithm {
    SHA1,
    SHA256,
    SHA512,
}

impl TotpAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            TotpAlgorithm::SHA1 => "SHA1",
            TotpAlgorithm::SHA256 => "SHA256",
            TotpAlgorithm::SHA512 => "SHA512",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "SHA1" => Some(TotpAlgorithm::SHA1),
            "SHA256" => Some(TotpAlgorithm::SHA256),
            "SHA512" => Some(TotpAlgorithm::SHA512),
            _ => None,
        }
    }
}

/// Seed length: 160 bits, as RFC 4226 recommends (NIST: at least 112).
pub const SECRET_LEN: usize = 20;

/// Steps beyond the acceptance window that are still recognised, only to
/// tell the user their clock is off; such a code is never accepted.
const SKEW_HINT_STEPS: i64 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The code matches `step`, `drift` steps from the current one.
    Match {
        step: i64,
        drift: i64,
    },
    /// The code matches a step just outside the window: the device's clock
    /// is off by about `drift` steps.
    Skewed {
        drift: i64,
    },
    Wrong,
}

#[derive(Debug, thiserror::Error)]
pub enum TotpError {
    #[error("invalid TOTP parameters: {0}")]
    Params(String),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

fn algorithm(a: TotpAlgorithm) -> Algorithm {
    match a {
        TotpAlgorithm::SHA1 => Algorithm::SHA1,
        TotpAlgorithm::SHA256 => Algorithm::SHA256,
        TotpAlgorithm::SHA512 => Algorithm::SHA512,
    }
}

fn build(
    secret: &[u8],
    p: TotpParams,
    issuer: Option<&str>,
    account: &str,
) -> Result<Totp, TotpError> {
    let digits =
        u8::try_from(p.digits).map_err(|_| TotpError::Params(format!("{} digits", p.digits)))?;
    Builder::new()
        .with_algorithm(algorithm(p.algorithm))
        .with_digits(digits)
        .with_secret(secret.to_vec())
        .with_skew(0)
        .with_step_duration(p.period)
        .with_issuer(issuer)
        .with_account_name(account)
        .build()
        .map_err(|e| TotpError::Params(e.to_string()))
}

/// Checks `code` at unix time `now`, accepting `window` steps either side.
///
/// Every candidate step is computed and compared in constant time whatever
/// the input, so a wrong code costs the same work as a right one.
pub fn check(
    secret: &[u8],
    p: TotpParams,
    code: &str,
    now: i64,
    window: u32,
) -> Result<Check, TotpError> {
    let totp = build(secret, p, None, "")?;
    let period = i64::try_from(p.period).map_err(|_| TotpError::Params("period".into()))?;
    let current = now.div_euclid(period);
    let typed = normalize(code);
    let reach = i64::from(window) + SKEW_HINT_STEPS;
    let mut best: Option<i64> = None;
    for drift in -reach..=reach {
        let step = current + drift;
        if step < 0 {
            continue;
        }
        let expected = Zeroizing::new(totp.generate((step * period) as u64).to_string());
        let matches = constant_time_eq(expected.as_bytes(), typed.as_bytes());
        // Prefer the match closest to now.
        if matches && best.is_none_or(|b| drift.abs() < b.abs()) {
            best = Some(drift);
        }
    }
    Ok(match best {
        Some(drift) if drift.abs() <= i64::from(window) => Check::Match {
            step: current + drift,
            drift,
        },
        Some(drift) => Check::Skewed { drift },
        None => Check::Wrong,
    })
}

/// Codes may be typed with spaces or a dash (`123 456`, `123-456`).
fn normalize(code: &str) -> Zeroizing<String> {
    Zeroizing::new(
        code.chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect(),
    )
}

/// A new random seed.
pub fn new_secret() -> Result<Zeroizing<[u8; SECRET_LEN]>, TotpError> {
    Ok(random_bytes::<SECRET_LEN>()?)
}

/// The otpauth:// URI and the base32 seed an authenticator app imports.
pub fn provisioning(
    secret: &[u8],
    p: TotpParams,
    issuer: &str,
    account: &str,
) -> Result<(String, String), TotpError> {
    let totp = build(secret, p, Some(issuer), account)?;
    let uri = totp
        .to_url()
        .map_err(|e| TotpError::Params(e.to_string()))?;
    Ok((uri, totp.secret().to_base32()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6238 Appendix B: the seeds are the ASCII strings below, one per
    // algorithm, and the expected codes have 8 digits.
    const SEED_SHA1: &[u8] = b"12345678901234567890";
    const SEED_SHA256: &[u8] = b"12345678901234567890123456789012";
    const SEED_SHA512: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";
    const VECTORS: &[(i64, &str, &str, &str)] = &[
        (59, "94287082", "46119246", "90693936"),
        (1111111109, "07081804", "68084774", "25091201"),
        (1111111111, "14050471", "67062674", "99943326"),
        (1234567890, "89005924", "91819424", "93441116"),
        (2000000000, "69279037", "90698825", "38618901"),
        (20000000000, "65353130", "77737706", "47863826"),
    ];

    fn params(algorithm: TotpAlgorithm) -> TotpParams {
        TotpParams {
            algorithm,
            digits: 8,
            period: 30,
        }
    }

    #[test]
    fn rfc6238_appendix_b_vectors_all_algorithms() {
        for &(time, sha1, sha256, sha512) in VECTORS {
            for (alg, seed, code) in [
                (TotpAlgorithm::SHA1, SEED_SHA1, sha1),
                (TotpAlgorithm::SHA256, SEED_SHA256, sha256),
                (TotpAlgorithm::SHA512, SEED_SHA512, sha512),
            ] {
                let got = check(seed, params(alg), code, time, 0).unwrap();
                assert_eq!(
                    got,
                    Check::Match {
                        step: time / 30,
                        drift: 0
                    },
                    "{alg:?} at {time}"
                );
            }
        }
    }

    #[test]
    fn wrong_algorithm_or_code_does_not_match() {
        assert_eq!(
            check(SEED_SHA1, params(TotpAlgorithm::SHA256), "94287082", 59, 1).unwrap(),
            Check::Wrong
        );
        assert_eq!(
            check(SEED_SHA1, params(TotpAlgorithm::SHA1), "94287083", 59, 1).unwrap(),
            Check::Wrong
        );
        assert_eq!(
            check(SEED_SHA1, params(TotpAlgorithm::SHA1), "", 59, 1).unwrap(),
            Check::Wrong
        );
        assert_eq!(
            check(SEED_SHA1, params(TotpAlgorithm::SHA1), "9428708", 59, 1).unwrap(),
            Check::Wrong
        );
    }

    #[test]
    fn window_and_skew_hint() {
        let p = params(TotpAlgorithm::SHA1);
        // The code for t=1111111109 (step 37037036), checked one and three steps later.
        assert_eq!(
            check(SEED_SHA1, p, "07081804", 1111111109 + 30, 1).unwrap(),
            Check::Match {
                step: 37037036,
                drift: -1
            }
        );
        assert_eq!(
            check(SEED_SHA1, p, "07081804", 1111111109 + 30, 0).unwrap(),
            Check::Skewed { drift: -1 }
        );
        assert_eq!(
            check(SEED_SHA1, p, "07081804", 1111111109 + 90, 1).unwrap(),
            Check::Skewed { drift: -3 }
        );
        assert_eq!(
            check(SEED_SHA1, p, "07081804", 1111111109 + 150, 1).unwrap(),
            Check::Wrong
        );
    }

    #[test]
    fn separators_and_spaces_are_accepted() {
        let p = params(TotpAlgorithm::SHA1);
        assert!(matches!(
            check(SEED_SHA1, p, "0708-1804", 1111111109, 1).unwrap(),
            Check::Match { .. }
        ));
        assert!(matches!(
            check(SEED_SHA1, p, " 0708 1804\n", 1111111109, 1).unwrap(),
            Check::Match { .. }
        ));
    }

    #[test]
    fn provisioning_uri_names_issuer_account_and_parameters() {
        let p = TotpParams {
            algorithm: TotpAlgorithm::SHA256,
            digits: 8,
            period: 60,
        };
        let (uri, b32) = provisioning(SEED_SHA1, p, "mfad", "alice").unwrap();
        assert_eq!(b32, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert!(
            uri.starts_with("otpauth://totp/mfad:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"),
            "{uri}"
        );
        for part in ["digits=8", "algorithm=SHA256", "period=60", "issuer=mfad"] {
            assert!(uri.contains(part), "{uri}");
        }
    }

    #[test]
    fn new_secrets_are_160_bits_and_distinct() {
        let a = new_secret().unwrap();
        let b = new_secret().unwrap();
        assert_eq!(a.len(), 20);
        assert_ne!(*a, *b);
    }
}
