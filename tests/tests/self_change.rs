//! Replacing one's own authenticator and turning MFA off, end to end: the
//! real mfactl run as an ordinary user on a terminal, its password checked
//! by the real libpam and pam_unix through a private /etc/pam.d/mfactl
//! (in a mount namespace of its own), the proof checked by the real
//! daemon, codes from oathtool, logins through libpam and pam_mfa.so.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use mfad_tests::daemon::{TEST_RHOST, show};
use mfad_tests::pam::*;
use mfad_tests::pamns::PrivatePamd;
use mfad_tests::pty::Pty;
use mfad_tests::users::TempUser;
use mfad_tests::{TestConfig, TestDaemon, TestPolicy, bins, otp};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;

const SVC: &str = "mfa-test";
const PASSWORD: &str = "correct horse battery";
const PROOF_PROMPT: &str = "or one of your backup codes: ";

fn daemon(self_service: &str) -> TestDaemon {
    let d = TestDaemon::with_config(TestConfig {
        policy: TestPolicy {
            default: r#"{ any = ["totp", "backup"] }"#.into(),
            ..TestPolicy::default()
        },
        self_service: self_service.to_owned(),
        ..TestConfig::default()
    });
    d.write_pam_service(SVC, &[]);
    d
}

/// The admin's /etc/pam.d/mfactl: the password, as shipped.
fn pamd() -> PrivatePamd {
    let pamd = PrivatePamd::new();
    pamd.write(
        "mfactl",
        "auth required pam_unix.so nodelay\naccount required pam_permit.so\n",
    );
    pamd
}

/// `mfactl ARGS...` as `user`, on a terminal, with `pamd` as /etc/pam.d.
fn mfactl(d: &TestDaemon, pamd: &PrivatePamd, user: &TempUser, args: &[&str]) -> Pty {
    let socket = d.socket();
    let mut all = vec!["--socket", socket.to_str().unwrap()];
    all.extend_from_slice(args);
    let mut cmd = pamd.command(user.uid, user.gid, &bins::mfactl(), all);
    cmd.env("LC_ALL", "C.UTF-8");
    Pty::spawn(cmd)
}

fn rows_of(d: &TestDaemon, user: &TempUser) -> Vec<Value> {
    d.audit_rows()
        .into_iter()
        .filter(|r| r["user"] == user.name.as_str())
        .collect()
}

fn user() -> TempUser {
    let user = TempUser::create();
    user.set_password(PASSWORD);
    user
}

#[test]
fn a_user_replaces_a_lost_authenticator_with_password_and_backup_code() {
    let d = daemon("");
    let pamd = pamd();
    let user = user();
    let old = d.enroll_totp_details(&user.name);
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let page = dir.path().join("codes.txt");
    let before = rows_of(&d, &user).len();

    // A wrong password: refused by PAM, mfad is asked nothing.
    let mut t = mfactl(&d, &pamd, &user, &["replace-totp"]);
    t.expect("Password: ");
    t.send_line("not the password");
    assert!(!t.wait().success(), "{}", t.transcript());
    assert!(
        t.transcript()
            .contains("PAM service \"mfactl\": authentication failed"),
        "{}",
        t.transcript()
    );
    assert_eq!(rows_of(&d, &user).len(), before);

    // Ctrl-C at the password: the conversation ends, nothing is asked.
    let mut t = mfactl(&d, &pamd, &user, &["replace-totp"]);
    t.expect("Password: ");
    t.send_line("\x03");
    assert!(!t.wait().success(), "{}", t.transcript());
    assert!(t.transcript().contains("failed"), "{}", t.transcript());
    assert_eq!(rows_of(&d, &user).len(), before);

    // A wrong backup code: counted against the account like a login's.
    let mut t = mfactl(&d, &pamd, &user, &["replace-totp"]);
    t.expect("Password: ");
    t.send_line(PASSWORD);
    t.expect(PROOF_PROMPT);
    t.send_line("aaaaa-bbbbb");
    assert!(!t.wait().success(), "{}", t.transcript());
    assert!(
        t.transcript().contains("Nothing was changed"),
        "{}",
        t.transcript()
    );
    let status = d.mfactl_json(&["status", "--user", &user.name]);
    let locks = status["locks"].as_array().unwrap();
    assert!(
        locks
            .iter()
            .any(|l| l["channel"] == "backup" && l["failures"] == 1),
        "{status}"
    );
    assert!(
        rows_of(&d, &user).iter().any(|r| r["decision"] == "deny"
            && r["service"] == "mfactl"
            && r["reason"]
                .as_str()
                .unwrap()
                .contains("(proof for replace totp)")),
        "{:#?}",
        rows_of(&d, &user)
    );

    // The right password and a backup code: the new secret is offered.
    let path = page.to_str().unwrap();
    let mut t = mfactl(&d, &pamd, &user, &["replace-totp", "--output", path]);
    t.expect("Password: ");
    t.send_line(PASSWORD);
    t.expect(PROOF_PROMPT);
    t.send_line(&old.backup_codes[0]);
    t.expect("secret:");
    let new_secret = t.expect("\n").trim().to_owned();
    assert_ne!(new_secret, old.secret);
    t.expect("Enter the current code from your authenticator app to confirm: ");

    // Until confirmed, the old authenticator still logs in.
    otp::wait_for_fresh_step(30, 5);
    d.expect_rc(
        d.login(
            SVC,
            &user.name,
            TEST_RHOST,
            &["1", &d.totp_code(&old.secret, 0)],
        ),
        PAM_SUCCESS,
    );
    t.send_line(&d.totp_code(&new_secret, 0));
    t.expect("written to");
    assert!(t.wait().success(), "{}", t.transcript());
    assert!(
        t.transcript().contains("TOTP is now active"),
        "{}",
        t.transcript()
    );

    // The new codes are on the page; no secret reached the terminal after it.
    let text = std::fs::read_to_string(&page).unwrap();
    let codes: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_end().ends_with("[ ]"))
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(codes.len(), 10, "{text}");
    assert!(!codes.iter().any(|c| t.transcript().contains(c)));

    // The old secret and the old backup codes are void; the new ones work.
    d.expect_rc(
        d.login(
            SVC,
            &user.name,
            TEST_RHOST,
            &["1", &d.totp_code(&old.secret, 1)],
        ),
        PAM_AUTH_ERR,
    );
    d.expect_rc(
        d.login(SVC, &user.name, TEST_RHOST, &["2", &old.backup_codes[1]]),
        PAM_AUTH_ERR,
    );
    d.expect_rc(
        d.login(
            SVC,
            &user.name,
            TEST_RHOST,
            &["1", &d.totp_code(&new_secret, 1)],
        ),
        PAM_SUCCESS,
    );
    d.expect_rc(
        d.login(SVC, &user.name, TEST_RHOST, &["2", codes[0]]),
        PAM_SUCCESS,
    );

    // Audited as the user's own action, with the proof.
    let rows = rows_of(&d, &user);
    assert!(
        rows.iter().any(|r| r["channel"] == "self"
            && r["decision"] == "done"
            && r["peer_uid"] == user.uid
            && r["reason"]
                .as_str()
                .unwrap()
                .starts_with("replace totp: proved with a backup code")),
        "{rows:#?}"
    );
}

