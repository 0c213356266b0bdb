//! Stored policy versions: every policy the daemon loads, with its hash,
//! text, time and origin, so an audit row's version can be shown later.

use super::SqliteStore;
use crate::store::{Policies, PolicyRecord, StoreError};

use rusqlite::{OptionalExtension, params};

impl Policies for SqliteStore {
    /// Records a loaded policy and returns its version number. Loading the
    /// same text as the latest version again reuses that version.
    fn record_policy(
        &self,
        sha256: &str,
        text: &str,
        now: i64,
        loaded_by: &str,
    ) -> Result<(i64, bool), StoreError> {
        self.durable(|tx| {
            let latest: Option<(i64, String)> = tx
                .query_row("SELECT version, sha256 FROM policy_versions ORDER BY version DESC LIMIT 1", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            if let Some((version, sha)) = latest
                && sha == sha256
            {
                return Ok((version, false));
            }
            tx.execute(
                "INSERT INTO policy_versions (sha256, text, loaded_at, loaded_by) VALUES (?1, ?2, ?3, ?4)",
                params![sha256, text, now, loaded_by],
            )?;
            Ok((tx.last_insert_rowid(), true))
        })
    }

    fn policy_versions(&self) -> Result<Vec<PolicyRecord>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare(
            "SELECT version, sha256, loaded_at, loaded_by FROM policy_versions ORDER BY version",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(PolicyRecord {
                version: r.get(0)?,
                sha256: r.get(1)?,
                loaded_at: r.get(2)?,
                loaded_by: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One version and its text (`None`: the latest).
    fn policy_text(
        &self,
        version: Option<i64>,
    ) -> Result<Option<(PolicyRecord, String)>, StoreError> {
        let conn = self.reader();
        Ok(conn
            .query_row(
                "SELECT version, sha256, loaded_at, loaded_by, text FROM policy_versions
                 WHERE ?1 IS NULL OR version = ?1 ORDER BY version DESC LIMIT 1",
                params![version],
                |r| {
                    Ok((
                        PolicyRecord {
                            version: r.get(0)?,
                            sha256: r.get(1)?,
                            loaded_at: r.get(2)?,
                            loaded_by: r.get(3)?,
                        },
                        r.get(4)?,
                    ))
                },
            )
            .optional()?)
    }
}
