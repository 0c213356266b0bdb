//! Trusted devices and login history (fleet-wide), and sessions (each row
//! names its host; a host sees and purges its own).

use super::audit::{insert, rows_where};
use super::{PgStore, pipeline, u32_of};
use crate::audit::Event;
use crate::audit::chain::StoredRow;
use crate::store::{
    DeviceRecord, Devices, History, NewDevice, NewSession, Passed, Proof, Sessions, StoreError,
    StoredSession, Succeeded, decode_factors, encode_factors,
};
use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};

impl Devices for PgStore {
    fn device_trusted_at(
        &self,
        user: &str,
        key_hash: &[u8],
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        self.block(async {
            let c = self.client().await?;
            Ok(c.query_one(
                "SELECT MAX(created_at) FROM trusted_devices
                 WHERE username = $1 AND key_hash = $2 AND revoked_at IS NULL
                   AND expires_at > $3",
                &[&user, &key_hash, &now],
            )
            .await?
            .get(0))
        })
    }

    fn use_trusted_device(
        &self,
        user: &str,
        key_hash: &[u8],
        now: i64,
        trusted_since: i64,
        event: &Event,
    ) -> Result<Option<i64>, StoreError> {
        self.write(async |tx| {
            let id: Option<i64> = tx
                .query_opt(
                    "UPDATE trusted_devices SET last_used = $3
                     WHERE id = (SELECT id FROM trusted_devices
                                 WHERE username = $1 AND key_hash = $2 AND revoked_at IS NULL
                                   AND expires_at > $3 AND created_at > $4
                                 ORDER BY expires_at DESC LIMIT 1)
                     RETURNING id",
                    &[&user, &key_hash, &now, &trusted_since],
                )
                .await?
                .map(|r| r.get(0));
            if let Some(id) = id {
                let mut event = event.clone();
                event.reason = format!("{} (device {id})", event.reason);
                insert(tx, &self.host, &event).await?;
            }
            Ok((id, id.is_some()))
        })
    }

    fn trust_device(&self, d: &NewDevice<'_>, event: &Event) -> Result<i64, StoreError> {
        self.write(async |tx| {
            let id: i64 = tx
                .query_one(
                    "INSERT INTO trusted_devices (username, key_hash, key_type, fingerprint,
                                                  first_ip, created_at, expires_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                    &[
                        &d.user,
                        &d.key_hash,
                        &d.key_type,
                        &d.fingerprint,
                        &d.first_ip,
                        &d.created_at,
                        &d.expires_at,
                    ],
                )
                .await?
                .get(0);
            let mut event = event.clone();
            event.reason = format!("{} (device {id})", event.reason);
            insert(tx, &self.host, &event).await?;
            Ok((id, true))
        })
    }

    fn devices(&self, user: &str, now: i64) -> Result<Vec<DeviceRecord>, StoreError> {
        self.block(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    "SELECT id, key_type, fingerprint, first_ip, created_at, expires_at, last_used
                     FROM trusted_devices
                     WHERE username = $1 AND revoked_at IS NULL AND expires_at > $2 ORDER BY id",
                    &[&user, &now],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| DeviceRecord {
                    id: r.get(0),
                    key_type: r.get(1),
                    fingerprint: r.get(2),
                    first_ip: r.get(3),
                    created_at: r.get(4),
                    expires_at: r.get(5),
                    last_used: r.get(6),
                })
                .collect())
        })
    }

    fn revoke_device(
        &self,
        user: &str,
        id: i64,
        now: i64,
        event: &Event,
    ) -> Result<bool, StoreError> {
        self.write(async |tx| {
            let n = tx
                .execute(
                    "UPDATE trusted_devices SET revoked_at = $3
                     WHERE username = $1 AND id = $2 AND revoked_at IS NULL AND expires_at > $3",
                    &[&user, &id, &now],
                )
                .await?;
            if n == 1 {
                insert(tx, &self.host, event).await?;
            }
            Ok((n == 1, n == 1))
        })
    }
}

pub(super) fn session_of(r: &Row) -> Result<StoredSession, StoreError> {
    Ok(StoredSession {
        id: r.get(0),
        audit_session: u32_of(r.get(1)),
        user: r.get(2),
        service: r.get(3),
        rhost: r.get(4),
        tty: r.get(5),
        opened_at: r.get(6),
        proof: Proof {
            factors: decode_factors(r.get(7))?,
            device: r.get(8),
        },
        uid: u32_of(r.get(9)),
    })
}

