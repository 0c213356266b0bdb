//! A fleet: two real mfad daemons ("web-1" and "web-2", each with its own
//! socket and config) sharing one real PostgreSQL, started by the test in a
//! temporary directory; logins through the real libpam and pam_mfa.so.
//!
//! Needs root, Debian's `postgresql` and `cargo build --workspace` first.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use mfad_tests::daemon::{TEST_RHOST, show};
use mfad_tests::pam::*;
use mfad_tests::postgres::{Postgres, write_private};
use mfad_tests::users::unique_name;
use mfad_tests::{TestConfig, TestDaemon, bins};
use std::process::{Command, Output};

const SVC: &str = "mfa-test";

/// A daemon of the fleet with the tests' config.
fn member(pg: &Postgres, host: &str, keys_from: Option<&TestDaemon>) -> TestDaemon {
    pg.member(TestConfig::default(), host, keys_from)
}

fn mfad(d: &TestDaemon, args: &[&str]) -> Output {
    Command::new(bins::mfad())
        .arg("--config")
        .arg(d.config_path())
        .args(args)
        .output()
        .unwrap()
}

/// A migrated database and two daemons serving [`SVC`] on it.
fn fleet(pg: &Postgres) -> (TestDaemon, TestDaemon) {
    fleet_with(pg, |_| {})
}

fn fleet_with(pg: &Postgres, adjust: impl Fn(&mut TestConfig)) -> (TestDaemon, TestDaemon) {
    let mut a = member(pg, "web-1", None);
    adjust(a.config_mut());
    let out = mfad(&a, &["--migrate"]);
    assert!(out.status.success(), "mfad --migrate: {}", show(&out));
    a.launch();
    a.write_pam_service(SVC, &[]);
    let mut b = member(pg, "web-2", Some(&a));
    adjust(b.config_mut());
    b.launch();
    b.write_pam_service(SVC, &[]);
    (a, b)
}

fn login(d: &TestDaemon, user: &str, answers: &[&str]) -> (i32, Transcript) {
    d.login(SVC, user, TEST_RHOST, answers)
}

#[test]
fn enrolled_on_one_host_a_user_logs_in_on_another_and_a_code_counts_once_in_the_fleet() {
    let pg = Postgres::start();
    let (a, b) = fleet(&pg);
    let user = unique_name("alice");
    let secret = a.enroll_totp(&user);
    let code = b.totp_code(&secret, 0);
    b.expect_rc(login(&b, &user, &[&code]), PAM_SUCCESS);
    // The same code on the other host is a replay.
    let t = a.expect_rc(login(&a, &user, &[&code]), PAM_AUTH_ERR);
    assert!(t.contains("next code"), "{t}");
    // Each host's audit rows land in the shared database under its name.
    let hosts = pg.sql(&format!(
        "SELECT DISTINCT host FROM audit WHERE username = '{user}' ORDER BY host"
    ));
    assert_eq!(hosts, "web-1\nweb-2", "audit hosts");
    let decided = pg.sql(&format!(
        "SELECT host || ' ' || decision FROM audit
         WHERE username = '{user}' AND channel = 'totp' ORDER BY id"
    ));
    assert_eq!(decided, "web-2 allow\nweb-1 deny", "audit rows");
    // `mfactl audit` on any host shows the fleet's rows, each with its host.
    let out = a.mfactl(["audit", "--user", &user]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "audit: {}", show(&out));
    assert!(text.starts_with("TIME") && text.contains("HOST"), "{text}");
    assert!(text.contains("web-1") && text.contains("web-2"), "{text}");
    // Each host's chain verifies.
    for d in [&a, &b] {
        let out = d.mfactl(["audit", "verify"]);
        assert!(out.status.success(), "audit verify: {}", show(&out));
    }
}

