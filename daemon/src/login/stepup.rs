//! Step-up: a request from inside a known login session counts the factors
//! that session already passed, within the rule's `fresh` limits.
//!
//! The session is found from the caller's audit session id, which the
//! daemon read from /proc for the peer's pid when it accepted the
//! connection; nothing the client sends names it. Threat: a process that
//! merely shares the id (an sshd started by hand from someone's session
//! inherits it) must not borrow that session's factors. So the session
//! must belong to the user authenticating, the caller's login uid must be
//! that user's, and the service must differ from the one that opened the
//! session (a new sshd login is never "inside" an sshd session).

use crate::Daemon;
use crate::peer::Peer;
use crate::store::StoredSession;
use mfad_protocol::AuthStart;

/// The known session this request comes from, if it may count.
pub fn session_of(d: &Daemon, peer: &Peer, start: &AuthStart) -> Option<StoredSession> {
    let (sid, loginuid) = (peer.audit_session?, peer.loginuid?);
    let sessions = match d.store.sessions_of(&d.boot_id, sid) {
        Ok(s) => s,
        Err(e) => {
            log::error!("cannot read the sessions: {e}");
            return None;
        }
    };
    sessions
        .into_iter()
        .find(|s| s.user == start.user && s.uid == loginuid && s.service != start.service)
}
