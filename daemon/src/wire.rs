//! Store records as the wire shows them: the one place domain types
//! become protocol types, so neither side shapes the other.

use crate::audit::chain::StoredRow;
use crate::store::{
    DeviceRecord, FailureCount, Health, HealthStatus, Passed, PolicyRecord, StoredSession,
    TotpSummary, UserRecord,
};
use mfad_protocol::{
    AuditRow, CheckStep, DeviceInfo, LockInfo, MAX_FRAME, PassedFactor, PolicyVersion, SessionInfo,
    TotpInfo, UserSummary,
};

pub fn audit_row(r: StoredRow) -> AuditRow {
    let b = r.body;
    AuditRow {
        id: r.id,
        time: r.time,
        user: b.user,
        service: b.service,
        rhost: b.rhost,
        tty: b.tty,
        channel: b.channel,
        decision: b.decision,
        reason: b.reason,
        peer_uid: b.peer_uid,
        rule: b.rule,
        policy_version: b.policy_version,
        ruser: b.ruser,
        caller_uid: b.caller_uid,
        host: Some(b.host).filter(|h| !h.is_empty()),
    }
}

pub fn health(h: Health) -> CheckStep {
    CheckStep {
        check: h.check.to_owned(),
        status: match h.status {
            HealthStatus::Ok => "ok",
            HealthStatus::Warn => "warn",
            HealthStatus::Fail => "fail",
        }
        .to_owned(),
        message: h.message,
    }
}

pub fn audit_rows(rows: Vec<StoredRow>) -> Vec<AuditRow> {
    rows.into_iter().map(audit_row).collect()
}

/// What a reply's frame holds besides its rows (the type tag, the `more`
/// flag), with room to spare.
const REPLY_OVERHEAD: usize = 256;

/// The leading `rows` that fit one reply frame, and whether any were left
/// out: a reply over [`MAX_FRAME`] could not be sent at all.
pub fn fit(rows: Vec<AuditRow>) -> (Vec<AuditRow>, bool) {
    let mut used = REPLY_OVERHEAD;
    let mut kept = Vec::with_capacity(rows.len());
    for row in rows {
        // The row's JSON and the comma before it.
        used += serde_json::to_vec(&row).map_or(MAX_FRAME, |json| json.len() + 1);
        if used > MAX_FRAME {
            return (kept, true);
        }
        kept.push(row);
    }
    (kept, false)
}

pub fn totp(t: TotpSummary) -> TotpInfo {
    TotpInfo {
        algorithm: t.params.algorithm.as_str().to_owned(),
        digits: t.params.digits,
        period: t.params.period,
        enrolled_at: t.enrolled_at,
        last_used: t.last_used,
    }
}

pub fn lock(c: FailureCount) -> LockInfo {
    LockInfo {
        channel: c.factor,
        source: c.source,
        failures: c.failures,
        locked_until: c.locked_until,
    }
}

pub fn user(u: UserRecord) -> UserSummary {
    UserSummary {
        user: u.user,
        totp_enrolled: u.totp_enrolled,
        last_used: u.last_used,
        locked: u.locked,
    }
}

pub fn device(d: DeviceRecord) -> DeviceInfo {
    DeviceInfo {
        id: d.id,
        key_type: d.key_type,
        fingerprint: d.fingerprint,
        first_ip: d.first_ip,
        created_at: d.created_at,
        expires_at: d.expires_at,
        last_used: d.last_used,
    }
}

pub fn policy_version(p: PolicyRecord, in_force: i64) -> PolicyVersion {
    PolicyVersion {
        in_force: p.version == in_force,
        version: p.version,
        sha256: p.sha256,
        loaded_at: p.loaded_at,
        loaded_by: p.loaded_by,
    }
}

pub fn passed(p: &Passed) -> PassedFactor {
    PassedFactor {
        factor: p.factor.clone(),
        at: p.at,
    }
}

/// A session, with the number of its processes still alive.
pub fn session(s: StoredSession, host: Option<String>, processes: u32) -> SessionInfo {
    SessionInfo {
        id: s.id,
        host,
        audit_session: s.audit_session,
        user: s.user,
        service: s.service,
        rhost: s.rhost,
        tty: s.tty,
        opened_at: s.opened_at,
        factors: s.proof.factors.iter().map(passed).collect(),
        device: s.proof.device,
        processes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mfad_protocol::Response;

    fn row(id: i64) -> AuditRow {
        AuditRow {
            id,
            time: 1_700_000_000 + id,
            user: format!("user-{id}"),
            service: "sshd".into(),
            rhost: Some("192.0.2.10".into()),
            tty: None,
            channel: "totp".into(),
            decision: "allow".into(),
            reason: "ok".into(),
            peer_uid: 0,
            rule: Some("default".into()),
            policy_version: Some(1),
            ruser: None,
            caller_uid: None,
            host: Some("web-1".into()),
        }
    }

    #[test]
    fn rows_past_one_frame_are_left_for_the_next_page() {
        let (rows, more) = fit((0..2_000).map(row).collect());
        assert!(more);
        assert!(rows.len() > 100, "{}", rows.len());
        assert_eq!(
            rows.last().map(|r| r.id),
            i64::try_from(rows.len() - 1).ok()
        );
        let reply = serde_json::to_vec(&Response::Audit { rows, more }).unwrap();
        assert!(reply.len() <= MAX_FRAME, "{}", reply.len());
    }

    #[test]
    fn rows_that_fit_are_all_kept() {
        let (rows, more) = fit((0..10).map(row).collect());
        assert!(!more);
        assert_eq!(rows.len(), 10);
    }
}
