//! The key check value: what the database knows of the key its secrets are
//! sealed with (a keyed hash of a constant, which reveals nothing of the
//! key), so mfad never serves with a lost or wrong key.

use crate::store::{KEYED_TABLES, KeyState, StoreError};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::path::Path;

/// Reads the key state of the database at `path` without changing it (no
/// migration, no lock kept): for `--init` and `--check-config`. Opened
/// read-write but never written, since a WAL database cannot always be
/// opened read-only; a running daemon's exclusive lock makes this fail with
/// "database is locked". `Ok(None)`: there is no database yet.
pub fn peek_key_state(path: &Path) -> Result<Option<KeyState>, StoreError> {
    if !path.exists() {
        return Ok(None);
    }
    super::prepare(path)?;
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    key_state(&conn).map(Some)
}

pub(super) fn key_state(conn: &Connection) -> Result<KeyState, StoreError> {
    let exists = |table: &str| -> Result<bool, StoreError> {
        Ok(conn
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [table],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    };
    let check = if exists("key_check")? {
        conn.query_row("SELECT value FROM key_check WHERE id = 1", [], |r| {
            r.get::<_, Vec<u8>>(0)
        })
        .optional()?
    } else {
        None
    };
    let mut keyed_rows = 0u64;
    for table in KEYED_TABLES {
        if exists(table)? {
            // The names come from the constant above, never from input.
            let n: i64 =
                conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
            keyed_rows += u64::try_from(n).unwrap_or(0);
        }
    }
    Ok(KeyState { check, keyed_rows })
}
