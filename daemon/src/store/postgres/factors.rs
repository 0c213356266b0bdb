//! TOTP factors, backup codes and failure counters, fleet-wide.

use super::audit::{self, insert};
use super::pipeline;
use super::sessions::Success;
use super::{PgStore, u32_of};
use crate::audit::Event;
use crate::factor::hashed;
use crate::factor::totp::TotpAlgorithm;
use crate::store::crypto::Sealed;
use crate::store::{
    ACCOUNT, BackupCodes, Counter, FailureCount, FailureState, Failures, LockRule, NewTotp,
    StoreError, Succeeded, TakeStep, TotpParams, TotpRecord, TotpSummary, Totps,
};
use deadpool_postgres::GenericClient;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};

fn params_of(user: &str, r: &Row, at: usize) -> Result<TotpParams, StoreError> {
    let name: String = r.get(at);
    Ok(TotpParams {
        algorithm: TotpAlgorithm::parse(&name)
            .ok_or_else(|| StoreError::Corrupt(user.to_owned()))?,
        digits: u32_of(r.get(at + 1)),
        period: u64::try_from(r.get::<_, i64>(at + 2))
            .map_err(|_| StoreError::Corrupt(user.to_owned()))?,
    })
}

fn record_of(user: &str, r: &Row) -> Result<TotpRecord, StoreError> {
    Ok(TotpRecord {
        sealed_secret: Sealed {
            key: u32_of(r.get(5)),
            bytes: r.get(0),
        },
        params: params_of(user, r, 1)?,
        last_step: r.get(4),
    })
}

fn period(p: TotpParams) -> i64 {
    i64::try_from(p.period).unwrap_or(i64::MAX)
}

impl Totps for PgStore {
    fn totp(&self, user: &str) -> Result<Option<TotpRecord>, StoreError> {
        self.block(async {
            let c = self.client().await?;
            let read = c
                .prepare_cached(
                    "SELECT secret, algorithm, digits, period, last_step, key_id FROM totp
                     WHERE username = $1",
                )
                .await?;
            let row = c.query_opt(&read, &[&user]).await?;
            row.map(|r| record_of(user, &r)).transpose()
        })
    }

    fn totp_and_lock(
        &self,
        user: &str,
        counter: Counter<'_>,
        now: i64,
    ) -> Result<(Option<TotpRecord>, Option<i64>), StoreError> {
        self.block(async {
            let c = self.client().await?;
            // One statement, one row: the factor's columns are NULL when
            // the user has none.
            let read = c
                .prepare_cached(&format!(
                    "SELECT t.secret, t.algorithm, t.digits, t.period, t.last_step, t.key_id,
                            ({LOCKED_UNTIL})
                     FROM (SELECT 1) AS one LEFT JOIN totp t ON t.username = $1"
                ))
                .await?;
            let row = c
                .query_one(
                    &read,
                    &[&user, &counter.factor, &counter.source, &ACCOUNT, &now],
                )
                .await?;
            let record = match row.get::<_, Option<Vec<u8>>>(0) {
                Some(_) => Some(record_of(user, &row)?),
                None => None,
            };
            Ok((record, row.get(6)))
        })
    }

    fn pending_totp(&self, user: &str, now: i64) -> Result<Option<TotpRecord>, StoreError> {
        self.block(async {
            let c = self.client().await?;
            let row = c
                .query_opt(
                    "SELECT secret, algorithm, digits, period, -1::BIGINT, key_id FROM totp_pending
                     WHERE username = $1 AND expires > $2",
                    &[&user, &now],
                )
                .await?;
            row.map(|r| record_of(user, &r)).transpose()
        })
    }

    fn has_pending_totp(&self, user: &str, now: i64) -> Result<bool, StoreError> {
        Ok(self.pending_totp(user, now)?.is_some())
    }

