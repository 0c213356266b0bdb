//! Where each user's successful logins came from: the networks (/24 or
//! /64) and the country of the last one, for the risk signals; and the
//! logins themselves, from the audit log, for `mfactl history`.

use super::{AUDIT_COLUMNS, NewTicket, Store, StoreError, audit_row};
use mfad_protocol::AuditRow;

/// Where a successful remote login came from.
#[derive(Debug, Clone)]
pub struct Visit {
    pub rhost: String,
    /// Its /24 or /64.
    pub network: String,
    pub country: Option<String>,
}
use rusqlite::{OptionalExtension, params};

impl Store {
    /// The authentication rows of `user` (each a factor checked, a device
    /// or session that stood in, or a verdict without a prompt), newest
    /// first; only those that let the login in with `allowed_only`. A login
    /// row is one the policy decided (it names the policy version); code
    /// deliveries and notices are left out.
    pub fn logins(
        &self,
        user: &str,
        limit: u32,
        allowed_only: bool,
    ) -> Result<Vec<AuditRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit
             WHERE user = ?1 AND policy_version IS NOT NULL
               AND decision IN ('allow', 'deny', 'locked') AND (NOT ?3 OR decision = 'allow')
             ORDER BY id DESC LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![user, limit, allowed_only], audit_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn network_known(&self, user: &str, network: &str) -> Result<bool, StoreError> {
        Ok(self
            .reader()
            .prepare_cached("SELECT 1 FROM login_networks WHERE user = ?1 AND network = ?2")?
            .query_row(params![user, network], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// The source and country of the user's last successful remote login.
    pub fn last_login(&self, user: &str) -> Result<Option<(String, Option<String>)>, StoreError> {
        Ok(self
            .reader()
            .prepare_cached("SELECT rhost, country FROM last_login WHERE user = ?1")?
            .query_row([user], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    /// Remembers a successful login from `rhost` in `network`.
    /// What a successful login leaves behind, in one transaction: where it
    /// came from, and the ticket its session hook will redeem.
    pub fn login_succeeded(
        &self,
        user: &str,
        now: i64,
        visit: Option<&Visit>,
        ticket: Option<&NewTicket<'_>>,
    ) -> Result<(), StoreError> {
        if visit.is_none() && ticket.is_none() {
            return Ok(());
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        // A repeat login from the same place changes no row (the times are
        // kept to the day), so it costs no page write.
        if let Some(v) = visit {
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
        if let Some(t) = ticket {
            super::sessions::insert_ticket(&tx, user, t)?;
        }
        tx.commit()?;
        Ok(())
    }
}
