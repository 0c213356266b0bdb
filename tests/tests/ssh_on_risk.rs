//! Trust that follows the session, through the real sshd, ssh and sudo: a
//! second login of the same user from another country (a MaxMind-format
//! database the test writes; `ssh -b 127.0.x.y` picks the source), a lock
//! on the account, or `mfactl sessions stepup` make the first session's
//! next sudo ask every factor again (`on_risk = "stepup"`), or end that
//! session (`on_risk = "end"`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use mfad_tests::daemon::{TotpConfig, show};
use mfad_tests::pty::Pty;
use mfad_tests::ssh::{ClientKey, SshServer, Stacks};
use mfad_tests::users::TempUser;
use mfad_tests::{TestConfig, TestDaemon, TestPolicy, mmdb};

fn policy(on_risk: &str) -> String {
    format!(
        r#"
[service_groups]
privileged = ["sudo"]

[[rule]]
name = "sudo-step-up"
services = ["@privileged"]
require = {{ chain = ["totp", "backup"] }}
fresh = {{ totp = "8h", backup = "8h" }}

[[rule]]
name = "ssh"
services = ["sshd"]
require = "totp"
on_risk = "{on_risk}"

[[rule]]
name = "vpn"
services = ["vpn"]
require = "totp"

[[rule]]
name = "default"
all = true
require = "deny"
"#
    )
}

const TOTP: &str = "Verification code: ";
const BACKUP: &str = "Backup code: ";
const SUDO: &str = "sudo true; echo \"R\"\"C=$?\"";
const FRANCE: &str = "127.0.1.1";

struct Setup {
    d: TestDaemon,
    server: SshServer,
    user: TempUser,
    secret: String,
    backup: Vec<String>,
    /// The first login's shell, from 127.0.0.1 (Germany), TOTP step 0.
    ssh: Pty,
}

fn setup(on_risk: &str) -> Setup {
    let mut d = TestDaemon::prepare(TestConfig {
        policy: TestPolicy::text(&policy(on_risk)),
        geoip_database: Some("countries.mmdb".into()),
        // Four logins and step-ups in a row, each with a TOTP step of its
        // own, without waiting for the clock.
        totp: TotpConfig {
            window: 5,
            ..TestConfig::default().totp
        },
        ..TestConfig::default()
    });
    std::fs::write(
        d.dir().join("countries.mmdb"),
        mmdb::country_db(&[("127.0.0.0/24", "DE"), ("127.0.1.0/24", "FR")]),
    )
    .unwrap();
    d.launch();
    let home = tempfile::tempdir().unwrap();
    let user = TempUser::create_login(home.path());
    let server = SshServer::start(&Stacks::mfa(&d).sudo_for(&user.name));
    let e = d.enroll_totp_details(&user.name);
    assert!(e.backup_codes.len() >= 3, "{:?}", e.backup_codes);
    let mut ssh = server.shell(&d, &user.name, &e.secret);
    // TOTP is fresh from the login: sudo asks only the backup code, and
    // then nothing (both fresh for 8h).
    ssh.send_line(SUDO);
    let (which, _) = ssh.expect_any(&[BACKUP, TOTP]).unwrap();
    assert_eq!(which, 0, "{}", ssh.transcript());
    ssh.send_line(&e.backup_codes[0]);
    ssh.expect("RC=0");
    asks_nothing(&mut ssh);
    Setup {
        d,
        server,
        user,
        secret: e.secret,
        backup: e.backup_codes,
        ssh,
    }
}

fn asks_nothing(ssh: &mut Pty) {
    ssh.send_line(SUDO);
    let (which, _) = ssh.expect_any(&[TOTP, BACKUP, "RC=0"]).unwrap();
    assert_eq!(which, 2, "sudo asked again:\n{}", ssh.transcript());
}

/// sudo asks every factor, TOTP first, and passes with them.
fn asks_everything(s: &mut Setup, step: i64, backup: usize) {
    s.ssh.send_line(SUDO);
    let (which, _) = s.ssh.expect_any(&[TOTP, BACKUP, "RC=0"]).unwrap();
    assert_eq!(which, 0, "sudo did not ask TOTP:\n{}", s.ssh.transcript());
    s.ssh.send_line(&s.d.totp_code(&s.secret, step));
    s.ssh.expect(BACKUP);
    s.ssh.send_line(&s.backup[backup]);
    s.ssh.expect("RC=0");
}

/// The same user logs in again from France with TOTP step 1, and leaves.
fn login_from_france(s: &Setup) {
    let key = s.server.new_key("phone");
    s.server.authorize(&s.user.name, &key);
    let mut other = s
        .server
        .ssh(&s.user.name, &key, FRANCE, "echo LOGGED\"\"-IN");
    other.expect(TOTP);
    other.send_line(&s.d.totp_code(&s.secret, 1));
    other.expect("LOGGED-IN");
    assert!(other.wait().success(), "{}", other.transcript());
}