impl PgStore {
    /// This host's sessions that match `filter` (with `$1` the host).
    async fn sessions_where(
        &self,
        filter: &str,
        args: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<StoredSession>, StoreError> {
        let c = self.client().await?;
        let rows = c
            .query(
                &format!(
                    "SELECT id, audit_session, username, service, rhost, tty, opened_at, factors,
                            device, uid
                     FROM sessions WHERE host = $1 AND {filter} ORDER BY id"
                ),
                args,
            )
            .await?;
        rows.iter().map(session_of).collect()
    }
}

impl Sessions for PgStore {
    fn take_ticket(
        &self,
        hash: &[u8],
        user: &str,
        service: &str,
        now: i64,
    ) -> Result<Option<Proof>, StoreError> {
        self.block(async {
            let c = self.client().await?;
            let row = c
                .query_opt(
                    "DELETE FROM tickets WHERE hash = $1
                     RETURNING factors, device, expires, username, service",
                    &[&hash],
                )
                .await?;
            match row {
                Some(r)
                    if r.get::<_, i64>(2) > now
                        && r.get::<_, &str>(3) == user
                        && r.get::<_, &str>(4) == service =>
                {
                    Ok(Some(Proof {
                        factors: decode_factors(r.get(0))?,
                        device: r.get(1),
                    }))
                }
                _ => Ok(None),
            }
        })
    }

    fn open_session(
        &self,
        s: &NewSession<'_>,
        proof: &Proof,
        event: &Event,
    ) -> Result<i64, StoreError> {
        self.write(async |tx| {
            let id: i64 = tx
                .query_one(
                    "INSERT INTO sessions (host, boot_id, audit_session, username, uid, service,
                                           rhost, tty, opened_at, factors, device)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
                    &[
                        &self.host,
                        &s.boot_id,
                        &i64::from(s.audit_session),
                        &s.user,
                        &i64::from(s.uid),
                        &s.service,
                        &s.rhost,
                        &s.tty,
                        &s.opened_at,
                        &encode_factors(&proof.factors),
                        &proof.device,
                    ],
                )
                .await?
                .get(0);
            let mut event = event.clone();
            event.reason = format!("session {id}: {}", event.reason);
            insert(tx, &self.host, &event).await?;
            Ok((id, true))
        })
    }

    fn sessions_of(&self, boot_id: &str, sid: u32) -> Result<Vec<StoredSession>, StoreError> {
        self.block(self.sessions_where(
            "boot_id = $2 AND audit_session = $3",
            &[&self.host, &boot_id, &i64::from(sid)],
        ))
    }

    fn session(&self, boot_id: &str, id: i64) -> Result<Option<StoredSession>, StoreError> {
        Ok(self
            .block(self.sessions_where("boot_id = $2 AND id = $3", &[&self.host, &boot_id, &id]))?
            .pop())
    }

    fn sessions(&self, boot_id: &str) -> Result<Vec<StoredSession>, StoreError> {
        self.block(self.sessions_where("boot_id = $2", &[&self.host, &boot_id]))
    }

    fn session_passed(&self, id: i64, passed: &[Passed]) -> Result<(), StoreError> {
        self.write(async |tx| {
            let Some(row) = tx
                .query_opt(
                    "SELECT factors FROM sessions WHERE id = $1 FOR UPDATE",
                    &[&id],
                )
                .await?
            else {
                return Ok(((), false));
            };
            let mut factors = decode_factors(row.get(0))?;
            for p in passed {
                factors.retain(|f| f.factor != p.factor);
                factors.push(p.clone());
            }
            tx.execute(
                "UPDATE sessions SET factors = $2 WHERE id = $1",
                &[&id, &encode_factors(&factors)],
            )
            .await?;
            Ok(((), true))
        })
    }

    fn clear_session_proof(&self, id: i64, event: &Event) -> Result<(), StoreError> {
        self.write(async |tx| {
            let n = tx
                .execute(
                    "UPDATE sessions SET factors = '[]', device = NULL WHERE id = $1",
                    &[&id],
                )
                .await?;
            if n == 1 {
                let mut event = event.clone();
                event.reason = format!("session {id}: {}", event.reason);
                insert(tx, &self.host, &event).await?;
            }
            Ok(((), true))
        })
    }

    fn remove_sessions(&self, ids: &[i64], event: &Event) -> Result<Vec<i64>, StoreError> {
        self.write(async |tx| {
            let mut removed = Vec::new();
            for &id in ids {
                if tx
                    .execute("DELETE FROM sessions WHERE id = $1", &[&id])
                    .await?
                    == 1
                {
                    let mut event = event.clone();
                    event.reason = format!("session {id}: {}", event.reason);
                    insert(tx, &self.host, &event).await?;
                    removed.push(id);
                }
            }
            Ok((removed, true))
        })
    }

    fn purge_sessions(&self, boot_id: &str, now: i64) -> Result<usize, StoreError> {
        self.block(async {
            let c = self.client().await?;
            let n = c
                .execute(
                    "DELETE FROM sessions WHERE host = $1 AND boot_id != $2",
                    &[&self.host, &boot_id],
                )
                .await?;
            let m = c
                .execute("DELETE FROM tickets WHERE expires <= $1", &[&now])
                .await?;
            Ok(usize::try_from(n + m).unwrap_or(usize::MAX))
        })
    }

