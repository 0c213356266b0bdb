//! Schema migrations, applied in order; `PRAGMA user_version` records the
//! last one applied. Append new steps, never edit an old one.

use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: TOTP, pending enrollments, failure counters, audit.
    "CREATE TABLE totp (
        user TEXT PRIMARY KEY,
        secret BLOB NOT NULL,
        algorithm TEXT NOT NULL,
        digits INTEGER NOT NULL,
        period INTEGER NOT NULL,
        last_step INTEGER NOT NULL,
        enrolled_at INTEGER NOT NULL,
        last_used INTEGER
     );
     CREATE TABLE totp_pending (
        user TEXT PRIMARY KEY,
        secret BLOB NOT NULL,
        algorithm TEXT NOT NULL,
        digits INTEGER NOT NULL,
        period INTEGER NOT NULL,
        expires INTEGER NOT NULL
     );
     CREATE TABLE failures (
        user TEXT NOT NULL,
        channel TEXT NOT NULL,
        source TEXT NOT NULL,
        count INTEGER NOT NULL,
        last_failure INTEGER NOT NULL,
        locked_until INTEGER,
        PRIMARY KEY (user, channel, source)
     );
     CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        time INTEGER NOT NULL,
        user TEXT NOT NULL,
        service TEXT NOT NULL,
        rhost TEXT,
        tty TEXT,
        channel TEXT NOT NULL,
        decision TEXT NOT NULL,
        reason TEXT NOT NULL,
        peer_uid INTEGER NOT NULL
     );
     CREATE INDEX audit_by_user ON audit (user, id);",
    // 2: policy versions; audit rows name the rule and version that decided.
    "CREATE TABLE policy_versions (
        version INTEGER PRIMARY KEY,
        sha256 TEXT NOT NULL,
        text TEXT NOT NULL,
        loaded_at INTEGER NOT NULL,
        loaded_by TEXT NOT NULL
     );
     ALTER TABLE audit ADD COLUMN rule TEXT;
     ALTER TABLE audit ADD COLUMN policy_version INTEGER;",
    // 3: backup codes, stored as salted keyed hashes.
    "CREATE TABLE backup_codes (
        user TEXT NOT NULL,
        id INTEGER NOT NULL,
        salt BLOB NOT NULL,
        hash BLOB NOT NULL,
        used_at INTEGER,
        PRIMARY KEY (user, id)
     );",
    // 4: phone numbers and email addresses (sealed), the codes sent to them
    // (salted keyed hashes), and every send, for the hourly cap.
    "CREATE TABLE contacts (
        user TEXT NOT NULL,
        channel TEXT NOT NULL,
        address BLOB,
        verified_at INTEGER,
        pending BLOB,
        pending_at INTEGER,
        PRIMARY KEY (user, channel)
     );
     CREATE TABLE sent_codes (
        user TEXT NOT NULL,
        channel TEXT NOT NULL,
        purpose TEXT NOT NULL,
        salt BLOB NOT NULL,
        hash BLOB NOT NULL,
        sent_at INTEGER NOT NULL,
        expires INTEGER NOT NULL,
        failures INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (user, channel, purpose)
     );
     CREATE TABLE sends (
        user TEXT NOT NULL,
        channel TEXT NOT NULL,
        time INTEGER NOT NULL
     );
     CREATE INDEX sends_by_user ON sends (user, channel, time);",
    // 5: login sessions and the tickets that link an authentication to its
    // session, trusted devices (keyed hashes of SSH public keys), and the
    // networks and country of each user's successful logins (risk signals).
    "CREATE TABLE tickets (
        hash BLOB PRIMARY KEY,
        user TEXT NOT NULL,
        service TEXT NOT NULL,
        factors TEXT NOT NULL,
        device TEXT,
        expires INTEGER NOT NULL
     );
     CREATE TABLE sessions (
        id INTEGER PRIMARY KEY,
        boot_id TEXT NOT NULL,
        audit_session INTEGER NOT NULL,
        user TEXT NOT NULL,
        uid INTEGER NOT NULL,
        service TEXT NOT NULL,
        rhost TEXT,
        tty TEXT,
        opened_at INTEGER NOT NULL,
        factors TEXT NOT NULL,
        device TEXT
     );
     CREATE INDEX sessions_by_audit ON sessions (boot_id, audit_session);
     CREATE TABLE trusted_devices (
        id INTEGER PRIMARY KEY,
        user TEXT NOT NULL,
        key_hash BLOB NOT NULL,
        key_type TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        first_ip TEXT,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        last_used INTEGER,
        revoked_at INTEGER
     );
     CREATE INDEX trusted_devices_by_user ON trusted_devices (user, key_hash);
     CREATE TABLE login_networks (
        user TEXT NOT NULL,
        network TEXT NOT NULL,
        first_seen INTEGER NOT NULL,
        last_seen INTEGER NOT NULL,
        PRIMARY KEY (user, network)
     );
     CREATE TABLE last_login (
        user TEXT PRIMARY KEY,
        time INTEGER NOT NULL,
        rhost TEXT NOT NULL,
        country TEXT
     );",
    // 6: every message handed to a provider or mail server, for the global
    // caps (per channel, per destination prefix, verifications per uid).
    "CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY,
        channel TEXT NOT NULL,
        prefix TEXT NOT NULL,
        verify_uid INTEGER,
        time INTEGER NOT NULL
     );
     CREATE INDEX deliveries_by_time ON deliveries (channel, time);",
    // 7: a check value of the key the secrets are sealed with, so a lost or
    // wrong key is refused at start instead of failing every login.
    "CREATE TABLE key_check (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        value BLOB NOT NULL,
        recorded_at INTEGER NOT NULL
     );",
    // 8: the audit hash chain and the fields of the mfad.audit.v1 record.
    // Rows from before stay unchained; the chain starts after them.
    "ALTER TABLE audit ADD COLUMN host TEXT;
     ALTER TABLE audit ADD COLUMN kind TEXT;
     ALTER TABLE audit ADD COLUMN actor TEXT;
     ALTER TABLE audit ADD COLUMN session_id INTEGER;
     ALTER TABLE audit ADD COLUMN request_id TEXT;
     ALTER TABLE audit ADD COLUMN prev_hash TEXT;
     ALTER TABLE audit ADD COLUMN hash TEXT;",
    // 9: who is asking: the PAM_RUSER of a login and the real uid of the
    // process that asked (su and sudo run as root for someone).
    "ALTER TABLE audit ADD COLUMN ruser TEXT;
     ALTER TABLE audit ADD COLUMN caller_uid INTEGER;",
    // 10: a key ring: each sealed value names the key that sealed it, and
    // each key id has its check value. Everything sealed before is key 1,
    // the only key there was.
    "ALTER TABLE totp ADD COLUMN key_id INTEGER NOT NULL DEFAULT 1;
     ALTER TABLE totp_pending ADD COLUMN key_id INTEGER NOT NULL DEFAULT 1;
     ALTER TABLE contacts ADD COLUMN address_key INTEGER NOT NULL DEFAULT 1;
     ALTER TABLE contacts ADD COLUMN pending_key INTEGER NOT NULL DEFAULT 1;
     CREATE TABLE key_checks (
        key_id INTEGER PRIMARY KEY,
        value BLOB NOT NULL,
        recorded_at INTEGER NOT NULL
     );
     INSERT INTO key_checks (key_id, value, recorded_at)
        SELECT 1, value, recorded_at FROM key_check;
     DROP TABLE key_check;",
    // 11: the tables read and written by their text keys stored in their
    // key's order (WITHOUT ROWID): a row is found with one search instead
    // of two and written as one page instead of two (the table's and its
    // key index's). Same columns, same rows; a row with a NULL key, which
    // no lookup could ever find, is not carried over.
    "CREATE TABLE totp_new (
        user TEXT PRIMARY KEY,
        secret BLOB NOT NULL,
        algorithm TEXT NOT NULL,
        digits INTEGER NOT NULL,
        period INTEGER NOT NULL,
        last_step INTEGER NOT NULL,
        enrolled_at INTEGER NOT NULL,
        last_used INTEGER,
        key_id INTEGER NOT NULL DEFAULT 1
     ) WITHOUT ROWID;
     INSERT INTO totp_new
        (user, secret, algorithm, digits, period, last_step, enrolled_at, last_used, key_id)
        SELECT user, secret, algorithm, digits, period, last_step, enrolled_at, last_used, key_id
        FROM totp WHERE user IS NOT NULL;
     DROP TABLE totp;
     ALTER TABLE totp_new RENAME TO totp;
     CREATE TABLE failures_new (
        user TEXT NOT NULL,
        channel TEXT NOT NULL,
        source TEXT NOT NULL,
        count INTEGER NOT NULL,
        last_failure INTEGER NOT NULL,
        locked_until INTEGER,
        PRIMARY KEY (user, channel, source)
     ) WITHOUT ROWID;
     INSERT INTO failures_new (user, channel, source, count, last_failure, locked_until)
        SELECT user, channel, source, count, last_failure, locked_until FROM failures;
     DROP TABLE failures;
     ALTER TABLE failures_new RENAME TO failures;
     CREATE TABLE tickets_new (
        hash BLOB PRIMARY KEY,
        user TEXT NOT NULL,
        service TEXT NOT NULL,
        factors TEXT NOT NULL,
        device TEXT,
        expires INTEGER NOT NULL
     ) WITHOUT ROWID;
     INSERT INTO tickets_new (hash, user, service, factors, device, expires)
        SELECT hash, user, service, factors, device, expires FROM tickets WHERE hash IS NOT NULL;
     DROP TABLE tickets;
     ALTER TABLE tickets_new RENAME TO tickets;
     CREATE TABLE login_networks_new (
        user TEXT NOT NULL,
        network TEXT NOT NULL,
        first_seen INTEGER NOT NULL,
        last_seen INTEGER NOT NULL,
        PRIMARY KEY (user, network)
     ) WITHOUT ROWID;
     INSERT INTO login_networks_new (user, network, first_seen, last_seen)
        SELECT user, network, first_seen, last_seen FROM login_networks;
     DROP TABLE login_networks;
     ALTER TABLE login_networks_new RENAME TO login_networks;
     CREATE TABLE last_login_new (
        user TEXT PRIMARY KEY,
        time INTEGER NOT NULL,
        rhost TEXT NOT NULL,
        country TEXT
     ) WITHOUT ROWID;
     INSERT INTO last_login_new (user, time, rhost, country)
        SELECT user, time, rhost, country FROM last_login WHERE user IS NOT NULL;
     DROP TABLE last_login;
     ALTER TABLE last_login_new RENAME TO last_login;
     CREATE TABLE totp_pending_new (
        user TEXT PRIMARY KEY,
        secret BLOB NOT NULL,
        algorithm TEXT NOT NULL,
        digits INTEGER NOT NULL,
        period INTEGER NOT NULL,
        expires INTEGER NOT NULL,
        key_id INTEGER NOT NULL DEFAULT 1
     ) WITHOUT ROWID;
     INSERT INTO totp_pending_new (user, secret, algorithm, digits, period, expires, key_id)
        SELECT user, secret, algorithm, digits, period, expires, key_id
        FROM totp_pending WHERE user IS NOT NULL;
     DROP TABLE totp_pending;
     ALTER TABLE totp_pending_new RENAME TO totp_pending;
     CREATE TABLE backup_codes_new (
        user TEXT NOT NULL,
        id INTEGER NOT NULL,
        salt BLOB NOT NULL,
        hash BLOB NOT NULL,
        used_at INTEGER,
        PRIMARY KEY (user, id)
     ) WITHOUT ROWID;
     INSERT INTO backup_codes_new (user, id, salt, hash, used_at)
        SELECT user, id, salt, hash, used_at FROM backup_codes;
     DROP TABLE backup_codes;
     ALTER TABLE backup_codes_new RENAME TO backup_codes;
     CREATE TABLE contacts_new (
        user TEXT NOT NULL,
        channel TEXT NOT NULL,
        address BLOB,
        verified_at INTEGER,
        pending BLOB,
        pending_at INTEGER,
        address_key INTEGER NOT NULL DEFAULT 1,
        pending_key INTEGER NOT NULL DEFAULT 1,
        PRIMARY KEY (user, channel)
     ) WITHOUT ROWID;
     INSERT INTO contacts_new
        (user, channel, address, verified_at, pending, pending_at, address_key, pending_key)
        SELECT user, channel, address, verified_at, pending, pending_at, address_key, pending_key
        FROM contacts;
     DROP TABLE contacts;
     ALTER TABLE contacts_new RENAME TO contacts;
     CREATE TABLE sent_codes_new (
        user TEXT NOT NULL,
        channel TEXT NOT NULL,
        purpose TEXT NOT NULL,
        salt BLOB NOT NULL,
        hash BLOB NOT NULL,
        sent_at INTEGER NOT NULL,
        expires INTEGER NOT NULL,
        failures INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (user, channel, purpose)
     ) WITHOUT ROWID;
     INSERT INTO sent_codes_new (user, channel, purpose, salt, hash, sent_at, expires, failures)
        SELECT user, channel, purpose, salt, hash, sent_at, expires, failures FROM sent_codes;
     DROP TABLE sent_codes;
     ALTER TABLE sent_codes_new RENAME TO sent_codes;",
];

pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let current: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
        log::info!("database schema migrated to version {}", i + 1);
    }
    Ok(())
}

/// The schema version this build writes.
pub fn latest() -> usize {
    MIGRATIONS.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Applies the first `n` migrations, as an older mfad left the file.
    fn at_version(conn: &mut Connection, n: usize) {
        for (i, sql) in MIGRATIONS.iter().enumerate().take(n) {
            let tx = conn.transaction().unwrap();
            tx.execute_batch(sql).unwrap();
            tx.pragma_update(None, "user_version", i + 1).unwrap();
            tx.commit().unwrap();
        }
    }

    /// Every row of `table`, each as its columns' text, in key order.
    fn rows(conn: &Connection, table: &str) -> Vec<String> {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM {table} ORDER BY 1, 2"))
            .unwrap();
        let columns = stmt.column_count();
        stmt.query_map([], |r| {
            (0..columns)
                .map(|i| Ok(format!("{:?}", r.get_ref(i)?)))
                .collect::<rusqlite::Result<Vec<_>>>()
                .map(|c| c.join("|"))
        })
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
    }

    const REKEYED: [&str; 9] = [
        "totp",
        "failures",
        "tickets",
        "login_networks",
        "last_login",
        "totp_pending",
        "backup_codes",
        "contacts",
        "sent_codes",
    ];

    #[test]
    fn the_login_tables_keep_every_row_when_they_lose_their_rowid() {
        let mut conn = Connection::open_in_memory().unwrap();
        at_version(&mut conn, 10);
        conn.execute_batch(
            "INSERT INTO totp VALUES ('alice', x'0102', 'SHA1', 6, 30, 900, 1000, NULL, 2);
             INSERT INTO totp VALUES ('bob', x'03', 'SHA256', 8, 60, 5, 7, 8, 1);
             INSERT INTO failures VALUES ('alice', 'totp', '192.0.2.1', 3, 1000, 1300);
             INSERT INTO failures VALUES ('alice', 'totp', 'local uid 0', 1, 990, NULL);
             INSERT INTO tickets VALUES (x'aa', 'alice', 'sshd', 'totp', NULL, 2000);
             INSERT INTO login_networks VALUES ('alice', '192.0.2.0/24', 10, 20);
             INSERT INTO last_login VALUES ('alice', 20, '192.0.2.1', 'NL');
             INSERT INTO totp_pending VALUES ('carol', x'04', 'SHA1', 6, 30, 3000, 2);
             INSERT INTO backup_codes VALUES ('alice', 1, x'05', x'06', NULL);
             INSERT INTO backup_codes VALUES ('alice', 2, x'07', x'08', 1500);
             INSERT INTO contacts VALUES ('alice', 'sms', x'09', 100, NULL, NULL, 2, 1);
             INSERT INTO sent_codes VALUES ('alice', 'email', 'login', x'0a', x'0b', 10, 310, 1);",
        )
        .unwrap();
        let before: Vec<_> = REKEYED.iter().map(|t| rows(&conn, t)).collect();
        // A row no lookup can find (a NULL key) is left behind.
        conn.execute_batch(
            "INSERT INTO totp (user, secret, algorithm, digits, period, last_step, enrolled_at)
             VALUES (NULL, x'00', 'SHA1', 6, 30, 0, 0);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let version: usize = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, latest());
        let after: Vec<_> = REKEYED.iter().map(|t| rows(&conn, t)).collect();
        assert_eq!(before, after);
        assert_eq!(after[0].len(), 2, "{after:?}");
        for table in REKEYED {
            let sql: String = conn
                .query_row(
                    "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                    [table],
                    |r| r.get(0),
                )
                .unwrap();
            assert!(sql.ends_with("WITHOUT ROWID"), "{table}: {sql}");
        }
        // The key still refuses a second row for the same user.
        let dup = conn.execute(
            "INSERT INTO totp (user, secret, algorithm, digits, period, last_step, enrolled_at)
             VALUES ('alice', x'00', 'SHA1', 6, 30, 0, 0)",
            [],
        );
        assert!(dup.is_err());
        // And the column added by migration 10 keeps its default.
        conn.execute(
            "INSERT INTO totp (user, secret, algorithm, digits, period, last_step, enrolled_at)
             VALUES ('dave', x'00', 'SHA1', 6, 30, 0, 0)",
            [],
        )
        .unwrap();
        let key: i64 = conn
            .query_row("SELECT key_id FROM totp WHERE user = 'dave'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(key, 1);
    }
}
