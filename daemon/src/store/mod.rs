//! SQLite storage. One writer connection behind a mutex: every statement
//! here takes microseconds, and one writer keeps the "accepted at most once"
//! rules simple. Reads use connections of their own and checkpoints a thread
//! of its own (conns.rs).
//!
//! Durability is chosen per write: enrollments and resets are synced before
//! the caller hears success; the last accepted TOTP step, failure counters
//! and audit rows ride on WAL's normal sync, and a start after an unclean
//! stop fences the TOTP steps the old process might have accepted
//! (fence.rs).

mod audit;
mod backup;
mod conns;
mod contacts;
pub mod crypto;
mod deliveries;
mod devices;
mod fence;
mod history;
mod keycheck;
mod migrate;
mod otp;
mod policy;
mod retention;
mod sessions;

pub use devices::NewDevice;
pub use history::Visit;
pub use keycheck::{KeyState, peek_key_state};
pub use sessions::{NewSession, NewTicket, Proof, StoredSession};

pub use contacts::ContactRow;
pub use deliveries::{DeliveryCaps, Over};
pub use otp::{Issue, SendLimits, SentCode};

use crate::audit::Event;
use crate::config::{LockoutConfig, TotpAlgorithm};
use crate::files::{FileError, check_private};
use mfad_protocol::{AuditRow, LockInfo, TotpInfo, UserSummary};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::Path;
use std::sync::{Mutex, MutexGuard, OnceLock};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error(transparent)]
    File(#[from] FileError),
    #[error(
        "the database schema is version {found}, newer than this mfad understands ({latest}); upgrade mfad"
    )]
    TooNew { found: usize, latest: usize },
    #[error("the stored row for {0} is corrupt")]
    Corrupt(String),
    #[error("{0} is in use by another mfad; stop it first")]
    InUse(std::path::PathBuf),
    #[error("cannot start the WAL checkpoint thread: {0}")]
    Thread(String),
}

/// How a TOTP factor computes its codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TotpParams {
    pub algorithm: TotpAlgorithm,
    pub digits: u32,
    pub period: u64,
}

pub struct TotpRecord {
    pub sealed_secret: Vec<u8>,
    pub params: TotpParams,
    pub last_step: i64,
}

/// Where failures are counted: per factor (not the audit channel, though
/// both name the factor today) and per source (a remote host, or a local
/// caller), beside the account-wide counter of the same factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter<'a> {
    pub factor: &'static str,
    pub source: &'a str,
}

/// What a failure did to the counters.
#[derive(Debug, Clone, Copy)]
pub struct FailureState {
    /// Consecutive failures for the account and channel, all sources.
    pub consecutive: u32,
    pub locked_until: Option<i64>,
}

pub struct Store {
    /// The writer.
    conn: Mutex<Connection>,
    readers: conns::Readers,
    _checkpointer: conns::Checkpointer,
    marker: fence::Marker,
    /// Whether the last run ended without [`Store::close_clean`].
    unclean: bool,
    fence: OnceLock<fence::Fence>,
}

/// Checks that an existing database (and its WAL and SHM files) is private,
/// or creates the directory a new one goes into. Opens nothing, so it is
/// safe while a running daemon holds the database.
pub fn prepare(path: &Path) -> Result<(), FileError> {
    if path.exists() {
        // The WAL holds the newest rows; after a crash it stays behind.
        for file in [
            path.to_owned(),
            sidecar(path, "-wal"),
            sidecar(path, "-shm"),
        ] {
            if file.exists() {
                check_private(&file, 0o600)?;
            }
        }
    } else if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| FileError::Io {
            path: parent.to_owned(),
            source,
        })?;
    }
    Ok(())
}

