//! The key ring: `mfactl key rotate` re-seals every sealed secret with a new
//! key while logins (TOTP codes from oathtool through the real libpam, and
//! backup codes) keep working; each value's key id is read back from the
//! database itself; a database from before key ids upgrades without
//! locking anyone out; a host whose key file lacks a key the database
//! records refuses to start, naming the key. The fleet's half (two daemons
//! on one real PostgreSQL) is in `fleet_keys.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use mfad_tests::daemon::{EmailConfig, TEST_RHOST, show};
use mfad_tests::pam::*;
use mfad_tests::users::unique_name;
use mfad_tests::{TestConfig, TestDaemon, TestPolicy};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Command;

const SVC: &str = "mfa-test";

fn daemon() -> TestDaemon {
    let d = TestDaemon::with_config(TestConfig {
        policy: TestPolicy {
            default: r#"{ any = ["totp", "backup"] }"#.into(),
            ..TestPolicy::default()
        },
        // Only so that an address can be stored: nothing is sent.
        email: Some(EmailConfig::on_port(9)),
        ..TestConfig::default()
    });
    d.write_pam_service(SVC, &[]);
    d
}

fn key_file(d: &TestDaemon) -> PathBuf {
    d.dir().join("state/mfad.key")
}

/// One query through the sqlite3 CLI, rows as `a|b` lines.
fn sql(d: &TestDaemon, query: &str) -> String {
    let out = Command::new("sqlite3")
        .arg(d.dir().join("state/mfad.db"))
        .arg(query)
        .output()
        .expect("run sqlite3");
    assert!(out.status.success(), "sqlite3 {query}: {}", show(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn backup_codes(d: &TestDaemon, user: &str) -> Vec<String> {
    let doc = d.mfactl_json(&["backup-codes", "regenerate", "--user", user]);
    doc["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect()
}

fn login(d: &TestDaemon, user: &str, answers: &[&str]) -> Transcript {
    d.expect_rc(d.login(SVC, user, TEST_RHOST, answers), PAM_SUCCESS)
}

#[test]
fn a_rotation_reseals_every_secret_and_logins_keep_working() {
    let mut d = daemon();
    let user = unique_name("rota");
    let secret = d.enroll_totp(&user);
    let codes = backup_codes(&d, &user);
    d.set_contact(&user, "email", "rota@example.com");
    let before = sql(
        &d,
        &format!("SELECT key_id, hex(secret) FROM totp WHERE user = '{user}'"),
    );
    assert!(before.starts_with("1|"), "{before}");
    assert_eq!(
        sql(
            &d,
            &format!("SELECT address_key FROM contacts WHERE user = '{user}'")
        ),
        "1"
    );

    let doc = d.mfactl_json(&["key", "rotate"]);
    assert_eq!(doc["resealed"], 2, "{doc}");
    assert_eq!(doc["keys"][0]["role"], "old", "{doc}");
    assert_eq!(doc["keys"][1]["role"], "seals", "{doc}");
    assert_eq!(doc["keys"][1]["values"], 2, "{doc}");
    // The key file grew by one key, still root's alone.
    let meta = std::fs::metadata(key_file(&d)).unwrap();
    assert_eq!((meta.len(), meta.mode() & 0o777), (64, 0o400));
    // In the database: new key ids, new ciphertexts, two check values.
    let after = sql(
        &d,
        &format!("SELECT key_id, hex(secret) FROM totp WHERE user = '{user}'"),
    );
    assert!(
        after.starts_with("2|") && after[2..] != before[2..],
        "{after}"
    );
    assert_eq!(
        sql(
            &d,
            &format!("SELECT address_key FROM contacts WHERE user = '{user}'")
        ),
        "2"
    );
    assert_eq!(
        sql(&d, "SELECT key_id FROM key_checks ORDER BY key_id"),
        "1\n2"
    );
    let audit = sql(
        &d,
        "SELECT reason FROM audit WHERE reason LIKE 'key rotate%'",
    );
    assert_eq!(audit, "key rotate: key 2 seals; 2 values re-sealed");

    // The re-sealed TOTP secret opens; backup codes (keyed hashes) still work.
    login(&d, &user, &["1", &d.totp_code(&secret, 0)]);
    let t = login(&d, &user, &["2", &codes[0]]);
    assert!(t.contains("9 backup codes left."), "{t}");
    // The contact opens too (it is shown masked).
    let status = d.mfactl_json(&["status", "--user", &user]);
    assert!(status.to_string().contains("r***@example.com"), "{status}");

    // After a restart the ring is read again and key 2 still seals.
    d.restart();
    let t = login(&d, &user, &["2", &codes[1]]);
    assert!(t.contains("8 backup codes left."), "{t}");
    let out = d.mfactl(["key", "status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        text.contains("key 1: old, 0 sealed values")
            && text.contains("key 2: seals, 2 sealed values"),
        "{text}"
    );
    // A second rotation moves everything on again.
    let doc = d.mfactl_json(&["key", "rotate"]);
    assert_eq!(
        (doc["resealed"].as_u64(), doc["keys"][2]["id"].as_u64()),
        (Some(2), Some(3))
    );
    login(&d, &user, &["1", &d.totp_code(&secret, 1)]);
}

#[test]
fn only_root_rotates() {
    let d = daemon();
    // uid 65534 (nobody) is no admin; even an admin would be refused.
    let out = d.mfactl_as(65534, 65534, ["key", "rotate"]);
    assert!(!out.status.success(), "{}", show(&out));
    let text = show(&out);
    assert!(
        text.contains("key rotate: only root may do this") && text.contains("Run it as root."),
        "{text}"
    );
    assert_eq!(std::fs::metadata(key_file(&d)).unwrap().len(), 32);
}

/// A value that does not open stops a rotation, which says which and how
/// far it got; once that is fixed, `key rotate` finishes the same rotation
/// rather than starting another.
#[test]
fn a_rotation_stopped_part_way_is_finished_by_the_next() {
    let d = daemon();
    let user = unique_name("half");
    let secret = d.enroll_totp(&user);
    d.set_contact(&user, "email", "half@example.com");
    // A contact that names a key nobody has (a restore gone wrong).
    sql(
        &d,
        &format!("UPDATE contacts SET address_key = 7 WHERE user = '{user}'"),
    );
    let out = d.mfactl(["key", "rotate"]);
    assert!(!out.status.success(), "{}", show(&out));
    let text = show(&out);
    assert!(
        text.contains("key 2 seals; 0 values re-sealed, then a secret of")
            && text.contains("sealed with key 7"),
        "{text}"
    );
    // Still readable under key 1 meanwhile.
    login(&d, &user, &["1", &d.totp_code(&secret, 0)]);
    let out = d.mfactl(["email", "clear", "--user", &user]);
    assert!(out.status.success(), "{}", show(&out));
    let doc = d.mfactl_json(&["key", "rotate"]);
    assert_eq!(doc["resealed"], 1, "{doc}");
    assert!(
        doc["message"].as_str().unwrap().contains("already sealed"),
        "{doc}"
    );
    assert_eq!(std::fs::metadata(key_file(&d)).unwrap().len(), 64);
    assert_eq!(
        sql(
            &d,
            &format!("SELECT key_id FROM totp WHERE user = '{user}'")
        ),
        "2"
    );
    login(&d, &user, &["1", &d.totp_code(&secret, 1)]);
}

/// A key file holding the old key only, over a database that records the
/// new one: mfad refuses to start and names the missing key; with the
/// whole ring back it serves, and the user logs in.
#[test]
fn a_key_file_without_the_newest_key_is_refused_at_start() {
    let mut d = daemon();
    let user = unique_name("ring");
    d.enroll_totp(&user);
    let codes = backup_codes(&d, &user);
    let old = std::fs::read(key_file(&d)).unwrap();
    let doc = d.mfactl_json(&["key", "rotate"]);
    assert_eq!(doc["resealed"], 1, "{doc}");
    let ring = std::fs::read(key_file(&d)).unwrap();
    d.stop();
    let path = key_file(&d).display().to_string();
    let check = check_config(&d);
    assert!(
        check.contains(&format!(
            "key {path}: 2 keys, matching the database; key 2 seals"
        )),
        "{check}"
    );
    put_key(&d, &old);
    assert!(check_config(&d).contains("lacks key 2"));
    let f = d.start_expecting_failure();
    assert!(
        f.stderr.contains("lacks key 2")
            && f.stderr
                .contains("Copy the key file from the host that rotated"),
        "{}",
        f.stderr
    );
    // A wrong second key is refused as a wrong key, naming which one.
    let mut wrong = ring.clone();
    wrong[40] ^= 1;
    put_key(&d, &wrong);
    let f = d.start_expecting_failure();
    assert!(f.stderr.contains("its key 2 differs"), "{}", f.stderr);
    put_key(&d, &ring);
    d.launch();
    login(&d, &user, &["2", &codes[0]]);
}

/// A database written before key ids (schema version 9, one `key_check`
/// row, no key id columns) is migrated at start: its secrets are key 1
/// and open with the key file of one key, as before.
#[test]
fn a_database_from_before_key_ids_keeps_working() {
    let mut d = daemon();
    let user = unique_name("olde");
    let secret = d.enroll_totp(&user);
    d.set_contact(&user, "email", "olde@example.com");
    d.stop();
    // Back to schema 9, as the previous release left it.
    sql(
        &d,
        "CREATE TABLE key_check (id INTEGER PRIMARY KEY CHECK (id = 1), value BLOB NOT NULL, recorded_at INTEGER NOT NULL);
         INSERT INTO key_check SELECT 1, value, recorded_at FROM key_checks WHERE key_id = 1;
         DROP TABLE key_checks;
         ALTER TABLE totp DROP COLUMN key_id;
         ALTER TABLE totp_pending DROP COLUMN key_id;
         ALTER TABLE contacts DROP COLUMN address_key;
         ALTER TABLE contacts DROP COLUMN pending_key;
         PRAGMA user_version = 9;",
    );
    d.launch();
    // Migrated through every step since (11: the login tables' keys).
    assert_eq!(sql(&d, "PRAGMA user_version"), "11");
    assert_eq!(
        sql(
            &d,
            &format!("SELECT key_id FROM totp WHERE user = '{user}'")
        ),
        "1"
    );
    login(&d, &user, &["1", &d.totp_code(&secret, 0)]);
    let doc = d.mfactl_json(&["key", "rotate"]);
    assert_eq!(doc["resealed"], 2, "{doc}");
    login(&d, &user, &["1", &d.totp_code(&secret, 1)]);
}

/// `mfad --check-config`'s output, whether it succeeds or not.
fn check_config(d: &TestDaemon) -> String {
    let out = Command::new(mfad_tests::bins::mfad())
        .arg("--config")
        .arg(d.config_path())
        .arg("--check-config")
        .output()
        .unwrap();
    show(&out)
}

fn put_key(d: &TestDaemon, bytes: &[u8]) {
    let path = key_file(d);
    let _ = std::fs::remove_file(&path);
    std::fs::write(&path, bytes).unwrap();
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o400);
    std::fs::set_permissions(&path, perms).unwrap();
}
