//! Login sessions and the one-time tickets that link an authentication to
//! the session it opens. Both live in SQLite so a daemon restart keeps them
//! (step-up keeps working, `mfactl sessions` still lists them).

use super::{Store, StoreError, insert_audit};
use crate::audit::Event;
use mfad_protocol::{PassedFactor, SessionInfo};
use rusqlite::{OptionalExtension, Row, params};

/// What a ticket or a session records about the authentication.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proof {
    pub factors: Vec<PassedFactor>,
    /// The trusted device that stood in for the factors, if one did.
    pub device: Option<String>,
}

/// A session as stored: what `mfactl sessions` shows, plus the owner's uid
/// (which the login uid of a step-up caller must match).
#[derive(Debug, Clone)]
pub struct StoredSession {
    pub info: SessionInfo,
    pub uid: u32,
}

/// Where a new session lives and who owns it.
pub struct NewSession<'a> {
    pub boot_id: &'a str,
    pub audit_session: u32,
    pub user: &'a str,
    pub uid: u32,
    pub service: &'a str,
    pub rhost: Option<&'a str>,
    pub tty: Option<&'a str>,
    pub opened_at: i64,
}

/// A session ticket, stored as its keyed hash with what the login proved.
pub struct NewTicket<'a> {
    pub hash: &'a [u8],
    pub service: &'a str,
    pub proof: &'a Proof,
    pub expires: i64,
}

pub(super) fn insert_ticket(
    tx: &rusqlite::Transaction<'_>,
    user: &str,
    t: &NewTicket<'_>,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO tickets (hash, user, service, factors, device, expires)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        t.hash,
        user,
        t.service,
        encode(&t.proof.factors),
        t.proof.device,
        t.expires
    ])?;
    Ok(())
}

fn encode(factors: &[PassedFactor]) -> String {
    let pairs: Vec<(&str, i64)> = factors.iter().map(|f| (f.factor.as_str(), f.at)).collect();
    serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".to_owned())
}

fn decode(text: &str) -> Result<Vec<PassedFactor>, StoreError> {
    let pairs: Vec<(String, i64)> =
        serde_json::from_str(text).map_err(|_| StoreError::Corrupt("a session".to_owned()))?;
    Ok(pairs
        .into_iter()
        .map(|(factor, at)| PassedFactor { factor, at })
        .collect())
}

const SESSION_COLUMNS: &str =
    "id, audit_session, user, service, rhost, tty, opened_at, factors, device, uid";

fn session_row(r: &Row<'_>) -> rusqlite::Result<(SessionInfo, String, u32)> {
    Ok((
        SessionInfo {
            id: r.get(0)?,
            audit_session: r.get(1)?,
            user: r.get(2)?,
            service: r.get(3)?,
            rhost: r.get(4)?,
            tty: r.get(5)?,
            opened_at: r.get(6)?,
            factors: Vec::new(),
            device: r.get(8)?,
            processes: 0,
        },
        r.get(7)?,
        r.get(9)?,
    ))
}

