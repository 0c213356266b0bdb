//! Phone numbers and email addresses, sealed (AES-256-GCM, bound to the
//! user and the purpose). A new destination waits beside the verified one
//! until its code confirms it; only a verified one receives login codes.

use super::otp::consume;
use super::{SqliteStore, insert_audit};
use crate::audit::Event;
use crate::factor::otp::Purpose;
use crate::store::crypto::Sealed;
use crate::store::{ContactRow, Contacts, StoreError};
use rusqlite::{OptionalExtension, params};

impl Contacts for SqliteStore {
    fn contact(&self, user: &str, channel: &str) -> Result<Option<ContactRow>, StoreError> {
        let conn = self.conn();
        Ok(conn
            .prepare_cached(
                "SELECT address, verified_at, pending, address_key, pending_key FROM contacts
                 WHERE user = ?1 AND channel = ?2",
            )?
            .query_row(params![user, channel], |r| {
                let sealed = |bytes: Option<Vec<u8>>, key| bytes.map(|bytes| Sealed { key, bytes });
                Ok(ContactRow {
                    address: sealed(r.get(0)?, r.get(3)?),
                    verified_at: r.get(1)?,
                    pending: sealed(r.get(2)?, r.get(4)?),
                })
            })
            .optional()?)
    }

    /// Stores a destination: verified (an admin's `--verified`), replacing
    /// the verified one and dropping any pending one; or pending, beside the
    /// verified one until its code confirms it.
    fn put_contact(
        &self,
        user: &str,
        channel: &str,
        sealed: &Sealed,
        verified: bool,
        now: i64,
        event: &Event,
    ) -> Result<(), StoreError> {
        self.durable(|tx| {
            if verified {
                upsert_verified(tx, user, channel, sealed, now)?;
            } else {
                tx.execute(
                    "INSERT INTO contacts (user, channel, pending, pending_at, pending_key)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (user, channel) DO UPDATE
                       SET pending = ?3, pending_at = ?4, pending_key = ?5",
                    params![user, channel, sealed.bytes, now, sealed.key],
                )?;
            }
            insert_audit(tx, event)
        })
    }

    /// Confirms the pending destination with the verification code whose
    /// salt this is, atomically: the code is used once, and only while live.
    fn verify_contact(
        &self,
        user: &str,
        channel: &str,
        salt: &[u8],
        sealed: &Sealed,
        now: i64,
        event: &Event,
    ) -> Result<bool, StoreError> {
        self.durable(|tx| {
            if !consume(tx, user, channel, Purpose::Verify, salt, now)? {
                return Ok(false);
            }
            upsert_verified(tx, user, channel, sealed, now)?;
            insert_audit(tx, event)?;
            Ok(true)
        })
    }

    /// Removes both destinations of `channel` and its codes; true if there
    /// was anything.
    fn clear_contact(&self, user: &str, channel: &str, event: &Event) -> Result<bool, StoreError> {
        self.durable(|tx| {
            let n = tx.execute(
                "DELETE FROM contacts WHERE user = ?1 AND channel = ?2",
                params![user, channel],
            )?;
            tx.execute(
                "DELETE FROM sent_codes WHERE user = ?1 AND channel = ?2",
                params![user, channel],
            )?;
            insert_audit(tx, event)?;
            Ok(n > 0)
        })
    }
}

fn upsert_verified(
    tx: &rusqlite::Transaction<'_>,
    user: &str,
    channel: &str,
    sealed: &Sealed,
    now: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO contacts (user, channel, address, verified_at, address_key)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (user, channel) DO UPDATE
           SET address = ?3, verified_at = ?4, address_key = ?5, pending = NULL, pending_at = NULL",
        params![user, channel, sealed.bytes, now, sealed.key],
    )?;
    tx.execute(
        "DELETE FROM sent_codes WHERE user = ?1 AND channel = ?2 AND purpose = ?3",
        params![user, channel, Purpose::Verify.name()],
    )?;
    Ok(())
}
