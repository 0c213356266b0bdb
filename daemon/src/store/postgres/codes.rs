//! Contacts, the codes sent to them, and the caps on sending, fleet-wide:
//! a code sent from one host is checked on any, and the caps count every
//! host's messages.

use super::audit::insert;
use super::factors::accepted;
use super::{PgStore, u32_of};
use crate::audit::Event;
use crate::factor::hashed;
use crate::factor::otp::Purpose;
use crate::store::crypto::Sealed;
use crate::store::{
    ContactRow, Contacts, Counter, Deliveries, DeliveryCaps, Issue, Over, SendLimits, SentCode,
    SentCodes, StoreError,
};
use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;

const HOUR: i64 = 3600;

/// One cap: what passing it means, its own condition on the deliveries and
/// that condition's value (`$3`), the cap, and its window.
type Check<'a> = (Over, &'a str, Option<&'a (dyn ToSql + Sync)>, u32, i64);
const DAY: i64 = 86_400;

/// Serializes the count-then-insert of one cap across hosts and
/// connections, until the transaction ends.
async fn lock(tx: &impl GenericClient, name: &str) -> Result<(), StoreError> {
    tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&name])
        .await?;
    Ok(())
}

/// Deletes the code with `salt` if it is still good; true if it was.
async fn consume(
    tx: &impl GenericClient,
    user: &str,
    channel: &str,
    purpose: Purpose,
    salt: &[u8],
    now: i64,
) -> Result<bool, StoreError> {
    let n = tx
        .execute(
            "DELETE FROM sent_codes WHERE username = $1 AND channel = $2 AND purpose = $3
               AND salt = $4 AND expires > $5",
            &[&user, &channel, &purpose.name(), &salt, &now],
        )
        .await?;
    Ok(n == 1)
}

async fn upsert_verified(
    tx: &impl GenericClient,
    user: &str,
    channel: &str,
    sealed: &Sealed,
    now: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO contacts (username, channel, address, verified_at, address_key)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (username, channel) DO UPDATE
           SET address = $3, verified_at = $4, address_key = $5, pending = NULL, pending_at = NULL",
        &[&user, &channel, &sealed.bytes, &now, &i64::from(sealed.key)],
    )
    .await?;
    tx.execute(
        "DELETE FROM sent_codes WHERE username = $1 AND channel = $2 AND purpose = $3",
        &[&user, &channel, &Purpose::Verify.name()],
    )
    .await?;
    Ok(())
}

impl Contacts for PgStore {
    fn contact(&self, user: &str, channel: &str) -> Result<Option<ContactRow>, StoreError> {
        self.block(async {
            let c = self.client().await?;
            Ok(c.query_opt(
                "SELECT address, verified_at, pending, address_key, pending_key FROM contacts
                 WHERE username = $1 AND channel = $2",
                &[&user, &channel],
            )
            .await?
            .map(|r| {
                let sealed = |bytes: Option<Vec<u8>>, key: i64| {
                    bytes.map(|bytes| Sealed {
                        key: u32_of(key),
                        bytes,
                    })
                };
                ContactRow {
                    address: sealed(r.get(0), r.get(3)),
                    verified_at: r.get(1),
                    pending: sealed(r.get(2), r.get(4)),
                }
            }))
        })
    }

    fn put_contact(
        &self,
        user: &str,
        channel: &str,
        sealed: &Sealed,
        verified: bool,
        now: i64,
        event: &Event,
    ) -> Result<(), StoreError> {
        self.write(async |tx| {
            if verified {
                upsert_verified(tx, user, channel, sealed, now).await?;
            } else {
                tx.execute(
                    "INSERT INTO contacts (username, channel, pending, pending_at, pending_key)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (username, channel) DO UPDATE
                       SET pending = $3, pending_at = $4, pending_key = $5",
                    &[&user, &channel, &sealed.bytes, &now, &i64::from(sealed.key)],
                )
                .await?;
            }
            insert(tx, &self.host, event).await?;
            Ok(((), true))
        })
    }

