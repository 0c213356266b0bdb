//! A fleet host's TOTP cache, for rules with `store_unreachable = "cached"`:
//! a local SQLite file (root, 0600) beside where the SQLite database would
//! be. It holds, for each user who passed a TOTP code on this host, the
//! secret still sealed with the fleet key (as the shared store keeps it),
//! its params and the last step used here; and a spool of the audit rows
//! of logins checked against it while the shared database was unreachable.
//!
//! Threat: the file gives nothing without the key file, which sits beside
//! it already. A user removed or reset centrally stays usable here while
//! the database is unreachable until this host next reads that user from
//! it (the next login of that user here): see README, "A fleet of servers".
//! Replay protection during an outage is per host; [`ship`] raises the
//! shared last step afterwards, so no code used offline passes anywhere
//! once the database is back.

use crate::Daemon;
use crate::audit::{Decision, Event};
use crate::factor::totp::TotpAlgorithm;
use crate::files::check_private;
use crate::policy::Factor;
use crate::store::crypto::Sealed;
use crate::store::sqlite::failures;
use crate::store::{Counter, FailureState, LockRule, StoreError, TakeStep, TotpParams, TotpRecord};
use rusqlite::{Connection, OptionalExtension, params};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The cache file's name in the state directory.
const FILE: &str = "totp-cache.db";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS totp (
    username TEXT PRIMARY KEY,
    -- The id of the key that sealed it (the fleet's key ring).
    key INTEGER NOT NULL,
    sealed BLOB NOT NULL,
    algorithm TEXT NOT NULL,
    digits INTEGER NOT NULL,
    period INTEGER NOT NULL,
    last_step INTEGER NOT NULL
);
-- Failures of cached logins: the store's own table and rules, counted on
-- this host only (see store/sqlite/failures.rs).
CREATE TABLE IF NOT EXISTS failures (
    user TEXT NOT NULL,
    channel TEXT NOT NULL,
    source TEXT NOT NULL,
    count INTEGER NOT NULL,
    last_failure INTEGER NOT NULL,
    locked_until INTEGER,
    PRIMARY KEY (user, channel, source)
);
CREATE TABLE IF NOT EXISTS spool (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time INTEGER NOT NULL,
    username TEXT NOT NULL,
    service TEXT NOT NULL,
    rhost TEXT,
    tty TEXT,
    channel TEXT NOT NULL,
    decision TEXT NOT NULL,
    reason TEXT NOT NULL,
    peer_uid INTEGER NOT NULL,
    rule TEXT,
    policy_version INTEGER,
    ruser TEXT,
    caller_uid INTEGER,
    -- The failure source and step of an accepted code, raised in the
    -- shared store when the row is shipped.
    source TEXT,
    step INTEGER
);
";

pub struct Cache {
    conn: Mutex<Connection>,
}

/// Where the cache of a host whose SQLite database would be `database`.
pub fn path(database: &Path) -> PathBuf {
    database.with_file_name(FILE)
}

/// An audit row waiting to be shipped to the shared store.
struct Spooled {
    id: i64,
    event: Event,
    accepted: Option<(String, i64)>,
}

impl Cache {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        crate::store::prepare(path)?;
        // Private from its first byte, whatever the umask (SQLite gives its
        // journal the file's mode).
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|source| crate::files::FileError::Io {
                path: path.to_owned(),
                source,
            })?;
        let conn = Connection::open(path)?;
        // A TOTP login writes here: no flush per login (as the store's own
        // SQLite, a power loss may cost the last moments, never the file).
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")?;
        conn.execute_batch(SCHEMA)?;
        check_private(path, 0o600)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// After a TOTP code of `user` passed in the shared store.
    pub fn remember(&self, user: &str, r: &TotpRecord, step: i64) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "INSERT INTO totp (username, key, sealed, algorithm, digits, period, last_step)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (username) DO UPDATE SET key = ?2, sealed = ?3, algorithm = ?4,
                 digits = ?5, period = ?6, last_step = max(last_step, ?7)",
            )?
            .execute(params![
                user,
                r.sealed_secret.key,
                r.sealed_secret.bytes,
                r.params.algorithm.as_str(),
                r.params.digits,
                i64::try_from(r.params.period).unwrap_or(i64::MAX),
                step
            ])?;
        Ok(())
    }

    /// Drops every user's TOTP (the spool and the counters stay).
    pub fn clear(&self) -> Result<(), StoreError> {
        self.conn().execute("DELETE FROM totp", [])?;
        Ok(())
    }

    /// Drops `user` unless the shared store holds the same secret
    /// (`None`: no TOTP any more).
    pub fn forget_unless(&self, user: &str, sealed: Option<&Sealed>) -> Result<(), StoreError> {
        // On every login of a fleet host: prepared once.
        self.conn()
            .prepare_cached(
                "DELETE FROM totp WHERE username = ?1 AND (?2 IS NULL OR key <> ?2 OR sealed <> ?3)",
            )?
            .execute(params![user, sealed.map(|s| s.key), sealed.map(|s| &s.bytes)])?;
        Ok(())
    }

    pub fn totp(&self, user: &str) -> Result<Option<TotpRecord>, StoreError> {
        let row = self
            .conn()
            .prepare_cached(
                "SELECT key, sealed, algorithm, digits, period, last_step FROM totp
                 WHERE username = ?1",
            )?
            .query_row([user], |r| {
                Ok((
                    Sealed {
                        key: r.get(0)?,
                        bytes: r.get(1)?,
                    },
                    r.get::<_, String>(2)?,
                    r.get::<_, u32>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            })
            .optional()?;
        let Some((sealed_secret, algorithm, digits, period, last_step)) = row else {
            return Ok(None);
        };
        let corrupt = || StoreError::Corrupt(format!("cached TOTP of {user:?}"));
        Ok(Some(TotpRecord {
            sealed_secret,
            params: TotpParams {
                algorithm: TotpAlgorithm::parse(&algorithm).ok_or_else(corrupt)?,
                digits,
                period: u64::try_from(period).map_err(|_| corrupt())?,
            },
            last_step,
        }))
    }

    /// Accepts `step` of `user` once on this host, with its audit row
    /// spooled in the same transaction; the counter's failures here start
    /// again.
    pub fn accept_step(
        &self,
        user: &str,
        counter: Counter<'_>,
        step: i64,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let updated = tx.execute(
            "UPDATE totp SET last_step = ?2 WHERE username = ?1 AND last_step < ?2",
            params![user, step],
        )?;
        if updated == 1 {
            failures::clear_failures(&tx, user, counter)?;
            spool_in(&tx, event, Some((counter.source, step)))?;
        }
        tx.commit()?;
        Ok(updated == 1)
    }

    /// Counts a failed cached login on this host, as the store would, its
    /// audit row spooled in the same transaction.
    pub fn record_failure(
        &self,
        user: &str,
        counter: Counter<'_>,
        now: i64,
        rule: LockRule,
        event: &Event,
    ) -> Result<FailureState, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let state = failures::count_failure(&tx, user, counter, now, rule)?;
        spool_in(&tx, event, None)?;
        tx.commit()?;
        Ok(state)
    }

    /// Until when `counter` is locked by failures on this host.
    pub fn locked_until(
        &self,
        user: &str,
        counter: Counter<'_>,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        failures::locked_until(&self.conn(), user, counter, now)
    }

    /// Spools an audit row of a login checked while the database was
    /// unreachable.
    pub fn spool(&self, event: &Event) -> Result<(), StoreError> {
        spool_in(&self.conn(), event, None)
    }

    fn spooled(&self) -> Result<Vec<Spooled>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, time, username, service, rhost, tty, channel, decision, reason, peer_uid,
                    rule, policy_version, ruser, caller_uid, source, step
             FROM spool ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            let channel: String = r.get(6)?;
            let decision: String = r.get(7)?;
            let source: Option<String> = r.get(14)?;
            let step: Option<i64> = r.get(15)?;
            Ok(Spooled {
                id: r.get(0)?,
                event: Event {
                    time: r.get(1)?,
                    user: r.get(2)?,
                    service: r.get(3)?,
                    rhost: r.get(4)?,
                    tty: r.get(5)?,
                    channel: Factor::parse(&channel).map_or("none", Factor::name),
                    decision: decision_named(&decision),
                    reason: r.get(8)?,
                    peer_uid: r.get(9)?,
                    rule: r.get(10)?,
                    policy_version: r.get(11)?,
                    session_id: None,
                    request: None,
                    ruser: r.get(12)?,
                    caller_uid: r.get(13)?,
                    stored: Default::default(),
                },
                accepted: source.zip(step),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn shipped(&self, id: i64) -> Result<(), StoreError> {
        self.conn()
            .execute("DELETE FROM spool WHERE id = ?1", [id])?;
        Ok(())
    }
}

fn spool_in(conn: &Connection, e: &Event, accepted: Option<(&str, i64)>) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO spool (time, username, service, rhost, tty, channel, decision, reason,
             peer_uid, rule, policy_version, ruser, caller_uid, source, step)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        params![
            e.time,
            e.user,
            e.service,
            e.rhost,
            e.tty,
            e.channel,
            e.decision,
            e.reason,
            e.peer_uid,
            e.rule,
            e.policy_version,
            e.ruser,
            e.caller_uid,
            accepted.map(|a| a.0),
            accepted.map(|a| a.1)
        ],
    )?;
    Ok(())
}

