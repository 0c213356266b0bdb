//! The fleet's key ring: two real mfad daemons on one real PostgreSQL.
//! `mfactl key add` on one host, the key file copied to the other and that
//! host restarted, then `mfactl key rotate`: both hosts log users in
//! before and after, every secret is under the new key, and the other host
//! seals with it too. A host left running with the old key file fails a
//! re-sealed login with an error that names the missing key, and refuses
//! to start with it; a fleet never rotates to a key no other host has been
//! given. A database from before key ids migrates without locking anyone
//! out.
//!
//! Needs root, Debian's `postgresql` and `cargo build --workspace` first.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use mfad_tests::daemon::{TEST_RHOST, show};
use mfad_tests::pam::*;
use mfad_tests::postgres::{Postgres, write_private};
use mfad_tests::users::unique_name;
use mfad_tests::{TestConfig, TestDaemon, TestPolicy};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const SVC: &str = "mfa-test";

fn config() -> TestConfig {
    TestConfig {
        policy: TestPolicy {
            default: r#"{ any = ["totp", "backup"] }"#.into(),
            ..TestPolicy::default()
        },
        ..TestConfig::default()
    }
}

fn key_file(d: &TestDaemon) -> PathBuf {
    d.dir().join("state/mfad.key")
}

fn login(d: &TestDaemon, user: &str, answers: &[&str]) -> Transcript {
    d.expect_rc(d.login(SVC, user, TEST_RHOST, answers), PAM_SUCCESS)
}

#[test]
fn a_fleet_rotates_without_locking_out_a_host_that_got_the_new_key_file() {
    let pg = Postgres::start();
    let mut a = pg.member(config(), "web-1", None);
    a.migrate();
    a.launch();
    a.write_pam_service(SVC, &[]);
    let mut b = pg.member(config(), "web-2", Some(&a));
    b.launch();
    b.write_pam_service(SVC, &[]);
    let user = unique_name("flt");
    let secret = a.enroll_totp(&user);
    let doc = a.mfactl_json(&["backup-codes", "regenerate", "--user", &user]);
    let code = doc["codes"][0].as_str().unwrap().to_owned();
    let old_ring = std::fs::read(key_file(&a)).unwrap();
    // web-3 runs on, forgotten by whoever copies the new key file.
    let mut c = pg.member(config(), "web-3", Some(&a));
    c.launch();
    c.write_pam_service(SVC, &[]);

    // Nothing staged: a fleet host will not make up a key of its own.
    let out = a.mfactl(["key", "rotate"]);
    assert!(!out.status.success(), "{}", show(&out));
    assert!(show(&out).contains("mfactl key add"), "{}", show(&out));

    let doc = a.mfactl_json(&["key", "add"]);
    assert_eq!(doc["keys"][1]["role"], "staged", "{doc}");
    // Staged only: nothing recorded, and web-2 still starts with one key.
    assert_eq!(pg.sql("SELECT key_id FROM key_checks ORDER BY key_id"), "1");
    let ring = std::fs::read(key_file(&a)).unwrap();
    assert_eq!(ring.len(), 64);
    // The admin copies the key file to web-2 and restarts it.
    b.stop();
    write_private(&key_file(&b), &ring, 0o400);
    b.launch();

    let doc = a.mfactl_json(&["key", "rotate"]);
    assert_eq!(doc["resealed"], 1, "{doc}");
    assert_eq!(
        pg.sql("SELECT key_id FROM key_checks ORDER BY key_id"),
        "1\n2"
    );
    assert_eq!(
        pg.sql(&format!(
            "SELECT key_id FROM totp WHERE username = '{user}'"
        )),
        "2"
    );
    // Both hosts open the re-sealed secret; backup codes still work.
    login(&b, &user, &["1", &b.totp_code(&secret, 0)]);
    let t = login(&a, &user, &["2", &code]);
    assert!(t.contains("9 backup codes left."), "{t}");
    let out = b.mfactl(["key", "status"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("key 2: seals, 1 sealed values"),
        "{}",
        show(&out)
    );
    // web-2 heard of the rotation and seals what it enrolls with key 2.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !b.log_text().contains("key 2 seals now") {
        assert!(Instant::now() < deadline, "{}", b.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
    let other = unique_name("flu");
    b.enroll_totp(&other);
    assert_eq!(
        pg.sql("SELECT key_id, count(*) FROM totp GROUP BY key_id"),
        "2|2"
    );

    // The forgotten host cannot open the re-sealed secret: the login
    // fails with an internal error, and its log names the missing key.
    let (rc, t) = c.login(SVC, &user, TEST_RHOST, &["1", &c.totp_code(&secret, 1)]);
    assert_ne!(rc, PAM_SUCCESS, "{t}");
    let log = c.log_text();
    assert!(
        log.contains("sealed with key 2, which this host's key ring lacks"),
        "{log}"
    );
    // Restarted with only the old key file, it refuses to start, naming key 2.
    c.stop();
    assert_eq!(std::fs::read(key_file(&c)).unwrap(), old_ring);
    let f = c.start_expecting_failure();
    assert!(
        f.stderr.contains("lacks key 2") && f.stderr.contains("mfactl key rotate"),
        "{}",
        f.stderr
    );
    // With the fleet's key file it serves the same user.
    write_private(&key_file(&c), &ring, 0o400);
    c.launch();
    c.write_pam_service(SVC, &[]);
    login(&c, &user, &["1", &c.totp_code(&secret, 1)]);
}

/// A fleet database from before key ids (schema version 2, one
/// `key_check` row): the daemon asks for `mfad --migrate`, which makes
/// every secret key 1, and the user logs in as before, then after a
/// rotation.
#[test]
fn a_fleet_database_from_before_key_ids_keeps_working_after_migrate() {
    let pg = Postgres::start();
    let mut a = pg.member(config(), "web-1", None);
    a.migrate();
    a.launch();
    a.write_pam_service(SVC, &[]);
    let user = unique_name("pgold");
    let secret = a.enroll_totp(&user);
    a.stop();
    // Back to schema 2, as the previous release left it (renaming keeps
    // the tables mfad's own).
    pg.sql(
        "DELETE FROM key_checks WHERE key_id <> 1;
         ALTER TABLE key_checks RENAME COLUMN key_id TO id;
         ALTER TABLE key_checks RENAME TO key_check;
         ALTER TABLE totp DROP COLUMN key_id;
         ALTER TABLE totp_pending DROP COLUMN key_id;
         ALTER TABLE contacts DROP COLUMN address_key;
         ALTER TABLE contacts DROP COLUMN pending_key;
         UPDATE mfad_schema SET version = 2;",
    );
    let f = a.start_expecting_failure();
    assert!(f.stderr.contains("mfad --migrate"), "{}", f.stderr);
    a.migrate();
    assert_eq!(
        pg.sql(&format!(
            "SELECT key_id FROM totp WHERE username = '{user}'"
        )),
        "1"
    );
    a.launch();
    login(&a, &user, &["1", &a.totp_code(&secret, 0)]);
    a.mfactl_json(&["key", "add"]);
    let doc = a.mfactl_json(&["key", "rotate"]);
    assert_eq!(doc["resealed"], 1, "{doc}");
    login(&a, &user, &["1", &a.totp_code(&secret, 1)]);
}