#[test]
fn turning_mfa_off_needs_the_admins_consent_and_a_proof() {
    let mut d = daemon("");
    let pamd = pamd();
    let user = user();
    let secret = d.enroll_totp(&user.name);

    // Off by default: refused before the proof is spent, and audited.
    otp::wait_for_fresh_step(30, 10);
    let code = d.totp_code(&secret, 0);
    let mut t = mfactl(&d, &pamd, &user, &["disable-mfa"]);
    t.expect("Password: ");
    t.send_line(PASSWORD);
    t.expect(PROOF_PROMPT);
    t.send_line(&code);
    assert!(!t.wait().success(), "{}", t.transcript());
    assert!(
        t.transcript()
            .contains("not allowed on this machine ([self_service] disable = false"),
        "{}",
        t.transcript()
    );
    let status = d.mfactl_json(&["status", "--user", &user.name]);
    assert!(status["totp"].is_object(), "{status}");
    assert!(
        rows_of(&d, &user)
            .iter()
            .any(|r| r["decision"] == "refused" && r["channel"] == "self"),
        "{:#?}",
        rows_of(&d, &user)
    );
    // The code was not spent by the refusal.
    d.expect_rc(
        d.login(SVC, &user.name, TEST_RHOST, &["1", &code]),
        PAM_SUCCESS,
    );

    // Allowed by the admin: a wrong code changes nothing, a right one
    // removes every factor.
    d.config_mut().self_service = "disable = true".into();
    d.restart();
    let mut t = mfactl(&d, &pamd, &user, &["disable-mfa"]);
    t.expect("Password: ");
    t.send_line(PASSWORD);
    t.expect(PROOF_PROMPT);
    t.send_line("000000");
    assert!(!t.wait().success(), "{}", t.transcript());
    let status = d.mfactl_json(&["status", "--user", &user.name]);
    assert!(status["totp"].is_object(), "{status}");

    let mut t = mfactl(&d, &pamd, &user, &["disable-mfa"]);
    t.expect("Password: ");
    t.send_line(PASSWORD);
    t.expect(PROOF_PROMPT);
    // The next step's code: the login above used this step's.
    t.send_line(&d.totp_code(&secret, 1));
    assert!(t.wait().success(), "{}", t.transcript());
    assert!(
        t.transcript()
            .contains("Multi-factor authentication is off"),
        "{}",
        t.transcript()
    );
    let out = d.mfactl(["--json", "status", "--user", &user.name]);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(status["totp"].is_null(), "{}", show(&out));
    assert_eq!(status["backup_codes"], 0, "{status}");
    let rows = rows_of(&d, &user);
    assert!(
        rows.iter().any(|r| r["channel"] == "self"
            && r["decision"] == "done"
            && r["reason"]
                .as_str()
                .unwrap()
                .starts_with("disable mfa: proved with a TOTP code")),
        "{rows:#?}"
    );
}
