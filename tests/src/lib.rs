//! End-to-end test support for mfad: the real daemon binary in a temporary
//! directory, the real libpam loading the real `pam_mfa.so`, codes from the
//! real `oathtool`, and real peers of other uids through `setpriv`.
//!
//! Run as root: `cargo build --workspace && cargo test -p mfad-tests`
//! (`cargo test -p mfad-tests` alone does not build mfad, mfactl or the
//! module; set `MFAD_TARGET_DIR` to test other builds of them).
//!
//! Everything here is test support, so panicking on a broken fixture is the
//! right failure mode: a test that cannot set itself up must fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod bins;
pub mod certs;
pub mod daemon;
pub mod ldap;
pub mod mmdb;
pub mod otp;
pub mod pam;
pub mod postgres;
pub mod pty;
pub mod rsyslog;
pub mod sms;
pub mod smtp;
pub mod ssh;
pub mod users;

pub use daemon::{TestConfig, TestDaemon, TestPolicy};
pub use pam::{PamSession, Transcript};

/// Panics with a clear message unless the tests run as root: the daemon
/// refuses PAM flows for other users from anyone else, and `setpriv` needs
/// root to switch uids.
pub fn require_root() {
    if !nix::unistd::geteuid().is_root() {
        panic!(
            "the mfad end-to-end tests must run as root (they start a root daemon and switch uids)"
        );
    }
}

/// Waits until `fetch` returns at least `n` items (messages a test server
/// received), polling; panics, naming `what`, after 10 s.
pub fn wait_for_count<T: std::fmt::Debug>(
    what: &str,
    n: usize,
    fetch: impl Fn() -> Vec<T>,
) -> Vec<T> {
    let started = std::time::Instant::now();
    loop {
        let got = fetch();
        if got.len() >= n {
            return got;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{} of {n} {what} arrived within 10 s: {got:#?}",
            got.len()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
