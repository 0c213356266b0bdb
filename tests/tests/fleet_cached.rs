//! `store_unreachable = "cached"`: with the shared PostgreSQL stopped, a
//! fleet host checks the TOTP codes of users who logged in on it before
//! against its own cache; its audit is spooled and shipped, and the steps
//! it used raised in the shared store, when the database is back. Two real
//! daemons, a real PostgreSQL, logins through the real libpam and
//! pam_mfa.so, codes from oathtool.
//!
//! Needs root, Debian's `postgresql` and `cargo build --workspace` first.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use mfad_tests::daemon::{TEST_RHOST, show};
use mfad_tests::pam::*;
use mfad_tests::postgres::Postgres;
use mfad_tests::users::unique_name;
use mfad_tests::{TestConfig, TestDaemon};
use std::process::Command;
use std::time::{Duration, Instant};

/// Under the rule with "cached".
const CACHED: &str = "mfa-cached";
/// Under the rule without it (the default, "deny").
const STRICT: &str = "mfa-strict";

const POLICY: &str = r#"[[rule]]
name = "cached"
services = ["mfa-cached"]
require = "totp"
store_unreachable = "cached"

[[rule]]
name = "strict"
all = true
require = "totp"
"#;

const NOTICE: &str = "central database is unreachable";

/// A host of the fleet running `policy`, not started yet.
fn member(pg: &Postgres, host: &str, keys_from: Option<&TestDaemon>, policy: &str) -> TestDaemon {
    let mut d = pg.member(TestConfig::default(), host, keys_from);
    d.config_mut().policy.text = Some(policy.to_owned());
    d
}

/// Starts `d`, serving both services.
fn launch(mut d: TestDaemon) -> TestDaemon {
    d.launch();
    d.write_pam_service(CACHED, &[]);
    d.write_pam_service(STRICT, &[]);
    d
}

/// The database migrated by web-1, running `policy`.
fn first_host(pg: &Postgres, policy: &str) -> TestDaemon {
    let a = member(pg, "web-1", None, policy);
    a.migrate();
    launch(a)
}

/// A migrated database and two daemons serving both services on it.
fn fleet(pg: &Postgres) -> (TestDaemon, TestDaemon) {
    let a = first_host(pg, POLICY);
    // The fleet's key, made by web-1's start.
    let b = launch(member(pg, "web-2", Some(&a), POLICY));
    (a, b)
}

fn login(d: &TestDaemon, service: &str, user: &str, code: &str) -> (i32, Transcript) {
    d.login(service, user, TEST_RHOST, &[code])
}

fn last_step(pg: &Postgres, user: &str) -> i64 {
    pg.sql(&format!(
        "SELECT last_step FROM totp WHERE username = '{user}'"
    ))
    .trim()
    .parse()
    .unwrap()
}

