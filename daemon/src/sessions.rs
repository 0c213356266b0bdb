//! Requests about login sessions, logins and trusted devices: the session
//! hooks' reports (root only), `mfactl sessions`, `mfactl history` and
//! `mfactl devices`.

use crate::admin::Refusal;
use crate::audit::{Decision, Event};
use crate::peer::{self, Peer, Role};
use crate::reevaluate::{self, Trigger};
use crate::store::{NewSession, Passed, Store, StoredSession};
use crate::wire;
use crate::{Daemon, clock, history, login, procs, validate};
use mfad_protocol::{ErrorCode, Response, SessionReport};
use std::time::Duration;

/// How long killed processes get to exit on SIGTERM before SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(2);

const NO_AUDIT_SESSION: &str = "the caller has no audit session id: put `session required pam_loginuid.so` before pam_mfa.so in the session stack";

fn session_event(peer: &Peer, r: &SessionReport, reason: &str) -> Event {
    let mut event = Event::admin(&r.user, reason, Decision::Done, peer.uid, clock::now());
    event.service = r.service.clone();
    event.rhost = r.rhost.clone();
    event.tty = r.tty.clone();
    event.channel = "session";
    event
}

fn check_report(r: &SessionReport) -> Result<(), Refusal> {
    let bad = |p: String| Refusal::new(ErrorCode::BadRequest, p);
    validate::auth_start(&mfad_protocol::AuthStart {
        user: r.user.clone(),
        service: r.service.clone(),
        rhost: r.rhost.clone(),
        tty: r.tty.clone(),
        ..Default::default()
    })
    .map_err(bad)
}

/// `session_open`: binds what the ticket's authentication proved to the
/// caller's audit session.
pub fn open(d: &Daemon, peer: &Peer, r: &SessionReport) -> Result<Response, Refusal> {
    check_report(r)?;
    let sid = peer
        .audit_session
        .ok_or_else(|| Refusal::new(ErrorCode::BadRequest, NO_AUDIT_SESSION))?;
    let uid = peer::uid_of(&r.user)
        .ok_or_else(|| Refusal::new(ErrorCode::NoSuchUser, format!("no account {:?}", r.user)))?;
    if peer.loginuid.is_some_and(|l| l != uid) && r.ticket.is_none() {
        // sudo or su inside another user's login (common-session runs for
        // them too): not a login session of this user.
        return Ok(done("not a login session of this user; nothing recorded"));
    }
    if peer.loginuid != Some(uid) {
        return Err(Refusal::new(
            ErrorCode::BadRequest,
            format!(
                "the caller's login uid is {:?}, not {uid} ({}): is pam_loginuid.so in the session stack?",
                peer.loginuid, r.user
            ),
        ));
    }
    let now = clock::now();
    let proof = match &r.ticket {
        Some(t) => {
            let hash = login::ticket_hash(d, t.expose())?;
            // Handed out with its verdict, the ticket's row may still be on
            // its way to the store.
            d.tickets.wait(&hash);
            d.store.take_ticket(&hash, &r.user, &r.service, now)?
        }
        None => None,
    };
    let known = d.store.sessions_of(&d.boot_id, sid)?;
    if proof.is_none() && !known.is_empty() {
        // A nested stack (sudo's) in a session already known: nothing new.
        return Ok(done("session already known"));
    }
    let reason = match &proof {
        Some(p) if p.device.is_some() => format!(
            "opened (audit session {sid}) by trusted device {}",
            p.device.as_deref().unwrap_or_default()
        ),
        Some(p) => format!(
            "opened (audit session {sid}) with {}",
            names(&p.factors).unwrap_or_else(|| "no factor".to_owned())
        ),
        None if r.ticket.is_some() => {
            format!("opened (audit session {sid}) with an unknown or expired ticket: no factors")
        }
        None => format!("opened (audit session {sid}) without an mfad authentication"),
    };
    let event = session_event(peer, r, &reason);
    let id = d.store.open_session(
        &NewSession {
            boot_id: &d.boot_id,
            audit_session: sid,
            user: &r.user,
            uid,
            service: &r.service,
            rhost: r.rhost.as_deref(),
            tty: r.tty.as_deref(),
            opened_at: now,
        },
        &proof.unwrap_or_default(),
        &event,
    )?;
    event.log();
    Ok(done(&format!("session {id} recorded")))
}

