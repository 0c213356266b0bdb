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

#[test]
fn the_rules_totp_profile_decides_how_the_user_enrolls_at_login() {
    let mut config = TestConfig {
        policy: TestPolicy::text(&POLICY.replace(
            "unenrolled = \"enroll\"",
            "unenrolled = \"enroll\"\ntotp_profile = \"strict\"",
        )),
        ..TestConfig::default()
    };
    config.totp.profiles =
        "\n[totp.profiles.strict]\nalgorithm = \"SHA512\"\ndigits = 8\nperiod = 60\n".to_owned();
    let d = TestDaemon::with_config(config);
    let server = SshServer::start(&Stacks::mfa(&d));
    let user = TempUser::create_login(server.dir());
    let key = server.new_key("laptop");
    server.authorize(&user.name, &key);
    let code = |secret: &str, steps: i64| {
        let at = mfad_tests::otp::now_unix() as i64 + d.config().clock_offset_secs + steps * 60;
        mfad_tests::otp::oathtool_totp_at(secret, "SHA512", 8, 60, at as u64)
    };
    let mut ssh = server.ssh(&user.name, &key, "127.0.0.1", "echo enrolled-$((1+1))");
    let shown = ssh.expect(CODE_PROMPT);
    // The pty wraps long lines: compare without line ends.
    let flat = shown.replace(['\r', '\n'], "");
    assert!(flat.ends_with("Enter the 8-digit "), "{shown}");
    // What an app needs besides the secret; this URI's QR code would be
    // 86 columns wide: not drawn.
    assert!(
        flat.contains("Settings: SHA512, 8 digits, a new code every 60 s"),
        "{shown}"
    );
    assert!(!shown.contains("##"), "{shown}");
    assert!(
        flat.contains("would not fit an 80-column terminal"),
        "{shown}"
    );
    let secret: String = shown
        .lines()
        .find_map(|l| l.trim().strip_prefix("Secret: "))
        .unwrap_or_else(|| panic!("no secret shown: {shown}"))
        .split_whitespace()
        .collect();
    ssh.send_line(&code(&secret, 0));
    ssh.expect("Type yes once you have saved them: ");
    ssh.send_line("yes");
    ssh.expect("enrolled-2");
    assert!(ssh.wait().success(), "{}", ssh.transcript());
    let status = d.mfactl_json(&["status", "--user", &user.name]);
    assert_eq!(status["totp"]["algorithm"], "SHA512", "{status}");
    assert_eq!(status["totp"]["digits"], 8, "{status}");
    assert_eq!(status["totp"]["period"], 60, "{status}");
    // The next login asks for a code of that shape.
    let mut ssh = server.ssh(&user.name, &key, "127.0.0.1", "echo again-$((1+1))");
    ssh.expect("Verification code: ");
    ssh.send_line(&code(&secret, 1));
    ssh.expect("again-2");
    assert!(ssh.wait().success(), "{}", ssh.transcript());
}
