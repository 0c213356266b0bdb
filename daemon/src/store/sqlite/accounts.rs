//! Accounts as a whole (listing, reset) and the database's own upkeep.

use super::{SqliteStore, insert_audit};
use crate::audit::Event;
use crate::store::{Accounts, Health, HealthStatus, LockRule, StoreError, UserRecord};
use rusqlite::params;

impl Accounts for SqliteStore {
    fn users(&self, now: i64) -> Result<Vec<UserRecord>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare(
            "WITH names AS (SELECT user FROM totp UNION SELECT user FROM totp_pending
                            UNION SELECT user FROM failures UNION SELECT user FROM contacts)
             SELECT n.user, t.user IS NOT NULL, t.last_used,
                    EXISTS (SELECT 1 FROM failures f WHERE f.user = n.user AND f.locked_until > ?1)
             FROM names n LEFT JOIN totp t ON t.user = n.user ORDER BY n.user",
        )?;
        let rows = stmt.query_map([now], |r| {
            Ok(UserRecord {
                user: r.get(0)?,
                totp_enrolled: r.get(1)?,
                last_used: r.get(2)?,
                locked: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn reset_user(&self, user: &str, event: &Event) -> Result<bool, StoreError> {
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

    fn purge(&self, now: i64, rule: LockRule) -> Result<usize, StoreError> {
        let since = now.saturating_sub(rule.duration_secs);
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

    fn self_check(&self) -> Vec<Health> {
        let version: Result<i64, _> = self
            .reader()
            .pragma_query_value(None, "user_version", |r| r.get(0));
        vec![match version {
            Ok(v) => Health {
                check: "store",
                status: HealthStatus::Ok,
                message: format!("SQLite, schema version {v}"),
            },
            Err(e) => Health {
                check: "store",
                status: HealthStatus::Fail,
                message: format!("SQLite: {e}"),
            },
        }]
    }

    fn close_clean(&self) -> Result<(), StoreError> {
        self.conn()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        self.marker.remove()
    }
}
