//! Self-service end to end, each as the user's own action: one's own
//! sessions (listed and ended through the real sshd, never another
//! user's), one's own login history, backup codes saved to a private file,
//! and the refusals an admin meets for an account that does not exist.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use mfad_tests::daemon::{TEST_RHOST, show};
use mfad_tests::pam::*;
use mfad_tests::pty::Pty;
use mfad_tests::ssh::{SshServer, Stacks};
use mfad_tests::users::{TempUser, unique_name};
use mfad_tests::{TestConfig, TestDaemon, TestPolicy};
use serde_json::Value;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

const SSH_POLICY: &str = r#"
[[rule]]
name = "ssh"
services = ["sshd"]
require = "totp"

[[rule]]
name = "default"
all = true
require = "deny"
"#;

const SVC: &str = "mfa-test";

/// `mfactl --json ARGS` as `user`: success and the document.
fn json_as(d: &TestDaemon, user: &TempUser, args: &[&str]) -> (bool, Value) {
    let out = d.mfactl_as(user.uid, user.gid, [&["--json"][..], args].concat());
    let doc = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("mfactl {args:?} as {}: {e}: {}", user.name, show(&out)));
    (out.status.success(), doc)
}

/// `user`, enrolled, logged in to a shell with a key of their own.
fn shell(d: &TestDaemon, server: &SshServer, user: &TempUser) -> Pty {
    let secret = d.enroll_totp(&user.name);
    let key = server.new_key(&user.name);
    server.authorize(&user.name, &key);
    let mut ssh = server.ssh(&user.name, &key, "127.0.0.1", "");
    ssh.expect("Verification code: ");
    ssh.send_line(&d.totp_code(&secret, 0));
    ssh.expect("$ ");
    ssh
}

