//! Failure counters per user, factor and source, and the locks they earn.

use super::SqliteStore;
use crate::audit::Event;
use crate::store::{ACCOUNT, Counter, FailureCount, FailureState, Failures, LockRule, StoreError};
use rusqlite::{Connection, TransactionBehavior, params};

impl Failures for SqliteStore {
    fn record_failure(
        &self,
        user: &str,
        counter: Counter<'_>,
        now: i64,
        rule: LockRule,
        event: &Event,
    ) -> Result<FailureState, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let state = count_failure(&tx, user, counter, now, rule)?;
        super::insert_audit(&tx, event)?;
        tx.commit()?;
        Ok(state)
    }

    fn locked_until(
        &self,
        user: &str,
        counter: Counter<'_>,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        locked_until(&self.reader(), user, counter, now)
    }

    fn failure_counts(
        &self,
        user: &str,
        now: i64,
        rule: LockRule,
    ) -> Result<Vec<FailureCount>, StoreError> {
        let since = now.saturating_sub(rule.duration_secs);
        let conn = self.reader();
        let mut stmt = conn.prepare(
            "SELECT channel, source, count, locked_until FROM failures
             WHERE user = ?1 AND (last_failure > ?2 OR locked_until > ?3)
             ORDER BY channel, source",
        )?;
        let rows = stmt.query_map(params![user, since, now], |r| {
            Ok(FailureCount {
                factor: r.get(0)?,
                source: r.get(1)?,
                failures: r.get(2)?,
                locked_until: r.get::<_, Option<i64>>(3)?.filter(|&t| t > now),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn unlock_user(&self, user: &str, event: &Event) -> Result<usize, StoreError> {
        self.durable(|tx| {
            let n = tx.execute("DELETE FROM failures WHERE user = ?1", [user])?;
            super::insert_audit(tx, event)?;
            Ok(n)
        })
    }
}

/// Counts a failure of `counter` and of the whole account, in `tx` (a
/// transaction of the store, or of a fleet host's TOTP cache, which keeps
/// the same table); locks what reached its threshold.
pub(crate) fn count_failure(
    tx: &Connection,
    user: &str,
    counter: Counter<'_>,
    now: i64,
    rule: LockRule,
) -> Result<FailureState, StoreError> {
    let duration = rule.duration_secs;
    let bump = |src: &str, threshold: u32| -> Result<(u32, Option<i64>), StoreError> {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO failures (user, channel, source, count, last_failure, locked_until)
             VALUES (?1, ?2, ?3, 1, ?4, NULL)
             ON CONFLICT (user, channel, source) DO UPDATE SET
               count = CASE WHEN last_failure <= ?4 - ?5 THEN 1 ELSE count + 1 END,
               last_failure = ?4
             RETURNING count, locked_until",
        )?;
        let (count, mut locked): (u32, Option<i64>) = stmt
            .query_row(params![user, counter.factor, src, now, duration], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        if count >= threshold {
            let until = now.saturating_add(duration);
            tx.prepare_cached(
                "UPDATE failures SET locked_until = ?4
                 WHERE user = ?1 AND channel = ?2 AND source = ?3",
            )?
            .execute(params![user, counter.factor, src, until])?;
            locked = Some(until);
        }
        Ok((count, locked.filter(|&t| t > now)))
    };
    let (_, source_lock) = bump(counter.source, rule.threshold)?;
    let (consecutive, account_lock) = bump(ACCOUNT, rule.account_threshold)?;
    Ok(FailureState {
        consecutive,
        locked_until: source_lock.max(account_lock),
    })
}

/// Until when `counter` (its source, or the whole account) is locked.
pub(crate) fn locked_until(
    conn: &Connection,
    user: &str,
    counter: Counter<'_>,
    now: i64,
) -> Result<Option<i64>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT MAX(locked_until) FROM failures
         WHERE user = ?1 AND channel = ?2 AND source IN (?3, ?4) AND locked_until > ?5",
    )?;
    Ok(stmt.query_row(
        params![user, counter.factor, counter.source, ACCOUNT, now],
        |r| r.get(0),
    )?)
}

/// After a success: the counters of this source and of the whole account
/// start again. Other sources keep theirs: a login that succeeds from one
/// place does not lift a lock another place earned.
pub(crate) fn clear_failures(
    conn: &Connection,
    user: &str,
    counter: Counter<'_>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "DELETE FROM failures WHERE user = ?1 AND channel = ?2 AND source IN (?3, ?4)",
    )?
    .execute(params![user, counter.factor, counter.source, ACCOUNT])?;
    Ok(())
}
