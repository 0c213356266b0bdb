//! The once-only TOTP rule across a power loss.
//!
//! An accepted TOTP step is committed with WAL's normal sync, not fsynced:
//! an fsync costs milliseconds on a disk (an enrollment, which is fsynced,
//! shows it), more than the whole login. A crash of the daemon alone loses
//! nothing (the WAL is in the page cache), but a power loss can drop the
//! last commits, and with them the record that a code was used: the same
//! code would then work once more.
//!
//! So the daemon leaves a marker (`<database>-running`, fsynced) while it
//! runs and removes it on a clean stop. If the marker is there at start,
//! the last run did not end cleanly and the store refuses every TOTP step
//! up to the step of the start time plus the window: the old process,
//! which ran before the start, cannot have accepted a later one. TOTP
//! logins wait at most (window + 1) periods after such a start (60 s with
//! the defaults); backup codes and sent codes are not fenced.

use super::StoreError;
use crate::files::FileError;
use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// The marker file of the database at `db`, locked (flock) while this
/// daemon runs, so a second daemon cannot use the same database.
pub(super) struct Marker {
    path: PathBuf,
    _lock: Flock<File>,
}

impl Marker {
    /// Notes whether the last run ended cleanly, then puts the marker down,
    /// synced to disk before any step can be accepted. Returns the marker
    /// and whether the last run did not end cleanly.
    pub(super) fn put(db: &Path) -> Result<(Self, bool), StoreError> {
        let path = super::sidecar(db, "-running");
        let unclean = path.exists();
        let io = |source| FileError::Io {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io)?;
        let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock)
            .map_err(|_| StoreError::InUse(db.to_owned()))?;
        lock.sync_all().map_err(io)?;
        sync_dir(&path).map_err(io)?;
        Ok((Self { path, _lock: lock }, unclean))
    }

    /// Removes the marker: the run ends cleanly.
    pub(super) fn remove(&self) -> Result<(), StoreError> {
        let io = |source| FileError::Io {
            path: self.path.clone(),
            source,
        };
        std::fs::remove_file(&self.path).map_err(io)?;
        // Were the removal lost, the next start would fence for nothing:
        // harmless, but a sync is cheap at shutdown.
        Ok(sync_dir(&self.path).map_err(io)?)
    }
}

/// Syncs the directory holding `path`, so a new or removed name is durable.
fn sync_dir(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

/// The steps the fence refuses, per TOTP row: steps up to
/// `since / period + window`. No fence: `since = 0, window = 0`, which
/// refuses no real step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fence {
    pub since: i64,
    pub window: i64,
}
