//! Store records as the wire shows them: the one place domain types
//! become protocol types, so neither side shapes the other.

use crate::audit::chain::StoredRow;
use crate::store::{
    DeviceRecord, FailureCount, Health, HealthStatus, Passed, PolicyRecord, StoredSession,
    TotpSummary, UserRecord,
};
use mfad_protocol::{
    AuditRow, CheckStep, DeviceInfo, LockInfo, PassedFactor, PolicyVersion, SessionInfo, TotpInfo,
    UserSummary,
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
pub fn session(s: StoredSession, processes: u32) -> SessionInfo {
    SessionInfo {
        id: s.id,
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
