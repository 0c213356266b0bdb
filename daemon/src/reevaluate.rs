//! Trust that follows the session (continuous evaluation): when something
//! changes for the worse, the live sessions it touches are looked at again,
//! and each gets what the rule covering it says (`on_risk`): its freshness
//! cleared (`stepup`: the next sudo in it asks every factor), or the
//! session ended (`end`), with a one-line notice to its terminal.
//!
//! Threat: a session outlives the facts that let it in. A password and a
//! code phished and replayed from abroad, a device reported lost, a lock
//! from repeated guessing: without this, a session opened before the change
//! keeps its step-up credit for its rule's whole `fresh` window.
//!
//! [`decide`] is pure (which sessions a trigger touches, and what happens to
//! each); [`run`] gathers the sessions and rules, clears freshness at once
//! and ends sessions in a task, so no login or admin request waits for a
//! kill's grace period.

use crate::audit::{Decision, Event};
use crate::policy::{Facts, OnRisk, Policy, Requirement, Rule, Signals, TrustedDevices};
use crate::store::{Store, StoredSession};
use crate::{Daemon, clock, procs, sessions};
use std::sync::Arc;

/// How long a session's terminal has to show the notice before the end.
const NOTICE_PAUSE: std::time::Duration = std::time::Duration::from_millis(200);

/// What changed.
#[derive(Debug, Clone, Copy)]
pub enum Trigger<'a> {
    /// A successful login of `user` from a network or country new for them.
    NewPlace {
        user: &'a str,
        rhost: &'a str,
        /// "a new country (FR)", "a new network (203.0.113.0/24)".
        what: &'a str,
        /// The newest session open before the login's verdict: later ones
        /// (the login's own) are not touched.
        up_to: i64,
    },
    /// A failure lock on `user` (from one source or account-wide).
    Locked { user: &'a str, source: &'a str },
    /// A trusted device of `user` revoked: the sessions it opened.
    DeviceRevoked { user: &'a str, device: &'a str },
    /// A new policy version: sessions whose proof met the old rule covering
    /// them but not the new one.
    Policy { version: i64 },
    /// `mfactl sessions stepup ID`: that session, always a step-up.
    Admin { session: i64 },
}

impl Trigger<'_> {
    /// The reason in the audit rows and the terminal notice.
    pub fn reason(&self) -> String {
        match self {
            Trigger::NewPlace {
                user, rhost, what, ..
            } => {
                format!("login of {user} from {rhost}, {what}")
            }
            Trigger::Locked { user, source } => {
                format!("{user} locked out after repeated failures (from {source})")
            }
            Trigger::DeviceRevoked { device, .. } => {
                format!("trusted device {device}, which opened it, revoked")
            }
            Trigger::Policy { version } => {
                format!("policy version {version} asks more of its service")
            }
            Trigger::Admin { .. } => "step-up requested (mfactl sessions stepup)".to_owned(),
        }
    }

    fn touches(&self, live: &Live<'_>) -> bool {
        let s = live.session;
        match self {
            Trigger::NewPlace { user, up_to, .. } => s.user == *user && s.id <= *up_to,
            Trigger::Locked { user, .. } => s.user == *user,
            Trigger::DeviceRevoked { user, device } => {
                s.user == *user && s.proof.device.as_deref() == Some(*device)
            }
            Trigger::Policy { .. } => {
                satisfies(live.before, live.session) && !satisfies(live.rule, live.session)
            }
            Trigger::Admin { session } => s.id == *session,
        }
    }
}

/// A live session and the rules covering it.
#[derive(Debug, Clone, Copy)]
pub struct Live<'a> {
    pub session: &'a StoredSession,
    /// The rule of the policy in force that matches it.
    pub rule: Option<&'a Rule>,
    /// For [`Trigger::Policy`]: the rule of the version before.
    pub before: Option<&'a Rule>,
}

/// What happens to one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touch {
    pub session: i64,
    /// `Stepup` or `End`, never `None`.
    pub action: OnRisk,
    /// The rule whose `on_risk` said so (none for an admin's step-up).
    pub rule: Option<String>,
}

/// Which sessions `trigger` touches and what happens to each: what the
/// rule covering it says, except that an admin's step-up is a step-up.
pub fn decide(trigger: &Trigger<'_>, live: &[Live<'_>]) -> Vec<Touch> {
    live.iter()
        .filter(|l| trigger.touches(l))
        .filter_map(|l| {
            let (action, rule) = match trigger {
                Trigger::Admin { .. } => (OnRisk::Stepup, None),
                _ => {
                    let rule = l.rule?;
                    (rule.on_risk, Some(rule.name.clone()))
                }
            };
            (action != OnRisk::None).then_some(Touch {
                session: l.session.id,
                action,
                rule,
            })
        })
        .collect()
}

