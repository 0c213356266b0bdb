//! Logins through the real OpenSSH sshd and ssh client: public key first,
//! then the TOTP code over keyboard-interactive, with pam_mfa.so in sshd's
//! PAM stack (a private mount namespace; the host's files are untouched).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use mfad_tests::pty::Pty;
use mfad_tests::ssh::{SshServer, Stacks};
use mfad_tests::users::TempUser;
use mfad_tests::{TestConfig, TestDaemon, TestPolicy};

pub const POLICY: &str = r#"
[[rule]]
name = "ssh"
services = ["sshd"]
require = "totp"

[[rule]]
name = "default"
all = true
require = "deny"
"#;

fn setup(policy: &str) -> (TestDaemon, SshServer, TempUser) {
    let d = TestDaemon::with_config(TestConfig {
        policy: TestPolicy::text(policy),
        ..TestConfig::default()
    });
    let server = SshServer::start(&Stacks::mfa(&d));
    let user = TempUser::create_login(server.dir());
    (d, server, user)
}

/// `user`, enrolled, with a new key, running `command` from `from`: the
/// ssh client at the code prompt, and the TOTP secret.
fn at_code_prompt(
    d: &TestDaemon,
    server: &SshServer,
    user: &TempUser,
    from: &str,
    command: &str,
) -> (Pty, String) {
    let key = server.new_key("laptop");
    server.authorize(&user.name, &key);
    let secret = d.enroll_totp(&user.name);
    let mut ssh = server.ssh(&user.name, &key, from, command);
    ssh.expect("Verification code: ");
    (ssh, secret)
}

#[test]
fn totp_over_keyboard_interactive_then_a_shell() {
    let (d, server, user) = setup(POLICY);
    let (mut ssh, secret) = at_code_prompt(
        &d,
        &server,
        &user,
        "127.0.0.1",
        "echo logged-in-as-$(id -un)",
    );
    let code = d.totp_code(&secret, 0);
    ssh.send_line(&code);
    ssh.expect(&format!("logged-in-as-{}", user.name));
    assert!(ssh.wait().success(), "{}", ssh.transcript());
    // The code never reaches sshd's log or mfad's.
    for (what, log) in [("sshd", server.log()), ("mfad", d.log_text())] {
        assert!(!log.contains(&code), "the code in {what}'s log:\n{log}");
    }
}

#[test]
fn a_wrong_code_is_refused_and_audited_with_the_source_ip() {
    let (d, server, user) = setup(POLICY);
    let (mut ssh, secret) = at_code_prompt(&d, &server, &user, "127.0.0.3", "echo SHOULD-NOT-RUN");
    ssh.send_line(&d.wrong_code(&secret));
    let status = ssh.wait();
    assert!(!status.success(), "{}", ssh.transcript());
    assert!(!ssh.transcript().contains("SHOULD-NOT-RUN"));
    let rows = d.audit_rows();
    let denied = rows
        .iter()
        .find(|r| r["user"] == user.name.as_str() && r["decision"] == "deny")
        .unwrap_or_else(|| panic!("no deny row in {rows:?}"));
    assert_eq!(denied["rhost"], "127.0.0.3");
    assert_eq!(denied["service"], "sshd");
    assert_eq!(denied["channel"], "totp");
}

#[test]
fn the_session_ticket_never_reaches_the_shell_and_the_session_is_listed() {
    let (d, server, user) = setup(POLICY);
    let secret = d.enroll_totp(&user.name);
    let mut ssh = server.shell(&d, &user.name, &secret);
    ssh.send_line("env; echo \"EN\"\"D-OF-ENV\"");
    let env = ssh.expect("END-OF-ENV");
    assert!(!env.contains("MFAD_TICKET"), "{env}");
    assert!(!env.contains("SSH_AUTH_INFO"), "{env}");
    let doc = d.mfactl_json(&["sessions", "list"]);
    let sessions = doc["sessions"].as_array().unwrap();
    let mine: Vec<_> = sessions
        .iter()
        .filter(|s| s["user"] == user.name.as_str())
        .collect();
    assert_eq!(mine.len(), 1, "{doc}");
    assert_eq!(mine[0]["service"], "sshd");
    assert_eq!(mine[0]["rhost"], "127.0.0.1");
    assert_eq!(mine[0]["factors"][0]["factor"], "totp");
    assert!(mine[0]["processes"].as_u64().unwrap() >= 1);
    ssh.send_line("exit");
    assert!(ssh.wait().success(), "{}", ssh.transcript());
    // close_session forgot it. The client may exit before sshd's session
    // process has run the close hook: wait for it, within reason.
    let listed = || {
        let doc = d.mfactl_json(&["sessions", "list"]);
        let mine = doc["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["user"] == user.name.as_str());
        (mine, doc)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let (mut still, mut doc) = listed();
    while still && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
        (still, doc) = listed();
    }
    assert!(!still, "{doc}");
    let rows = d.audit_rows();
    assert!(
        rows.iter().any(|r| r["channel"] == "session"
            && r["reason"].as_str().unwrap().contains("opened")
            && r["reason"].as_str().unwrap().contains("with totp")),
        "{rows:?}"
    );
    assert!(rows.iter().any(|r| r["channel"] == "session" && r["reason"].as_str().unwrap().ends_with("closed")), "{rows:?}");
}

#[test]
fn a_killed_session_disappears_from_the_list_and_its_shell_ends() {
    let (d, server, user) = setup(POLICY);
    let secret = d.enroll_totp(&user.name);
    let mut ssh = server.shell(&d, &user.name, &secret);
    ssh.send_line("echo \"SHE\"\"LL-UP\"");
    ssh.expect("SHELL-UP");
    let doc = d.mfactl_json(&["sessions", "list"]);
    let id = doc["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["user"] == user.name.as_str())
        .unwrap_or_else(|| panic!("{doc}"))["id"]
        .as_i64()
        .unwrap();
    let out = d.mfactl(["sessions", "kill", &id.to_string()]);
    assert!(out.status.success(), "{}", mfad_tests::daemon::show(&out));
    // The shell ends: ssh sees the connection close.
    let status = ssh.wait();
    assert!(!status.success(), "{}", ssh.transcript());
    let doc = d.mfactl_json(&["sessions", "list"]);
    assert!(
        !doc["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == id),
        "{doc}"
    );
    let rows = d.audit_rows();
    assert!(
        rows.iter()
            .any(|r| r["reason"].as_str().unwrap().contains("killed by uid 0")),
        "{rows:?}"
    );
    // Killing it again: there is no such session.
    let out = d.mfactl(["sessions", "kill", &id.to_string()]);
    assert!(!out.status.success());
}
