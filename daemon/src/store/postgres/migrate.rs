//! The PostgreSQL schema, in numbered steps. `mfad --migrate` applies the
//! missing ones (one host does it for the fleet, under a lock); a daemon
//! only checks the version at start-up and names what is missing. Append
//! new steps, never edit an old one. (`user` is a reserved word here, so
//! the column is `username`.)

use crate::store::StoreError;
use tokio_postgres::Client;

const MIGRATIONS: &[&str] = &[
    // 1: everything the SQLite schema holds at its version 9, with the host
    // name on audit rows and sessions.
    "CREATE TABLE totp (
        username TEXT PRIMARY KEY,
        secret BYTEA NOT NULL,
        algorithm TEXT NOT NULL,
        digits BIGINT NOT NULL,
        period BIGINT NOT NULL,
        last_step BIGINT NOT NULL,
        enrolled_at BIGINT NOT NULL,
        last_used BIGINT
     );
     CREATE TABLE totp_pending (
        username TEXT PRIMARY KEY,
        secret BYTEA NOT NULL,
        algorithm TEXT NOT NULL,
        digits BIGINT NOT NULL,
        period BIGINT NOT NULL,
        expires BIGINT NOT NULL
     );
     CREATE TABLE failures (
        username TEXT NOT NULL,
        factor TEXT NOT NULL,
        source TEXT NOT NULL,
        count BIGINT NOT NULL,
        last_failure BIGINT NOT NULL,
        locked_until BIGINT,
        PRIMARY KEY (username, factor, source)
     );
     CREATE TABLE audit (
        id BIGSERIAL PRIMARY KEY,
        host TEXT NOT NULL,
        time BIGINT NOT NULL,
        username TEXT NOT NULL,
        service TEXT NOT NULL,
        rhost TEXT,
        tty TEXT,
        channel TEXT NOT NULL,
        decision TEXT NOT NULL,
        reason TEXT NOT NULL,
        peer_uid BIGINT NOT NULL,
        rule TEXT,
        policy_version BIGINT,
        kind TEXT NOT NULL,
        actor TEXT NOT NULL,
        session_id BIGINT,
        request_id TEXT,
        ruser TEXT,
        caller_uid BIGINT,
        prev_hash TEXT,
        hash TEXT
     );
     CREATE INDEX audit_by_user ON audit (username, id);
     CREATE INDEX audit_by_host ON audit (host, id);
     CREATE INDEX audit_by_time ON audit (time);
     CREATE TABLE policy_versions (
        version BIGSERIAL PRIMARY KEY,
        sha256 TEXT NOT NULL,
        text TEXT NOT NULL,
        loaded_at BIGINT NOT NULL,
        loaded_by TEXT NOT NULL
     );
     CREATE TABLE backup_codes (
        username TEXT NOT NULL,
        id BIGINT NOT NULL,
        salt BYTEA NOT NULL,
        hash BYTEA NOT NULL,
        used_at BIGINT,
        PRIMARY KEY (username, id)
     );
     CREATE TABLE contacts (
        username TEXT NOT NULL,
        channel TEXT NOT NULL,
        address BYTEA,
        verified_at BIGINT,
        pending BYTEA,
        pending_at BIGINT,
        PRIMARY KEY (username, channel)
     );
     CREATE TABLE sent_codes (
        username TEXT NOT NULL,
        channel TEXT NOT NULL,
        purpose TEXT NOT NULL,
        salt BYTEA NOT NULL,
        hash BYTEA NOT NULL,
        sent_at BIGINT NOT NULL,
        expires BIGINT NOT NULL,
        failures BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (username, channel, purpose)
     );
     CREATE TABLE sends (
        username TEXT NOT NULL,
        channel TEXT NOT NULL,
        time BIGINT NOT NULL
     );
     CREATE INDEX sends_by_user ON sends (username, channel, time);
     CREATE TABLE tickets (
        hash BYTEA PRIMARY KEY,
        username TEXT NOT NULL,
        service TEXT NOT NULL,
        factors TEXT NOT NULL,
        device TEXT,
        expires BIGINT NOT NULL
     );
     CREATE TABLE sessions (
        id BIGSERIAL PRIMARY KEY,
        host TEXT NOT NULL,
        boot_id TEXT NOT NULL,
        audit_session BIGINT NOT NULL,
        username TEXT NOT NULL,
        uid BIGINT NOT NULL,
        service TEXT NOT NULL,
        rhost TEXT,
        tty TEXT,
        opened_at BIGINT NOT NULL,
        factors TEXT NOT NULL,
        device TEXT
     );
     CREATE INDEX sessions_by_audit ON sessions (host, boot_id, audit_session);
     CREATE TABLE trusted_devices (
        id BIGSERIAL PRIMARY KEY,
        username TEXT NOT NULL,
        key_hash BYTEA NOT NULL,
        key_type TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        first_ip TEXT,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        last_used BIGINT,
        revoked_at BIGINT
     );
     CREATE INDEX trusted_devices_by_user ON trusted_devices (username, key_hash);
     CREATE TABLE login_networks (
        username TEXT NOT NULL,
        network TEXT NOT NULL,
        first_seen BIGINT NOT NULL,
        last_seen BIGINT NOT NULL,
        PRIMARY KEY (username, network)
     );
     CREATE TABLE last_login (
        username TEXT PRIMARY KEY,
        time BIGINT NOT NULL,
        rhost TEXT NOT NULL,
        country TEXT
     );
     CREATE TABLE deliveries (
        id BIGSERIAL PRIMARY KEY,
        channel TEXT NOT NULL,
        prefix TEXT NOT NULL,
        verify_uid BIGINT,
        time BIGINT NOT NULL
     );
     CREATE INDEX deliveries_by_time ON deliveries (channel, time);
     CREATE TABLE key_check (
        id BIGINT PRIMARY KEY CHECK (id = 1),
        value BYTEA NOT NULL,
        recorded_at BIGINT NOT NULL
     );",
    // 2: the fleet's own traffic: requests to end a session on another
    // host, which versions were pushed to every host, and which version
    // each host has in force.
    "CREATE TABLE session_requests (
        id BIGSERIAL PRIMARY KEY,
        host TEXT NOT NULL,
        session_id BIGINT NOT NULL,
        by_uid BIGINT NOT NULL,
        by_host TEXT NOT NULL,
        requested_at BIGINT NOT NULL
     );
     CREATE INDEX session_requests_by_host ON session_requests (host);
     ALTER TABLE policy_versions ADD COLUMN pushed BOOLEAN NOT NULL DEFAULT FALSE;
     CREATE TABLE policy_hosts (
        host TEXT PRIMARY KEY,
        version BIGINT NOT NULL,
        since BIGINT NOT NULL
     );",
    // 3: a key ring: each sealed value names the key that sealed it, and
    // each key id has its check value. Everything sealed before is key 1,
    // the only key there was.
    "ALTER TABLE totp ADD COLUMN key_id BIGINT NOT NULL DEFAULT 1;
     ALTER TABLE totp_pending ADD COLUMN key_id BIGINT NOT NULL DEFAULT 1;
     ALTER TABLE contacts ADD COLUMN address_key BIGINT NOT NULL DEFAULT 1;
     ALTER TABLE contacts ADD COLUMN pending_key BIGINT NOT NULL DEFAULT 1;
     CREATE TABLE key_checks (
        key_id BIGINT PRIMARY KEY,
        value BYTEA NOT NULL,
        recorded_at BIGINT NOT NULL
     );
     INSERT INTO key_checks (key_id, value, recorded_at)
        SELECT 1, value, recorded_at FROM key_check;
     DROP TABLE key_check;",
];

