//! Stored backup codes. A consumed code and a new set are synced to disk
//! before the user hears success.

use super::{SqliteStore, clear_failures, insert_audit};
use crate::audit::Event;
use crate::factor::hashed::Stored;
use crate::store::{BackupCodes, Counter, StoreError};
use rusqlite::params;

impl BackupCodes for SqliteStore {
    /// Replaces every backup code of `user` with `codes`.
    fn replace_backup_codes(
        &self,
        user: &str,
        codes: &[Stored],
        event: &Event,
    ) -> Result<(), StoreError> {
        self.durable(|tx| {
            replace(tx, user, codes)?;
            insert_audit(tx, event)
        })
    }

    /// The unused codes of `user`, with their ids.
    fn unused_backup_codes(&self, user: &str) -> Result<Vec<(i64, Stored)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, salt, hash FROM backup_codes WHERE user = ?1 AND used_at IS NULL",
        )?;
        let rows = stmt.query_map([user], |r| {
            Ok((
                r.get(0)?,
                Stored {
                    salt: r.get(1)?,
                    hash: r.get(2)?,
                },
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn backup_codes_left(&self, user: &str) -> Result<u32, StoreError> {
        Ok(self
            .reader()
            .prepare_cached(
                "SELECT COUNT(*) FROM backup_codes WHERE user = ?1 AND used_at IS NULL",
            )?
            .query_row([user], |r| r.get(0))?)
    }

    /// Marks code `id` used, if it still is unused: of concurrent attempts
    /// with the same code, exactly one succeeds. Clears the channel's
    /// failure counters and writes `event` in the same transaction.
    fn consume_backup_code(
        &self,
        user: &str,
        id: i64,
        now: i64,
        counter: Counter<'_>,
        event: &Event,
    ) -> Result<bool, StoreError> {
        self.durable(|tx| {
            let used = tx.execute(
                "UPDATE backup_codes SET used_at = ?3 WHERE user = ?1 AND id = ?2 AND used_at IS NULL",
                params![user, id, now],
            )?;
            if used == 1 {
                clear_failures(tx, user, counter)?;
                insert_audit(tx, event)?;
            }
            Ok(used == 1)
        })
    }
}

/// Replaces every backup code of `user` with `codes`.
pub(super) fn replace(
    tx: &rusqlite::Transaction<'_>,
    user: &str,
    codes: &[Stored],
) -> Result<(), StoreError> {
    tx.execute("DELETE FROM backup_codes WHERE user = ?1", [user])?;
    let mut insert =
        tx.prepare("INSERT INTO backup_codes (user, id, salt, hash) VALUES (?1, ?2, ?3, ?4)")?;
    for (id, code) in codes.iter().enumerate() {
        insert.execute(params![user, id as i64, code.salt, code.hash])?;
    }
    Ok(())
}
