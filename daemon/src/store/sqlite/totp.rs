//! TOTP factors: the active one, a pending enrollment, and the last
//! accepted step that makes each code good once.

use super::{SqliteStore, clear_failures, insert_audit};
use crate::audit::Event;
use crate::factor::hashed;
use crate::factor::totp::TotpAlgorithm;
use crate::store::crypto::Sealed;
use crate::store::{
    Counter, Failures, NewTotp, StoreError, Succeeded, TakeStep, TotpParams, TotpRecord,
    TotpSummary, Totps,
};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

impl Totps for SqliteStore {
    fn totp(&self, user: &str) -> Result<Option<TotpRecord>, StoreError> {
        query_totp(
            &self.reader(),
            user,
            "SELECT secret, algorithm, digits, period, last_step, key_id FROM totp WHERE user = ?1",
            params![user],
        )
    }

    fn totp_and_lock(
        &self,
        user: &str,
        counter: Counter<'_>,
        now: i64,
    ) -> Result<(Option<TotpRecord>, Option<i64>), StoreError> {
        Ok((self.totp(user)?, self.locked_until(user, counter, now)?))
    }

    fn pending_totp(&self, user: &str, now: i64) -> Result<Option<TotpRecord>, StoreError> {
        query_totp(
            &self.reader(),
            user,
            "SELECT secret, algorithm, digits, period, -1, key_id FROM totp_pending
             WHERE user = ?1 AND expires > ?2",
            params![user, now],
        )
    }

    fn has_pending_totp(&self, user: &str, now: i64) -> Result<bool, StoreError> {
        Ok(self
            .reader()
            .query_row(
                "SELECT 1 FROM totp_pending WHERE user = ?1 AND expires > ?2",
                params![user, now],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    fn put_pending_totp(
        &self,
        user: &str,
        sealed: &Sealed,
        p: TotpParams,
        expires: i64,
        event: &Event,
    ) -> Result<(), StoreError> {
        self.durable(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO totp_pending
                   (user, secret, algorithm, digits, period, expires, key_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    user,
                    sealed.bytes,
                    p.algorithm.as_str(),
                    p.digits,
                    p.period,
                    expires,
                    sealed.key
                ],
            )?;
            insert_audit(tx, event)
        })
    }

    fn enroll_totp(
        &self,
        user: &str,
        totp: &NewTotp<'_>,
        backup: Option<&[hashed::Stored]>,
        event: &Event,
    ) -> Result<(), StoreError> {
        self.durable(|tx| {
            activate(tx, user, totp)?;
            if let Some(codes) = backup {
                super::backup::replace(tx, user, codes)?;
            }
            insert_audit(tx, event)
        })
    }

    fn accept_totp_step(
        &self,
        take: &TakeStep<'_>,
        event: &Event,
        then: Option<&Succeeded<'_>>,
    ) -> Result<bool, StoreError> {
        let fence = self.fence.get().copied().unwrap_or_default();
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let updated = tx
            .prepare_cached(
                "UPDATE totp SET last_step = ?2, last_used = ?3
                 WHERE user = ?1 AND last_step < ?2 AND ?2 > ?4 / period + ?5
                   AND (?6 IS NULL OR (key_id = ?6 AND secret = ?7))",
            )?
            .execute(params![
                take.user,
                take.step,
                take.now,
                fence.since,
                fence.window,
                take.checked.map(|s| s.key),
                take.checked.map(|s| &s.bytes)
            ])?;
        if updated == 1 {
            clear_failures(&tx, take.user, take.counter)?;
            insert_audit(&tx, event)?;
            if let Some(what) = then {
                super::history::record_success(&tx, take.user, what)?;
            }
            tx.commit()?;
        }
        Ok(updated == 1)
    }

    fn totp_summary(&self, user: &str) -> Result<Option<TotpSummary>, StoreError> {
        let row = self
            .reader()
            .prepare_cached(
                "SELECT algorithm, digits, period, enrolled_at, last_used FROM totp WHERE user = ?1",
            )?
            .query_row([user], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                ))
            })
            .optional()?;
        let Some((algorithm, digits, period, enrolled_at, last_used)) = row else {
            return Ok(None);
        };
        Ok(Some(TotpSummary {
            params: TotpParams {
                algorithm: algorithm_of(user, &algorithm)?,
                digits,
                period,
            },
            enrolled_at,
            last_used,
        }))
    }
}

fn algorithm_of(user: &str, name: &str) -> Result<TotpAlgorithm, StoreError> {
    TotpAlgorithm::parse(name).ok_or_else(|| StoreError::Corrupt(user.to_owned()))
}

/// Reads one TOTP row: secret, algorithm, digits, period, last step, key id.
fn query_totp(
    conn: &Connection,
    user: &str,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Option<TotpRecord>, StoreError> {
    let row = conn
        .prepare_cached(sql)?
        .query_row(args, |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, String>(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .optional()?;
    let Some((bytes, algorithm, digits, period, last_step, key)) = row else {
        return Ok(None);
    };
    Ok(Some(TotpRecord {
        sealed_secret: Sealed { key, bytes },
        params: TotpParams {
            algorithm: algorithm_of(user, &algorithm)?,
            digits,
            period,
        },
        last_step,
    }))
}

fn activate(tx: &rusqlite::Transaction<'_>, user: &str, t: &NewTotp<'_>) -> Result<(), StoreError> {
    tx.execute(
        "INSERT OR REPLACE INTO totp
           (user, secret, algorithm, digits, period, last_step, enrolled_at, last_used, key_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, ?8)",
        params![
            user,
            t.sealed.bytes,
            t.params.algorithm.as_str(),
            t.params.digits,
            t.params.period,
            t.step,
            t.now,
            t.sealed.key
        ],
    )?;
    tx.execute("DELETE FROM totp_pending WHERE user = ?1", [user])?;
    tx.execute(
        "DELETE FROM failures WHERE user = ?1 AND channel = 'totp'",
        [user],
    )?;
    Ok(())
}
