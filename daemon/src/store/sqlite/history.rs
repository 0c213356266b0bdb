//! Where each user's successful logins came from: the networks (/24 or
//! /64) and the country of the last one, for the risk signals; and the
//! logins themselves, from the audit log, for `mfactl history`.

use super::SqliteStore;
use crate::audit::chain::StoredRow;
use crate::store::{History, StoreError, Succeeded};
use rusqlite::{OptionalExtension, params};

impl History for SqliteStore {
    /// A login row is one the policy decided (it names the policy
    /// version); code deliveries and notices are left out.
    fn logins(
        &self,
        user: &str,
        limit: u32,
        allowed_only: bool,
    ) -> Result<Vec<StoredRow>, StoreError> {
        super::audit::rows_where(
            &self.reader(),
            "user = ?1 AND policy_version IS NOT NULL
               AND decision IN ('allow', 'deny', 'locked') AND (NOT ?3 OR decision = 'allow')
             ORDER BY id DESC LIMIT ?2",
            params![user, limit, allowed_only],
        )
    }

    fn network_known(&self, user: &str, network: &str) -> Result<bool, StoreError> {
        Ok(self
            .reader()
            .prepare_cached("SELECT 1 FROM login_networks WHERE user = ?1 AND network = ?2")?
            .query_row(params![user, network], |_| Ok(()))
            .optional()?
            .is_some())
    }

    fn last_login(&self, user: &str) -> Result<Option<(String, Option<String>)>, StoreError> {
        Ok(self
            .reader()
            .prepare_cached("SELECT rhost, country FROM last_login WHERE user = ?1")?
            .query_row([user], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    fn login_succeeded(&self, user: &str, what: &Succeeded<'_>) -> Result<(), StoreError> {
        if what.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        record_success(&tx, user, what)?;
        tx.commit()?;
        Ok(())
    }
}

/// `what`, in the caller's transaction.
pub(super) fn record_success(
    tx: &rusqlite::Transaction<'_>,
    user: &str,
    what: &Succeeded<'_>,
) -> Result<(), StoreError> {
    let now = what.now;
    // A repeat login from the same place changes no row (the times are
    // kept to the day), so it costs no page write.
    if let Some(v) = what.visit {
        tx.prepare_cached(
            "INSERT INTO login_networks (user, network, first_seen, last_seen) VALUES (?1, ?2, ?3, ?3)
             ON CONFLICT (user, network) DO UPDATE SET last_seen = ?3
             WHERE last_seen <= ?3 - 86400",
        )?
        .execute(params![user, v.network, now])?;
        tx.prepare_cached(
            "INSERT INTO last_login (user, time, rhost, country) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (user) DO UPDATE SET time = ?2, rhost = ?3, country = ?4
             WHERE rhost IS NOT ?3 OR country IS NOT ?4 OR time <= ?2 - 86400",
        )?
        .execute(params![user, now, v.rhost, v.country])?;
    }
    if let Some(t) = what.ticket {
        super::sessions::insert_ticket(tx, user, t)?;
    }
    Ok(())
}
