//! Trusted devices through the real sshd: the SSH key that passed the
//! first method may stand in for the second factor, when the rule allows.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use mfad_tests::pty::Pty;
use mfad_tests::ssh::{ClientKey, SshServer, Stacks};
use mfad_tests::users::TempUser;
use mfad_tests::{TestConfig, TestDaemon, TestPolicy};

const POLICY: &str = r#"
[[rule]]
name = "ssh"
services = ["sshd"]
require = "totp"
trusted_devices = { days = 30 }

[[rule]]
name = "default"
all = true
require = "deny"
"#;

const PRODUCTION: &str = r#"
[host]
class = "production"

[[rule]]
name = "prod-ssh"
host_class = ["production"]
services = ["sshd"]
require = "totp"
trusted_devices = false

[[rule]]
name = "default"
all = true
require = "deny"
"#;

const TRUST: &str = "Trust this device";
const CODE: &str = "Verification code: ";
const DONE: &str = "LOGGED-IN";

struct Setup {
    d: TestDaemon,
    server: SshServer,
    user: TempUser,
    key: ClientKey,
    secret: String,
}

fn setup(policy: &str) -> Setup {
    let d = TestDaemon::with_config(TestConfig {
        policy: TestPolicy::text(policy),
        ..TestConfig::default()
    });
    let server = SshServer::start(&Stacks::mfa(&d));
    let user = TempUser::create_login(server.dir());
    let key = server.new_key("laptop");
    server.authorize(&user.name, &key);
    let secret = d.enroll_totp(&user.name);
    Setup {
        d,
        server,
        user,
        key,
        secret,
    }
}

impl Setup {
    fn ssh(&self, user: &str, key: &ClientKey) -> Pty {
        self.server
            .ssh(user, key, "127.0.0.1", "echo LOGGED\"\"-IN")
    }

    /// A login that must ask for the code (the `step`th from now), answering
    /// the trust question (if asked) with `trust`; returns whether it asked.
    fn login_with_code(&self, user: &str, key: &ClientKey, step: i64, trust: &str) -> bool {
        let mut ssh = self.ssh(user, key);
        ssh.expect(CODE);
        ssh.send_line(&self.d.totp_code(&self.secret, step));
        let (which, _) = ssh
            .expect_any(&[TRUST, DONE])
            .unwrap_or_else(|e| panic!("{e}"));
        if which == 0 {
            ssh.send_line(trust);
            ssh.expect(DONE);
        }
        assert!(ssh.wait().success(), "{}", ssh.transcript());
        which == 0
    }

    /// Whether a login is asked for the code (it is then abandoned).
    fn asks_for_code(&self, user: &str, key: &ClientKey) -> bool {
        let mut ssh = self.ssh(user, key);
        let (which, _) = ssh
            .expect_any(&[CODE, DONE])
            .unwrap_or_else(|e| panic!("{e}"));
        which == 0
    }

    /// A login that must get in without any prompt.
    fn login_without_code(&self, user: &str, key: &ClientKey) {
        let mut ssh = self.ssh(user, key);
        let (which, _) = ssh
            .expect_any(&[DONE, CODE])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(which, 0, "asked for a code:\n{}", ssh.transcript());
        assert!(ssh.wait().success(), "{}", ssh.transcript());
    }

    fn devices(&self) -> Vec<serde_json::Value> {
        let doc = self
            .d
            .mfactl_json(&["devices", "list", "--user", &self.user.name]);
        doc["devices"].as_array().unwrap().clone()
    }
}