fn first_session(d: &TestDaemon) -> serde_json::Value {
    let doc = d.mfactl_json(&["sessions", "list"]);
    doc["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["rhost"] == "127.0.0.1")
        .cloned()
        .unwrap_or_else(|| panic!("no session from 127.0.0.1: {doc}"))
}

/// The session audit row containing `needle`, waiting a little for it: a
/// session is ended (and its row written) after its processes are gone.
fn audited(d: &TestDaemon, needle: &str) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let rows = d.audit_rows();
        let found = rows
            .iter()
            .find(|r| r["channel"] == "session" && r["reason"].as_str().unwrap().contains(needle));
        match found {
            Some(row) => return row.clone(),
            None if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            None => panic!("no session row with {needle:?}: {rows:#?}"),
        }
    }
}

#[test]
fn a_login_from_another_country_makes_the_first_sessions_sudo_ask_everything() {
    let mut s = setup("stepup");
    let explain = s.d.mfactl_json(&[
        "policy",
        "explain",
        "--user",
        &s.user.name,
        "--service",
        "sshd",
    ]);
    assert!(
        explain["on_risk"]
            .as_str()
            .unwrap()
            .starts_with("stepup: when risk rises"),
        "{explain}"
    );
    login_from_france(&s);
    let first = first_session(&s.d);
    assert_eq!(first["factors"], serde_json::json!([]), "{first}");
    let row = audited(
        &s.d,
        &format!(
            "freshness cleared (on_risk stepup of rule ssh): login of {} from {FRANCE}, a new country (FR)",
            s.user.name
        ),
    );
    assert_eq!(row["rule"], "ssh", "{row}");
    assert!(
        row["reason"]
            .as_str()
            .unwrap()
            .starts_with(&format!("session {}: ", first["id"])),
        "{row}"
    );

    asks_everything(&mut s, 2, 1);
    // Passed again just now: fresh once more. The session went on.
    asks_nothing(&mut s.ssh);
    s.ssh.send_line("echo \"STILL\"\"-HERE\"; exit");
    s.ssh.expect("STILL-HERE");
    assert!(s.ssh.wait().success(), "{}", s.ssh.transcript());
}

#[test]
fn with_on_risk_end_a_login_from_another_country_ends_the_first_session() {
    let mut s = setup("end");
    let id = first_session(&s.d)["id"].as_i64().unwrap();
    login_from_france(&s);
    // The shell hears why, and ssh sees the connection close.
    s.ssh.expect("mfad: this session is being ended: login of");
    let status = s.ssh.wait();
    assert!(!status.success(), "{}", s.ssh.transcript());
    assert!(
        s.ssh.transcript().contains("a new country (FR)"),
        "{}",
        s.ssh.transcript()
    );
    let row = audited(&s.d, "ended (on_risk end of rule ssh)");
    assert!(
        row["reason"]
            .as_str()
            .unwrap()
            .starts_with(&format!("session {id}: ")),
        "{row}"
    );
    let doc = s.d.mfactl_json(&["sessions", "list"]);
    let ids: Vec<i64> = doc["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_i64().unwrap())
        .collect();
    assert!(!ids.contains(&id), "{doc}");
}

#[test]
fn an_admin_step_up_and_a_lock_on_the_account_make_sudo_ask_everything() {
    let mut s = setup("stepup");
    let id = first_session(&s.d)["id"].to_string();

    let out = s.d.mfactl(["sessions", "stepup", &id]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("Session {id} of {}", s.user.name)),
        "{}",
        show(&out)
    );
    audited(&s.d, "freshness cleared: step-up requested");
    asks_everything(&mut s, 1, 1);
    asks_nothing(&mut s.ssh);

    // Someone guesses codes for the account elsewhere until it locks.
    s.d.write_pam_service("vpn", &[]);
    let wrong = s.d.wrong_code(&s.secret);
    s.d.fail_to_threshold("vpn", &s.user.name, "127.0.0.7", &wrong);
    audited(
        &s.d,
        &format!(
            "freshness cleared (on_risk stepup of rule ssh): {} locked out after repeated failures (from 127.0.0.7)",
            s.user.name
        ),
    );
    asks_everything(&mut s, 2, 2);

    // Unknown sessions and non-admins are refused.
    assert!(
        !s.d.mfactl(["sessions", "stepup", "999999"])
            .status
            .success()
    );
    let out =
        s.d.mfactl_as(s.user.uid, s.user.gid, ["sessions", "stepup", &id]);
    assert!(!out.status.success(), "{}", show(&out));
    s.ssh.send_line("exit");
    assert!(s.ssh.wait().success(), "{}", s.ssh.transcript());
}