/// The static name of a spooled decision (only the login's are spooled).
fn decision_named(name: &str) -> &'static str {
    [
        Decision::Allow,
        Decision::Deny,
        Decision::Locked,
        Decision::Done,
        Decision::Refused,
        Decision::Sent,
        Decision::Failed,
    ]
    .into_iter()
    .map(Decision::as_str)
    .find(|d| *d == name)
    .unwrap_or(Decision::Deny.as_str())
}

/// Ships the spool to the shared store, oldest first: each row into this
/// host's chain, and each step accepted here raised in the shared store so
/// that the code passes nowhere again. Stops at the first failure (the
/// database is still away) and goes on from there next time.
pub(crate) fn ship(d: &Daemon) {
    let Some(cache) = &d.cache else { return };
    let rows = match cache.spooled() {
        Ok(rows) => rows,
        Err(e) => {
            log::error!("cannot read the spool of the TOTP cache: {e}");
            return;
        }
    };
    let count = rows.len();
    for mut row in rows {
        let shipped = match &row.accepted {
            Some((source, step)) => {
                let counter = Counter {
                    factor: Factor::Totp.name(),
                    source,
                };
                let take = TakeStep {
                    user: &row.event.user,
                    checked: None,
                    counter,
                    step: *step,
                    now: row.event.time,
                };
                match d.store.accept_totp_step(&take, &row.event, None) {
                    // The shared store had this step or a later one used
                    // already (on another host during the outage): said so.
                    Ok(false) => {
                        row.event.reason.push_str(
                            "; the shared database had this code's step or a later one used already",
                        );
                        d.store.audit(&row.event)
                    }
                    other => other.map(|_| ()),
                }
            }
            None => d.store.audit(&row.event),
        };
        if let Err(e) = shipped.and_then(|()| cache.shipped(row.id)) {
            log::warn!("the TOTP cache's spool waits for the database: {e}");
            return;
        }
    }
    if count > 0 {
        log::info!("shipped {count} audit rows of logins checked against the TOTP cache");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mfad_protocol::AuthStart;

    fn sealed(key: u32, bytes: &[u8]) -> Sealed {
        Sealed {
            key,
            bytes: bytes.to_vec(),
        }
    }

    fn record(bytes: &[u8]) -> TotpRecord {
        TotpRecord {
            sealed_secret: sealed(2, bytes),
            params: TotpParams {
                algorithm: TotpAlgorithm::SHA256,
                digits: 8,
                period: 60,
            },
            last_step: 0,
        }
    }

    fn web() -> Counter<'static> {
        Counter {
            factor: "totp",
            source: "web",
        }
    }

    fn event(reason: &str) -> Event {
        let start = AuthStart {
            user: "alice".into(),
            service: "sshd".into(),
            rhost: Some("203.0.113.9".into()),
            ..AuthStart::default()
        };
        Event::auth(&start, "totp", Decision::Allow, reason, 0, 1_000)
    }

    #[test]
    fn a_step_passes_once_and_its_row_is_spooled_with_it_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(&path(&dir.path().join("mfad.db"))).unwrap();
        assert!(cache.totp("alice").unwrap().is_none());
        cache.remember("alice", &record(b"s1"), 10).unwrap();
        let cached = cache.totp("alice").unwrap().unwrap();
        assert_eq!(
            (cached.sealed_secret, cached.last_step),
            (sealed(2, b"s1"), 10)
        );
        assert_eq!(cached.params, record(b"s1").params);
        assert!(!cache.accept_step("alice", web(), 10, &event("x")).unwrap());
        assert!(
            cache
                .accept_step("alice", web(), 11, &event("first"))
                .unwrap()
        );
        assert!(
            !cache
                .accept_step("alice", web(), 11, &event("again"))
                .unwrap()
        );
        cache.spool(&event("second")).unwrap();
        let rows = cache.spooled().unwrap();
        let got: Vec<_> = rows
            .iter()
            .map(|r| {
                (
                    r.event.reason.as_str(),
                    r.event.decision,
                    r.accepted.clone(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("first", "allow", Some(("web".to_owned(), 11))),
                ("second", "allow", None)
            ]
        );
        cache.shipped(rows[0].id).unwrap();
        assert_eq!(cache.spooled().unwrap().len(), 1);
        // A login here never lowers the step the cache has seen.
        cache.remember("alice", &record(b"s1"), 5).unwrap();
        assert_eq!(cache.totp("alice").unwrap().unwrap().last_step, 11);
    }

    #[test]
    fn failures_lock_as_in_the_store_and_an_accepted_code_clears_them() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(&dir.path().join(FILE)).unwrap();
        cache.remember("alice", &record(b"s1"), 1).unwrap();
        let rule = LockRule {
            threshold: 2,
            account_threshold: 5,
            duration_secs: 60,
        };
        let fail = |now| {
            cache
                .record_failure("alice", web(), now, rule, &event("wrong"))
                .unwrap()
        };
        assert_eq!(fail(100).locked_until, None);
        assert_eq!(cache.locked_until("alice", web(), 100).unwrap(), None);
        assert_eq!(fail(101).locked_until, Some(161));
        assert_eq!(cache.locked_until("alice", web(), 120).unwrap(), Some(161));
        assert_eq!(cache.locked_until("alice", web(), 161).unwrap(), None);
        // Every failure is spooled for the shared audit.
        assert_eq!(cache.spooled().unwrap().len(), 2);
        assert!(cache.accept_step("alice", web(), 2, &event("ok")).unwrap());
        assert_eq!(fail(170).consecutive, 1);
    }

    #[test]
    fn a_user_leaves_when_the_store_has_another_secret_or_none() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(&dir.path().join(FILE)).unwrap();
        cache.remember("alice", &record(b"s1"), 1).unwrap();
        cache.remember("bob", &record(b"s2"), 1).unwrap();
        cache
            .forget_unless("alice", Some(&sealed(2, b"s1")))
            .unwrap();
        assert!(cache.totp("alice").unwrap().is_some());
        cache
            .forget_unless("alice", Some(&sealed(2, b"new")))
            .unwrap();
        assert!(cache.totp("alice").unwrap().is_none());
        cache.remember("alice", &record(b"s1"), 1).unwrap();
        // The same bytes under another key are another secret.
        cache
            .forget_unless("alice", Some(&sealed(3, b"s1")))
            .unwrap();
        assert!(cache.totp("alice").unwrap().is_none());
        cache.forget_unless("bob", None).unwrap();
        assert!(cache.totp("bob").unwrap().is_none());
    }
}
