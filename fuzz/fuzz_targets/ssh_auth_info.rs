//! SSH_AUTH_INFO_0 as sshd hands it to PAM (it reaches the daemon from the
//! module, so from any local caller of the socket): a key or nothing, never
//! a panic, and a key found names the type its blob starts with.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mfad::device::from_auth_info;

fuzz_target!(|data: &[u8]| {
    let Ok(info) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(key) = from_auth_info(info) {
        let ty = key.key_type.as_bytes();
        assert!(key.blob.len() >= 4 + ty.len());
        assert_eq!(&key.blob[4..4 + ty.len()], ty);
        assert!(key.fingerprint().starts_with("SHA256:"));
        let _ = key.label();
    }
});