fn sessions_where(
    conn: &rusqlite::Connection,
    filter: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<StoredSession>, StoreError> {
    let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE {filter} ORDER BY id");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(args, session_row)?;
    let mut out = Vec::new();
    for row in rows {
        let (mut info, factors, uid) = row?;
        info.factors = decode(&factors)?;
        out.push(StoredSession { info, uid });
    }
    Ok(out)
}

impl Store {
    /// Consumes a ticket issued for `user` and `service`: it works once,
    /// and not after it expired.
    pub fn take_ticket(
        &self,
        hash: &[u8],
        user: &str,
        service: &str,
        now: i64,
    ) -> Result<Option<Proof>, StoreError> {
        let conn = self.conn();
        let row: Option<(String, Option<String>, i64, String, String)> = conn
            .query_row(
                "DELETE FROM tickets WHERE hash = ?1
                 RETURNING factors, device, expires, user, service",
                [hash],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()?;
        match row {
            Some((factors, device, expires, u, s))
                if expires > now && u == user && s == service =>
            {
                Ok(Some(Proof {
                    factors: decode(&factors)?,
                    device,
                }))
            }
            _ => Ok(None),
        }
    }

    pub fn open_session(
        &self,
        s: &NewSession<'_>,
        proof: &Proof,
        event: &Event,
    ) -> Result<i64, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO sessions (boot_id, audit_session, user, uid, service, rhost, tty,
                                   opened_at, factors, device)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                s.boot_id,
                s.audit_session,
                s.user,
                s.uid,
                s.service,
                s.rhost,
                s.tty,
                s.opened_at,
                encode(&proof.factors),
                proof.device
            ],
        )?;
        let id = tx.last_insert_rowid();
        let mut event = event.clone();
        event.reason = format!("session {id}: {}", event.reason);
        insert_audit(&tx, &event)?;
        tx.commit()?;
        Ok(id)
    }

    /// The sessions of one audit session id in this boot.
    pub fn sessions_of(&self, boot_id: &str, sid: u32) -> Result<Vec<StoredSession>, StoreError> {
        sessions_where(
            &self.reader(),
            "boot_id = ?1 AND audit_session = ?2",
            params![boot_id, sid],
        )
    }

    pub fn session(&self, boot_id: &str, id: i64) -> Result<Option<StoredSession>, StoreError> {
        Ok(sessions_where(
            &self.reader(),
            "boot_id = ?1 AND id = ?2",
            params![boot_id, id],
        )?
        .pop())
    }

    /// Every session of this boot.
    pub fn sessions(&self, boot_id: &str) -> Result<Vec<StoredSession>, StoreError> {
        sessions_where(&self.reader(), "boot_id = ?1", [boot_id])
    }

    /// Records factors passed again inside a session (a step-up), with
    /// their new times.
    pub fn session_passed(&self, id: i64, passed: &[PassedFactor]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let text: Option<String> = tx
            .query_row("SELECT factors FROM sessions WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?;
        let Some(text) = text else { return Ok(()) };
        let mut factors = decode(&text)?;
        for p in passed {
            factors.retain(|f| f.factor != p.factor);
            factors.push(p.clone());
        }
        tx.execute(
            "UPDATE sessions SET factors = ?2 WHERE id = ?1",
            params![id, encode(&factors)],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Forgets what session `id` proved (its factors and device), so that
    /// its next step-up asks every factor; audited with `event` (its reason
    /// prefixed with the session id) in the same transaction.
    pub fn clear_session_proof(&self, id: i64, event: &Event) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        if tx.execute(
            "UPDATE sessions SET factors = '[]', device = NULL WHERE id = ?1",
            [id],
        )? == 1
        {
            let mut event = event.clone();
            event.reason = format!("session {id}: {}", event.reason);
            insert_audit(&tx, &event)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Removes sessions and audits the removal with `event` (whose reason
    /// is prefixed with each session id). Returns the ids removed.
    pub fn remove_sessions(&self, ids: &[i64], event: &Event) -> Result<Vec<i64>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut removed = Vec::new();
        for &id in ids {
            if tx.execute("DELETE FROM sessions WHERE id = ?1", [id])? == 1 {
                let mut event = event.clone();
                event.reason = format!("session {id}: {}", event.reason);
                insert_audit(&tx, &event)?;
                removed.push(id);
            }
        }
        tx.commit()?;
        Ok(removed)
    }

    /// Drops sessions of earlier boots and expired tickets.
    pub fn purge_sessions(&self, boot_id: &str, now: i64) -> Result<usize, StoreError> {
        let conn = self.conn();
        let n = conn.execute("DELETE FROM sessions WHERE boot_id != ?1", [boot_id])?;
        Ok(n + conn.execute("DELETE FROM tickets WHERE expires <= ?1", [now])?)
    }
}
