//! Audit rows and their hash chain (see `crate::audit::chain`). Every insert
//! links to the newest row inside the caller's transaction, under the one
//! connection's lock, so the chain has no forks.

use super::SqliteStore;
use crate::audit::Event;
use crate::audit::chain::StoredRow;
use crate::audit::record::{Body, GENESIS, SCHEMA, rfc3339};
use crate::store::{AuditLog, StoreError};
use rusqlite::{Connection, OptionalExtension, params};
use std::sync::Arc;

/// Rows read per lock by `each_audit_row`.
const CHUNK: i64 = 2000;

/// Appends an audit row to the hash chain, in the caller's transaction.
pub(super) fn insert(conn: &Connection, e: &Event) -> Result<(), StoreError> {
    let last: Option<(i64, Option<String>)> = conn
        .prepare_cached("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (last_id, prev) = last.unwrap_or((0, None));
    let id = last_id + 1;
    let body = Body::of(
        e,
        Some(id),
        Some(prev.unwrap_or_else(|| GENESIS.to_owned())),
    );
    let record = body.sealed();
    let b = &record.body;
    conn.prepare_cached(
        "INSERT INTO audit (id, time, user, service, rhost, tty, channel, decision, reason,
                            peer_uid, rule, policy_version, host, kind, actor, session_id,
                            request_id, prev_hash, hash, ruser, caller_uid)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                 ?18, ?19, ?20, ?21)",
    )?
    .execute(params![
        id,
        e.time,
        b.user,
        b.service,
        b.rhost,
        b.tty,
        b.channel,
        b.decision,
        b.reason,
        b.peer_uid,
        b.rule,
        b.policy_version,
        b.host,
        b.kind,
        b.actor,
        b.session_id,
        b.request_id,
        b.prev_hash,
        record.hash,
        b.ruser,
        b.caller_uid,
    ])?;
    // Kept for the stream; a rolled-back transaction drops the event too.
    let _ = e.stored.set(Arc::new(record));
    Ok(())
}

impl AuditLog for SqliteStore {
    fn audit(&self, event: &Event) -> Result<(), StoreError> {
        insert(&self.conn(), event)
    }

    fn audit_rows(
        &self,
        user: Option<&str>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<StoredRow>, StoreError> {
        rows_where(
            &self.reader(),
            "(?1 IS NULL OR user = ?1) AND id < ?2 ORDER BY id DESC LIMIT ?3",
            params![user, before.unwrap_or(i64::MAX), limit],
        )
    }

    fn each_audit_row(&self, each: &mut dyn FnMut(StoredRow)) -> Result<(), StoreError> {
        let mut after = i64::MIN;
        loop {
            // A chunk per lock: verification never holds logins up for long.
            let rows = rows_where(
                &self.conn(),
                "id > ?1 ORDER BY id LIMIT ?2",
                params![after, CHUNK],
            )?;
            let Some(last) = rows.last() else {
                return Ok(());
            };
            after = last.id;
            rows.into_iter().for_each(&mut *each);
        }
    }

    fn purge_audit(&self, before: i64) -> Result<usize, StoreError> {
        super::retention::purge(self, before)
    }
}

/// The audit rows that match `filter` (a WHERE clause with its ordering),
/// every column: the one place rows are read.
pub(super) fn rows_where(
    conn: &Connection,
    filter: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<StoredRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT id, time, user, service, rhost, tty, channel, decision, reason, peer_uid,
                rule, policy_version, host, kind, actor, session_id, request_id,
                prev_hash, hash, ruser, caller_uid
         FROM audit WHERE {filter}"
    ))?;
    let rows = stmt.query_map(args, |r| {
        let id: i64 = r.get(0)?;
        let time: i64 = r.get(1)?;
        Ok(StoredRow {
            id,
            time,
            body: Body {
                schema: SCHEMA.to_owned(),
                seq: Some(id),
                time: rfc3339(time),
                user: r.get(2)?,
                service: r.get(3)?,
                rhost: r.get(4)?,
                tty: r.get(5)?,
                channel: r.get(6)?,
                decision: r.get(7)?,
                reason: r.get(8)?,
                peer_uid: r.get(9)?,
                rule: r.get(10)?,
                policy_version: r.get(11)?,
                host: r.get::<_, Option<String>>(12)?.unwrap_or_default(),
                kind: r.get::<_, Option<String>>(13)?.unwrap_or_default(),
                actor: r.get::<_, Option<String>>(14)?.unwrap_or_default(),
                session_id: r.get(15)?,
                request_id: r.get(16)?,
                ruser: r.get(19)?,
                caller_uid: r.get(20)?,
                prev_hash: r.get(17)?,
            },
            hash: r.get(18)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
