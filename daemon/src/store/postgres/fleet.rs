//! What hosts of a fleet tell each other through the database: requests
//! to end a session on the host that holds it, and the pushed policy. Each
//! is recorded and announced (`pg_notify`) in one transaction, so the
//! notice is sent only once the row is there to be read; see `listen.rs`
//! for the receiving end.

use super::sessions::session_of;
use super::{PgStore, u32_of};
use crate::store::{Fleet, HostPolicy, HostSession, PolicyRecord, SessionRequest, StoreError};
use deadpool_postgres::GenericClient;

/// The channel on which a host is told of requests to end its sessions
/// (the payload is its name).
pub const SESSIONS_CHANNEL: &str = "mfad_sessions";
/// The channel on which every host is told of a pushed policy (the payload
/// is the version).
pub const POLICY_CHANNEL: &str = "mfad_policy";

const SESSION_COLUMNS: &str = "id, audit_session, username, service, rhost, tty, opened_at, \
                               factors, device, uid, host";

impl PgStore {
    /// Sessions of other hosts, and this host's of this boot, that match
    /// `filter` (`$1` is this host, `$2` the boot id).
    async fn host_sessions(
        &self,
        filter: &str,
        args: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<HostSession>, StoreError> {
        let c = self.client().await?;
        let rows = c
            .query(
                &format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions
                     WHERE (host <> $1 OR boot_id = $2) AND {filter} ORDER BY host, id"
                ),
                args,
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(HostSession {
                    host: r.get(10),
                    session: session_of(r)?,
                })
            })
            .collect()
    }
}

impl Fleet for PgStore {
    fn host(&self) -> &str {
        &self.host
    }

    fn fleet_sessions(&self, boot_id: &str) -> Result<Vec<HostSession>, StoreError> {
        self.block(self.host_sessions("TRUE", &[&self.host, &boot_id]))
    }

    fn fleet_session(&self, boot_id: &str, id: i64) -> Result<Option<HostSession>, StoreError> {
        Ok(self
            .block(self.host_sessions("id = $3", &[&self.host, &boot_id, &id]))?
            .pop())
    }

    fn request_session_end(&self, host: &str, r: &SessionRequest) -> Result<(), StoreError> {
        self.write(async |tx| {
            tx.execute(
                "INSERT INTO session_requests (host, session_id, by_uid, by_host, requested_at)
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &host,
                    &r.session,
                    &i64::from(r.by_uid),
                    &r.by_host,
                    &r.requested_at,
                ],
            )
            .await?;
            tx.execute("SELECT pg_notify($1, $2)", &[&SESSIONS_CHANNEL, &host])
                .await?;
            Ok(((), true))
        })
    }

    fn take_session_requests(&self) -> Result<Vec<SessionRequest>, StoreError> {
        self.block(async {
            let c = self.client().await?;
            // One DELETE claims them: a notice and the periodic check
            // racing each other never end a session twice.
            let rows = c
                .query(
                    "DELETE FROM session_requests WHERE host = $1
                     RETURNING session_id, by_uid, by_host, requested_at",
                    &[&self.host],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| SessionRequest {
                    session: r.get(0),
                    by_uid: u32_of(r.get(1)),
                    by_host: r.get(2),
                    requested_at: r.get(3),
                })
                .collect())
        })
    }

    fn push_policy(
        &self,
        sha256: &str,
        text: &str,
        now: i64,
        pushed_by: &str,
    ) -> Result<(i64, bool), StoreError> {
        self.write(async |tx| {
            // The same lock as a local load's record_policy.
            tx.execute("SELECT pg_advisory_xact_lock(hashtext('mfad policy'))", &[])
                .await?;
            let latest = tx
                .query_opt(
                    "SELECT version, sha256 FROM policy_versions WHERE pushed
                     ORDER BY version DESC LIMIT 1",
                    &[],
                )
                .await?;
            if let Some(r) = latest
                && r.get::<_, &str>(1) == sha256
            {
                return Ok(((r.get(0), false), false));
            }
            let version: i64 = tx
                .query_one(
                    "INSERT INTO policy_versions (sha256, text, loaded_at, loaded_by, pushed)
                     VALUES ($1, $2, $3, $4, TRUE) RETURNING version",
                    &[&sha256, &text, &now, &pushed_by],
                )
                .await?
                .get(0);
            tx.execute(
                "SELECT pg_notify($1, $2)",
                &[&POLICY_CHANNEL, &version.to_string()],
            )
            .await?;
            Ok(((version, true), true))
        })
    }

    fn pushed_policy(&self) -> Result<Option<(PolicyRecord, String)>, StoreError> {
        self.block(async {
            let c = self.client().await?;
            Ok(c.query_opt(
                "SELECT version, sha256, loaded_at, loaded_by, text FROM policy_versions
                 WHERE pushed ORDER BY version DESC LIMIT 1",
                &[],
            )
            .await?
            .map(|r| {
                (
                    PolicyRecord {
                        version: r.get(0),
                        sha256: r.get(1),
                        loaded_at: r.get(2),
                        loaded_by: r.get(3),
                    },
                    r.get(4),
                )
            }))
        })
    }

    fn policy_in_force(&self, version: i64, now: i64) -> Result<(), StoreError> {
        self.block(async {
            let c = self.client().await?;
            c.execute(
                "INSERT INTO policy_hosts AS h (host, version, since) VALUES ($1, $2, $3)
                 ON CONFLICT (host) DO UPDATE SET version = $2, since = $3
                 WHERE h.version <> $2",
                &[&self.host, &version, &now],
            )
            .await?;
            Ok(())
        })
    }

    fn policy_hosts(&self) -> Result<Vec<HostPolicy>, StoreError> {
        self.block(async {
            let c = self.client().await?;
            Ok(c.query(
                "SELECT host, version, since FROM policy_hosts ORDER BY host",
                &[],
            )
            .await?
            .iter()
            .map(|r| HostPolicy {
                host: r.get(0),
                version: r.get(1),
                since: r.get(2),
            })
            .collect())
        })
    }
}
