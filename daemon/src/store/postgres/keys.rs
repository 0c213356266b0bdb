//! The fleet's key ring as the database knows it: a check value per key id,
//! and the re-sealing of a rotation (see `sqlite/keycheck.rs`).

use super::{PgStore, u32_of};
use crate::store::crypto::Sealed;
use crate::store::{KEYED_TABLES, KeyState, Keys, SealedPlace, SealedValue, StoreError};
use std::collections::BTreeMap;

/// Told when a rotation records a new key, so that every host seals with
/// it at once.
pub(super) const KEYS_CHANNEL: &str = "mfad_keys";

/// The channel of a place's rows: contacts have one, TOTP rows do not.
fn channel_column(place: SealedPlace) -> &'static str {
    match place {
        SealedPlace::Totp | SealedPlace::PendingTotp => "''::TEXT",
        SealedPlace::Address | SealedPlace::PendingAddress => "channel",
    }
}

impl Keys for PgStore {
    fn key_state(&self) -> Result<KeyState, StoreError> {
        self.block(async {
            let c = self.client().await?;
            let checks = c
                .query("SELECT key_id, value FROM key_checks", &[])
                .await?
                .iter()
                .map(|r| (u32_of(r.get(0)), r.get(1)))
                .collect();
            let mut keyed_rows = 0u64;
            for table in KEYED_TABLES {
                let n: i64 = c
                    .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                    .await?
                    .get(0);
                keyed_rows += u64::from(u32_of(n));
            }
            Ok(KeyState { checks, keyed_rows })
        })
    }

    fn record_key_checks(
        &self,
        checks: &[(u32, [u8; 32])],
        replace: bool,
        now: i64,
    ) -> Result<(), StoreError> {
        self.write(async |tx| {
            if replace {
                tx.execute("DELETE FROM key_checks", &[]).await?;
            }
            for (id, value) in checks {
                tx.execute(
                    "INSERT INTO key_checks (key_id, value, recorded_at) VALUES ($1, $2, $3)
                     ON CONFLICT (key_id) DO UPDATE SET value = $2, recorded_at = $3",
                    &[&i64::from(*id), &value.as_slice(), &now],
                )
                .await?;
            }
            tx.execute("SELECT pg_notify($1, '')", &[&KEYS_CHANNEL])
                .await?;
            Ok(((), true))
        })
    }

    fn newest_key(&self) -> Result<Option<(u32, Vec<u8>)>, StoreError> {
        self.block(async {
            let c = self.client().await?;
            Ok(c.query_opt(
                "SELECT key_id, value FROM key_checks ORDER BY key_id DESC LIMIT 1",
                &[],
            )
            .await?
            .map(|r| (u32_of(r.get(0)), r.get(1))))
        })
    }

    fn sealed_per_key(&self) -> Result<BTreeMap<u32, u64>, StoreError> {
        self.block(async {
            let c = self.client().await?;
            let mut counts = BTreeMap::new();
            for place in SealedPlace::ALL {
                let (table, column, key) = place.columns();
                // The names come from `columns`, never from input.
                let sql = format!(
                    "SELECT {key}, count(*) FROM {table} WHERE {column} IS NOT NULL GROUP BY {key}"
                );
                for r in c.query(&sql, &[]).await? {
                    let n: i64 = r.get(1);
                    *counts.entry(u32_of(r.get(0))).or_default() += u64::try_from(n).unwrap_or(0);
                }
            }
            Ok(counts)
        })
    }

    fn sealed_not_under(&self, key: u32, limit: usize) -> Result<Vec<SealedValue>, StoreError> {
        self.block(async {
            let c = self.client().await?;
            let mut found = Vec::new();
            for place in SealedPlace::ALL {
                let left = i64::try_from(limit.saturating_sub(found.len())).unwrap_or(0);
                let (table, column, key_column) = place.columns();
                let channel = channel_column(place);
                let sql = format!(
                    "SELECT username, {channel}, {key_column}, {column} FROM {table}
                     WHERE {column} IS NOT NULL AND {key_column} <> $1 LIMIT $2"
                );
                for r in c.query(&sql, &[&i64::from(key), &left]).await? {
                    found.push(SealedValue {
                        place,
                        user: r.get(0),
                        channel: r.get(1),
                        sealed: Sealed {
                            key: u32_of(r.get(2)),
                            bytes: r.get(3),
                        },
                    });
                }
            }
            Ok(found)
        })
    }

    fn reseal(&self, batch: &[(SealedValue, Sealed)]) -> Result<u64, StoreError> {
        self.write(async |tx| {
            let mut n = 0u64;
            for (old, new) in batch {
                let (table, column, key) = old.place.columns();
                let channel = channel_column(old.place);
                let sql = format!(
                    "UPDATE {table} SET {column} = $1, {key} = $2
                     WHERE username = $3 AND {key} = $4 AND {column} = $5 AND {channel} = $6"
                );
                n += tx
                    .execute(
                        &sql,
                        &[
                            &new.bytes,
                            &i64::from(new.key),
                            &old.user,
                            &i64::from(old.sealed.key),
                            &old.sealed.bytes,
                            &old.channel,
                        ],
                    )
                    .await?;
            }
            Ok((n, true))
        })
    }
}
