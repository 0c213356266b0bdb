//! Audit rows in the shared database. Each host keeps its own hash chain
//! (rows of one host link to that host's previous row), so hosts never
//! wait on each other to append; a lock per host keeps its chain from
//! forking when its pooled connections write at once.

use super::{PgStore, u32_of};
use crate::audit::Event;
use crate::audit::chain::StoredRow;
use crate::audit::record::{Body, GENESIS, SCHEMA, rfc3339};
use crate::store::{AuditLog, StoreError};
use deadpool_postgres::GenericClient;
use std::sync::Arc;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};

/// Rows read per query by `each_audit_row`.
const CHUNK: i64 = 2000;
/// Rows deleted per statement by `purge_audit`.
const BATCH: i64 = 10_000;

/// Appends `e` to `host`'s chain, in the caller's transaction.
pub(super) async fn insert(
    tx: &impl GenericClient,
    host: &str,
    e: &Event,
) -> Result<(), StoreError> {
    put(tx, next(tx, host).await?, e).await
}

/// The place of the next row of a host's chain: its id, the hash it
/// follows, and the prepared INSERT.
pub(super) struct Next {
    id: i64,
    prev: String,
    insert: Statement,
}

/// Prepares `next`'s and `put`'s statements (once per connection), so
/// that `next` sends its statements when first polled: it can then go out
/// in one write with statements before it (`pipeline`).
pub(super) async fn prepare(c: &impl GenericClient) -> Result<[Statement; 3], StoreError> {
    Ok([
        c.prepare_cached("SELECT pg_advisory_xact_lock(hashtext('mfad audit ' || $1))")
            .await?,
        c.prepare_cached(
            "SELECT (SELECT hash FROM audit WHERE host = $1 ORDER BY id DESC LIMIT 1),
                    nextval(pg_get_serial_sequence('audit', 'id'))",
        )
        .await?,
        c.prepare_cached(
            "INSERT INTO audit (id, time, username, service, rhost, tty, channel, decision,
                                reason, peer_uid, rule, policy_version, host, kind, actor,
                                session_id, request_id, prev_hash, hash, ruser, caller_uid)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                     $17, $18, $19, $20, $21)",
        )
        .await?,
    ])
}

/// Takes `host`'s chain lock in the caller's transaction (held to its end)
/// and reads where the next row goes.
pub(super) async fn next(tx: &impl GenericClient, host: &str) -> Result<Next, StoreError> {
    let [lock, place, insert] = prepare(tx).await?;
    // Sent together, answered in order (one round trip): the server runs
    // each statement with a snapshot of its own, so the read of the last
    // hash starts after the lock is granted and sees the previous holder's
    // committed row.
    let args: &[&(dyn ToSql + Sync)] = &[&host];
    let (_, place) = tokio::try_join!(
        biased;
        tx.execute(&lock, args),
        tx.query_one(&place, args),
    )?;
    Ok(Next {
        id: place.get(1),
        prev: place
            .get::<_, Option<String>>(0)
            .unwrap_or_else(|| GENESIS.to_owned()),
        insert,
    })
}

/// Writes `e` at `next`: one statement, sent when first polled, so it can
/// go out with the transaction's COMMIT (`pipeline`).
pub(super) async fn put(tx: &impl GenericClient, next: Next, e: &Event) -> Result<(), StoreError> {
    let record = Body::of(e, Some(next.id), Some(next.prev)).sealed();
    let b = &record.body;
    tx.execute(
        &next.insert,
        &[
            &next.id,
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
            &b.prev_hash,
            &record.hash,
            &b.ruser,
            &b.caller_uid.map(i64::from),
        ],
    )
    .await?;
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