/// Whether what a session proved meets `rule`: its factors (any one of an
/// `any`, every one of a chain), or the trusted device that opened it where
/// the rule allows devices. No rule means a denial, which nothing meets.
fn satisfies(rule: Option<&Rule>, s: &StoredSession) -> bool {
    let Some(rule) = rule else { return false };
    let passed = |f: &crate::policy::Factor| s.proof.factors.iter().any(|p| p.factor == f.name());
    let device = s.proof.device.is_some() && rule.trusted_devices != TrustedDevices::Forbidden;
    match &rule.require {
        Requirement::None => true,
        Requirement::Deny => false,
        Requirement::Any(f) => device || f.iter().any(passed),
        Requirement::Chain(f) => device || f.iter().all(passed),
    }
}

/// The rule of `policy` covering session `s`: as its login matched, from
/// where it came, with no risk signal (the session is an established
/// login, not a new one).
fn rule_of<'p>(d: &Daemon, policy: &'p Policy, s: &StoredSession) -> Option<&'p Rule> {
    let facts = Facts {
        user: &s.user,
        service: &s.service,
        rhost: s.rhost.as_deref(),
        signals: Signals::default(),
    };
    policy.decide(facts, &d.groups())
}

/// Re-evaluates the live sessions for `trigger`, by uid `by`; `before` is
/// the policy a [`Trigger::Policy`] replaced. Returns how many sessions it
/// touched. Errors are logged: the change that triggered it stands.
pub fn run(d: &Daemon, trigger: &Trigger<'_>, by: u32, before: Option<&Policy>) -> usize {
    let loaded = d.policy();
    // Without an on_risk rule only an admin's step-up does anything.
    if !matches!(trigger, Trigger::Admin { .. }) && !loaded.policy.uses_on_risk() {
        return 0;
    }
    sessions::forget_ended(d);
    let all = match d.store.sessions(&d.boot_id) {
        Ok(all) => all,
        Err(e) => {
            log::error!("cannot read the sessions to re-evaluate them: {e}");
            return 0;
        }
    };
    let live: Vec<Live<'_>> = all
        .iter()
        .map(|s| Live {
            session: s,
            rule: rule_of(d, &loaded.policy, s),
            before: before.and_then(|p| rule_of(d, p, s)),
        })
        .collect();
    let touches = decide(trigger, &live);
    let reason = trigger.reason();
    let mut ending = Vec::new();
    for t in &touches {
        let Some(s) = all.iter().find(|s| s.id == t.session) else {
            continue;
        };
        let what = match t.action {
            OnRisk::End => "ended",
            OnRisk::Stepup | OnRisk::None => "freshness cleared",
        };
        let why = match &t.rule {
            Some(rule) => format!(
                "{what} (on_risk {} of rule {rule}): {reason}",
                t.action.name()
            ),
            None => format!("{what}: {reason}"),
        };
        let mut event = Event::admin(&s.user, &why, Decision::Done, by, clock::now());
        event.service = s.service.clone();
        event.rhost = s.rhost.clone();
        event.tty = s.tty.clone();
        event.channel = "session";
        event.rule = t.rule.clone();
        event.policy_version = Some(loaded.version);
        match t.action {
            OnRisk::Stepup => match d.store.clear_session_proof(s.id, &event) {
                Ok(()) => event.log(),
                Err(e) => log::error!("cannot clear session {}: {e}", s.id),
            },
            OnRisk::End => ending.push((s.clone(), event, reason.clone())),
            OnRisk::None => {}
        }
    }
    if !ending.is_empty() {
        end(Arc::clone(&d.store), ending);
    }
    touches.len()
}

/// Ends sessions in a task of their own: a notice to each one's terminal,
/// then its processes, as `mfactl sessions kill` does.
fn end(store: Arc<dyn Store>, ending: Vec<(StoredSession, Event, String)>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        log::error!("cannot end sessions outside the daemon's runtime");
        return;
    };
    runtime.spawn(async move {
        for (s, event, reason) in ending {
            let notice = format!("mfad: this session is being ended: {reason}");
            if procs::tell_session(s.audit_session, &notice) {
                // Time for sshd to pass the line on before it is signalled.
                tokio::time::sleep(NOTICE_PAUSE).await;
            }
            let _ = sessions::end(store.as_ref(), &s, event).await;
        }
    });
}

#[cfg(test)]
mod tests;
