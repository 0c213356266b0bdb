//! Login sessions and the one-time tickets that link an authentication to
//! the session it opens. Both live in SQLite so a daemon restart keeps them
//! (step-up keeps working, `mfactl sessions` still lists them).

use super::{SqliteStore, insert_audit};
use crate::audit::Event;
use crate::store::{
    NewSession, NewTicket, Passed, Proof, Sessions, StoreError, StoredSession, decode_factors,
    encode_factors,
};

use rusqlite::{OptionalExtension, Row, params};

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
        encode_factors(&t.proof.factors),
        t.proof.device,
        t.expires
    ])?;
    Ok(())
}

const SESSION_COLUMNS: &str =
    "id, audit_session, user, service, rhost, tty, opened_at, factors, device, uid";

/// A session row, with its factors still encoded.
fn session_row(r: &Row<'_>) -> rusqlite::Result<(StoredSession, String)> {
    Ok((
        StoredSession {
            id: r.get(0)?,
            audit_session: r.get(1)?,
            user: r.get(2)?,
            service: r.get(3)?,
            rhost: r.get(4)?,
            tty: r.get(5)?,
            opened_at: r.get(6)?,
            proof: Proof {
                factors: Vec::new(),
                device: r.get(8)?,
            },
            uid: r.get(9)?,
        },
        r.get(7)?,
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
        let (mut session, factors) = row?;
        session.proof.factors = decode_factors(&factors)?;
        out.push(session);
    }
    Ok(out)
}

impl Sessions for SqliteStore {
    /// Consumes a ticket issued for `user` and `service`: it works once,
    /// and not after it expired.
    fn take_ticket(
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
                    factors: decode_factors(&factors)?,
                    device,
                }))
            }
            _ => Ok(None),
        }
    }

    fn open_session(
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
                encode_factors(&proof.factors),
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
    fn sessions_of(&self, boot_id: &str, sid: u32) -> Result<Vec<StoredSession>, StoreError> {
        sessions_where(
            &self.reader(),
            "boot_id = ?1 AND audit_session = ?2",
            params![boot_id, sid],
        )
    }

    fn session(&self, boot_id: &str, id: i64) -> Result<Option<StoredSession>, StoreError> {
        Ok(sessions_where(
            &self.reader(),
            "boot_id = ?1 AND id = ?2",
            params![boot_id, id],
        )?
        .pop())
    }

    /// Every session of this boot.
    fn sessions(&self, boot_id: &str) -> Result<Vec<StoredSession>, StoreError> {
        sessions_where(&self.reader(), "boot_id = ?1", [boot_id])
    }

    /// Records factors passed again inside a session (a step-up), with
    /// their new times.
    fn session_passed(&self, id: i64, passed: &[Passed]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let text: Option<String> = tx
            .query_row("SELECT factors FROM sessions WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?;
        let Some(text) = text else { return Ok(()) };
        let mut factors = decode_factors(&text)?;
        for p in passed {
            factors.retain(|f| f.factor != p.factor);
            factors.push(p.clone());
        }
        tx.execute(
            "UPDATE sessions SET factors = ?2 WHERE id = ?1",
            params![id, encode_factors(&factors)],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn clear_session_proof(&self, id: i64, event: &Event) -> Result<(), StoreError> {
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
    fn remove_sessions(&self, ids: &[i64], event: &Event) -> Result<Vec<i64>, StoreError> {
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
    fn purge_sessions(&self, boot_id: &str, now: i64) -> Result<usize, StoreError> {
        let conn = self.conn();
        let n = conn.execute("DELETE FROM sessions WHERE boot_id != ?1", [boot_id])?;
        Ok(n + conn.execute("DELETE FROM tickets WHERE expires <= ?1", [now])?)
    }
}
