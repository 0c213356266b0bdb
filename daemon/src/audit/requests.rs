//! `audit_verify` and `audit_follow`: the chain check and the live stream
//! for `mfactl audit verify` and `mfactl audit --follow` (root and admins,
//! as the router admits them).

use super::chain::Verifier;
use super::stream;
use crate::Daemon;
use crate::admin::Refusal;
use crate::io::FrameIo;
use crate::peer::Peer;
use mfad_protocol::{AuditVerification, ErrorCode, Response};
use tokio::sync::broadcast::error::RecvError;

/// Reads every stored row and checks the chain.
/// A large log takes seconds: the worker hands its other tasks on first.
pub fn verify(d: &Daemon) -> Result<Response, Refusal> {
    let mut v = Verifier::default();
    crate::blocking::wait(|| d.store.each_audit_row(&mut |row| v.check(row)))?;
    let (head_id, head_hash) = v.head().cloned().unzip();
    let (anchor_id, anchor_hash) = v.anchor.clone().unzip();
    Ok(Response::AuditVerified(AuditVerification {
        rows: v.rows,
        unchained: v.unchained,
        anchor_id,
        anchor_hash,
        head_id,
        head_hash,
        problem_count: v.problem_count,
        problems: v.problems,
    }))
}

/// Sends each new record until the client goes away.
pub async fn follow(peer: &Peer, io: &mut FrameIo) {
    let Some(mut rx) = stream::follow() else {
        io.send_error(ErrorCode::Internal, "the audit stream is not running")
            .await;
        return;
    };
    loop {
        let record = match rx.recv().await {
            Ok(record) => record,
            Err(RecvError::Lagged(n)) => {
                log::warn!(
                    "an audit follower of uid {} fell behind and missed {n} events",
                    peer.uid
                );
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        let Ok(record) = serde_json::to_value(&*record) else {
            continue;
        };
        if io.send(Response::AuditEvent { record }).await.is_err() {
            return;
        }
    }
}