    fn put_pending_totp(
        &self,
        user: &str,
        sealed: &Sealed,
        p: TotpParams,
        expires: i64,
        event: &Event,
    ) -> Result<(), StoreError> {
        self.write(async |tx| {
            tx.execute(
                "INSERT INTO totp_pending
                   (username, secret, algorithm, digits, period, expires, key_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (username) DO UPDATE SET secret = $2, algorithm = $3,
                   digits = $4, period = $5, expires = $6, key_id = $7",
                &[
                    &user,
                    &sealed.bytes,
                    &p.algorithm.as_str(),
                    &i64::from(p.digits),
                    &period(p),
                    &expires,
                    &i64::from(sealed.key),
                ],
            )
            .await?;
            insert(tx, &self.host, event).await?;
            Ok(((), true))
        })
    }

    fn enroll_totp(
        &self,
        user: &str,
        t: &NewTotp<'_>,
        backup: Option<&[hashed::Stored]>,
        event: &Event,
    ) -> Result<(), StoreError> {
        self.write(async |tx| {
            tx.execute(
                "INSERT INTO totp (username, secret, algorithm, digits, period, last_step,
                                   enrolled_at, last_used, key_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8)
                 ON CONFLICT (username) DO UPDATE SET secret = $2, algorithm = $3,
                   digits = $4, period = $5, last_step = $6, enrolled_at = $7, last_used = NULL,
                   key_id = $8",
                &[
                    &user,
                    &t.sealed.bytes,
                    &t.params.algorithm.as_str(),
                    &i64::from(t.params.digits),
                    &period(t.params),
                    &t.step,
                    &t.now,
                    &i64::from(t.sealed.key),
                ],
            )
            .await?;
            tx.execute("DELETE FROM totp_pending WHERE username = $1", &[&user])
                .await?;
            tx.execute(
                "DELETE FROM failures WHERE username = $1 AND factor = 'totp'",
                &[&user],
            )
            .await?;
            if let Some(codes) = backup {
                replace_codes(tx, user, codes).await?;
            }
            insert(tx, &self.host, event).await?;
            Ok(((), true))
        })
    }

    fn success_with_step(&self) -> bool {
        true
    }

    fn accept_totp_step(
        &self,
        take: &TakeStep<'_>,
        event: &Event,
        then: Option<&Succeeded<'_>>,
    ) -> Result<bool, StoreError> {
        // One round trip: BEGIN, the step and the counters' reset, the
        // audit chain's lock and row, what the login leaves behind when
        // this code ends it, COMMIT. When the step is not taken
        // the first statement fails (a division by the zero rows it took),
        // so the transaction aborts and its COMMIT ends in a rollback:
        // nothing of it is kept.
        self.block(async {
            let c = self.client().await?;
            // The row lock makes a racing host wait, then re-check
            // `last_step < $5` against the winner's step: one wins. The
            // counters start again only with a step taken.
            let taking = c
                .prepare_cached(&format!(
                    "WITH taken AS (
                       UPDATE totp SET last_step = $5, last_used = $6
                       WHERE username = $1 AND last_step < $5
                         AND ($7::BIGINT IS NULL OR (key_id = $7 AND secret = $8))
                       RETURNING 1
                     ), cleared AS ({CLEAR} AND EXISTS (SELECT 1 FROM taken))
                     SELECT 1 / count(*) FROM taken"
                ))
                .await?;
            audit::prepare(&c).await?;
            let success = match then {
                Some(_) => Some(Success::prepare(&c).await?),
                None => None,
            };
            let key = take.checked.map(|s| i64::from(s.key));
            let bytes = take.checked.map(|s| &s.bytes);
            let args: [&(dyn ToSql + Sync); 8] = [
                &take.user,
                &take.counter.factor,
                &take.counter.source,
                &ACCOUNT,
                &take.step,
                &take.now,
                &key,
                &bytes,
            ];
            // Every answer is awaited, and the first error in send order
            // returned: try_join! returned whichever failed answer it saw
            // first, and a race's loser sometimes saw a later statement's
            // "transaction is aborted" before the step's division by zero,
            // and was denied as a store error instead of a used code.
            let body = async {
                let (step, audit, success) = tokio::join!(
                    biased;
                    async { Ok::<_, StoreError>(c.execute(&taking, &args).await?) },
                    insert(&c, &self.host, event),
                    async {
                        match (&success, then) {
                            (Some(s), Some(what)) => s.run(&c, take.user, what).await,
                            _ => Ok(()),
                        }
                    },
                );
                Ok::<_, StoreError>((step?, audit?, success?))
            };
            match pipeline::whole(&c, body).await {
                Ok(_) => Ok(true),
                Err(StoreError::Postgres(e)) if e.code() == Some(&SqlState::DIVISION_BY_ZERO) => {
                    Ok(false)
                }
                Err(e) => Err(e),
            }
        })
    }

    fn totp_summary(&self, user: &str) -> Result<Option<TotpSummary>, StoreError> {
        self.block(async {
            let c = self.client().await?;
            let row = c
                .query_opt(
                    &c.prepare_cached(
                        "SELECT enrolled_at, algorithm, digits, period, last_used FROM totp
                         WHERE username = $1",
                    )
                    .await?,
                    &[&user],
                )
                .await?;
            row.map(|r| {
                Ok(TotpSummary {
                    params: params_of(user, &r, 1)?,
                    enrolled_at: r.get(0),
                    last_used: r.get(4),
                })
            })
            .transpose()
        })
    }
}