#[test]
fn a_trusted_key_skips_the_code_until_revoked_and_no_other_key_or_user_does() {
    let s = setup(POLICY);
    assert!(
        s.login_with_code(&s.user.name, &s.key, 0, "y"),
        "trust was not offered"
    );
    let devices = s.devices();
    assert_eq!(devices.len(), 1, "{devices:?}");
    assert_eq!(devices[0]["key_type"], "ssh-ed25519");
    assert_eq!(devices[0]["first_ip"], "127.0.0.1");
    assert!(
        devices[0]["fingerprint"]
            .as_str()
            .unwrap()
            .starts_with("SHA256:")
    );

    // The same key: straight in.
    s.login_without_code(&s.user.name, &s.key);

    // Another key of the same user: asked, and declining leaves one device.
    let other = s.server.new_key("desktop");
    s.server.authorize(&s.user.name, &other);
    assert!(s.login_with_code(&s.user.name, &other, 1, "n"));
    assert_eq!(s.devices().len(), 1);

    // The same key for another user: asked.
    let bob = TempUser::create_login(s.server.dir());
    s.server.authorize(&bob.name, &s.key);
    let bob_secret = s.d.enroll_totp(&bob.name);
    let mut ssh = s.ssh(&bob.name, &s.key);
    ssh.expect(CODE);
    ssh.send_line(&s.d.totp_code(&bob_secret, 0));
    ssh.expect(TRUST);
    ssh.send_line("");
    ssh.expect(DONE);
    assert!(ssh.wait().success());

    // The user revokes it (self-service, as that uid): asked again.
    let id = devices[0]["id"].as_i64().unwrap().to_string();
    let out =
        s.d.mfactl_as(s.user.uid, s.user.gid, ["devices", "revoke", &id]);
    assert!(out.status.success(), "{}", mfad_tests::daemon::show(&out));
    assert!(s.devices().is_empty());
    assert!(s.asks_for_code(&s.user.name, &s.key));

    // Audited: the trust, each use, the revocation.
    let rows = s.d.audit_rows();
    let reasons: Vec<&str> = rows
        .iter()
        .filter(|r| r["user"] == s.user.name.as_str())
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("device trusted for 30 days")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("trusted device ssh-ed25519 SHA256:")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| *r == format!("trusted device {id} revoked")),
        "{reasons:?}"
    );
}

#[test]
fn another_user_cannot_list_or_revoke_my_devices() {
    let s = setup(POLICY);
    assert!(s.login_with_code(&s.user.name, &s.key, 0, "yes"));
    let eve = TempUser::create();
    let out = s.d.mfactl_as(
        eve.uid,
        eve.gid,
        ["devices", "list", "--user", &s.user.name],
    );
    assert!(!out.status.success());
    let out = s.d.mfactl_as(
        eve.uid,
        eve.gid,
        ["devices", "revoke", "1", "--user", &s.user.name],
    );
    assert!(!out.status.success());
    assert_eq!(s.devices().len(), 1);
}

#[test]
fn trust_expires_after_its_days() {
    let mut s = setup(POLICY);
    assert!(s.login_with_code(&s.user.name, &s.key, 0, "y"));
    s.login_without_code(&s.user.name, &s.key);
    // 31 days later (a whole number of TOTP steps).
    s.d.config_mut().clock_offset_secs = 31 * 86_400;
    s.d.restart();
    assert!(s.login_with_code(&s.user.name, &s.key, 0, "n"));
}

/// A trust is bounded by the rule deciding the login now: tightening
/// `days` shortens the trusts given under a longer window.
#[test]
fn a_tightened_rule_shortens_trust_already_given() {
    let mut s = setup(POLICY);
    assert!(s.login_with_code(&s.user.name, &s.key, 0, "y"));
    // Two days on, the rule allows one day of trust: the code again.
    s.d.write_policy(&TestPolicy::text(
        &POLICY.replace("{ days = 30 }", "{ days = 1 }"),
    ));
    s.d.config_mut().clock_offset_secs = 2 * 86_400;
    s.d.restart();
    assert!(s.asks_for_code(&s.user.name, &s.key));
    // Under the 30 days it was given with, it would still count.
    s.d.write_policy(&TestPolicy::text(POLICY));
    s.d.restart();
    s.login_without_code(&s.user.name, &s.key);
}

#[test]
fn a_production_rule_never_offers_trust() {
    let s = setup(PRODUCTION);
    assert!(!s.login_with_code(&s.user.name, &s.key, 0, "y"));
    assert!(s.devices().is_empty());
    assert!(!s.login_with_code(&s.user.name, &s.key, 1, "y"));
}

/// Through libpam with no `SSH_AUTH_INFO_0` (a password or no first
/// method): there is no device, so no trust is offered even where allowed.
#[test]
fn without_a_public_key_first_no_trust_is_offered() {
    let s = setup(POLICY);
    s.d.write_pam_service("sshd", &[]);
    let code = s.d.totp_code(&s.secret, 0);
    let t =
        s.d.expect_rc(s.d.login("sshd", &s.user.name, "127.0.0.1", &[&code]), 0);
    assert_eq!(t.prompts().len(), 1, "{t}");
    assert!(!t.contains(TRUST), "{t}");
    assert!(s.devices().is_empty());
}
