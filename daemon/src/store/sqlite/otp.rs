//! Sent codes and the sends behind them. A new send replaces the previous
//! code of its user, channel and purpose; the cooldown and the hourly cap
//! are checked and the send recorded in one immediate transaction, so
//! concurrent logins cannot slip past either.

use super::{SqliteStore, clear_failures, insert_audit};
use crate::audit::Event;
use crate::factor::hashed::Stored;
use crate::factor::otp::Purpose;
use crate::store::{Counter, Issue, SendLimits, SentCode, SentCodes, StoreError};
use rusqlite::{OptionalExtension, params};

impl SentCodes for SqliteStore {
    /// Stores `code` as the code of `user` for `channel` and `purpose`
    /// (voiding the previous one) and counts the send, if the cooldown and
    /// the hourly cap allow.
    #[allow(clippy::too_many_arguments)]
    fn issue_code(
        &self,
        user: &str,
        channel: &str,
        purpose: Purpose,
        code: &Stored,
        now: i64,
        expires: i64,
        limits: &SendLimits,
    ) -> Result<Issue, StoreError> {
        self.durable(|tx| {
            let (count, first, last): (u32, Option<i64>, Option<i64>) = tx.query_row(
                "SELECT COUNT(*), MIN(time), MAX(time) FROM sends
                 WHERE user = ?1 AND channel = ?2 AND time > ?3 - 3600",
                params![user, channel, now],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            if let Some(last) = last
                && now - last < limits.cooldown_secs
            {
                return Ok(Issue::Cooldown {
                    wait: limits.cooldown_secs - (now - last),
                });
            }
            if count >= limits.hourly_cap {
                return Ok(Issue::Capped {
                    until: first.unwrap_or(now) + 3600,
                });
            }
            tx.execute(
                "INSERT INTO sends (user, channel, time) VALUES (?1, ?2, ?3)",
                params![user, channel, now],
            )?;
            tx.execute(
                "INSERT OR REPLACE INTO sent_codes
                   (user, channel, purpose, salt, hash, sent_at, expires, failures)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0)",
                params![
                    user,
                    channel,
                    purpose.name(),
                    code.salt,
                    code.hash,
                    now,
                    expires
                ],
            )?;
            Ok(Issue::Issued)
        })
    }

    /// The code of `user` for `channel` and `purpose`, if one was sent
    /// and is neither used nor replaced.
    fn sent_code(
        &self,
        user: &str,
        channel: &str,
        purpose: Purpose,
    ) -> Result<Option<SentCode>, StoreError> {
        let conn = self.conn();
        Ok(conn
            .prepare_cached(
                "SELECT salt, hash, sent_at, expires, failures FROM sent_codes
                 WHERE user = ?1 AND channel = ?2 AND purpose = ?3",
            )?
            .query_row(params![user, channel, purpose.name()], |r| {
                Ok(SentCode {
                    stored: Stored {
                        salt: r.get(0)?,
                        hash: r.get(1)?,
                    },
                    sent_at: r.get(2)?,
                    expires: r.get(3)?,
                    failures: r.get(4)?,
                })
            })
            .optional()?)
    }

    /// Counts a wrong answer against the code with this salt; returns the
    /// failures so far (the code is void once they reach the profile's limit).
    fn code_failed(
        &self,
        user: &str,
        channel: &str,
        purpose: Purpose,
        salt: &[u8],
    ) -> Result<u32, StoreError> {
        let conn = self.conn();
        Ok(conn
            .prepare_cached(
                "UPDATE sent_codes SET failures = failures + 1
                 WHERE user = ?1 AND channel = ?2 AND purpose = ?3 AND salt = ?4
                 RETURNING failures",
            )?
            .query_row(params![user, channel, purpose.name(), salt], |r| r.get(0))
            .optional()?
            .unwrap_or(u32::MAX))
    }

    /// Voids the code with this salt (its delivery failed).
    fn void_code(
        &self,
        user: &str,
        channel: &str,
        purpose: Purpose,
        salt: &[u8],
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "DELETE FROM sent_codes WHERE user = ?1 AND channel = ?2 AND purpose = ?3 AND salt = ?4",
            params![user, channel, purpose.name(), salt],
        )?;
        Ok(())
    }

    /// Uses up the login code with this salt, if it is still live: of
    /// concurrent attempts with the same code, exactly one succeeds. Clears
    /// the channel's failure counters and writes `event` in the same
    /// transaction.
    fn consume_login_code(
        &self,
        user: &str,
        channel: &str,
        counter: Counter<'_>,
        salt: &[u8],
        now: i64,
        event: &Event,
    ) -> Result<bool, StoreError> {
        self.durable(|tx| {
            let used = consume(tx, user, channel, Purpose::Login, salt, now)?;
            if used {
                clear_failures(tx, user, counter)?;
                insert_audit(tx, event)?;
            }
            Ok(used)
        })
    }
}

/// Deletes the live code with this salt; true if it was there.
pub(super) fn consume(
    tx: &rusqlite::Transaction<'_>,
    user: &str,
    channel: &str,
    purpose: Purpose,
    salt: &[u8],
    now: i64,
) -> Result<bool, StoreError> {
    let n = tx.execute(
        "DELETE FROM sent_codes
         WHERE user = ?1 AND channel = ?2 AND purpose = ?3 AND salt = ?4 AND expires > ?5",
        params![user, channel, purpose.name(), salt, now],
    )?;
    Ok(n == 1)
}