    fn verify_contact(
        &self,
        user: &str,
        channel: &str,
        salt: &[u8],
        sealed: &Sealed,
        now: i64,
        event: &Event,
    ) -> Result<bool, StoreError> {
        self.write(async |tx| {
            if !consume(tx, user, channel, Purpose::Verify, salt, now).await? {
                return Ok((false, false));
            }
            upsert_verified(tx, user, channel, sealed, now).await?;
            insert(tx, &self.host, event).await?;
            Ok((true, true))
        })
    }

    fn clear_contact(&self, user: &str, channel: &str, event: &Event) -> Result<bool, StoreError> {
        self.write(async |tx| {
            let n = tx
                .execute(
                    "DELETE FROM contacts WHERE username = $1 AND channel = $2",
                    &[&user, &channel],
                )
                .await?;
            tx.execute(
                "DELETE FROM sent_codes WHERE username = $1 AND channel = $2",
                &[&user, &channel],
            )
            .await?;
            insert(tx, &self.host, event).await?;
            Ok((n > 0, true))
        })
    }
}

impl SentCodes for PgStore {
    fn issue_code(
        &self,
        user: &str,
        channel: &str,
        purpose: Purpose,
        code: &hashed::Stored,
        now: i64,
        expires: i64,
        limits: &SendLimits,
    ) -> Result<Issue, StoreError> {
        self.write(async |tx| {
            lock(tx, &format!("mfad sends {user} {channel}")).await?;
            let row = tx
                .query_one(
                    "SELECT COUNT(*), MIN(time), MAX(time) FROM sends
                     WHERE username = $1 AND channel = $2 AND time > $3",
                    &[&user, &channel, &(now - HOUR)],
                )
                .await?;
            let (count, first, last): (i64, Option<i64>, Option<i64>) =
                (row.get(0), row.get(1), row.get(2));
            if let Some(last) = last
                && now - last < limits.cooldown_secs
            {
                let wait = limits.cooldown_secs - (now - last);
                return Ok((Issue::Cooldown { wait }, false));
            }
            if u32_of(count) >= limits.hourly_cap {
                let until = first.unwrap_or(now) + HOUR;
                return Ok((Issue::Capped { until }, false));
            }
            tx.execute(
                "INSERT INTO sends (username, channel, time) VALUES ($1, $2, $3)",
                &[&user, &channel, &now],
            )
            .await?;
            tx.execute(
                "INSERT INTO sent_codes
                   (username, channel, purpose, salt, hash, sent_at, expires, failures)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 0)
                 ON CONFLICT (username, channel, purpose) DO UPDATE SET
                   salt = $4, hash = $5, sent_at = $6, expires = $7, failures = 0",
                &[
                    &user,
                    &channel,
                    &purpose.name(),
                    &code.salt,
                    &code.hash,
                    &now,
                    &expires,
                ],
            )
            .await?;
            Ok((Issue::Issued, true))
        })
    }

    fn sent_code(
        &self,
        user: &str,
        channel: &str,
        purpose: Purpose,
    ) -> Result<Option<SentCode>, StoreError> {
        self.block(async {
            let c = self.client().await?;
            Ok(c.query_opt(
                "SELECT salt, hash, sent_at, expires, failures FROM sent_codes
                 WHERE username = $1 AND channel = $2 AND purpose = $3",
                &[&user, &channel, &purpose.name()],
            )
            .await?
            .map(|r| SentCode {
                stored: hashed::Stored {
                    salt: r.get(0),
                    hash: r.get(1),
                },
                sent_at: r.get(2),
                expires: r.get(3),
                failures: u32_of(r.get(4)),
            }))
        })
    }

    fn code_failed(
        &self,
        user: &str,
        channel: &str,
        purpose: Purpose,
        salt: &[u8],
    ) -> Result<u32, StoreError> {
        self.block(async {
            let c = self.client().await?;
            Ok(c.query_opt(
                "UPDATE sent_codes SET failures = failures + 1
                 WHERE username = $1 AND channel = $2 AND purpose = $3 AND salt = $4
                 RETURNING failures",
                &[&user, &channel, &purpose.name(), &salt],
            )
            .await?
            .map_or(u32::MAX, |r| u32_of(r.get(0))))
        })
    }

    fn void_code(
        &self,
        user: &str,
        channel: &str,
        purpose: Purpose,
        salt: &[u8],
    ) -> Result<(), StoreError> {
        self.block(async {
            let c = self.client().await?;
            c.execute(
                "DELETE FROM sent_codes
                 WHERE username = $1 AND channel = $2 AND purpose = $3 AND salt = $4",
                &[&user, &channel, &purpose.name(), &salt],
            )
            .await?;
            Ok(())
        })
    }

    fn consume_login_code(
        &self,
        user: &str,
        channel: &str,
        counter: Counter<'_>,
        salt: &[u8],
        now: i64,
        event: &Event,
    ) -> Result<bool, StoreError> {
        self.write(async |tx| {
            let used = consume(tx, user, channel, Purpose::Login, salt, now).await?;
            if used {
                accepted(tx, &self.host, user, counter, event).await?;
            }
            Ok((used, used))
        })
    }
}

