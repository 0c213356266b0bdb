//! Audit rows in the shared database. Each host keeps its own hash chain
//! (rows of one host link to that host's previous row), so hosts never
//! wait on each other to append; a lock per host keeps its chain from
//! forking when its pooled connections write at once.

use super::{PgStore, u32_of};
use crate::audit::Event;
use crate::audit::chain::StoredRow;
use crate::audit::record::{Body, GENESIS, Record, SCHEMA, rfc3339};
use crate::store::{AuditLog, StoreError};
use deadpool_postgres::GenericClient;
use std::sync::Arc;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};

/// Rows read per query by `each_audit_row`.
const CHUNK: i64 = 2000;
/// Rows deleted per statement by `purge_audit`.
const BATCH: i64 = 10_000;

/// Prepares `insert`'s statements (once per connection), so that `insert`
/// sends them when first polled: they can then go out in one write with
/// statements before and after them (`pipeline`).
pub(super) async fn prepare(c: &impl GenericClient) -> Result<[Statement; 2], StoreError> {
    Ok([
        c.prepare_cached("SELECT pg_advisory_xact_lock(hashtext('mfad audit ' || $1))")
            .await?,
        // The place (the next id, the hash it follows) is read and the
        // row's hash computed here, by the server, so the row needs no
        // round trip of its own: the hash covers the record's JSON with
        // the id after `head` and the previous hash after `mid`
        // (`Body::around_place`).
        c.prepare_cached(&format!(
            "INSERT INTO audit (id, time, username, service, rhost, tty, channel, decision,
                                reason, peer_uid, rule, policy_version, host, kind, actor,
                                session_id, request_id, prev_hash, hash, ruser, caller_uid)
             SELECT p.id, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                    $17, p.prev,
                    encode(sha256($18::BYTEA || convert_to(p.id::TEXT, 'UTF8') || $19::BYTEA
                                  || convert_to(p.prev || '\"}}', 'UTF8')), 'hex'),
                    $20, $21
             FROM (SELECT nextval(pg_get_serial_sequence('audit', 'id')) AS id,
                          COALESCE((SELECT hash FROM audit WHERE host = $1
                                    ORDER BY id DESC LIMIT 1), '{GENESIS}') AS prev) AS p
             RETURNING id, prev_hash, hash"
        ))
        .await?,
    ])
}

/// Appends `e` to `host`'s chain, in the caller's transaction: the chain's
/// lock (held to the transaction's end) and the row, sent together (one
/// round trip, or none of their own in a pipeline). The server runs each
/// statement with a snapshot of its own, so the row's read of the last hash
/// starts after the lock is granted and sees the previous holder's row.
pub(super) async fn insert(
    tx: &impl GenericClient,
    host: &str,
    e: &Event,
) -> Result<(), StoreError> {
    let [lock, put] = prepare(tx).await?;
    let body = Body::of(e, None, None);
    let (head, mid) = body.around_place();
    let b = &body;
    let args: [&(dyn ToSql + Sync); 21] = [
        &host,
        &e.time,
        &b.user,
        &b.service,
        &b.rhost,
        &b.tty,
        &b.channel,
        &b.decision,
        &b.reason,
        &i64::from(b.peer_uid),
        &b.rule,
        &b.policy_version,
        &b.host,
        &b.kind,
        &b.actor,
        &b.session_id.map(i64::from),
        &b.request_id,
        &head,
        &mid,
        &b.ruser,
        &b.caller_uid.map(i64::from),
    ];
    let (_, row) = tokio::try_join!(
        biased;
        tx.execute(&lock, &args[..1]),
        tx.query_one(&put, &args),
    )?;
    let record = Record {
        body: Body {
            seq: Some(row.get(0)),
            prev_hash: Some(row.get(1)),
            ..body
        },
        hash: Some(row.get(2)),
    };
    debug_assert_eq!(record.hash, Some(record.body.hash()), "the server's hash");
    // Kept for the stream; a rolled-back transaction drops the event too.
    let _ = e.stored.set(Arc::new(record));
    Ok(())
}

/// The audit rows that match `filter` (a WHERE clause with its ordering).
pub(super) async fn rows_where(
    c: &impl GenericClient,
    filter: &str,
    args: &[&(dyn ToSql + Sync)],
) -> Result<Vec<StoredRow>, StoreError> {
    let rows = c
        .query(
            &format!(
                "SELECT id, time, username, service, rhost, tty, channel, decision, reason,
                        peer_uid, rule, policy_version, host, kind, actor, session_id,
                        request_id, prev_hash, hash, ruser, caller_uid
                 FROM audit WHERE {filter}"
            ),
            args,
        )
        .await?;
    Ok(rows.iter().map(row).collect())
}

fn row(r: &Row) -> StoredRow {
    let id: i64 = r.get(0);
    let time: i64 = r.get(1);
    StoredRow {
        id,
        time,
        body: Body {
            schema: SCHEMA.to_owned(),
            seq: Some(id),
            time: rfc3339(time),
            user: r.get(2),
            service: r.get(3),
            rhost: r.get(4),
            tty: r.get(5),
            channel: r.get(6),
            decision: r.get(7),
            reason: r.get(8),
            peer_uid: u32_of(r.get(9)),
            rule: r.get(10),
            policy_version: r.get(11),
            host: r.get(12),
            kind: r.get(13),
            actor: r.get(14),
            session_id: r.get::<_, Option<i64>>(15).map(u32_of),
            request_id: r.get(16),
            prev_hash: r.get(17),
            ruser: r.get(19),
            caller_uid: r.get::<_, Option<i64>>(20).map(u32_of),
        },
        hash: r.get(18),
    }
}

impl AuditLog for PgStore {
    fn audit(&self, event: &Event) -> Result<(), StoreError> {
        self.write(async |tx| {
            insert(tx, &self.host, event).await?;
            Ok(((), true))
        })
    }

    fn audit_rows(
        &self,
        user: Option<&str>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<StoredRow>, StoreError> {
        self.block(async {
            let c = self.client().await?;
            rows_where(
                &c,
                "($1::TEXT IS NULL OR username = $1) AND id < $2 ORDER BY id DESC LIMIT $3",
                &[&user, &before.unwrap_or(i64::MAX), &i64::from(limit)],
            )
            .await
        })
    }

    /// This host's chain: each host verifies its own.
    fn each_audit_row(&self, each: &mut dyn FnMut(StoredRow)) -> Result<(), StoreError> {
        let mut after = i64::MIN;
        loop {
            let rows = self.block(async {
                let c = self.client().await?;
                rows_where(
                    &c,
                    "host = $1 AND id > $2 ORDER BY id LIMIT $3",
                    &[&self.host, &after, &CHUNK],
                )
                .await
            })?;
            let Some(last) = rows.last() else {
                return Ok(());
            };
            after = last.id;
            rows.into_iter().for_each(&mut *each);
        }
    }

    /// This host's rows only: each host applies its own retention.
    fn purge_audit(&self, before: i64) -> Result<usize, StoreError> {
        let mut total = 0;
        loop {
            let n = self.block(async {
                let c = self.client().await?;
                Ok(c.execute(
                    "DELETE FROM audit WHERE id IN (
                       SELECT id FROM audit WHERE host = $1 AND time < $2 ORDER BY id LIMIT $3)",
                    &[&self.host, &before, &BATCH],
                )
                .await?)
            })?;
            total += usize::try_from(n).unwrap_or(usize::MAX);
            if n == 0 {
                return Ok(total);
            }
        }
    }
}