/// The schema version this build needs.
pub fn latest() -> i64 {
    MIGRATIONS.len() as i64
}

const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS mfad_schema (version BIGINT NOT NULL)";

async fn version(client: &Client) -> Result<i64, StoreError> {
    let exists = client
        .query_one("SELECT to_regclass('mfad_schema') IS NOT NULL", &[])
        .await?
        .get::<_, bool>(0);
    if !exists {
        return Ok(0);
    }
    Ok(client
        .query_opt("SELECT version FROM mfad_schema", &[])
        .await?
        .map_or(0, |r| r.get(0)))
}

/// Refuses a schema that is not at this build's version.
pub async fn check(client: &Client) -> Result<(), StoreError> {
    let found = version(client).await?;
    let needed = latest();
    match found.cmp(&needed) {
        std::cmp::Ordering::Less => Err(StoreError::Behind { found, needed }),
        std::cmp::Ordering::Greater => Err(StoreError::Ahead { found, needed }),
        std::cmp::Ordering::Equal => Ok(()),
    }
}

/// Applies the missing steps, each in a transaction, under a lock so two
/// hosts migrating at once do not both apply a step.
pub async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    client.batch_execute(VERSION_TABLE).await?;
    let tx = client.transaction().await?;
    tx.batch_execute("LOCK TABLE mfad_schema IN EXCLUSIVE MODE")
        .await?;
    let found: i64 = tx
        .query_opt("SELECT version FROM mfad_schema", &[])
        .await?
        .map_or(0, |r| r.get(0));
    if found > latest() {
        return Err(StoreError::Ahead {
            found,
            needed: latest(),
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.batch_execute(sql).await?;
        log::info!("PostgreSQL schema migrated to version {}", i + 1);
    }
    tx.execute("DELETE FROM mfad_schema", &[]).await?;
    tx.execute(
        "INSERT INTO mfad_schema (version) VALUES ($1)",
        &[&latest()],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
