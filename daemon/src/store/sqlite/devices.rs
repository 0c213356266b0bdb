//! Trusted devices: SSH public keys a user chose to trust for a while,
//! stored as keyed hashes beside a readable label. Trust and revocation
//! are synced to disk before the user hears of them.

use super::{SqliteStore, insert_audit};
use crate::audit::Event;
use crate::store::{DeviceRecord, Devices, NewDevice, StoreError};

use rusqlite::{OptionalExtension, params};

impl Devices for SqliteStore {
    /// When the newest active trust of `key_hash` for `user` was given.
    fn device_trusted_at(
        &self,
        user: &str,
        key_hash: &[u8],
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT MAX(created_at) FROM trusted_devices
             WHERE user = ?1 AND key_hash = ?2 AND revoked_at IS NULL AND expires_at > ?3",
        )?;
        Ok(stmt.query_row(params![user, key_hash, now], |r| r.get(0))?)
    }

    /// The id of the active trust of `key_hash` for `user` given after
    /// `trusted_since`, marking it used and writing `event` (with the id) in
    /// the same transaction.
    fn use_trusted_device(
        &self,
        user: &str,
        key_hash: &[u8],
        now: i64,
        trusted_since: i64,
        event: &Event,
    ) -> Result<Option<i64>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let id: Option<i64> = tx
            .query_row(
                "UPDATE trusted_devices SET last_used = ?3
                 WHERE id = (SELECT id FROM trusted_devices
                             WHERE user = ?1 AND key_hash = ?2 AND revoked_at IS NULL
                               AND expires_at > ?3 AND created_at > ?4
                             ORDER BY expires_at DESC LIMIT 1)
                 RETURNING id",
                params![user, key_hash, now, trusted_since],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(id) = id {
            let mut event = event.clone();
            event.reason = format!("{} (device {id})", event.reason);
            insert_audit(&tx, &event)?;
            tx.commit()?;
        }
        Ok(id)
    }

    fn trust_device(&self, d: &NewDevice<'_>, event: &Event) -> Result<i64, StoreError> {
        self.durable(|tx| {
            tx.execute(
                "INSERT INTO trusted_devices (user, key_hash, key_type, fingerprint, first_ip,
                                              created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    d.user,
                    d.key_hash,
                    d.key_type,
                    d.fingerprint,
                    d.first_ip,
                    d.created_at,
                    d.expires_at
                ],
            )?;
            let id = tx.last_insert_rowid();
            let mut event = event.clone();
            event.reason = format!("{} (device {id})", event.reason);
            insert_audit(tx, &event)?;
            Ok(id)
        })
    }

    /// The devices of `user` still trusted at `now`.
    fn devices(&self, user: &str, now: i64) -> Result<Vec<DeviceRecord>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT id, key_type, fingerprint, first_ip, created_at, expires_at, last_used
             FROM trusted_devices
             WHERE user = ?1 AND revoked_at IS NULL AND expires_at > ?2 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![user, now], |r| {
            Ok(DeviceRecord {
                id: r.get(0)?,
                key_type: r.get(1)?,
                fingerprint: r.get(2)?,
                first_ip: r.get(3)?,
                created_at: r.get(4)?,
                expires_at: r.get(5)?,
                last_used: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Revokes device `id` of `user`; false if there is no such active one.
    fn revoke_device(
        &self,
        user: &str,
        id: i64,
        now: i64,
        event: &Event,
    ) -> Result<bool, StoreError> {
        self.durable(|tx| {
            let n = tx.execute(
                "UPDATE trusted_devices SET revoked_at = ?3
                 WHERE user = ?1 AND id = ?2 AND revoked_at IS NULL AND expires_at > ?3",
                params![user, id, now],
            )?;
            if n == 1 {
                insert_audit(tx, event)?;
            }
            Ok(n == 1)
        })
    }
}