fn names(factors: &[Passed]) -> Option<String> {
    (!factors.is_empty()).then(|| {
        factors
            .iter()
            .map(|f| f.factor.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    })
}

/// `session_close`: forgets the caller's session of that service.
pub fn close(d: &Daemon, peer: &Peer, r: &SessionReport) -> Result<Response, Refusal> {
    check_report(r)?;
    let sid = peer
        .audit_session
        .ok_or_else(|| Refusal::new(ErrorCode::BadRequest, NO_AUDIT_SESSION))?;
    let ids: Vec<i64> = d
        .store
        .sessions_of(&d.boot_id, sid)?
        .into_iter()
        .filter(|s| s.user == r.user && s.service == r.service)
        .map(|s| s.id)
        .collect();
    let event = session_event(peer, r, "closed");
    for _ in d.store.remove_sessions(&ids, &event)? {
        event.log();
    }
    Ok(done("session closed"))
}

/// Forgets sessions none of whose processes are left (a login that ended
/// without its close hook: sshd killed, a crash).
pub fn forget_ended(d: &Daemon) {
    let result = (|| -> Result<(), crate::store::StoreError> {
        let alive = procs::by_session();
        let gone: Vec<i64> = d
            .store
            .sessions(&d.boot_id)?
            .into_iter()
            .filter(|s| !alive.contains_key(&s.audit_session))
            .map(|s| s.id)
            .collect();
        if !gone.is_empty() {
            let event = Event::admin(
                "-",
                "forgotten: no process of the session is left",
                Decision::Done,
                0,
                clock::now(),
            );
            d.store.remove_sessions(&gone, &event)?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        log::error!("cannot clean up ended sessions: {e}");
    }
}

/// Whether the caller may see and end a session owned by `owner`, on this
/// host (`here`) or another host of the fleet.
///
/// Threat: any local user may ask for `sessions list` and `sessions kill`;
/// without this a user could learn where others log in from, or end their
/// sessions. Uids are compared, never names (two names may share a uid);
/// and a uid means someone only on its own host (uid 1000 here may be
/// someone else on another host), so only root and admins reach sessions
/// on other hosts.
pub fn may_manage(role: Role, peer_uid: u32, owner: u32, here: bool) -> bool {
    role != Role::User || (here && peer_uid == owner)
}

/// Every session this daemon can name: in a fleet each host's, with the
/// host name; otherwise this host's, unnamed.
fn all(d: &Daemon) -> Result<Vec<(Option<String>, StoredSession)>, crate::store::StoreError> {
    match d.store.fleet() {
        Some(fleet) => Ok(fleet
            .fleet_sessions(&d.boot_id)?
            .into_iter()
            .map(|h| (Some(h.host), h.session))
            .collect()),
        None => Ok(d
            .store
            .sessions(&d.boot_id)?
            .into_iter()
            .map(|s| (None, s))
            .collect()),
    }
}

/// Session `id`, and the host that holds it when that is another host.
fn find(
    d: &Daemon,
    id: i64,
) -> Result<Option<(Option<String>, StoredSession)>, crate::store::StoreError> {
    match d.store.fleet() {
        Some(fleet) => Ok(fleet.fleet_session(&d.boot_id, id)?.map(|h| {
            let other = (h.host != fleet.host()).then_some(h.host);
            (other, h.session)
        })),
        None => Ok(d.store.session(&d.boot_id, id)?.map(|s| (None, s))),
    }
}

fn no_session(id: i64) -> Refusal {
    Refusal::new(
        ErrorCode::NotFound,
        format!("there is no session {id}; see `mfactl sessions list`"),
    )
}

pub fn list(d: &Daemon, peer: &Peer) -> Result<Response, Refusal> {
    forget_ended(d);
    let role = peer::role(peer, d.config.admin_group.as_deref());
    let alive = procs::by_session();
    let here = d.store.fleet().map(|f| f.host().to_owned());
    let sessions = all(d)?
        .into_iter()
        .filter(|(host, s)| may_manage(role, peer.uid, s.uid, *host == here))
        .map(|(host, s)| {
            // Processes are counted only here; another host's are unknown.
            let processes = match host == here {
                true => alive
                    .get(&s.audit_session)
                    .map_or(0, |p| u32::try_from(p.len()).unwrap_or(u32::MAX)),
                false => 0,
            };
            wire::session(s, host, processes)
        })
        .collect();
    Ok(Response::Sessions { sessions })
}

/// `sessions kill ID`: terminates every process of the session and
/// forgets it. Needs CAP_KILL to signal other users' processes.
pub async fn kill(d: &Daemon, peer: &Peer, id: i64) -> Result<Response, Refusal> {
    {
        let Some((other, s)) = find(d, id)? else {
            return Err(no_session(id));
        };
        let role = peer::role(peer, d.config.admin_group.as_deref());
        if !may_manage(role, peer.uid, s.uid, other.is_none()) {
            let why =
                format!("sessions kill: session {id} is not yours; you may end only your own");
            let mut event = Event::admin(&s.user, &why, Decision::Refused, peer.uid, clock::now());
            event.service = s.service.clone();
            d.record(&event);
            return Err(Refusal::new(ErrorCode::PermissionDenied, why));
        }
        if let Some(host) = other {
            return crate::fleet::end_remote(d, peer, &host, &s).await;
        }
        let mut event = Event::admin(
            &s.user,
            &format!("killed by uid {}", peer.uid),
            Decision::Done,
            peer.uid,
            clock::now(),
        );
        event.service = s.service.clone();
        event.rhost = s.rhost.clone();
        match end(d.store.as_ref(), &s, event).await {
            Ok(n) => Ok(done(&format!(
                "Session {id} of {} ended ({n} processes terminated).",
                s.user
            ))),
            Err(e) => Err(Refusal::new(
                ErrorCode::Internal,
                format!(
                    "cannot end session {id}: {e} (mfad needs the CAP_KILL capability to signal other users' processes)"
                ),
            )),
        }
    }
}

/// Terminates every process of session `s` and forgets it, audited with
/// `event` (its reason gets the audit session and the process count, or
/// the failure). Returns how many processes there were.
pub(crate) async fn end(
    store: &dyn Store,
    s: &StoredSession,
    mut event: Event,
) -> Result<usize, nix::Error> {
    let (id, sid) = (s.id, s.audit_session);
    let ended = procs::end_session(sid, KILL_GRACE).await;
    event.reason = match &ended {
        Ok(n) => format!("{} (audit session {sid}, {n} processes)", event.reason),
        Err(e) => {
            event.decision = Decision::Deny.as_str();
            format!("{}: failed (audit session {sid}): {e}", event.reason)
        }
    };
    // sshd's close hook may have removed it already; the end is audited
    // either way.
    let removed = match &ended {
        Ok(_) => store.remove_sessions(&[id], &event),
        Err(_) => Ok(Vec::new()),
    };
    match removed {
        Ok(ids) if !ids.is_empty() => event.log(),
        Ok(_) => {
            event.reason = format!("session {id}: {}", event.reason);
            if let Err(e) = store.audit(&event) {
                log::error!("cannot write an audit row: {e}");
            }
            event.log();
        }
        Err(e) => log::error!("cannot forget session {id}: {e}"),
    }
    ended
}

/// `sessions stepup ID` (root and admins): the session's next step-up asks
/// every factor, whatever its rule's `on_risk` says.
pub fn stepup(d: &Daemon, peer: &Peer, id: i64) -> Result<Response, Refusal> {
    let Some((other, s)) = find(d, id)? else {
        return Err(no_session(id));
    };
    if let Some(host) = other {
        return crate::fleet::stepup_remote(d, peer, &host, &s);
    }
    reevaluate::run(d, &Trigger::Admin { session: id }, peer.uid, None);
    Ok(done(&format!(
        "Session {id} of {} must step up again: its next sudo asks every factor.",
        s.user
    )))
}

/// `history`: the logins of `user`, newest first.
/// The user's logins, newest first, one row each (see `crate::history`).
pub fn history(d: &Daemon, user: &str, limit: u32) -> Result<Response, Refusal> {
    let limit = limit.clamp(1, MAX_HISTORY);
    let fetch = limit.saturating_mul(history::ROWS_PER_LOGIN);
    let rows = d.store.logins(user, fetch, false)?;
    let complete = rows.len() < usize::try_from(fetch).unwrap_or(usize::MAX);
    let logins = history::logins(rows, usize::try_from(limit).unwrap_or(usize::MAX), complete);
    let (rows, more) = wire::fit(logins);
    Ok(Response::Audit { rows, more })
}

/// The most logins one `history` returns.
const MAX_HISTORY: u32 = 10_000;

pub fn devices(d: &Daemon, user: &str) -> Result<Response, Refusal> {
    let devices = d
        .store
        .devices(user, clock::now())?
        .into_iter()
        .map(wire::device)
        .collect();
    Ok(Response::Devices {
        user: user.to_owned(),
        devices,
    })
}

pub fn revoke(d: &Daemon, peer: &Peer, user: &str, id: i64) -> Result<Response, Refusal> {
    let now = clock::now();
    // Its label, as the sessions it opened recorded it.
    let label = d
        .store
        .devices(user, now)?
        .into_iter()
        .find(|dev| dev.id == id)
        .map(|dev| format!("{} {}", dev.key_type, dev.fingerprint));
    let event = Event::admin(
        user,
        &format!("trusted device {id} revoked"),
        Decision::Done,
        peer.uid,
        now,
    );
    if !d.store.revoke_device(user, id, now, &event)? {
        return Err(Refusal::new(
            ErrorCode::NotFound,
            format!("{user} has no trusted device {id}; see `mfactl devices list`"),
        ));
    }
    event.log();
    let touched = label.map_or(0, |device| {
        reevaluate::run(
            d,
            &Trigger::DeviceRevoked {
                user,
                device: &device,
            },
            peer.uid,
            None,
        )
    });
    let sessions = match touched {
        0 => String::new(),
        n => format!(" Live sessions it opened, handled as their rules' on_risk says: {n}."),
    };
    Ok(done(&format!(
        "Device {id} of {user} is no longer trusted; its next login asks for the code.{sessions}"
    )))
}

fn done(message: &str) -> Response {
    Response::Done {
        message: message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_manage_only_their_own_sessions() {
        let (me, other) = (1000, 1001);
        let cases = [
            (Role::User, me, true, true),
            (Role::User, other, true, false),
            (Role::User, 0, true, false),
            (Role::Admin, other, true, true),
            (Role::Root, other, true, true),
            // Another host's uid 1000 need not be the same person.
            (Role::User, me, false, false),
            (Role::Admin, other, false, true),
            (Role::Root, me, false, true),
        ];
        for (role, owner, here, allowed) in cases {
            assert_eq!(
                may_manage(role, me, owner, here),
                allowed,
                "{role:?} {owner} {here}"
            );
        }
    }
}