#[test]
fn one_code_submitted_64_times_across_two_hosts_is_accepted_once() {
    let pg = Postgres::start();
    let (a, b) = fleet_with(&pg, |c| {
        // The lockout would end the race early: this test is about single use.
        c.lockout.threshold = 100;
        c.lockout.account_threshold = 100;
    });
    let user = unique_name("bob");
    let secret = a.enroll_totp(&user);
    let code = a.totp_code(&secret, 0);
    let barrier = std::sync::Barrier::new(64);
    let rcs: Vec<i32> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..64)
            .map(|i| {
                let d = if i % 2 == 0 { &a } else { &b };
                let (code, user, barrier) = (&code, &user, &barrier);
                s.spawn(move || {
                    let mut pam = d.pam(SVC, user, vec![code.clone()]);
                    pam.set_item(PAM_RHOST, TEST_RHOST);
                    barrier.wait();
                    pam.authenticate(0).0
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = rcs.iter().filter(|&&rc| rc == PAM_SUCCESS).count();
    assert_eq!(ok, 1, "results {rcs:?}\n{}\n{}", a.log_text(), b.log_text());
    assert!(
        rcs.iter()
            .all(|&rc| rc == PAM_SUCCESS || rc == PAM_AUTH_ERR),
        "results {rcs:?}"
    );
}

#[test]
fn a_lock_earned_on_one_host_holds_on_the_other_until_an_admin_anywhere_lifts_it() {
    let pg = Postgres::start();
    let (a, b) = fleet(&pg);
    let user = unique_name("carol");
    let secret = a.enroll_totp(&user);
    let wrong = a.wrong_code(&secret);
    a.fail_to_threshold(SVC, &user, TEST_RHOST, &wrong);
    let code = b.totp_code(&secret, 0);
    let t = b.expect_rc(login(&b, &user, &[&code]), PAM_MAXTRIES);
    assert!(t.contains("lock"), "{t}");
    let out = b.mfactl(["user", "unlock", &user]);
    assert!(out.status.success(), "unlock: {}", show(&out));
    a.expect_rc(login(&a, &user, &[&code]), PAM_SUCCESS);
}

#[test]
fn a_backup_code_issued_on_one_host_is_good_once_anywhere() {
    let pg = Postgres::start();
    let (a, b) = fleet_with(&pg, |c| {
        c.policy.default = r#"{ any = ["totp", "backup"] }"#.into();
    });
    let user = unique_name("fay");
    a.enroll_totp(&user);
    let doc = a.mfactl_json(&["backup-codes", "regenerate", "--user", &user]);
    let code = doc["codes"][0].as_str().unwrap().to_owned();
    let t = b.expect_rc(login(&b, &user, &["2", &code]), PAM_SUCCESS);
    assert!(t.contains("9 backup codes left."), "{t}");
    let t = a.expect_rc(login(&a, &user, &["2", &code]), PAM_AUTH_ERR);
    assert!(t.contains("Wrong backup code."), "{t}");
    assert_eq!(
        a.mfactl_json(&["status", "--user", &user])["backup_codes"],
        9
    );
}

#[test]
fn a_daemon_refuses_to_start_on_an_old_schema_or_with_another_key() {
    let pg = Postgres::start();
    let mut early = member(&pg, "web-0", None);
    let failure = early.start_expecting_failure();
    assert!(
        failure.stderr.contains("mfad --migrate"),
        "no hint to migrate:\n{}",
        failure.stderr
    );
    let (a, _b) = fleet(&pg);
    a.enroll_totp(&unique_name("dave"));
    let mut stranger = member(&pg, "web-3", None);
    write_private(&stranger.dir().join("state/mfad.key"), &[7u8; 32], 0o400);
    let failure = stranger.start_expecting_failure();
    assert!(
        failure.stderr.contains("is not the key"),
        "wrong key not named:\n{}",
        failure.stderr
    );
    // Without a key, a new host is told to copy the fleet's, not given one.
    let mut keyless = member(&pg, "web-4", None);
    let failure = keyless.start_expecting_failure();
    assert!(
        failure
            .stderr
            .contains("Copy the key file from another host"),
        "{}",
        failure.stderr
    );
    assert!(!keyless.dir().join("state/mfad.key").exists());
}

#[test]
fn with_the_database_down_logins_are_denied_and_service_comes_back_by_itself() {
    let mut pg = Postgres::start();
    let (a, _b) = fleet(&pg);
    let user = unique_name("erin");
    let secret = a.enroll_totp(&user);
    pg.stop_server();
    let code = a.totp_code(&secret, 0);
    let (rc, t) = login(&a, &user, &[&code]);
    assert_ne!(
        rc, PAM_SUCCESS,
        "a login went through without the database:\n{t}"
    );
    pg.start_server();
    let code = a.totp_code(&secret, 0);
    a.expect_rc(login(&a, &user, &[&code]), PAM_SUCCESS);
}

#[test]
fn a_hung_database_costs_a_login_the_statement_timeout_then_a_denial() {
    let pg = Postgres::start();
    let (a, _b) = fleet(&pg);
    let user = unique_name("gus");
    let secret = a.enroll_totp(&user);
    pg.freeze();
    let code = a.totp_code(&secret, 0);
    let started = std::time::Instant::now();
    let (rc, t) = login(&a, &user, &[&code]);
    let waited = started.elapsed();
    pg.thaw();
    assert_ne!(
        rc, PAM_SUCCESS,
        "a login went through a hung database:\n{t}"
    );
    // Not a performance bound: a hung database must end in a verdict, not
    // in a login that hangs (the timeout is 2 s per store call).
    assert!(
        waited < std::time::Duration::from_secs(15),
        "the login hung for {waited:?}"
    );
    let code = a.totp_code(&secret, 0);
    a.expect_rc(login(&a, &user, &[&code]), PAM_SUCCESS);
}

/// `mfactl doctor`'s findings about the store: (check, status, message).
fn store_findings_with_messages(d: &TestDaemon) -> Vec<(String, String, String)> {
    // Other checks (sshd, PAM files) may fail here: only the store matters.
    let out = d.mfactl(["--json", "doctor", "--service", "none"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("doctor --json: {e}: {}", show(&out)));
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"].as_str().unwrap().starts_with("store"))
        .map(|f| {
            let field = |k: &str| f[k].as_str().unwrap().to_owned();
            (field("check"), field("status"), field("message"))
        })
        .collect()
}

fn store_findings(d: &TestDaemon) -> Vec<(String, String)> {
    store_findings_with_messages(d)
        .into_iter()
        .map(|(check, status, _)| (check, status))
        .collect()
}

#[test]
fn doctor_reports_the_store_connection_its_tls_and_schema() {
    let mut pg = Postgres::start();
    let (a, _b) = fleet(&pg);
    let found = store_findings(&a);
    assert_eq!(
        found,
        [
            ("store connection".to_owned(), "ok".to_owned()),
            ("store tls".to_owned(), "warn".to_owned()),
            ("store schema".to_owned(), "ok".to_owned()),
        ],
        "{found:?}"
    );
    pg.stop_server();
    let found = store_findings(&a);
    assert_eq!(found, [("store connection".to_owned(), "fail".to_owned())]);
}

#[test]
fn tls_to_the_database_is_verified_against_the_ca_file() {
    let pg = Postgres::start_tls();
    let (a, _b) = fleet(&pg);
    let found = store_findings_with_messages(&a);
    let tls = found
        .iter()
        .find(|(check, _, _)| check == "store tls")
        .unwrap_or_else(|| panic!("no store tls finding: {found:?}"));
    assert_eq!(tls.1, "ok", "{tls:?}");
    assert!(tls.2.contains("TLS"), "{tls:?}");
    // A server whose certificate the configured CA did not sign is refused.
    let mut c = member(&pg, "web-9", Some(&a));
    c.config_mut().store = Some(pg.store_table_trusting("web-9", Some(&pg.other_ca_file())));
    let failure = c.start_expecting_failure();
    assert!(
        failure.stderr.contains("certificate"),
        "the untrusted certificate is not named:\n{}",
        failure.stderr
    );
}

#[test]
fn check_config_names_a_wrong_password() {
    let pg = Postgres::start();
    let d = member(&pg, "web-1", None);
    write_private(
        &d.dir().join("state/pg.password"),
        b"not-the-password",
        0o600,
    );
    let out = mfad(&d, &["--check-config"]);
    assert!(!out.status.success());
    let text = show(&out);
    assert!(text.contains("password authentication failed"), "{text}");
    assert!(
        !text.contains("not-the-password"),
        "the password leaked: {text}"
    );
}