fn session_of(doc: &Value, user: &str) -> String {
    doc["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["user"] == user)
        .unwrap_or_else(|| panic!("no session of {user} in {doc}"))["id"]
        .to_string()
}

#[test]
fn users_list_and_end_only_their_own_sessions_and_read_only_their_own_history() {
    let d = TestDaemon::with_config(TestConfig {
        policy: TestPolicy::text(SSH_POLICY),
        ..TestConfig::default()
    });
    let server = SshServer::start(&Stacks::mfa(&d));
    let alice = TempUser::create_login(server.dir());
    let bob = TempUser::create_login(server.dir());
    let mut alice_ssh = shell(&d, &server, &alice);
    let mut bob_ssh = shell(&d, &server, &bob);

    // Alice sees her session only; root sees both.
    let (ok, mine) = json_as(&d, &alice, &["sessions", "list"]);
    assert!(ok, "{mine}");
    let users: Vec<&Value> = mine["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["user"])
        .collect();
    assert_eq!(users, [alice.name.as_str()], "{mine}");
    let all = d.mfactl_json(&["sessions", "list"]);
    let (alice_id, bob_id) = (session_of(&all, &alice.name), session_of(&all, &bob.name));
    assert_eq!(session_of(&mine, &alice.name), alice_id);

    // Ending Bob's is refused and audited; his shell goes on.
    let (ok, doc) = json_as(&d, &alice, &["sessions", "kill", &bob_id]);
    assert!(!ok, "{doc}");
    assert_eq!(doc["code"], "permission_denied", "{doc}");
    bob_ssh.send_line("echo \"ST\"\"ILL-THERE\"");
    bob_ssh.expect("STILL-THERE");
    let rows = d.audit_rows();
    assert!(
        rows.iter().any(|r| r["user"] == bob.name.as_str()
            && r["decision"] == "refused"
            && r["peer_uid"] == alice.uid
            && r["reason"].as_str().unwrap().contains("not yours")),
        "{rows:#?}"
    );

    // Her own ends, audited as her own action.
    let (ok, doc) = json_as(&d, &alice, &["sessions", "kill", &alice_id]);
    assert!(ok, "{doc}");
    assert!(!alice_ssh.wait().success(), "{}", alice_ssh.transcript());
    let rows = d.audit_rows();
    assert!(
        rows.iter().any(|r| r["user"] == alice.name.as_str()
            && r["channel"] == "self"
            && r["reason"]
                .as_str()
                .unwrap()
                .contains(&format!("killed by uid {}", alice.uid))),
        "{rows:#?}"
    );

    // Her history: her own login, newest first, factor and source.
    let (ok, doc) = json_as(&d, &alice, &["history"]);
    assert!(ok, "{doc}");
    let rows = doc["rows"].as_array().unwrap();
    assert!(!rows.is_empty(), "{doc}");
    assert!(
        rows.iter().all(|r| r["user"] == alice.name.as_str()),
        "{doc}"
    );
    let login = &rows[0];
    assert_eq!(
        (&login["service"], &login["channel"], &login["decision"]),
        (
            &Value::from("sshd"),
            &Value::from("totp"),
            &Value::from("allow")
        ),
        "{doc}"
    );
    assert_eq!(login["rhost"], "127.0.0.1");
    let text = d.mfactl_as(alice.uid, alice.gid, ["history"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.starts_with("TIME "), "{text}");
    assert!(text.contains("sshd") && text.contains("totp"), "{text}");

    // Not Bob's; the hint says how to act on her own account.
    let out = d.mfactl_as(alice.uid, alice.gid, ["history", "--user", &bob.name]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{}", show(&out));
    assert!(err.contains("Leave out --user"), "{}", show(&out));
    // An admin's command: no suggestion to act on her own account.
    let out = d.mfactl_as(alice.uid, alice.gid, ["user", "list"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && !err.contains("own account"),
        "{}",
        show(&out)
    );
    // Root reads Bob's.
    let doc = d.mfactl_json(&["history", "--user", &bob.name]);
    assert_eq!(doc["rows"][0]["user"], bob.name.as_str(), "{doc}");

    // user show: the last login and the trusted devices.
    let doc = d.mfactl_json(&["user", "show", &alice.name]);
    assert_eq!(doc["last_login"]["service"], "sshd", "{doc}");
    assert_eq!(doc["trusted_devices"], 0, "{doc}");
    let out = d.mfactl(["user", "show", &alice.name]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("last login: ") && text.contains("to sshd from 127.0.0.1"),
        "{text}"
    );
    assert!(text.contains("trusted devices: 0"), "{text}");
    bob_ssh.send_line("exit");
    assert!(bob_ssh.wait().success(), "{}", bob_ssh.transcript());
}

/// The codes on a page written by `backup-codes regenerate --output`.
fn codes_on(page: &str) -> Vec<String> {
    page.lines()
        .filter(|l| l.trim_end().ends_with("[ ]"))
        .map(|l| l.split_whitespace().nth(1).unwrap().to_owned())
        .collect()
}

#[test]
fn backup_codes_go_to_a_new_private_file_and_status_counts_them() {
    let d = TestDaemon::with_config(TestConfig {
        policy: TestPolicy {
            default: r#"{ any = ["totp", "backup"] }"#.into(),
            ..TestPolicy::default()
        },
        ..TestConfig::default()
    });
    d.write_pam_service(SVC, &[]);
    let user = TempUser::create();
    d.enroll_totp_as(user.uid, user.gid);
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let path = dir.path().join("codes.txt");
    let file = path.to_str().unwrap();

    let args = ["backup-codes", "regenerate", "--output", file];
    let out = d.mfactl_as(user.uid, user.gid, args);
    assert!(out.status.success(), "{}", show(&out));
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.uid(), user.uid);
    let page = std::fs::read_to_string(&path).unwrap();
    assert!(
        page.starts_with(&format!("Backup codes for {} on ", user.name)),
        "{page}"
    );
    assert!(
        page.contains("\n   1.  ") && page.contains("\n  10.  "),
        "{page}"
    );
    let codes = codes_on(&page);
    assert_eq!(codes.len(), 10, "{page}");
    // Nothing secret on the terminal.
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(!codes.iter().any(|c| said.contains(c.as_str())), "{said}");

    d.expect_rc(
        d.login(SVC, &user.name, TEST_RHOST, &["2", &codes[0]]),
        PAM_SUCCESS,
    );
    let out = d.mfactl_as(user.uid, user.gid, ["status"]);
    let status = String::from_utf8_lossy(&out.stdout);
    assert!(status.contains("backup codes: 9 left"), "{status}");

    // The file exists: refused before any code is issued, the page kept,
    // its codes still good.
    let out = d.mfactl_as(user.uid, user.gid, args);
    assert!(!out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("exists"),
        "{}",
        show(&out)
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), page);
    d.expect_rc(
        d.login(SVC, &user.name, TEST_RHOST, &["2", &codes[1]]),
        PAM_SUCCESS,
    );
    let rows = d.audit_rows();
    let issued: Vec<&Value> = rows
        .iter()
        .filter(|r| r["user"] == user.name.as_str() && r["reason"] == "10 backup codes issued")
        .collect();
    // One at the enrollment, one by regenerate: both the user's own.
    assert_eq!(issued.len(), 2, "{rows:#?}");
    assert!(issued.iter().all(|r| r["channel"] == "self"), "{rows:#?}");
}

#[test]
fn an_admin_is_warned_and_refused_for_an_account_that_does_not_exist() {
    let d = TestDaemon::start();
    let ghost = unique_name("ghost");
    let out = d.mfactl(["enroll", "totp", "--user", &ghost, "--print-uri"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{}", show(&out));
    assert!(
        err.contains(&format!("no local account is named \"{ghost}\"")) && err.contains("--force"),
        "{}",
        show(&out)
    );
    let status = d.mfactl_json(&["status", "--user", &ghost]);
    assert_eq!(status["totp_pending"], false, "{status}");
    let rows = d.audit_rows();
    assert!(
        rows.iter()
            .any(|r| r["user"] == ghost.as_str() && r["decision"] == "refused"),
        "{rows:#?}"
    );
    let out = d.mfactl(["enroll", "totp", "--user", &ghost, "--force", "--print-uri"]);
    assert!(out.status.success(), "{}", show(&out));
    let status = d.mfactl_json(&["status", "--user", &ghost]);
    assert_eq!(status["totp_pending"], true, "{status}");
    let rows = d.audit_rows();
    assert!(
        rows.iter().any(|r| r["user"] == ghost.as_str()
            && r["channel"] == "admin"
            && r["reason"]
                .as_str()
                .unwrap()
                .contains("Warning: no local account")),
        "{rows:#?}"
    );
}

#[test]
fn history_shows_one_line_per_login_with_its_factors_and_result() {
    let d = TestDaemon::with_config(TestConfig {
        policy: TestPolicy {
            default: r#"{ chain = ["totp", "backup"] }"#.into(),
            ..TestPolicy::default()
        },
        ..TestConfig::default()
    });
    d.write_pam_service(SVC, &[]);
    let user = TempUser::create();
    let enrolled = d.enroll_totp_details(&user.name);
    mfad_tests::otp::wait_for_fresh_step(30, 5);
    d.expect_rc(
        d.login(SVC, &user.name, TEST_RHOST, &["000000"]),
        PAM_AUTH_ERR,
    );
    let code = d.totp_code(&enrolled.secret, 0);
    d.expect_rc(
        d.login(
            SVC,
            &user.name,
            TEST_RHOST,
            &[&code, &enrolled.backup_codes[0]],
        ),
        PAM_SUCCESS,
    );
    // Three rows in the audit log (a wrong code, two factors passed) ...
    let steps = d
        .audit_rows()
        .into_iter()
        .filter(|r| r["user"] == user.name.as_str() && r["service"] == SVC)
        .count();
    assert_eq!(steps, 3);
    // ... are two logins in the history: the factors joined, the result.
    let (ok, doc) = json_as(&d, &user, &["history"]);
    assert!(ok, "{doc}");
    let rows = doc["rows"].as_array().unwrap();
    let seen: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["channel"].as_str().unwrap(),
                r["decision"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(seen, [("totp+backup", "allow"), ("totp", "deny")], "{doc}");
    let (_, one) = json_as(&d, &user, &["history", "--limit", "1"]);
    assert_eq!(one["rows"].as_array().unwrap().len(), 1, "{one}");
    let out = d.mfactl_as(user.uid, user.gid, ["history"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("totp + backup  allow"), "{text}");
    assert_eq!(text.lines().count(), 3, "{text}");
}
