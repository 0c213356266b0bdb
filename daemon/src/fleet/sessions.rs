//! Sessions on other hosts: ending one (through the host that holds it)
//! and asking one to step up; and ending this host's sessions that other
//! hosts asked to end.

use crate::admin::Refusal;
use crate::audit::{Decision, Event};
use crate::peer::Peer;
use crate::reevaluate::Trigger;
use crate::store::{SessionRequest, StoredSession};
use crate::{Daemon, clock, sessions};
use mfad_protocol::{ErrorCode, Response};
use std::sync::Arc;
use std::time::Duration;

/// How long `sessions kill` waits for another host to end its session.
const REMOTE_WAIT: Duration = Duration::from_secs(3);

/// Ends the sessions other hosts asked this one to end, each in a task of
/// its own (a kill may wait out its grace period), as a local kill does.
pub(super) fn end_requested(d: &Arc<Daemon>) {
    let Some(fleet) = d.store.fleet() else { return };
    let requests = match fleet.take_session_requests() {
        Ok(requests) => requests,
        Err(e) => {
            log::error!("fleet: cannot read the requests to end sessions: {e}");
            return;
        }
    };
    for r in requests {
        match d.store.session(&d.boot_id, r.session) {
            Ok(Some(s)) => {
                let mut event = Event::admin(
                    &s.user,
                    &format!("killed by uid {} on {}", r.by_uid, r.by_host),
                    Decision::Done,
                    r.by_uid,
                    clock::now(),
                );
                event.service = s.service.clone();
                event.rhost = s.rhost.clone();
                let store = Arc::clone(&d.store);
                tokio::spawn(async move {
                    let _ = sessions::end(store.as_ref(), &s, event).await;
                });
            }
            Ok(None) => log::info!(
                "fleet: session {} (end asked by uid {} on {}) has ended already",
                r.session,
                r.by_uid,
                r.by_host
            ),
            Err(e) => log::error!("fleet: cannot read session {}: {e}", r.session),
        }
    }
}

/// `sessions kill` of a session on another host: asks that host to end it
/// and waits (briefly) until it has.
pub(crate) async fn end_remote(
    d: &Daemon,
    peer: &Peer,
    host: &str,
    s: &StoredSession,
) -> Result<Response, Refusal> {
    let Some(fleet) = d.store.fleet() else {
        return Err(Refusal::new(ErrorCode::Internal, "no fleet store"));
    };
    let request = SessionRequest {
        session: s.id,
        by_uid: peer.uid,
        by_host: fleet.host().to_owned(),
        requested_at: clock::now(),
    };
    fleet.request_session_end(host, &request)?;
    let mut event = Event::admin(
        &s.user,
        &format!("session {}: end asked of {host} by uid {}", s.id, peer.uid),
        Decision::Done,
        peer.uid,
        request.requested_at,
    );
    event.service = s.service.clone();
    event.rhost = s.rhost.clone();
    d.record(&event);
    let waited = tokio::time::timeout(REMOTE_WAIT, async {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            match fleet.fleet_session(&d.boot_id, s.id) {
                Ok(Some(_)) => {}
                Ok(None) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    })
    .await;
    match waited {
        Ok(Ok(())) => Ok(Response::Done {
            message: format!("Session {} of {} on {host} ended.", s.id, s.user),
        }),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(Refusal::new(
            ErrorCode::Timeout,
            format!(
                "{host} was asked to end session {} but has not within {} s: is mfad running there? \
                 The request stays recorded; {host} carries it out when its mfad next checks",
                s.id,
                REMOTE_WAIT.as_secs()
            ),
        )),
    }
}

/// `sessions stepup` of a session on another host: the session's proof
/// lives in the shared database, so it is cleared there at once, as the
/// holding host would; its next sudo asks every factor.
pub(crate) fn stepup_remote(
    d: &Daemon,
    peer: &Peer,
    host: &str,
    s: &StoredSession,
) -> Result<Response, Refusal> {
    let mut event = Event::admin(
        &s.user,
        &format!(
            "freshness cleared on {host}: {}",
            Trigger::Admin { session: s.id }.reason()
        ),
        Decision::Done,
        peer.uid,
        clock::now(),
    );
    event.service = s.service.clone();
    event.rhost = s.rhost.clone();
    event.tty = s.tty.clone();
    event.channel = "session";
    d.store.clear_session_proof(s.id, &event)?;
    event.log();
    Ok(Response::Done {
        message: format!(
            "Session {} of {} on {host} must step up again: its next sudo asks every factor.",
            s.id, s.user
        ),
    })
}
