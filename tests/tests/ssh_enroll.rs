//! Enrollment at first login through the real sshd and ssh client: a rule
//! with `unenrolled = "enroll"` shows an unenrolled user, inside the same
//! keyboard-interactive conversation, a QR code and the secret, asks for
//! the first code, shows the backup codes, and lets the login go on.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use mfad_tests::ssh::{SshServer, Stacks};
use mfad_tests::users::TempUser;
use mfad_tests::{TestConfig, TestDaemon, TestPolicy};

const POLICY: &str = r#"
[[rule]]
name = "ssh"
services = ["sshd"]
require = "totp"
unenrolled = "enroll"

[[rule]]
name = "default"
all = true
require = "deny"
"#;

const CODE_PROMPT: &str = "code the app shows: ";

fn setup() -> (TestDaemon, SshServer, TempUser) {
    let d = TestDaemon::with_config(TestConfig {
        policy: TestPolicy::text(POLICY),
        ..TestConfig::default()
    });
    let server = SshServer::start(&Stacks::mfa(&d));
    let user = TempUser::create_login(server.dir());
    (d, server, user)
}

#[test]
fn an_unenrolled_user_enrolls_inside_the_ssh_login_and_the_login_goes_on() {
    let (d, server, user) = setup();
    let key = server.new_key("laptop");
    server.authorize(&user.name, &key);
    let mut ssh = server.ssh(&user.name, &key, "127.0.0.1", "echo logged-in-as-$(id -un)");
    let shown = ssh.expect(CODE_PROMPT);
    // A QR code (ASCII: the ssh client escapes anything else) that fits an
    // 80-column terminal: rows of `##` and blanks.
    let rows = shown.lines().filter(|l| l.contains("##")).count();
    assert!(rows >= 21, "{shown}");
    for line in shown.lines() {
        assert!(line.trim_end().chars().count() <= 80, "too wide: {line:?}");
    }
    assert!(!shown.contains('\\'), "nothing escaped: {shown}");
    let secret: String = shown
        .lines()
        .find_map(|l| l.trim().strip_prefix("Secret: "))
        .unwrap_or_else(|| panic!("no secret shown: {shown}"))
        .split_whitespace()
        .collect();
    // A wrong first code may be tried again.
    ssh.send_line("000000");
    ssh.expect("does not match");
    ssh.send_line(&d.totp_code(&secret, 0));
    let shown = ssh.expect("Type yes once you have saved them: ");
    assert!(shown.contains(" 1. ") && shown.contains("10. "), "{shown}");
    ssh.send_line("yes");
    ssh.expect(&format!("logged-in-as-{}", user.name));
    assert!(ssh.wait().success(), "{}", ssh.transcript());

    let status = d.mfactl_json(&["status", "--user", &user.name]);
    assert!(!status["totp"].is_null(), "{status}");
    assert_eq!(status["backup_codes"], 10, "{status}");

    // Enrolled: the next login asks for the code, nothing else.
    let mut ssh = server.ssh(&user.name, &key, "127.0.0.1", "echo again");
    ssh.expect("Verification code: ");
    ssh.send_line(&d.totp_code(&secret, 1));
    ssh.expect("again");
    assert!(ssh.wait().success(), "{}", ssh.transcript());
}

#[test]
fn an_enrollment_abandoned_at_the_first_code_leaves_nothing() {
    let (d, server, user) = setup();
    let key = server.new_key("laptop");
    server.authorize(&user.name, &key);
    let mut ssh = server.ssh(&user.name, &key, "127.0.0.1", "true");
    ssh.expect(CODE_PROMPT);
    drop(ssh);
    let status = d.mfactl_json(&["status", "--user", &user.name]);
    assert!(status["totp"].is_null(), "{status}");
    assert!(!status["totp_pending"].as_bool().unwrap(), "{status}");
    assert_eq!(status["backup_codes"], 0, "{status}");
}
