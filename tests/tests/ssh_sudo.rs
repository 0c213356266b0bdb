//! Step-up with the real sudo inside a real ssh session: the factors the
//! login passed count within the rule's `fresh` limits, so sudo asks only
//! for what is missing or stale, and the session goes on.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use mfad_tests::ssh::{SshServer, Stacks};
use mfad_tests::users::TempUser;
use mfad_tests::{TestConfig, TestDaemon, TestPolicy};

const POLICY: &str = r#"
[service_groups]
privileged = ["sudo"]

[[rule]]
name = "sudo-step-up"
services = ["@privileged"]
require = { chain = ["totp", "backup"] }
fresh = { totp = "8h", backup = "0s" }

[[rule]]
name = "ssh"
services = ["sshd"]
require = "totp"

[[rule]]
name = "default"
all = true
require = "deny"
"#;

const TOTP: &str = "Verification code: ";
const BACKUP: &str = "Backup code: ";

#[test]
fn sudo_asks_only_the_missing_factor_then_both_after_the_freshness_window() {
    let mut d = TestDaemon::with_config(TestConfig {
        policy: TestPolicy::text(POLICY),
        ..TestConfig::default()
    });
    // sudo runs inside the session sshd started: it sees the same private
    // /etc/pam.d and /etc/sudoers.
    let home = tempfile::tempdir().unwrap();
    let user = TempUser::create_login(home.path());
    let server = SshServer::start(&Stacks::mfa(&d).sudo_for(&user.name));
    let enrollment = d.enroll_totp_details(&user.name);
    let (secret, backup) = (enrollment.secret, enrollment.backup_codes);
    assert!(backup.len() >= 2, "{backup:?}");

    let mut ssh = server.shell(&d, &user.name, &secret);

    // explain, given the session, says what the sudo below then does.
    let doc = d.mfactl_json(&["sessions", "list"]);
    let id = doc["sessions"][0]["id"].as_i64().unwrap().to_string();
    let said = d.mfactl_json(&[
        "policy",
        "explain",
        "--user",
        &user.name,
        "--service",
        "sudo",
        "--session",
        &id,
    ]);
    let outcome = said["outcome"].as_str().unwrap();
    assert!(
        outcome.starts_with("asked for: backup code; covered by session"),
        "{said}"
    );
    let said = d.mfactl_json(&[
        "policy",
        "explain",
        "--user",
        &user.name,
        "--service",
        "sudo",
    ]);
    assert!(
        said["outcome"]
            .as_str()
            .unwrap()
            .starts_with("asked for, in order: authenticator app code (TOTP), backup code"),
        "{said}"
    );

    // TOTP is fresh (logged in just now, limit 8h): only the backup code.
    ssh.send_line("sudo true; echo \"R\"\"C=$?\"");
    let (which, _) = ssh.expect_any(&[BACKUP, TOTP]).unwrap();
    assert_eq!(
        which,
        0,
        "sudo asked for the TOTP code:\n{}",
        ssh.transcript()
    );
    ssh.send_line(&backup[0]);
    ssh.expect("RC=0");
    // sudo's own session hook recorded nothing: the ssh login is the session.
    let doc = d.mfactl_json(&["sessions", "list"]);
    let services: Vec<&str> = doc["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["service"].as_str().unwrap())
        .collect();
    assert_eq!(services, ["sshd"], "{doc}");

    // Nine hours later (time moved by configuration and a daemon restart;
    // the session lives in mfad's database): both factors again.
    d.config_mut().clock_offset_secs = 9 * 3600;
    d.restart();
    ssh.send_line("sudo true; echo \"R\"\"C=$?\"");
    ssh.expect(TOTP);
    ssh.send_line(&d.totp_code(&secret, 0));
    ssh.expect(BACKUP);
    ssh.send_line(&backup[1]);
    ssh.expect("RC=0");

    // Right after, TOTP counts again (passed a moment ago); backup never does.
    ssh.send_line("sudo true; echo \"R\"\"C=$?\"");
    let (which, _) = ssh.expect_any(&[BACKUP, TOTP]).unwrap();
    assert_eq!(which, 0, "{}", ssh.transcript());
    ssh.send_line("not-a-backup-code");
    ssh.expect("RC=1");

    // No re-login: the same shell goes on.
    ssh.send_line("echo \"STILL\"\"-HERE\"; exit");
    ssh.expect("STILL-HERE");
    assert!(ssh.wait().success(), "{}", ssh.transcript());

    let rows = d.audit_rows();
    let covered = rows
        .iter()
        .filter(|r| r["service"] == "sudo" && r["channel"] == "session")
        .count();
    assert_eq!(covered, 2, "{rows:?}");
}

#[test]
fn sudo_outside_a_known_session_asks_for_everything() {
    let d = TestDaemon::with_config(TestConfig {
        policy: TestPolicy::text(POLICY),
        ..TestConfig::default()
    });
    // Through libpam from the test process: no audit session of a login.
    d.write_pam_service("sudo", &[]);
    let user = mfad_tests::users::unique_name("sam");
    let e = d.enroll_totp_details(&user);
    let code = d.totp_code(&e.secret, 0);
    let t = d.expect_rc(
        d.login("sudo", &user, "127.0.0.1", &[&code, &e.backup_codes[0]]),
        0,
    );
    assert_eq!(t.prompts().len(), 2, "{t}");
}

/// A login mfad does not know (no pam_mfa.so session line for sshd or
/// sudo): sudo inside it asks for every factor, and hands no session ticket
/// to the command it runs (sudo passes its PAM environment on).
#[test]
fn sudo_in_a_session_mfad_does_not_know_asks_for_everything_and_leaks_no_ticket() {
    let d = TestDaemon::with_config(TestConfig {
        policy: TestPolicy::text(POLICY),
        ..TestConfig::default()
    });
    let home = tempfile::tempdir().unwrap();
    let user = TempUser::create_login(home.path());
    let mut stacks = Stacks::mfa(&d).sudo_for(&user.name);
    let module_session = format!("session  optional   {}\n", d.module_line(&[]));
    stacks.sshd = stacks.sshd.replace(&module_session, "");
    // And sudo's stack without it either, as Debian ships it.
    stacks.sudo = stacks.sudo.replace(&module_session, "");
    let server = SshServer::start(&stacks);
    let e = d.enroll_totp_details(&user.name);

    let mut ssh = server.shell(&d, &user.name, &e.secret);
    ssh.send_line("sudo env | grep -c MFAD_TICKET; echo \"R\"\"C=$?\"");
    ssh.expect(TOTP);
    ssh.send_line(&d.totp_code(&e.secret, 1));
    ssh.expect(BACKUP);
    ssh.send_line(&e.backup_codes[0]);
    // grep -c prints 0 and fails when nothing matches.
    ssh.expect("0\r\nRC=1");
    ssh.send_line("exit");
    assert!(ssh.wait().success(), "{}", ssh.transcript());
}