async fn replace_codes(
    tx: &impl GenericClient,
    user: &str,
    codes: &[hashed::Stored],
) -> Result<(), StoreError> {
    tx.execute("DELETE FROM backup_codes WHERE username = $1", &[&user])
        .await?;
    for (id, code) in codes.iter().enumerate() {
        tx.execute(
            "INSERT INTO backup_codes (username, id, salt, hash) VALUES ($1, $2, $3, $4)",
            &[&user, &(id as i64), &code.salt, &code.hash],
        )
        .await?;
    }
    Ok(())
}

impl BackupCodes for PgStore {
    fn replace_backup_codes(
        &self,
        user: &str,
        codes: &[hashed::Stored],
        event: &Event,
    ) -> Result<(), StoreError> {
        self.write(async |tx| {
            replace_codes(tx, user, codes).await?;
            insert(tx, &self.host, event).await?;
            Ok(((), true))
        })
    }

    fn unused_backup_codes(&self, user: &str) -> Result<Vec<(i64, hashed::Stored)>, StoreError> {
        self.block(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    &c.prepare_cached(
                        "SELECT id, salt, hash FROM backup_codes
                         WHERE username = $1 AND used_at IS NULL",
                    )
                    .await?,
                    &[&user],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| {
                    (
                        r.get(0),
                        hashed::Stored {
                            salt: r.get(1),
                            hash: r.get(2),
                        },
                    )
                })
                .collect())
        })
    }

    fn backup_codes_left(&self, user: &str) -> Result<u32, StoreError> {
        self.block(async {
            let c = self.client().await?;
            let n: i64 = c
                .query_one(
                    "SELECT COUNT(*) FROM backup_codes WHERE username = $1 AND used_at IS NULL",
                    &[&user],
                )
                .await?
                .get(0);
            Ok(u32_of(n))
        })
    }

    fn consume_backup_code(
        &self,
        user: &str,
        id: i64,
        now: i64,
        counter: Counter<'_>,
        event: &Event,
    ) -> Result<bool, StoreError> {
        self.write(async |tx| {
            let used = tx
                .execute(
                    "UPDATE backup_codes SET used_at = $3
                     WHERE username = $1 AND id = $2 AND used_at IS NULL",
                    &[&user, &id, &now],
                )
                .await?;
            if used == 1 {
                accepted(tx, &self.host, user, counter, event).await?;
            }
            Ok((used == 1, used == 1))
        })
    }
}

/// After an accepted code: its failure counters start again and the audit
/// row is appended, the statements sent together (one round trip less).
pub(super) async fn accepted(
    tx: &impl GenericClient,
    host: &str,
    user: &str,
    counter: Counter<'_>,
    event: &Event,
) -> Result<(), StoreError> {
    let clear = clear_statement(tx).await?;
    tokio::try_join!(
        clear_failures(tx, &clear, user, counter),
        insert(tx, host, event)
    )?;
    Ok(())
}

/// `Failures::locked_until`: $1 user, $2 factor, $3 source, $4 `ACCOUNT`,
/// $5 now.
const LOCKED_UNTIL: &str = "SELECT MAX(locked_until) FROM failures
     WHERE username = $1 AND factor = $2 AND source IN ($3, $4) AND locked_until > $5";

/// The reset after a success: $1 user, $2 factor, $3 source, $4 `ACCOUNT`.
const CLEAR: &str =
    "DELETE FROM failures WHERE username = $1 AND factor = $2 AND source IN ($3, $4)";

async fn clear_statement(tx: &impl GenericClient) -> Result<Statement, StoreError> {
    Ok(tx.prepare_cached(CLEAR).await?)
}

