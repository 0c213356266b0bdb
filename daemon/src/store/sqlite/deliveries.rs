//! Every message handed to a provider or mail server, by channel,
//! destination prefix and (for verifications) the uid that asked: what the
//! global caps count (`delivery::caps`). Rows older than a day are dropped
//! as new ones come; kept in the database so a restart does not reset the
//! caps.

use super::SqliteStore;
use crate::store::{Deliveries, DeliveryCaps, Over, StoreError};
use rusqlite::types::Value;
use rusqlite::{OptionalExtension, Transaction, params};

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

impl Deliveries for SqliteStore {
    /// Counts one send of `channel` to `prefix` if every cap allows it and
    /// returns its row id (to release it if the provider never saw it);
    /// otherwise the cap that is full and when it next has room.
    fn reserve_delivery(
        &self,
        channel: &str,
        prefix: &str,
        caps: &DeliveryCaps,
        now: i64,
    ) -> Result<Result<i64, (Over, i64)>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "DELETE FROM deliveries WHERE channel = ?1 AND time <= ?2",
            params![channel, now - DAY],
        )?;
        let mut checks = vec![
            (Over::Hourly, "prefix", Value::Null, caps.hourly, HOUR),
            (
                Over::Prefix,
                "prefix",
                Value::Text(prefix.to_owned()),
                caps.prefix,
                HOUR,
            ),
        ];
        if let Some((uid, cap)) = caps.verify {
            checks.push((
                Over::Verify,
                "verify_uid",
                Value::Integer(uid.into()),
                cap,
                DAY,
            ));
        }
        for (over, column, value, cap, window) in checks {
            if let Some(until) = full(&tx, channel, (column, value), cap, window, now)? {
                return Ok(Err((over, until)));
            }
        }
        tx.execute(
            "INSERT INTO deliveries (channel, prefix, verify_uid, time) VALUES (?1, ?2, ?3, ?4)",
            params![channel, prefix, caps.verify.map(|(uid, _)| uid), now],
        )?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        Ok(Ok(id))
    }

    /// Uncounts a send the provider never received.
    fn release_delivery(&self, id: i64) -> Result<(), StoreError> {
        self.conn()
            .execute("DELETE FROM deliveries WHERE id = ?1", [id])?;
        Ok(())
    }
}

/// When the sends of `channel` within `window` whose `column` is `value`
/// (all of them for `Null`) reach `cap`: the time room comes back.
fn full(
    tx: &Transaction<'_>,
    channel: &str,
    (column, value): (&str, Value),
    cap: u32,
    window: i64,
    now: i64,
) -> Result<Option<i64>, StoreError> {
    let since = now - window;
    let filter = format!("channel = ?1 AND time > ?2 AND (?3 IS NULL OR {column} = ?3)");
    let count: u32 = tx
        .prepare_cached(&format!("SELECT COUNT(*) FROM deliveries WHERE {filter}"))?
        .query_row(params![channel, since, value], |r| r.get(0))?;
    if count < cap {
        return Ok(None);
    }
    // Room comes back once count - cap + 1 sends have aged out.
    let oldest: Option<i64> = tx
        .prepare_cached(&format!(
            "SELECT time FROM deliveries WHERE {filter} ORDER BY time LIMIT 1 OFFSET ?4"
        ))?
        .query_row(params![channel, since, value, count - cap], |r| r.get(0))
        .optional()?;
    Ok(Some(oldest.unwrap_or(now) + window))
}
