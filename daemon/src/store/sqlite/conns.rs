//! The connections: one writer, a few readers, and a checkpointer thread.
//!
//! SQLite's automatic WAL checkpoint runs inside the commit that crosses
//! the threshold, with that commit's fsyncs, while the writer's lock is
//! held: one login in a few hundred waited milliseconds for it. Here it is
//! off (`wal_autocheckpoint = 0`) and a thread of its own runs passive
//! checkpoints on its own connection, which never block the writer or the
//! readers. Reads go to a small pool of connections, so a read never waits
//! behind a write: WAL gives each reader the last committed snapshot.

use super::StoreError;
use rusqlite::Connection;
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// Reader connections: the daemon's worker threads (two by default) each
/// find one free.
const READERS: usize = 2;
/// How often the checkpointer copies the WAL back into the database. A
/// passive checkpoint with nothing new to copy only reads the WAL index.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// Once checkpointed, a WAL that grew past this is cut back to it. Large
/// enough for a second of logins at full speed, so it is reused, not cut.
const WAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// How much of the database file each connection maps (SQLite's page
/// cache stays per connection; the mapping is shared by the kernel).
const MMAP_SIZE: i64 = 64 * 1024 * 1024;

/// Opens a connection with the settings every one of them shares.
pub(super) fn open(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    // Checkpoints are the checkpointer's alone.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
    // Readers see the database file through a shared mapping instead of a
    // pread per page each time the WAL moved on.
    conn.pragma_update(None, "mmap_size", MMAP_SIZE)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

/// The reader pool.
pub(super) struct Readers(Vec<Mutex<Connection>>);

impl Readers {
    pub(super) fn open(path: &Path) -> Result<Self, StoreError> {
        let conns = (0..READERS)
            .map(|_| {
                let conn = open(path)?;
                // A read connection that tried to write would be a bug.
                conn.pragma_update(None, "query_only", true)?;
                Ok(Mutex::new(conn))
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Self(conns))
    }

    /// A free reader, or the first one if all are busy.
    pub(super) fn get(&self) -> MutexGuard<'_, Connection> {
        for conn in &self.0 {
            if let Ok(guard) = conn.try_lock() {
                return guard;
            }
        }
        // As with the writer: rusqlite leaves no transaction open across a
        // panic, so a poisoned lock is still usable.
        self.0[0].lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The checkpointer thread; stopped (with a last checkpoint) on drop.
pub(super) struct Checkpointer {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    pub(super) fn start(path: &Path) -> Result<Self, StoreError> {
        let conn = open(path)?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("mfad-checkpoint".into())
            .spawn(move || {
                loop {
                    let last = !matches!(
                        stopped.recv_timeout(CHECKPOINT_EVERY),
                        Err(RecvTimeoutError::Timeout)
                    );
                    if let Err(e) = checkpoint(&conn) {
                        log::warn!("WAL checkpoint failed (retried in a second): {e}");
                    }
                    if last {
                        return;
                    }
                }
            })
            .map_err(|e| StoreError::Thread(e.to_string()))?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

fn checkpoint(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