/// After a success: the counters of this source and of the whole account
/// start again; other sources keep theirs. `clear` is `clear_statement`.
async fn clear_failures(
    tx: &impl GenericClient,
    clear: &Statement,
    user: &str,
    counter: Counter<'_>,
) -> Result<(), StoreError> {
    tx.execute(clear, &[&user, &counter.factor, &counter.source, &ACCOUNT])
        .await?;
    Ok(())
}

impl Failures for PgStore {
    fn record_failure(
        &self,
        user: &str,
        counter: Counter<'_>,
        now: i64,
        rule: LockRule,
        event: &Event,
    ) -> Result<FailureState, StoreError> {
        // One round trip (`pipeline`): logins racing on one user queue on
        // its counters' rows, each holding them only while the server runs
        // its statements, not across round trips of its own.
        self.block(async {
            let c = self.client().await?;
            let bump = c
                .prepare_cached(
                    // Count (starting again after a quiet period) and lock
                    // at the threshold, atomically per row.
                    "INSERT INTO failures AS f
                       (username, factor, source, count, last_failure, locked_until)
                     VALUES ($1, $2, $3, 1, $4::BIGINT,
                             CASE WHEN 1 >= $6::BIGINT THEN $4::BIGINT + $5::BIGINT END)
                     ON CONFLICT (username, factor, source) DO UPDATE SET
                       count = CASE WHEN f.last_failure <= $4 - $5 THEN 1 ELSE f.count + 1 END,
                       last_failure = $4,
                       locked_until = CASE
                         WHEN (CASE WHEN f.last_failure <= $4 - $5 THEN 1 ELSE f.count + 1 END) >= $6
                         THEN $4 + $5 ELSE f.locked_until END
                     RETURNING count, locked_until",
                )
                .await?;
            audit::prepare(&c).await?;
            let duration = rule.duration_secs;
            let count = async |source: &str, threshold: u32| -> Result<_, StoreError> {
                let threshold = i64::from(threshold);
                let args: [&(dyn ToSql + Sync); 6] =
                    [&user, &counter.factor, &source, &now, &duration, &threshold];
                let row = c.query_one(&bump, &args).await?;
                let count: i64 = row.get(0);
                let locked: Option<i64> = row.get(1);
                Ok((u32_of(count), locked.filter(|&t| t > now)))
            };
            // As in accept_totp_step: the first error in send order.
            let body = async {
                let (source, account, audit) = tokio::join!(
                    biased;
                    count(counter.source, rule.threshold),
                    count(ACCOUNT, rule.account_threshold),
                    insert(&c, &self.host, event),
                );
                Ok::<_, StoreError>((source?, account?, audit?))
            };
            let ((_, source_lock), (consecutive, account_lock), ()) =
                pipeline::whole(&c, body).await?;
            Ok(FailureState {
                consecutive,
                locked_until: source_lock.max(account_lock),
            })
        })
    }

    fn locked_until(
        &self,
        user: &str,
        counter: Counter<'_>,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        self.block(async {
            let c = self.client().await?;
            let lock = c.prepare_cached(LOCKED_UNTIL).await?;
            Ok(c.query_one(
                &lock,
                &[&user, &counter.factor, &counter.source, &ACCOUNT, &now],
            )
            .await?
            .get(0))
        })
    }

    fn failure_counts(
        &self,
        user: &str,
        now: i64,
        rule: LockRule,
    ) -> Result<Vec<FailureCount>, StoreError> {
        let since = now.saturating_sub(rule.duration_secs);
        self.block(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    "SELECT factor, source, count, locked_until FROM failures
                     WHERE username = $1 AND (last_failure > $2 OR locked_until > $3)
                     ORDER BY factor, source",
                    &[&user, &since, &now],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| FailureCount {
                    factor: r.get(0),
                    source: r.get(1),
                    failures: u32_of(r.get(2)),
                    locked_until: r.get::<_, Option<i64>>(3).filter(|&t| t > now),
                })
                .collect())
        })
    }

    fn unlock_user(&self, user: &str, event: &Event) -> Result<usize, StoreError> {
        self.write(async |tx| {
            let n = tx
                .execute("DELETE FROM failures WHERE username = $1", &[&user])
                .await?;
            insert(tx, &self.host, event).await?;
            Ok((usize::try_from(n).unwrap_or(usize::MAX), true))
        })
    }
}
