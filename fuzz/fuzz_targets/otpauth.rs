//! The otpauth:// URI mfad hands to authenticator apps: for any account
//! name the daemon accepts, the URI an app parses back names the same
//! account, issuer and secret. mfad writes these URIs and parses none.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mfad::factor::totp;
use mfad::config::TotpAlgorithm;
use mfad::store::TotpParams;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (issuer, account) = text.split_once('\n').unwrap_or(("mfad", text));
    // What the daemon lets through (validate::user_name, and the issuer
    // check of mfad.toml): non-empty, no control character, no ':'.
    let fit = |s: &str| !s.is_empty() && !s.chars().any(|c| c.is_control() || c == ':');
    if !fit(issuer) || !fit(account) {
        return;
    }
    let secret = [0x5au8; 20];
    let params = TotpParams {
        algorithm: TotpAlgorithm::SHA1,
        digits: 6,
        period: 30,
    };
    let Ok((uri, base32)) = totp::provisioning(&secret, params, issuer, account) else {
        return;
    };
    let app = totp_rs::Totp::from_url(&uri)
        .unwrap_or_else(|e| panic!("an app cannot read {uri:?}: {e}"));
    assert_eq!(app.account_name(), account, "{uri}");
    assert_eq!(app.issuer(), Some(issuer), "{uri}");
    assert_eq!(app.secret().as_bytes(), secret, "{uri}");
    assert_eq!(app.secret().to_base32(), base32);
});