const TRUSTING: &str = r#"
[[rule]]
name = "ssh"
services = ["sshd"]
require = "totp"
trusted_devices = { days = 30 }
on_risk = "end"

[[rule]]
name = "default"
all = true
require = "deny"
"#;

/// The next policy asks more of sshd: a chain, and no trusted devices.
const STRICTER: &str = r#"
[[rule]]
name = "ssh-strict"
services = ["sshd"]
require = { chain = ["totp", "backup"] }
on_risk = "end"

[[rule]]
name = "default"
all = true
require = "deny"
"#;

const TRUST: &str = "Trust this device";

/// A shell for `user` with `key` from 127.0.0.1, at its first prompt: with
/// the code of TOTP `step` if asked, and the trust question answered with
/// `trust` if asked.
fn shell(
    d: &TestDaemon,
    server: &SshServer,
    user: &str,
    key: &ClientKey,
    secret: &str,
    step: i64,
    trust: &str,
) -> Pty {
    let mut ssh = server.ssh(user, key, "127.0.0.1", "");
    let (which, _) = ssh.expect_any(&[TOTP, "$ "]).unwrap();
    if which == 0 {
        ssh.send_line(&d.totp_code(secret, step));
        let (which, _) = ssh.expect_any(&[TRUST, "$ "]).unwrap();
        if which == 0 {
            ssh.send_line(trust);
            ssh.expect("$ ");
        }
    }
    ssh
}

fn ids(d: &TestDaemon) -> Vec<i64> {
    let doc = d.mfactl_json(&["sessions", "list"]);
    doc["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_i64().unwrap())
        .collect()
}

#[test]
fn a_revoked_device_ends_the_sessions_it_opened_and_a_stricter_policy_the_others() {
    let mut d = TestDaemon::with_config(TestConfig {
        policy: TestPolicy::text(TRUSTING),
        ..TestConfig::default()
    });
    let server = SshServer::start(&Stacks::mfa(&d));
    let user = TempUser::create_login(server.dir());
    let (laptop, phone) = (server.new_key("laptop"), server.new_key("phone"));
    server.authorize(&user.name, &laptop);
    server.authorize(&user.name, &phone);
    let secret = d.enroll_totp(&user.name);

    // The laptop becomes trusted (code, then "y"), and a second login with
    // it asks nothing: that session was opened by the device.
    let mut first = shell(&d, &server, &user.name, &laptop, &secret, 0, "y");
    let by_device = shell(&d, &server, &user.name, &laptop, &secret, 99, "n");
    // The phone logs in with a code and is not trusted.
    let mut by_code = shell(&d, &server, &user.name, &phone, &secret, 1, "n");
    let doc = d.mfactl_json(&["sessions", "list"]);
    let sessions = doc["sessions"].as_array().unwrap().clone();
    assert_eq!(sessions.len(), 3, "{doc}");
    let device_session = sessions
        .iter()
        .find(|s| s["device"].is_string())
        .unwrap_or_else(|| panic!("no session opened by a device: {doc}"))["id"]
        .as_i64()
        .unwrap();

    let devices = d.mfactl_json(&["devices", "list", "--user", &user.name]);
    let device = devices["devices"][0]["id"].to_string();
    let out = d.mfactl(["devices", "revoke", "--user", &user.name, &device]);
    assert!(out.status.success(), "{}", show(&out));
    let mut by_device = by_device;
    by_device.expect("mfad: this session is being ended: trusted device ssh-ed25519 SHA256:");
    assert!(!by_device.wait().success(), "{}", by_device.transcript());
    audited(
        &d,
        "ended (on_risk end of rule ssh): trusted device ssh-ed25519",
    );
    let left = ids(&d);
    assert!(!left.contains(&device_session), "{left:?}");
    assert_eq!(left.len(), 2, "the others stay: {left:?}");
    for ssh in [&mut first, &mut by_code] {
        ssh.send_line("echo \"ALI\"\"VE\"");
        ssh.expect("ALIVE");
    }

    // A reload that asks more of sshd: both remaining sessions passed only
    // TOTP, which the new chain does not accept alone.
    d.write_policy(&TestPolicy::text(STRICTER));
    let out = d.mfactl(["policy", "reload"]);
    assert!(out.status.success(), "{}", show(&out));
    for ssh in [&mut first, &mut by_code] {
        ssh.expect("mfad: this session is being ended: policy version 2 asks more of its service");
        assert!(!ssh.wait().success(), "{}", ssh.transcript());
    }
    let row = audited(
        &d,
        "ended (on_risk end of rule ssh-strict): policy version 2",
    );
    assert_eq!(row["rule"], "ssh-strict", "{row}");
    assert_eq!(row["policy_version"], 2, "{row}");
    assert_eq!(ids(&d), Vec::<i64>::new());
}
