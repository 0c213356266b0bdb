//! A panic in a hook of pam_mfa.so comes back to the application as
//! PAM_SERVICE_ERR: it must never unwind into (and abort) sshd or sudo. The
//! module links a static unwinder (pam-module/build.rs) and every hook
//! catches its panics; this drives a real panic through both, in a copy of
//! the module built with the test-only feature `test-panic` (a login as
//! `mfa-test-panic` panics), loaded by the real libpam in a process of its
//! own (`pam_login`), so an abort would show as a signal.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use mfad_tests::bins::{artifact, target_dir};
use mfad_tests::pam::{PAM_AUTHINFO_UNAVAIL, PAM_SERVICE_ERR};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const PANIC_USER: &str = "mfa-test-panic";

/// Builds the module with `test-panic` into a target directory of its own
/// beside the usual one, so the ordinary `libpam_mfa.so` is never this one.
fn panicking_module() -> PathBuf {
    let target = target_dir()
        .parent()
        .expect("the cargo target directory")
        .join("test-panic");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(cargo)
        .current_dir(&workspace)
        .args([
            "build",
            "--locked",
            "-p",
            "pam_mfa",
            "--features",
            "test-panic",
        ])
        .arg("--target-dir")
        .arg(&target)
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "cargo build -p pam_mfa --features test-panic failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    target.join("debug/libpam_mfa.so")
}

/// One `pam_authenticate` as `user` in a process of its own.
fn login(confdir: &Path, user: &str) -> Output {
    Command::new(artifact("pam_login"))
        .args([confdir.as_os_str(), "panic".as_ref(), user.as_ref()])
        .stdin(Stdio::null())
        .output()
        .expect("run pam_login")
}

fn show(out: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_panic_in_the_hook_is_pam_service_err_and_the_host_survives() {
    let module = panicking_module();
    let dir = tempfile::tempdir().unwrap();
    // No daemon at this socket: without the panic the module fails closed.
    std::fs::write(
        dir.path().join("panic"),
        format!(
            "auth required {} socket={}\n",
            module.display(),
            dir.path().join("absent.sock").display()
        ),
    )
    .unwrap();

    let out = login(dir.path(), PANIC_USER);
    assert_eq!(out.status.signal(), None, "the host died: {}", show(&out));
    assert_eq!(out.status.code(), Some(PAM_SERVICE_ERR), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("test-panic: a login as {PANIC_USER}")),
        "the module did not panic: {}",
        show(&out)
    );
    // The host went on after the hook returned: libpam's verdict is printed.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("pam_authenticate: {PAM_SERVICE_ERR} ")),
        "{}",
        show(&out)
    );

    // The same module for anyone else does what the real one does.
    let out = login(dir.path(), "mfa-test-other");
    assert_eq!(
        out.status.code(),
        Some(PAM_AUTHINFO_UNAVAIL),
        "{}",
        show(&out)
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("panicked"),
        "{}",
        show(&out)
    );
}
