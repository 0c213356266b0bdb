//! `mfactl confirm`: a step-up at an operation, end to end. The real
//! mfactl, run as an ordinary user on a terminal, starts the real libpam
//! for service `db-drop`, whose stack (in a private /etc/pam.d) is
//! `auth requisite pam_mfa.so`; the real daemon asks what the policy's rule
//! for that service requires; oathtool makes the codes. The command runs
//! only after success, with its own exit status.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use mfad_tests::pamns::PrivatePamd;
use mfad_tests::pty::Pty;
use mfad_tests::users::TempUser;
use mfad_tests::{TestConfig, TestDaemon, TestPolicy, bins, otp};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const POLICY: &str = r#"
[[rule]]
name = "dangerous"
services = ["db-drop"]
require = "totp"

[[rule]]
name = "default"
all = true
require = "deny"
"#;

const REASON: &str = "drop the staging database";

fn confirm(d: &TestDaemon, pamd: &PrivatePamd, user: &TempUser, marker: &Path) -> Pty {
    let socket = d.socket();
    let script = format!("touch {}; exit 7", marker.display());
    let args = [
        "--socket",
        socket.to_str().unwrap(),
        "confirm",
        "--service",
        "db-drop",
        "--reason",
        REASON,
        "--",
        "/bin/sh",
        "-c",
        &script,
    ];
    Pty::spawn(pamd.command(user.uid, user.gid, &bins::mfactl(), args))
}

#[test]
fn the_command_runs_only_after_the_services_factors_and_keeps_its_status() {
    let d = TestDaemon::with_config(TestConfig {
        policy: TestPolicy::text(POLICY),
        ..TestConfig::default()
    });
    let user = TempUser::create();
    let secret = d.enroll_totp(&user.name);
    let pamd = PrivatePamd::new();
    pamd.write(
        "db-drop",
        &format!(
            "auth requisite {}\naccount required pam_permit.so\n",
            d.module_line(&[])
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let marker = dir.path().join("ran");

    // A wrong code: PAM fails, the command does not run.
    let mut t = confirm(&d, &pamd, &user, &marker);
    t.expect(&format!("[{REASON}] "));
    t.expect("Verification code: ");
    t.send_line("000000");
    let status = t.wait();
    assert_eq!(status.code(), Some(1), "{}", t.transcript());
    assert!(!marker.exists(), "{}", t.transcript());
    assert!(
        t.transcript()
            .contains("PAM service \"db-drop\": authentication failed"),
        "{}",
        t.transcript()
    );

    // The right code: the command runs, its exit status is mfactl's.
    otp::wait_for_fresh_step(30, 5);
    let mut t = confirm(&d, &pamd, &user, &marker);
    t.expect("Verification code: ");
    t.send_line(&d.totp_code(&secret, 0));
    let status = t.wait();
    assert_eq!(status.code(), Some(7), "{}", t.transcript());
    assert!(marker.exists(), "{}", t.transcript());

    // Both in the audit log, as the user's own authentication, with the reason.
    let rows: Vec<_> = d
        .audit_rows()
        .into_iter()
        .filter(|r| r["user"] == user.name.as_str() && r["service"] == "db-drop")
        .collect();
    for decision in ["deny", "allow"] {
        assert!(
            rows.iter().any(|r| r["decision"] == decision
                && r["channel"] == "totp"
                && r["peer_uid"] == user.uid
                && r["rule"] == "dangerous"
                && r["reason"]
                    .as_str()
                    .unwrap()
                    .ends_with(&format!("(for: {REASON})"))),
            "{decision}: {rows:#?}"
        );
    }
}