#[test]
fn with_the_database_down_a_cached_rule_lets_a_known_user_in_once_per_code_and_ships_it_later() {
    let mut pg = Postgres::start();
    let (a, b) = fleet(&pg);
    let known = unique_name("kim");
    let stranger = unique_name("sam");
    let secret = a.enroll_totp(&known);
    let other = b.enroll_totp(&stranger);
    // Only a login on this host puts a user in its cache.
    a.expect_rc(
        login(&a, CACHED, &known, &a.totp_code(&secret, 0)),
        PAM_SUCCESS,
    );
    b.expect_rc(
        login(&b, CACHED, &stranger, &b.totp_code(&other, 0)),
        PAM_SUCCESS,
    );
    let before = last_step(&pg, &known);
    let cache = a.dir().join("state/totp-cache.db");
    let mode = std::fs::metadata(&cache).map(|m| {
        use std::os::unix::fs::PermissionsExt;
        m.permissions().mode() & 0o777
    });
    assert_eq!(mode.ok(), Some(0o600), "{}", cache.display());

    pg.stop_server();
    // The next step: the one used above is spent in the cache too.
    let code = a.totp_code(&secret, 1);
    let t = a.expect_rc(login(&a, CACHED, &known, &code), PAM_SUCCESS);
    assert!(t.contains(NOTICE), "{t}");
    // The same code again is a replay, refused by the cache.
    let t = a.expect_rc(login(&a, CACHED, &known, &code), PAM_AUTH_ERR);
    assert!(t.contains("already used"), "{t}");
    // A user who never logged in on this host is not in its cache.
    let (rc, t) = login(&a, CACHED, &stranger, &a.totp_code(&other, 1));
    assert_ne!(rc, PAM_SUCCESS, "{t}");
    assert!(!t.contains(NOTICE), "{t}");
    // A rule without "cached" denies as before.
    let (rc, t) = login(&a, STRICT, &known, &a.totp_code(&secret, 2));
    assert_ne!(rc, PAM_SUCCESS, "{t}");
    assert!(!t.contains(NOTICE), "{t}");

    pg.start_server();
    // web-1 ships its spool once it hears the database again.
    let back = Instant::now();
    let shipped = || {
        pg.sql(&format!(
            "SELECT host || ' ' || decision || ' ' || reason FROM audit
             WHERE username = '{known}' AND reason LIKE '%this host''s cache%' ORDER BY id"
        ))
    };
    while shipped().lines().count() < 2 {
        assert!(
            back.elapsed() < Duration::from_secs(40),
            "the spool was not shipped: {:?}\n{}",
            shipped(),
            a.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let rows = shipped();
    let rows: Vec<&str> = rows.lines().collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows[0].starts_with("web-1 allow ok"), "{rows:?}");
    assert!(rows[1].starts_with("web-1 deny"), "{rows:?}");
    assert!(rows[1].contains("already used"), "{rows:?}");
    // The step used during the outage is spent in the whole fleet.
    assert!(last_step(&pg, &known) > before, "shared step not raised");
    let (rc, t) = login(&b, CACHED, &known, &code);
    assert_eq!(rc, PAM_AUTH_ERR, "replayed on web-2 after the outage:\n{t}");
    // The spool is empty: nothing is shipped twice.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(shipped().lines().count(), 2);
    for d in [&a, &b] {
        let out = d.mfactl(["audit", "verify"]);
        assert!(out.status.success(), "audit verify: {}", show(&out));
    }
}

#[test]
fn a_user_whose_totp_was_removed_centrally_leaves_the_cache_at_the_next_login() {
    let mut pg = Postgres::start();
    let (a, b) = fleet(&pg);
    let user = unique_name("rae");
    let secret = a.enroll_totp(&user);
    a.expect_rc(
        login(&a, CACHED, &user, &a.totp_code(&secret, 0)),
        PAM_SUCCESS,
    );
    let out = b.mfactl(["user", "reset", &user, "--yes"]);
    assert!(out.status.success(), "reset: {}", show(&out));
    // web-1 hears of it at the user's next login there (refused: no TOTP).
    let (rc, _) = login(&a, CACHED, &user, &a.totp_code(&secret, 1));
    assert_ne!(rc, PAM_SUCCESS);
    pg.stop_server();
    let (rc, t) = login(&a, CACHED, &user, &a.totp_code(&secret, 1));
    assert_ne!(rc, PAM_SUCCESS, "{t}");
    assert!(!t.contains(NOTICE), "{t}");
    pg.start_server();
}

#[test]
fn a_hung_database_costs_a_cached_login_the_statement_timeout_then_the_cache_answers() {
    let pg = Postgres::start();
    let (a, _b) = fleet(&pg);
    let user = unique_name("hal");
    let secret = a.enroll_totp(&user);
    a.expect_rc(
        login(&a, CACHED, &user, &a.totp_code(&secret, 0)),
        PAM_SUCCESS,
    );
    pg.freeze();
    let started = Instant::now();
    let (rc, t) = login(&a, CACHED, &user, &a.totp_code(&secret, 1));
    let waited = started.elapsed();
    pg.thaw();
    assert_eq!(rc, PAM_SUCCESS, "{t}\n{}", a.log_text());
    assert!(t.contains(NOTICE), "{t}");
    // Not a performance bound: the login waited for the database's
    // deadline (2 s), not for the database.
    assert!(
        waited < Duration::from_secs(15),
        "the login took {waited:?}"
    );
}

/// The server itself gives up on the login's read: an operator's cancel,
/// or the end of the connection (a shutdown, a failover). A cached rule
/// answers from the cache as when the database does not answer at all.
#[test]
fn a_read_the_server_cancels_or_ends_lets_the_cache_answer() {
    let pg = Postgres::start();
    let (a, _b) = fleet(&pg);
    for kill in ["pg_cancel_backend", "pg_terminate_backend"] {
        let user = unique_name("ned");
        let secret = a.enroll_totp(&user);
        a.expect_rc(
            login(&a, CACHED, &user, &a.totp_code(&secret, 0)),
            PAM_SUCCESS,
        );
        // Another session holds the TOTP table: the next login's read waits.
        let locker = pg.hold(
            "LOCK TABLE totp IN ACCESS EXCLUSIVE MODE",
            3,
            "SELECT count(*) FROM pg_locks
             WHERE relation = 'totp'::regclass AND mode = 'AccessExclusiveLock' AND granted",
        );
        let code = a.totp_code(&secret, 1);
        let (rc, t) = std::thread::scope(|s| {
            let waiting = s.spawn(|| login(&a, CACHED, &user, &code));
            let started = Instant::now();
            let pid = loop {
                let pid = pg.sql(&format!(
                    "SELECT pid FROM pg_stat_activity
                     WHERE usename = '{}' AND wait_event_type = 'Lock'",
                    mfad_tests::postgres::ROLE
                ));
                if !pid.trim().is_empty() {
                    break pid;
                }
                assert!(started.elapsed() < Duration::from_secs(2), "no read waited");
                std::thread::sleep(Duration::from_millis(10));
            };
            pg.sql(&format!("SELECT {kill}({})", pid.trim()));
            waiting.join().unwrap()
        });
        locker.join().unwrap();
        assert_eq!(rc, PAM_SUCCESS, "{kill}: {t}\n{}", a.log_text());
        assert!(t.contains(NOTICE), "{kill}: {t}");
    }
}

#[test]
fn wrong_codes_during_an_outage_lock_the_user_on_this_host_and_a_right_code_then_waits() {
    let mut pg = Postgres::start();
    let (a, _b) = fleet(&pg);
    let user = unique_name("lev");
    let secret = a.enroll_totp(&user);
    a.expect_rc(
        login(&a, CACHED, &user, &a.totp_code(&secret, 0)),
        PAM_SUCCESS,
    );
    pg.stop_server();
    // Guessing against the cache is counted there, under the same rules.
    let t = a.fail_to_threshold(CACHED, &user, TEST_RHOST, &a.wrong_code(&secret));
    assert!(t.contains(NOTICE), "{t}");
    let (rc, t) = login(&a, CACHED, &user, &a.totp_code(&secret, 1));
    assert_ne!(rc, PAM_SUCCESS, "a locked user passed the cache:\n{t}");
    assert!(t.contains("lock"), "{t}");
    pg.start_server();
}

/// The users in `d`'s cache.
fn cached_users(d: &TestDaemon) -> String {
    let out = Command::new("sqlite3")
        .arg(d.dir().join("state/totp-cache.db"))
        .arg("SELECT count(*) FROM totp")
        .output()
        .unwrap();
    assert!(out.status.success(), "sqlite3: {}", show(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Puts `policy` in force on `d` from its policy file.
fn reload(d: &TestDaemon, policy: &str) {
    std::fs::write(d.policy_path(), policy).unwrap();
    let out = d.mfactl(["policy", "reload"]);
    assert!(out.status.success(), "policy reload: {}", show(&out));
}

#[test]
fn without_a_cached_rule_in_force_a_host_keeps_nobody_in_its_cache() {
    let pg = Postgres::start();
    let strict = "[[rule]]\nname = \"strict\"\nall = true\nrequire = \"totp\"\n";
    let a = first_host(&pg, strict);
    let user = unique_name("ned");
    let secret = a.enroll_totp(&user);
    a.expect_rc(
        login(&a, STRICT, &user, &a.totp_code(&secret, 0)),
        PAM_SUCCESS,
    );
    assert_eq!(cached_users(&a), "0");
    // Kept while a cached rule is in force; dropped when none is, and not
    // back when one is again: logins in between did not update the entry.
    reload(&a, POLICY);
    a.expect_rc(
        login(&a, CACHED, &user, &a.totp_code(&secret, 1)),
        PAM_SUCCESS,
    );
    assert_eq!(cached_users(&a), "1");
    reload(&a, strict);
    assert_eq!(cached_users(&a), "0");
    reload(&a, POLICY);
    assert_eq!(cached_users(&a), "0");
}