impl Store {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        prepare(path)?;
        // Before anything is written: the lock on the marker keeps a second
        // daemon off this database.
        let (marker, unclean) = fence::Marker::put(path)?;
        let mut conn = conns::open(path)?;
        let found: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if found > migrate::latest() {
            return Err(StoreError::TooNew {
                found,
                latest: migrate::latest(),
            });
        }
        migrate::migrate(&mut conn)?;
        check_private(path, 0o600)?;
        Ok(Self {
            conn: Mutex::new(conn),
            readers: conns::Readers::open(path)?,
            _checkpointer: conns::Checkpointer::start(path)?,
            marker,
            unclean,
            fence: OnceLock::new(),
        })
    }

    /// After an unclean stop, refuses every TOTP step up to the step of
    /// `now` plus `window` from here on (fence.rs says why). Returns whether
    /// it did. Call once, at start, before serving.
    pub fn fence_after_unclean_stop(&self, now: i64, window: u32) -> bool {
        self.unclean
            && self
                .fence
                .set(fence::Fence {
                    since: now,
                    window: i64::from(window),
                })
                .is_ok()
    }

    /// Marks a clean stop (after a last checkpoint): the next start needs no
    /// fence. Call when nothing else will use the store.
    pub fn close_clean(&self) -> Result<(), StoreError> {
        self.conn()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        self.marker.remove()
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a transaction open
        // (rusqlite rolls back on drop), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A connection for reads that need no transaction with a write: the
    /// writer when it is free (its page cache holds what it just wrote),
    /// else a reader, so a read never waits behind a write.
    pub(crate) fn reader(&self) -> MutexGuard<'_, Connection> {
        match self.conn.try_lock() {
            Ok(writer) => writer,
            Err(_) => self.readers.get(),
        }
    }

    /// Runs `f` in an immediate transaction that is fsynced before returning.
    pub(crate) fn durable<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn();
        conn.pragma_update(None, "synchronous", "FULL")?;
        let result = (|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        })();
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        result
    }

    pub fn totp(&self, user: &str) -> Result<Option<TotpRecord>, StoreError> {
        query_totp(
            &self.reader(),
            user,
            "SELECT secret, algorithm, digits, period, last_step FROM totp WHERE user = ?1",
            params![user],
        )
    }

    /// A pending enrollment that has not expired (its `last_step` is -1).
    pub fn pending_totp(&self, user: &str, now: i64) -> Result<Option<TotpRecord>, StoreError> {
        query_totp(
            &self.reader(),
            user,
            "SELECT secret, algorithm, digits, period, -1 FROM totp_pending
             WHERE user = ?1 AND expires > ?2",
            params![user, now],
        )
    }

    pub fn put_pending_totp(
        &self,
        user: &str,
        sealed: &[u8],
        p: TotpParams,
        expires: i64,
        event: &Event,
    ) -> Result<(), StoreError> {
        self.durable(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO totp_pending (user, secret, algorithm, digits, period, expires)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![user, sealed, p.algorithm.as_str(), p.digits, p.period, expires],
            )?;
            insert_audit(tx, event)
        })
    }

    /// Makes a confirmed enrollment the user's active TOTP factor, synced to
    /// disk before returning. `step` is the step of the confirming code, so
    /// that code cannot also log in.
    /// A TOTP factor set up at login: the factor and its backup codes in
    /// one transaction, so an interrupted enrollment leaves nothing behind.
    pub fn enroll_totp(
        &self,
        user: &str,
        totp: &NewTotp<'_>,
        backup: &[crate::factor::hashed::Stored],
        event: &Event,
    ) -> Result<(), StoreError> {
        self.durable(|tx| {
            activate(tx, user, totp)?;
            backup::replace(tx, user, backup)?;
            insert_audit(tx, event)
        })
    }

    pub fn activate_totp(
        &self,
        user: &str,
        sealed: &[u8],
        p: TotpParams,
        step: i64,
        now: i64,
        event: &Event,
    ) -> Result<(), StoreError> {
        let totp = NewTotp {
            sealed,
            params: p,
            step,
            now,
        };
        self.durable(|tx| {
            activate(tx, user, &totp)?;
            insert_audit(tx, event)
        })
    }

    /// Accepts `step` for `user` only if it is strictly later than the last
    /// accepted one and past the start-up fence, if any, atomically: of concurrent attempts with the same code,
    /// exactly one succeeds. On success the channel's failure counters are
    /// cleared and `event` is written in the same transaction.
    pub fn accept_totp_step(
        &self,
        user: &str,
        counter: Counter<'_>,
        step: i64,
        now: i64,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let fence = self.fence.get().copied().unwrap_or_default();
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let updated = tx
            .prepare_cached(
                "UPDATE totp SET last_step = ?2, last_used = ?3
                 WHERE user = ?1 AND last_step < ?2 AND ?2 > ?4 / period + ?5",
            )?
            .execute(params![user, step, now, fence.since, fence.window])?;
        if updated == 1 {
            clear_failures(&tx, user, counter)?;
            insert_audit(&tx, event)?;
            tx.commit()?;
        }
        Ok(updated == 1)
    }

    /// Counts a failure for the source and for the whole account, locking
    /// either when it reaches its threshold. Counters older than the lockout
    /// duration start again from zero, so locks release themselves.
    pub fn record_failure(
        &self,
        user: &str,
        counter: Counter<'_>,
        now: i64,
        lockout: &LockoutConfig,
        event: &Event,
    ) -> Result<FailureState, StoreError> {
        let duration = i64::try_from(lockout.duration.as_secs()).unwrap_or(i64::MAX);
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
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
        let (_, source_lock) = bump(counter.source, lockout.threshold)?;
        let (consecutive, account_lock) = bump(ACCOUNT, lockout.account_threshold)?;
        insert_audit(&tx, event)?;
        tx.commit()?;
        Ok(FailureState {
            consecutive,
            locked_until: source_lock.max(account_lock),
        })
    }

    /// The time until which `source` (or the whole account) is locked out of
    /// `channel`, if it is.
    pub fn locked_until(
        &self,
        user: &str,
        counter: Counter<'_>,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT MAX(locked_until) FROM failures
             WHERE user = ?1 AND channel = ?2 AND source IN (?3, ?4) AND locked_until > ?5",
        )?;
        Ok(stmt.query_row(
            params![user, counter.factor, counter.source, ACCOUNT, now],
            |r| r.get(0),
        )?)
    }

    pub fn audit(&self, event: &Event) -> Result<(), StoreError> {
        let conn = self.conn();
        insert_audit(&conn, event)
    }

    /// Removes every factor and counter of `user`; true if there was any.
    pub fn reset_user(&self, user: &str, event: &Event) -> Result<bool, StoreError> {
        self.durable(|tx| {
            let mut n = 0;
            for table in [
                "totp",
                "totp_pending",
                "failures",
                "backup_codes",
                "contacts",
                "sent_codes",
                "sends",
                "trusted_devices",
            ] {
                n += tx.execute(&format!("DELETE FROM {table} WHERE user = ?1"), [user])?;
            }
            insert_audit(tx, event)?;
            Ok(n > 0)
        })
    }

    /// Lifts every lock of `user`; returns how many counters were cleared.
    pub fn unlock_user(&self, user: &str, event: &Event) -> Result<usize, StoreError> {
        self.durable(|tx| {
            let n = tx.execute("DELETE FROM failures WHERE user = ?1", [user])?;
            insert_audit(tx, event)?;
            Ok(n)
        })
    }

    pub fn totp_info(&self, user: &str) -> Result<Option<TotpInfo>, StoreError> {
        Ok(self
            .reader()
            .prepare_cached(
                "SELECT algorithm, digits, period, enrolled_at, last_used FROM totp WHERE user = ?1",
            )?
            .query_row([user], |r| {
                    Ok(TotpInfo {
                        algorithm: r.get(0)?,
                        digits: r.get(1)?,
                        period: r.get(2)?,
                        enrolled_at: r.get(3)?,
                        last_used: r.get(4)?,
                    })
            })
            .optional()?)
    }

    pub fn has_pending_totp(&self, user: &str, now: i64) -> Result<bool, StoreError> {
        let conn = self.reader();
        Ok(conn
            .query_row(
                "SELECT 1 FROM totp_pending WHERE user = ?1 AND expires > ?2",
                params![user, now],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Failure counters that still matter: recent ones and active locks.
    pub fn locks(
        &self,
        user: &str,
        now: i64,
        lockout: &LockoutConfig,
    ) -> Result<Vec<LockInfo>, StoreError> {
        let since =
            now.saturating_sub(i64::try_from(lockout.duration.as_secs()).unwrap_or(i64::MAX));
        let conn = self.reader();
        let mut stmt = conn.prepare(
            "SELECT channel, source, count, locked_until FROM failures
             WHERE user = ?1 AND (last_failure > ?2 OR locked_until > ?3)
             ORDER BY channel, source",
        )?;
        let rows = stmt.query_map(params![user, since, now], |r| {
            Ok(LockInfo {
                channel: r.get(0)?,
                source: r.get(1)?,
                failures: r.get(2)?,
                locked_until: r.get::<_, Option<i64>>(3)?.filter(|&t| t > now),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every user with a factor, a pending enrollment or a counter.
    pub fn users(&self, now: i64) -> Result<Vec<UserSummary>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare(
            "WITH names AS (SELECT user FROM totp UNION SELECT user FROM totp_pending
                            UNION SELECT user FROM failures UNION SELECT user FROM contacts)
             SELECT n.user, t.user IS NOT NULL, t.last_used,
                    EXISTS (SELECT 1 FROM failures f WHERE f.user = n.user AND f.locked_until > ?1)
             FROM names n LEFT JOIN totp t ON t.user = n.user ORDER BY n.user",
        )?;
        let rows = stmt.query_map([now], |r| {
            Ok(UserSummary {
                user: r.get(0)?,
                totp_enrolled: r.get(1)?,
                last_used: r.get(2)?,
                locked: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn audit_rows(&self, user: Option<&str>, limit: u32) -> Result<Vec<AuditRow>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit WHERE ?1 IS NULL OR user = ?1 ORDER BY id DESC LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![user, limit], audit_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Drops expired pending enrollments and counters that no longer count,
    /// so guessed user names cannot grow the database without bound.
    pub fn purge(&self, now: i64, lockout: &LockoutConfig) -> Result<usize, StoreError> {
        let since =
            now.saturating_sub(i64::try_from(lockout.duration.as_secs()).unwrap_or(i64::MAX));
        let conn = self.conn();
        let mut n = conn.execute("DELETE FROM totp_pending WHERE expires <= ?1", [now])?;
        n += conn.execute("DELETE FROM sent_codes WHERE expires <= ?1", [now])?;
        n += conn.execute("DELETE FROM sends WHERE time <= ?1 - 3600", [now])?;
        n += conn.execute(
            "DELETE FROM failures WHERE last_failure <= ?1 AND (locked_until IS NULL OR locked_until <= ?2)",
            params![since, now],
        )?;
        Ok(n)
    }
}

/// `mfad.db` -> `mfad.db-wal`, the names SQLite gives its side files.
fn sidecar(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

/// Reads one TOTP row: secret, algorithm, digits, period, last step.
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
            ))
        })
        .optional()?;
    let Some((sealed_secret, algorithm, digits, period, last_step)) = row else {
        return Ok(None);
    };
    let algorithm =
        TotpAlgorithm::parse(&algorithm).ok_or_else(|| StoreError::Corrupt(user.to_owned()))?;
    Ok(Some(TotpRecord {
        sealed_secret,
        params: TotpParams {
            algorithm,
            digits,
            period,
        },
        last_step,
    }))
}

/// The failure-counter source that stands for the whole account.
pub const ACCOUNT: &str = "*";

/// An active TOTP factor to store.
pub struct NewTotp<'a> {
    pub sealed: &'a [u8],
    pub params: TotpParams,
    /// The step of the code that confirmed it (accepted once already).
    pub step: i64,
    pub now: i64,
}

fn activate(tx: &rusqlite::Transaction<'_>, user: &str, t: &NewTotp<'_>) -> Result<(), StoreError> {
    tx.execute(
        "INSERT OR REPLACE INTO totp
           (user, secret, algorithm, digits, period, last_step, enrolled_at, last_used)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL)",
        params![
            user,
            t.sealed,
            t.params.algorithm.as_str(),
            t.params.digits,
            t.params.period,
            t.step,
            t.now
        ],
    )?;
    tx.execute("DELETE FROM totp_pending WHERE user = ?1", [user])?;
    tx.execute(
        "DELETE FROM failures WHERE user = ?1 AND channel = 'totp'",
        [user],
    )?;
    Ok(())
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

/// Appends an audit row to the hash chain, in the caller's transaction.
pub(crate) fn insert_audit(conn: &Connection, e: &Event) -> Result<(), StoreError> {
    audit::insert(conn, e)
}

/// The columns [`audit_row`] reads, in its order.
const AUDIT_COLUMNS: &str = "id, time, user, service, rhost, tty, channel, decision, reason, peer_uid, rule, policy_version, ruser, caller_uid";

fn audit_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditRow> {
    Ok(AuditRow {
        id: r.get(0)?,
        time: r.get(1)?,
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
        ruser: r.get(12)?,
        caller_uid: r.get(13)?,
    })
}

#[cfg(test)]
mod tests;