impl Deliveries for PgStore {
    fn reserve_delivery(
        &self,
        channel: &str,
        prefix: &str,
        caps: &DeliveryCaps,
        now: i64,
    ) -> Result<Result<i64, (Over, i64)>, StoreError> {
        self.write(async |tx| {
            lock(tx, &format!("mfad deliveries {channel}")).await?;
            tx.execute(
                "DELETE FROM deliveries WHERE channel = $1 AND time <= $2",
                &[&channel, &(now - DAY)],
            )
            .await?;
            let verify_uid = caps.verify.map(|(uid, _)| i64::from(uid));
            let mut checks: Vec<Check<'_>> = vec![
                (Over::Hourly, "", None, caps.hourly, HOUR),
                (
                    Over::Prefix,
                    " AND prefix = $3",
                    Some(&prefix),
                    caps.prefix,
                    HOUR,
                ),
            ];
            if let Some((_, cap)) = caps.verify {
                checks.push((
                    Over::Verify,
                    " AND verify_uid = $3",
                    Some(&verify_uid),
                    cap,
                    DAY,
                ));
            }
            for (over, extra, value, cap, window) in checks {
                let filter = format!("channel = $1 AND time > $2{extra}");
                let since = now - window;
                let mut args: Vec<&(dyn ToSql + Sync)> = vec![&channel, &since];
                args.extend(value);
                let count: i64 = tx
                    .query_one(
                        &format!("SELECT COUNT(*) FROM deliveries WHERE {filter}"),
                        &args,
                    )
                    .await?
                    .get(0);
                let count = u32_of(count);
                if count < cap {
                    continue;
                }
                // When the cap frees up: the window after the delivery that
                // must age out first.
                let oldest: Option<i64> = tx
                    .query_opt(
                        &format!(
                            "SELECT time FROM deliveries WHERE {filter}
                             ORDER BY time LIMIT 1 OFFSET {}",
                            count - cap
                        ),
                        &args,
                    )
                    .await?
                    .map(|r| r.get(0));
                return Ok((Err((over, oldest.unwrap_or(now) + window)), false));
            }
            let id: i64 = tx
                .query_one(
                    "INSERT INTO deliveries (channel, prefix, verify_uid, time)
                     VALUES ($1, $2, $3, $4) RETURNING id",
                    &[&channel, &prefix, &verify_uid, &now],
                )
                .await?
                .get(0);
            Ok((Ok(id), true))
        })
    }

    fn release_delivery(&self, id: i64) -> Result<(), StoreError> {
        self.block(async {
            let c = self.client().await?;
            c.execute("DELETE FROM deliveries WHERE id = $1", &[&id])
                .await?;
            Ok(())
        })
    }
}
