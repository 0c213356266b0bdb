//! Audit events: one per attempt or administrative action, written to the
//! database (by the store, in the same transaction as the change it records)
//! and to syslog (authpriv), and streamed as `mfad.audit.v1` records (see
//! [`record`]) to the outputs of `[audit]` and to `mfactl audit --follow`.
//! Events hold metadata only, never a code.

pub mod chain;
pub mod context;
mod journald;
pub mod outputs;
pub mod record;
mod requests;
pub mod stream;
mod syslog;

pub(crate) use requests::{follow, verify};

use mfad_protocol::AuthStart;
use record::{Body, Record};
use std::sync::{Arc, OnceLock};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
    Locked,
    /// An administrative or self-service change that was carried out.
    Done,
    /// A request the peer was not allowed to make.
    Refused,
    /// A code or notice handed to the SMS provider or mail server.
    Sent,
    /// A code or notice the provider or mail server did not take, outside
    /// a login (a login it fails is denied).
    Failed,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
            Decision::Locked => "locked",
            Decision::Done => "done",
            Decision::Refused => "refused",
            Decision::Sent => "sent",
            Decision::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Event {
    pub time: i64,
    pub user: String,
    pub service: String,
    pub rhost: Option<String>,
    pub tty: Option<String>,
    pub channel: &'static str,
    pub decision: &'static str,
    pub reason: String,
    pub peer_uid: u32,
    /// The policy rule and version that decided (authentication events).
    pub rule: Option<String>,
    pub policy_version: Option<i64>,
    /// The peer's audit session id and the connection's request number, taken
    /// from the connection's [`context`] when the event is made.
    pub session_id: Option<u32>,
    pub request: Option<std::num::NonZeroU64>,
    /// Who is asking, beyond the peer uid: the PAM_RUSER the application
    /// named, and the real uid of the peer process (su and sudo run as root
    /// for whoever started them).
    pub ruser: Option<String>,
    pub caller_uid: Option<u32>,
    /// The record as the store chained it (set by the store's insert).
    pub(crate) stored: OnceLock<Arc<Record>>,
}

impl Event {
    /// An event about an authentication attempt.
    pub fn auth(
        start: &AuthStart,
        channel: &'static str,
        decision: Decision,
        reason: &str,
        peer_uid: u32,
        time: i64,
    ) -> Self {
        let (request, session_id) = context::current();
        Self {
            time,
            user: start.user.clone(),
            service: start.service.clone(),
            rhost: start.rhost.clone(),
            tty: start.tty.clone(),
            channel,
            decision: decision.as_str(),
            // The application's own words (`mfactl confirm --reason`), on
            // every row of its login.
            reason: match &start.reason {
                Some(why) => format!("{reason} (for: {why})"),
                None => reason.to_owned(),
            },
            peer_uid,
            rule: None,
            policy_version: None,
            session_id,
            request,
            ruser: start.ruser.clone().filter(|r| !r.is_empty()),
            caller_uid: context::caller(),
            stored: OnceLock::new(),
        }
    }

    /// Names the rule and policy version that decided.
    pub fn decided_by(mut self, rule: Option<&str>, version: i64) -> Self {
        self.rule = Some(rule.unwrap_or("(no rule matched)").to_owned());
        self.policy_version = Some(version);
        self
    }

    /// An event about an administrative or self-service action on `user`:
    /// channel `self` when the caller acts on their own account (by uid),
    /// `admin` otherwise.
    pub fn admin(user: &str, action: &str, decision: Decision, peer_uid: u32, time: i64) -> Self {
        let own = is_self(peer_uid, user);
        let (request, session_id) = context::current();
        Self {
            time,
            user: user.to_owned(),
            service: "mfactl".to_owned(),
            rhost: None,
            tty: None,
            channel: if own { "self" } else { "admin" },
            decision: decision.as_str(),
            reason: action.to_owned(),
            peer_uid,
            rule: None,
            policy_version: None,
            session_id,
            request,
            ruser: None,
            caller_uid: context::caller(),
            stored: OnceLock::new(),
        }
    }

    /// An event of the daemon itself (channel `policy` or `audit`).
    pub fn daemon(channel: &'static str, decision: Decision, reason: &str, time: i64) -> Self {
        let mut event = Self::admin("-", reason, decision, 0, time);
        event.service = "mfad".to_owned();
        event.channel = channel;
        event
    }

    /// Writes the syslog line and hands the record to the stream. Client-
    /// supplied text is quoted and escaped, so a user name cannot forge or
    /// split log lines.
    pub fn log(&self) {
        log::info!(target: "mfad::audit", "{}", self.line());
        let record = match self.stored.get() {
            Some(record) => Arc::clone(record),
            None => Arc::new(Body::of(self, None, None).sealed()),
        };
        stream::publish(record);
    }

    pub fn line(&self) -> String {
        format!(
            "audit user={:?} service={:?} rhost={:?} tty={:?} channel={} decision={} reason={:?} peer_uid={} rule={:?} policy_version={}",
            self.user,
            self.service,
            self.rhost.as_deref().unwrap_or("-"),
            self.tty.as_deref().unwrap_or("-"),
            self.channel,
            self.decision,
            self.reason,
            self.peer_uid,
            self.rule.as_deref().unwrap_or("-"),
            self.policy_version
                .map_or("-".to_owned(), |v| v.to_string()),
        )
    }
}

/// This machine's name, as every record names it.
pub fn host() -> &'static str {
    HOST.get_or_init(|| {
        nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".to_owned())
    })
}

static HOST: OnceLock<String> = OnceLock::new();

/// Names this host in every record (`[store] host_name`): once, at start,
/// before the first event.
pub fn set_host(name: &str) {
    let _ = HOST.set(name.to_owned());
}

/// Whether the caller `peer_uid` is the account `user` (uids compared).
fn is_self(peer_uid: u32, user: &str) -> bool {
    // Most events come from root: answer those without an NSS lookup.
    match peer_uid {
        0 => user == "root",
        uid => crate::peer::uid_of(user) == Some(uid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_line_escapes_control_characters() {
        let start = AuthStart {
            user: "eve\nmfad: audit user=\"root\" decision=allow".into(),
            service: "sshd".into(),
            ..Default::default()
        };
        let line = Event::auth(&start, "totp", Decision::Deny, "wrong_code", 0, 0).line();
        assert!(!line.contains('\n'));
        assert!(
            line.contains(r#"user="eve\nmfad: audit user=\"root\"#),
            "{line}"
        );
    }
}
