//! Logins through the real OpenSSH sshd and ssh client: public key first,
//! then the TOTP code over keyboard-interactive, with pam_mfa.so in sshd's
//! PAM stack (a private mount namespace; the host's files are untouched).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

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

#[test]
fn totp_over_keyboard_interactive_then_a_shell() {
    let (d, server, user) = setup(POLICY);
    let key = server.new_key("laptop");
    server.authorize(&user.name, &key);
    let secret = d.enroll_totp(&user.name);
    let mut ssh = server.ssh(&user.name, &key, "127.0.0.1", "echo logged-in-as-$(id -un)");
    ssh.expect("Verification code: ");
    ssh.send_line(&d.totp_code(&secret, 0));
    ssh.expect(&format!("logged-in-as-{}", user.name));
    assert!(ssh.wait().success(), "{}", ssh.transcript());
    // The code never reaches sshd's log or the user's environment.
    assert!(!ssh.transcript().contains("MFAD_TICKET"));
}
