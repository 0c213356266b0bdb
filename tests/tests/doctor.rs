//! `mfactl doctor` against the real daemon, real PAM files the test writes,
//! and the real `sshd -T` on a config of the test's own.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use mfad_tests::TestDaemon;
use mfad_tests::bins;
use mfad_tests::daemon::show;
use std::path::Path;
use std::process::{Command, Output};

fn doctor(d: &TestDaemon, args: &[&str]) -> Output {
    let out = d.mfactl(
        [
            &["doctor", "--pam-dir"][..],
            &[d.pam_confdir().to_str().unwrap()],
            args,
        ]
        .concat(),
    );
    // Every finding is on stdout, failures included.
    assert!(!out.stdout.is_empty(), "{}", show(&out));
    out
}

/// An sshd_config with a host key of its own, and `extra` lines.
fn sshd_config(dir: &Path, extra: &str) -> std::path::PathBuf {
    let key = dir.join("host_ed25519");
    if !key.exists() {
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", show(&out));
    }
    let path = dir.join("sshd_config");
    std::fs::write(
        &path,
        format!(
            "HostKey {}\nUsePAM yes\nPubkeyAuthentication yes\n{extra}",
            key.display()
        ),
    )
    .unwrap();
    path
}

fn line_with<'a>(text: &'a str, needle: &str) -> &'a str {
    text.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in\n{text}"))
}

#[test]
fn doctor_names_each_problem_and_what_to_change() {
    let mut d = TestDaemon::start();
    // Installed under the name pam.d lines use.
    let module = d.dir().join("pam_mfa.so");
    std::fs::copy(bins::pam_module(), &module).unwrap();
    d.write_pam_stack(
        "sshd",
        &format!("auth requisite {} socket=x\n", module.display()),
    );
    d.write_pam_stack(
        "sudo",
        &format!(
            "auth required pam_unix.so\nauth optional {}\n",
            module.display()
        ),
    );
    // `sshd -T` needs it; a machine whose sshd never started has none.
    mfad_tests::ssh::privsep_dir();
    let good = sshd_config(
        d.dir(),
        "KbdInteractiveAuthentication yes\nAuthenticationMethods publickey,keyboard-interactive\n",
    );
    let out = doctor(&d, &["--sshd-config", good.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "sudo's stack fails: {}",
        show(&out)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(line_with(&text, "mfad 0.1").starts_with("ok"), "{text}");
    assert!(
        line_with(&text, "AuthenticationMethods publickey").starts_with("ok"),
        "{text}"
    );
    assert!(line_with(&text, "fails closed").starts_with("ok"), "{text}");
    let sudo = line_with(&text, "`auth optional");
    assert!(
        sudo.starts_with("FAIL") && sudo.contains("authinfo_unavail=ignore"),
        "{text}"
    );
    assert!(text.contains("fix: use `requisite`"), "{text}");
    assert!(show(&out).contains("1 check(s) failed"), "{}", show(&out));

    // Debian's stock KbdInteractiveAuthentication no, and a key alone.
    let bad = sshd_config(d.dir(), "KbdInteractiveAuthentication no\n");
    d.write_pam_stack("sudo", &format!("auth requisite {}\n", module.display()));
    let out = doctor(&d, &["--sshd-config", bad.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let failed: Vec<&str> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["status"] == "fail")
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    assert_eq!(failed.len(), 2, "{doc}");
    assert!(failed[0].contains("KbdInteractiveAuthentication"), "{doc}");
    assert!(failed[1].contains("public key alone"), "{doc}");

    // The daemon down: every login would be refused, and doctor says so.
    d.stop();
    let out = doctor(&d, &["--sshd-config", good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let mfad = line_with(&text, "every login through pam_mfa.so is refused");
    assert!(mfad.starts_with("FAIL"), "{text}");
}
