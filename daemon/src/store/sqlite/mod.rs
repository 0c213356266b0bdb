//! SQLite storage. One writer connection behind a mutex: every statement
//! here takes microseconds, and one writer keeps the "accepted at most once"
//! rules simple. Reads use connections of their own and checkpoints a thread
//! of its own (conns.rs).
//!
//! Durability is chosen per write: enrollments and resets are synced before
//! the caller hears success (outside the writer's lock: `durable`); the last
//! accepted TOTP step, failure counters and audit rows ride on WAL's normal
//! sync, and a start after an unclean stop fences the TOTP steps the old
//! process might have accepted (fence.rs).

mod accounts;
mod audit;
mod backup;
mod conns;
mod contacts;
mod deliveries;
mod devices;
pub(crate) mod failures;
mod fence;
mod history;
mod keycheck;
mod migrate;
mod otp;
mod policy;
mod retention;
mod sessions;
mod totp;

pub use keycheck::peek_key_state;

use super::StoreError;
use crate::files::{FileError, check_private};
use rusqlite::{Connection, TransactionBehavior};
use std::path::Path;
use std::sync::{Mutex, MutexGuard, OnceLock};

pub struct SqliteStore {
    /// The writer.
    conn: Mutex<Connection>,
    readers: conns::Readers,
    _checkpointer: conns::Checkpointer,
    marker: fence::Marker,
    /// Whether the last run ended without [`Store::close_clean`].
    unclean: bool,
    fence: OnceLock<fence::Fence>,
    /// The WAL file, which [`Self::durable`] syncs.
    wal: std::path::PathBuf,
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

impl SqliteStore {
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
            wal: sidecar(path, "-wal"),
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

    pub(super) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a transaction open
        // (rusqlite rolls back on drop), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A connection for reads that need no transaction with a write: the
    /// writer when it is free (its page cache holds what it just wrote),
    /// else a reader, so a read never waits behind a write.
    pub(super) fn reader(&self) -> MutexGuard<'_, Connection> {
        match self.conn.try_lock() {
            Ok(writer) => writer,
            Err(_) => self.readers.get(),
        }
    }

    /// Runs `f` in an immediate transaction that is fsynced before returning.
    ///
    /// The fsync runs after the writer's lock is released: with
    /// `synchronous = FULL` SQLite synced the WAL inside the commit, and every
    /// login waited behind an enrollment's fsync (milliseconds each on a
    /// busy disk). Syncing the WAL file afterwards is as durable: our frames
    /// are in it, or a checkpoint already copied them into the database and
    /// synced it before the WAL could start again.
    pub(super) fn durable<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let value = {
            let mut conn = self.conn();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = f(&tx)?;
            tx.commit()?;
            value
        };
        let io = |source| FileError::Io {
            path: self.wal.clone(),
            source,
        };
        let sync = || std::fs::File::open(&self.wal).and_then(|wal| wal.sync_data());
        // Logins of other connections do not wait out an enrollment's fsync.
        crate::blocking::wait(sync).map_err(io)?;
        Ok(value)
    }
}

/// `mfad.db` -> `mfad.db-wal`, the names SQLite gives its side files.
fn sidecar(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

use audit::insert as insert_audit;
use failures::clear_failures;

#[cfg(test)]
mod tests;