    fn fleet(&self) -> Option<&dyn crate::store::Fleet> {
        Some(self)
    }
}

impl History for PgStore {
    /// A login row is one the policy decided (it names the policy
    /// version); code deliveries and notices are left out.
    fn logins(
        &self,
        user: &str,
        limit: u32,
        allowed_only: bool,
    ) -> Result<Vec<StoredRow>, StoreError> {
        self.block(async {
            let c = self.client().await?;
            rows_where(
                &c,
                "username = $1 AND policy_version IS NOT NULL
                   AND decision IN ('allow', 'deny', 'locked') AND (NOT $3 OR decision = 'allow')
                 ORDER BY id DESC LIMIT $2",
                &[&user, &i64::from(limit), &allowed_only],
            )
            .await
        })
    }

    fn network_known(&self, user: &str, network: &str) -> Result<bool, StoreError> {
        self.block(async {
            let c = self.client().await?;
            Ok(c.query_opt(
                "SELECT 1 FROM login_networks WHERE username = $1 AND network = $2",
                &[&user, &network],
            )
            .await?
            .is_some())
        })
    }

    fn last_login(&self, user: &str) -> Result<Option<(String, Option<String>)>, StoreError> {
        self.block(async {
            let c = self.client().await?;
            Ok(c.query_opt(
                "SELECT rhost, country FROM last_login WHERE username = $1",
                &[&user],
            )
            .await?
            .map(|r| (r.get(0), r.get(1))))
        })
    }

    fn login_succeeded(&self, user: &str, what: &Succeeded<'_>) -> Result<(), StoreError> {
        if what.is_empty() {
            return Ok(());
        }
        self.block(async {
            let c = self.client().await?;
            let record = Success::prepare(&c).await?;
            // Nothing here needs to outlive a crash of the database (a lost
            // ticket opens a session with no factors; a lost visit flags a
            // place as new once more), so the commit does not wait for the
            // WAL flush: as the SQLite store, one flush per login, the
            // accepted code's.
            let durability = async {
                c.batch_execute("SET LOCAL synchronous_commit TO OFF")
                    .await
                    .map_err(StoreError::from)
            };
            // BEGIN, all of it and COMMIT: one round trip.
            // The first error in send order (accept_totp_step says why).
            let body = async {
                let (durability, record) =
                    tokio::join!(biased; durability, record.run(&c, user, what));
                Ok::<_, StoreError>((durability?, record?))
            };
            pipeline::whole(&c, body).await?;
            Ok(())
        })
    }
}

/// The statements that record a login's success, prepared (once per
/// connection) before a pipeline, so that they go out in its write.
pub(super) struct Success([Statement; 3]);

impl Success {
    pub async fn prepare(c: &impl GenericClient) -> Result<Self, StoreError> {
        let (network, last, ticket) = tokio::try_join!(
            c.prepare_cached(
                "INSERT INTO login_networks AS n (username, network, first_seen, last_seen)
                 VALUES ($1, $2, $3, $3)
                 ON CONFLICT (username, network) DO UPDATE SET last_seen = $3
                 WHERE n.last_seen <= $3 - 86400",
            ),
            c.prepare_cached(
                "INSERT INTO last_login AS l (username, time, rhost, country)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (username) DO UPDATE SET time = $2, rhost = $3, country = $4
                 WHERE l.rhost IS DISTINCT FROM $3 OR l.country IS DISTINCT FROM $4
                    OR l.time <= $2 - 86400",
            ),
            c.prepare_cached(
                "INSERT INTO tickets (hash, username, service, factors, device, expires)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            ),
        )?;
        Ok(Self([network, last, ticket]))
    }

    /// Writes `what` in the caller's transaction; each statement is sent
    /// when first polled.
    pub async fn run(
        &self,
        c: &impl GenericClient,
        user: &str,
        what: &Succeeded<'_>,
    ) -> Result<(), StoreError> {
        let [network, last, ticket] = &self.0;
        let now = what.now;
        // A repeat login from the same place changes no row (the times
        // are kept to the day).
        let network = async {
            let Some(v) = what.visit else { return Ok(0) };
            Ok::<_, StoreError>(c.execute(network, &[&user, &v.network, &now]).await?)
        };
        let last = async {
            let Some(v) = what.visit else { return Ok(0) };
            Ok::<_, StoreError>(
                c.execute(last, &[&user, &now, &v.rhost, &v.country])
                    .await?,
            )
        };
        let factors = what.ticket.map(|t| encode_factors(&t.proof.factors));
        let ticket = async {
            let (Some(t), Some(factors)) = (what.ticket, &factors) else {
                return Ok(0);
            };
            let args: &[&(dyn ToSql + Sync)] = &[
                &t.hash,
                &user,
                &t.service,
                factors,
                &t.proof.device,
                &t.expires,
            ];
            Ok::<_, StoreError>(c.execute(ticket, args).await?)
        };
        tokio::try_join!(biased; network, last, ticket)?;
        Ok(())
    }
}
