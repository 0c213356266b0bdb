//! Local logins through a setuid program, as su and sudo are: the peer is
//! root, but mfad counts failures per real uid of the program asking, so a
//! local user cannot lock another account out of every local login, and
//! the lock names who caused it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use mfad_tests::bins::artifact;
use mfad_tests::daemon::{run_as_with_stdin, show};
use mfad_tests::pam::*;
use mfad_tests::users::{NOBODY_UID, NOGROUP_GID, unique_name};
use mfad_tests::{TestConfig, TestDaemon};
use std::os::unix::fs::PermissionsExt;

#[test]
fn a_local_user_locks_only_their_own_attempts_and_is_named() {
    let d = TestDaemon::with_config(TestConfig::requiring("totp"));
    d.write_pam_service("mfa-su", &[]);
    let target = unique_name("tgt");
    let secret = d.enroll_totp(&target);

    // A setuid-root copy of the libpam harness: what su is to nobody.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let su = dir.path().join("su-like");
    std::fs::copy(artifact("pam_login"), &su).unwrap();
    std::fs::set_permissions(&su, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let confdir = d.pam_confdir();
    let confdir = confdir.to_str().unwrap();

    let wrong = format!("{}\n", d.wrong_code(&secret));
    let threshold = d.config().lockout.threshold;
    let mut said = String::new();
    for _ in 0..threshold {
        let out = run_as_with_stdin(
            NOBODY_UID,
            NOGROUP_GID,
            &su,
            [confdir, "mfa-su", &target],
            &wrong,
        );
        said = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(said.contains("Wrong code"), "{}", show(&out));
    }
    assert!(said.contains("locked until"), "{said}");
    // Every failure names who was asking.
    let rows = d.audit_rows();
    let failures: Vec<_> = rows
        .iter()
        .filter(|r| r["user"] == target.as_str() && r["decision"] == "deny")
        .collect();
    assert_eq!(failures.len() as u32, threshold, "{rows:#?}");
    assert!(
        failures.iter().all(|r| r["caller_uid"] == NOBODY_UID),
        "{failures:#?}"
    );

    // explain names the lock and whose it is, as a local login meets it.
    let said = d.mfactl_json(&[
        "policy",
        "explain",
        "--user",
        &target,
        "--service",
        "mfa-su",
    ]);
    let outcome = said["outcome"].as_str().unwrap();
    assert!(
        outcome.contains(&format!("totp is locked from local uid {NOBODY_UID} until")),
        "{said}"
    );

    // The lock is nobody's: root's own local login is not locked out, and
    // its success does not lift nobody's lock either.
    let code = d.totp_code(&secret, 0);
    d.expect_rc(d.login("mfa-su", &target, "", &[&code]), PAM_SUCCESS);
    let status = d.mfactl_json(&["status", "--user", &target]);
    let locks = status["locks"].as_array().unwrap();
    assert!(
        locks
            .iter()
            .any(|l| l["source"] == format!("local uid {NOBODY_UID}")
                && !l["locked_until"].is_null()),
        "the lock names the caller: {status}"
    );
    let right = format!("{}\n", d.totp_code(&secret, 1));
    let out = run_as_with_stdin(
        NOBODY_UID,
        NOGROUP_GID,
        &su,
        [confdir, "mfa-su", &target],
        &right,
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("locked until"),
        "{}",
        show(&out)
    );
}
