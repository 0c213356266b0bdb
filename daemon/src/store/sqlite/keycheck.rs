//! The key ring as the database knows it: a check value per key id (a keyed
//! hash of a constant, which reveals nothing of the key), so mfad never
//! serves with a lost or wrong key; and the re-sealing of a rotation.

use super::SqliteStore;
use crate::store::crypto::Sealed;
use crate::store::{KEYED_TABLES, KeyState, Keys, SealedPlace, SealedValue, StoreError};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::collections::BTreeMap;
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

fn key_state(conn: &Connection) -> Result<KeyState, StoreError> {
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
    let mut checks = BTreeMap::new();
    if exists("key_checks")? {
        let mut stmt = conn.prepare("SELECT key_id, value FROM key_checks")?;
        for row in stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))? {
            let (id, value) = row?;
            checks.insert(id, value);
        }
    } else if exists("key_check")? {
        // A database not yet migrated to key rings: its one key is key 1.
        let value = conn
            .query_row("SELECT value FROM key_check WHERE id = 1", [], |r| {
                r.get::<_, Vec<u8>>(0)
            })
            .optional()?;
        checks.extend(value.map(|v| (1, v)));
    }
    let mut keyed_rows = 0u64;
    for table in KEYED_TABLES {
        if exists(table)? {
            // The names come from the constant above, never from input.
            let n: i64 =
                conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
            keyed_rows += u64::try_from(n).unwrap_or(0);
        }
    }
    Ok(KeyState { checks, keyed_rows })
}

/// The channel of a place's rows: contacts have one, TOTP rows do not.
fn channel_column(place: SealedPlace) -> &'static str {
    match place {
        SealedPlace::Totp | SealedPlace::PendingTotp => "''",
        SealedPlace::Address | SealedPlace::PendingAddress => "channel",
    }
}

impl Keys for SqliteStore {
    fn key_state(&self) -> Result<KeyState, StoreError> {
        key_state(&self.conn())
    }

    fn record_key_checks(
        &self,
        checks: &[(u32, [u8; 32])],
        replace: bool,
        now: i64,
    ) -> Result<(), StoreError> {
        self.durable(|tx| {
            if replace {
                tx.execute("DELETE FROM key_checks", [])?;
            }
            for (id, value) in checks {
                tx.execute(
                    "INSERT OR REPLACE INTO key_checks (key_id, value, recorded_at)
                     VALUES (?1, ?2, ?3)",
                    params![id, value.as_slice(), now],
                )?;
            }
            Ok(())
        })
    }

    fn newest_key(&self) -> Result<Option<(u32, Vec<u8>)>, StoreError> {
        Ok(self
            .reader()
            .query_row(
                "SELECT key_id, value FROM key_checks ORDER BY key_id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    fn sealed_per_key(&self) -> Result<BTreeMap<u32, u64>, StoreError> {
        let conn = self.reader();
        let mut counts = BTreeMap::new();
        for place in SealedPlace::ALL {
            let (table, column, key) = place.columns();
            // The names come from `columns`, never from input.
            let mut stmt = conn.prepare(&format!(
                "SELECT {key}, count(*) FROM {table} WHERE {column} IS NOT NULL GROUP BY {key}"
            ))?;
            for row in stmt.query_map([], |r| Ok((r.get::<_, u32>(0)?, r.get::<_, i64>(1)?)))? {
                let (id, n) = row?;
                *counts.entry(id).or_default() += u64::try_from(n).unwrap_or(0);
            }
        }
        Ok(counts)
    }

    fn sealed_not_under(&self, key: u32, limit: usize) -> Result<Vec<SealedValue>, StoreError> {
        let conn = self.reader();
        let mut found = Vec::new();
        for place in SealedPlace::ALL {
            let left = limit.saturating_sub(found.len());
            let (table, column, key_column) = place.columns();
            let channel = channel_column(place);
            let mut stmt = conn.prepare(&format!(
                "SELECT user, {channel}, {key_column}, {column} FROM {table}
                 WHERE {column} IS NOT NULL AND {key_column} <> ?1 LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![key, left as i64], |r| {
                Ok(SealedValue {
                    place,
                    user: r.get(0)?,
                    channel: r.get(1)?,
                    sealed: Sealed {
                        key: r.get(2)?,
                        bytes: r.get(3)?,
                    },
                })
            })?;
            for row in rows {
                found.push(row?);
            }
        }
        Ok(found)
    }

    fn reseal(&self, batch: &[(SealedValue, Sealed)]) -> Result<u64, StoreError> {
        self.durable(|tx| {
            let mut n = 0u64;
            for (old, new) in batch {
                let (table, column, key) = old.place.columns();
                let channel = channel_column(old.place);
                n += tx.execute(
                    &format!(
                        "UPDATE {table} SET {column} = ?1, {key} = ?2
                         WHERE user = ?3 AND {key} = ?4 AND {column} = ?5 AND {channel} = ?6"
                    ),
                    params![
                        new.bytes,
                        new.key,
                        old.user,
                        old.sealed.key,
                        old.sealed.bytes,
                        old.channel
                    ],
                )? as u64;
            }
            Ok(n)
        })
    }
}
