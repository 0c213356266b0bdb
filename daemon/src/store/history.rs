//! Where each user's successful logins came from: the networks (/24 or
//! /64) and the country of the last one, for the risk signals.

use super::{Store, StoreError};
use rusqlite::{OptionalExtension, params};

impl Store {
    pub fn network_known(&self, user: &str, network: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT 1 FROM login_networks WHERE user = ?1 AND network = ?2")?
            .query_row(params![user, network], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// The source and country of the user's last successful remote login.
    pub fn last_login(&self, user: &str) -> Result<Option<(String, Option<String>)>, StoreError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT rhost, country FROM last_login WHERE user = ?1")?
            .query_row([user], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    /// Remembers a successful login from `rhost` in `network`.
    pub fn record_login(
        &self,
        user: &str,
        rhost: &str,
        network: &str,
        country: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.prepare_cached(
            "INSERT INTO login_networks (user, network, first_seen, last_seen) VALUES (?1, ?2, ?3, ?3)
             ON CONFLICT (user, network) DO UPDATE SET last_seen = ?3",
        )?
        .execute(params![user, network, now])?;
        tx.prepare_cached(
            "INSERT OR REPLACE INTO last_login (user, time, rhost, country) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![user, now, rhost, country])?;
        tx.commit()?;
        Ok(())
    }
}
