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
