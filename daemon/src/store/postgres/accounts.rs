//! Accounts as a whole, policy versions and upkeep.

use super::PgStore;
use super::audit::insert;
use crate::audit::Event;
use crate::store::{
    Accounts, Health, HealthStatus, LockRule, Policies, PolicyRecord, StoreError, UserRecord,
};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

fn policy_of(r: &Row) -> PolicyRecord {
    PolicyRecord {
        version: r.get(0),
        sha256: r.get(1),
        loaded_at: r.get(2),
        loaded_by: r.get(3),
    }
}

impl Policies for PgStore {
    fn record_policy(
        &self,
        sha256: &str,
        text: &str,
        now: i64,
        loaded_by: &str,
    ) -> Result<(i64, bool), StoreError> {
        self.write(async |tx| {
            tx.execute("SELECT pg_advisory_xact_lock(hashtext('mfad policy'))", &[])
                .await?;
            let latest = tx
                .query_opt(
                    "SELECT version, sha256 FROM policy_versions ORDER BY version DESC LIMIT 1",
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
                    "INSERT INTO policy_versions (sha256, text, loaded_at, loaded_by)
                     VALUES ($1, $2, $3, $4) RETURNING version",
                    &[&sha256, &text, &now, &loaded_by],
                )
                .await?
                .get(0);
            Ok(((version, true), true))
        })
    }

    fn policy_versions(&self) -> Result<Vec<PolicyRecord>, StoreError> {
        self.block(async {
            let c = self.client().await?;
            Ok(c.query(
                "SELECT version, sha256, loaded_at, loaded_by FROM policy_versions
                 ORDER BY version",
                &[],
            )
            .await?
            .iter()
            .map(policy_of)
            .collect())
        })
    }

    fn policy_text(
        &self,
        version: Option<i64>,
    ) -> Result<Option<(PolicyRecord, String)>, StoreError> {
        self.block(async {
            let c = self.client().await?;
            Ok(c.query_opt(
                "SELECT version, sha256, loaded_at, loaded_by, text FROM policy_versions
                 WHERE $1::BIGINT IS NULL OR version = $1 ORDER BY version DESC LIMIT 1",
                &[&version],
            )
            .await?
            .map(|r| (policy_of(&r), r.get(4))))
        })
    }
}

impl Accounts for PgStore {
    fn users(&self, now: i64) -> Result<Vec<UserRecord>, StoreError> {
        self.block(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    "WITH names AS (SELECT username FROM totp UNION SELECT username FROM totp_pending
                                    UNION SELECT username FROM failures
                                    UNION SELECT username FROM contacts)
                     SELECT n.username, t.username IS NOT NULL, t.last_used,
                            EXISTS (SELECT 1 FROM failures f
                                    WHERE f.username = n.username AND f.locked_until > $1)
                     FROM names n LEFT JOIN totp t ON t.username = n.username
                     ORDER BY n.username",
                    &[&now],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| UserRecord {
                    user: r.get(0),
                    totp_enrolled: r.get(1),
                    last_used: r.get(2),
                    locked: r.get(3),
                })
                .collect())
        })
    }

    fn reset_user(&self, user: &str, event: &Event) -> Result<bool, StoreError> {
        self.write(async |tx| {
            let mut n = 0;
            for table in [
                "totp",
                "totp_pending",
                "failures",
                "backup_codes",
                "contacts",
                "sent_codes",
                "sends",
                "trusted_devices",
            ] {
                n += tx
                    .execute(
                        &format!("DELETE FROM {table} WHERE username = $1"),
                        &[&user],
                    )
                    .await?;
            }
            insert(tx, &self.host, event).await?;
            Ok((n > 0, true))
        })
    }

    fn purge(&self, now: i64, rule: LockRule) -> Result<usize, StoreError> {
        let since = now.saturating_sub(rule.duration_secs);
        self.block(async {
            let c = self.client().await?;
            let mut n = c
                .execute("DELETE FROM totp_pending WHERE expires <= $1", &[&now])
                .await?;
            n += c
                .execute("DELETE FROM sent_codes WHERE expires <= $1", &[&now])
                .await?;
            n += c
                .execute("DELETE FROM sends WHERE time <= $1", &[&(now - 3600)])
                .await?;
            n += c
                .execute(
                    "DELETE FROM failures WHERE last_failure <= $1
                       AND (locked_until IS NULL OR locked_until <= $2)",
                    &[&since, &now],
                )
                .await?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }

    fn self_check(&self) -> Vec<Health> {
        let health = |check, status, message| Health {
            check,
            status,
            message,
        };
        let started = std::time::Instant::now();
        let probe = self.block(async {
            let c = self.client().await?;
            let server: String = c.query_one("SHOW server_version", &[]).await?.get(0);
            let tls: Option<String> = c
                .query_opt(
                    "SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND ssl",
                    &[],
                )
                .await?
                .map(|r| r.get(0));
            let schema = super::migrate::check(&c).await;
            Ok((server, tls, schema))
        });
        let (server, tls, schema) = match probe {
            Ok(found) => found,
            Err(e) => {
                return vec![health(
                    "store connection",
                    HealthStatus::Fail,
                    format!("PostgreSQL: {e}: every login is refused"),
                )];
            }
        };
        vec![
            health(
                "store connection",
                HealthStatus::Ok,
                format!(
                    "PostgreSQL {server} answers in {} ms, as host {:?}",
                    started.elapsed().as_millis(),
                    self.host
                ),
            ),
            match tls {
                Some(version) => health(
                    "store tls",
                    HealthStatus::Ok,
                    format!("encrypted ({version})"),
                ),
                None => health(
                    "store tls",
                    HealthStatus::Warn,
                    "not encrypted: set store.ca_file unless the database is on this host"
                        .to_owned(),
                ),
            },
            match schema {
                Ok(()) => health(
                    "store schema",
                    HealthStatus::Ok,
                    format!("version {}", super::migrate::latest()),
                ),
                Err(e) => health("store schema", HealthStatus::Fail, e.to_string()),
            },
        ]
    }

    /// Nothing to do: every commit is durable on the server.
    fn close_clean(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
