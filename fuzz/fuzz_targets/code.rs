//! Typed codes: normalisation of backup and text-message codes, and the TOTP
//! check, on anything a user can type. No panic; normalising is idempotent
//! and leaves no space or dash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mfad::factor::{hashed, totp};
use mfad::config::TotpAlgorithm;
use mfad::store::TotpParams;

fuzz_target!(|data: &[u8]| {
    let Ok(code) = std::str::from_utf8(data) else {
        return;
    };
    let once = hashed::normalize(code);
    assert!(!once.chars().any(|c| c.is_whitespace() || c == '-'));
    assert_eq!(*hashed::normalize(&once), *once);
    let params = TotpParams {
        algorithm: TotpAlgorithm::SHA1,
        digits: 6,
        period: 30,
    };
    let secret = [7u8; 20];
    if let Ok(totp::Check::Match { drift, .. }) = totp::check(&secret, params, code, 1_700_000_000, 1) {
        assert!(drift.abs() <= 1);
    }
});
