//! The PAM authentication conversation: the policy decides what the login
//! must prove, then each factor is challenged in turn. The state lives in
//! these functions and dies with the connection: no flow ids to guess.

mod challenge;
mod sent;
mod stepup;
mod trust;

pub(crate) use sent::{destination, failure_message as delivery_failure, profile as code_profile};

use crate::audit::{Decision as Audit, Event};
use crate::authz::{Access, Target, authorize};
use crate::device::{self, SshKey};
use crate::io::{FrameIo, ReadError};
use crate::peer::{self, Peer};
use crate::policy::{Factor, Facts, Nss, Requirement, Rule, TrustedDevices, Unenrolled};
use crate::store::{NewTicket, Proof, StoredSession};
use crate::{Daemon, clock, risk, validate};
use challenge::{Step, challenge};
use mfad_protocol::{
    AuthStart, Decision, ErrorCode, PassedFactor, Request, Response, SecretString,
};

/// A verdict to send: the decision and the message for the user.
type Verdict = (Decision, String);

/// How long a ticket waits for its session hook (sshd opens the session
/// right after authentication).
const TICKET_SECS: i64 = 300;

/// What the login brings besides the answers: the session it comes from
/// (step-up) and the SSH key that passed sshd's first method.
struct Context {
    session: Option<StoredSession>,
    key: Option<SshKey>,
}

/// One authentication attempt and what decided it.
pub(crate) struct Attempt<'a> {
    pub d: &'a Daemon,
    pub peer: &'a Peer,
    pub start: &'a AuthStart,
    pub rule: Option<&'a str>,
    pub version: i64,
    /// The failure-counter source: the remote host, or "local".
    pub source: &'a str,
}

impl Attempt<'_> {
    pub fn event(&self, channel: &'static str, decision: Audit, reason: &str) -> Event {
        Event::auth(
            self.start,
            channel,
            decision,
            reason,
            self.peer.uid,
            clock::now(),
        )
        .decided_by(self.rule, self.version)
    }

    pub fn record(&self, channel: &'static str, decision: Audit, reason: &str) {
        self.d.record(&self.event(channel, decision, reason));
    }
}

pub async fn run(d: &Daemon, peer: &Peer, io: &mut FrameIo, start: AuthStart) {
    if let Err(problem) = validate::auth_start(&start) {
        io.send_error(ErrorCode::BadRequest, problem).await;
        return;
    }
    let loaded = d.policy();
    let place = risk::place(d, start.rhost.as_deref());
    let signals = match loaded.policy.uses_signals() {
        true => risk::signals(d, &start.user, &place).0,
        false => Default::default(),
    };
    let facts = Facts {
        user: &start.user,
        service: &start.service,
        rhost: start.rhost.as_deref(),
        signals,
    };
    let rule = loaded.policy.decide(facts, &Nss);
    let att = Attempt {
        d,
        peer,
        start: &start,
        rule: rule.map(|r| r.name.as_str()),
        version: loaded.version,
        source: start
            .rhost
            .as_deref()
            .filter(|r| !r.is_empty())
            .unwrap_or("local"),
    };
    if peer.uid != 0 {
        let target = Target::Named(peer::uid_of(&start.user));
        if let Err(denied) = authorize(peer::Role::User, peer.uid, target, Access::Authenticate) {
            att.record(
                "none",
                Audit::Refused,
                "peer not allowed to authenticate this user",
            );
            io.send_error(ErrorCode::PermissionDenied, denied.0).await;
            return;
        }
    }
    let ctx = Context {
        session: stepup::session_of(d, peer, &start),
        key: start
            .ssh_auth_info
            .as_deref()
            .and_then(device::from_auth_info),
    };
    let mut proof = Proof::default();
    let verdict = match rule {
        None => {
            att.record("none", Audit::Deny, "no policy rule matched");
            (
                Decision::Deny,
                "No MFA policy rule covers this login, so it is refused.".to_owned(),
            )
        }
        Some(rule) => match &rule.require {
            Requirement::None => {
                att.record("none", Audit::Allow, "policy requires nothing");
                (Decision::Allow, String::new())
            }
            Requirement::Deny => {
                att.record("none", Audit::Deny, "policy denies");
                (
                    Decision::Deny,
                    format!("Access to {} is refused by the MFA policy.", start.service),
                )
            }
            Requirement::Any(factors) | Requirement::Chain(factors) => {
                match factors_step(&att, io, rule, factors, &ctx, &mut proof).await {
                    Some(verdict) => verdict,
                    None => return,
                }
            }
        },
    };
    // Whether the login rests on something the user proved now (a factor,
    // or a trusted device), which is what a login notification reports.
    let proved = !proof.factors.is_empty() || proof.device.is_some();
    let allow = verdict.0 == Decision::Allow;
    let ticket = match allow {
        true => allowed(&att, &ctx, &place, proof),
        false => None,
    };
    let _ = io
        .send(Response::Verdict {
            decision: verdict.0,
            message: verdict.1,
            ticket,
        })
        .await;
    // A login notice is for new logins, not for a sudo inside one.
    if allow && proved && !peer.inside_login() {
        // After the verdict: the client has its answer and is gone.
        crate::notify::login(d, &start, peer.uid).await;
    }
}

/// After an allow: remember where the login came from, and hand what it
/// proved to its session: straight into the session it comes from
/// (step-up), or as a one-time ticket for the session hook to redeem.
fn allowed(
    att: &Attempt<'_>,
    ctx: &Context,
    place: &risk::Place,
    proof: Proof,
) -> Option<SecretString> {
    let d = att.d;
    let now = clock::now();
    let visit = risk::visit(place);
    let user = att.start.user.as_str();
    let record = |ticket: Option<&NewTicket<'_>>| {
        let stored = d.store.login_succeeded(user, now, visit.as_ref(), ticket);
        if let Err(e) = &stored {
            log::error!("cannot record the login of {user:?} (history, ticket): {e}");
        }
        stored.is_ok()
    };
    if let Some(session) = &ctx.session {
        if !proof.factors.is_empty()
            && let Err(e) = d.store.session_passed(session.info.id, &proof.factors)
        {
            log::error!(
                "cannot record the step-up in session {}: {e}",
                session.info.id
            );
        }
        record(None);
        return None;
    }
    // A ticket is for a new login: root's (sshd, login, a display manager),
    // from a process not yet inside a login (no login uid; pam_loginuid
    // sets it in the session stack). sudo and su run inside a login, and
    // their PAM environment goes on to the command they start.
    let ticket = (att.peer.uid == 0 && !att.peer.inside_login())
        .then(|| crate::store::crypto::random_bytes::<32>().ok())
        .flatten()
        .map(|bytes| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>());
    let hash = ticket.as_deref().and_then(|t| ticket_hash(d, t).ok());
    let Some((ticket, hash)) = ticket.zip(hash) else {
        record(None);
        return None;
    };
    let row = NewTicket {
        hash: &hash,
        service: &att.start.service,
        proof: &proof,
        expires: now.saturating_add(TICKET_SECS),
    };
    record(Some(&row)).then(|| SecretString::new(ticket))
}

/// The keyed hash a ticket is stored under.
pub(crate) fn ticket_hash(d: &Daemon, ticket: &str) -> Result<[u8; 32], String> {
    d.vault
        .keyed_hash("ticket", "", ticket.as_bytes())
        .map_err(|e| e.to_string())
}

/// Runs the factors a rule requires. `None`: the conversation ended without
/// a verdict to send (the client left, or an error was already reported).
async fn factors_step(
    att: &Attempt<'_>,
    io: &mut FrameIo,
    rule: &Rule,
    factors: &[Factor],
    ctx: &Context,
    proof: &mut Proof,
) -> Option<Verdict> {
    let mut enrolled = Vec::new();
    for &f in factors {
        match crate::factor::enrolled(att.d, &att.start.user, f) {
            Ok(true) => enrolled.push(f),
            Ok(false) => {}
            Err(e) => return challenge::internal(att, io, e).await,
        }
    }
    let chain = matches!(rule.require, Requirement::Chain(_));
    if enrolled.is_empty() {
        return unenrolled(att, io, rule.unenrolled, factors[0]).await;
    }
    if chain && enrolled.len() < factors.len() {
        let missing: Vec<&str> = factors
            .iter()
            .filter(|f| !enrolled.contains(f))
            .map(|f| f.label())
            .collect();
        att.record(
            "none",
            Audit::Deny,
            &format!("chain step not enrolled: {}", missing.join(", ")),
        );
        let message = format!(
            "This login needs {}, which you have not set up. Ask an administrator.",
            missing.join(" and ")
        );
        return Some((Decision::Deny, message));
    }
    let trust_days = match rule.trusted_devices {
        TrustedDevices::Days(days) => Some(days),
        TrustedDevices::Forbidden => None,
    };
    if let (Some(days), Some(key)) = (trust_days, &ctx.key) {
        match trust::is_trusted(att, key, days) {
            Ok(true) => {
                proof.device = Some(key.label());
                return Some((Decision::Allow, String::new()));
            }
            Ok(false) => {}
            Err(e) => return challenge::internal(att, io, e).await,
        }
    }
    // Step-up: what the session passed recently enough is not asked again.
    let now = clock::now();
    let covered = ctx
        .session
        .as_ref()
        .map(|s| stepup::covered(rule, s, now))
        .unwrap_or_default()
        .into_iter()
        .filter(|(f, _)| enrolled.contains(f))
        .collect::<Vec<_>>();
    let is_covered = |f: &Factor| covered.iter().any(|(c, _)| c == f);
    let remaining: Vec<Factor> = enrolled
        .iter()
        .copied()
        .filter(|f| !is_covered(f))
        .collect();
    if !covered.is_empty() {
        let list: Vec<String> = covered
            .iter()
            .map(|(f, age)| format!("{} {} ago", f.name(), stepup::age(*age)))
            .collect();
        let id = ctx.session.as_ref().map_or(0, |s| s.info.id);
        att.record(
            "session",
            Audit::Allow,
            &format!("covered by session {id}: {}", list.join(", ")),
        );
        if remaining.is_empty() || !chain {
            return Some((Decision::Allow, String::new()));
        }
    }
    let steps = if chain || remaining.len() == 1 {
        remaining
    } else {
        vec![choose(att, io, &remaining).await?]
    };
    let total = steps.len();
    for (i, &factor) in steps.iter().enumerate() {
        let step = chain.then_some((i + 1, total));
        match challenge(att, io, factor, false, step).await {
            Step::Passed => proof.factors.push(PassedFactor {
                factor: factor.name().to_owned(),
                at: clock::now(),
            }),
            Step::Verdict(verdict) => return Some(verdict),
            Step::Ended => return None,
        }
    }
    let mut message = String::new();
    if let (Some(days), Some(key)) = (trust_days, &ctx.key) {
        match trust::offer(att, io, key, days).await {
            Ok(Some(text)) => message = text,
            Ok(None) => return None,
            Err(e) => return challenge::internal(att, io, e).await,
        }
    }
    Some((Decision::Allow, message))
}

/// A user with none of the rule's factors: allowed, in grace, or denied. A
/// denied user is challenged anyway, against a stand-in secret, so that the
/// text and the timing are those of a wrong code.
async fn unenrolled(
    att: &Attempt<'_>,
    io: &mut FrameIo,
    policy: Unenrolled,
    first: Factor,
) -> Option<Verdict> {
    let now = clock::now();
    match policy {
        Unenrolled::Allow => {
            att.record(
                "none",
                Audit::Allow,
                "not enrolled; the policy allows unenrolled users",
            );
            Some((Decision::Allow, String::new()))
        }
        Unenrolled::GraceUntil(until) if now < until => {
            att.record(
                "none",
                Audit::Allow,
                "not enrolled; within the enrollment grace period",
            );
            let day = mfad_protocol::time::utc(until - 1);
            let message = format!(
                "No second factor is set up for you. Enroll one before {} (run `mfactl enroll totp`), or logins will be refused.",
                &day[..10]
            );
            Some((Decision::Allow, message))
        }
        Unenrolled::Deny | Unenrolled::GraceUntil(_) => {
            match challenge(att, io, first, true, None).await {
                Step::Verdict(verdict) => Some(verdict),
                Step::Passed | Step::Ended => None,
            }
        }
    }
}

/// Asks the user to pick one of several enrolled factors.
async fn choose(att: &Attempt<'_>, io: &mut FrameIo, options: &[Factor]) -> Option<Factor> {
    let mut text = "Choose how to verify:\n".to_owned();
    for (i, f) in options.iter().enumerate() {
        // A sent code's destination, masked, so the user knows where it goes.
        let to = f
            .channel()
            .and_then(|ch| {
                let to = destination(att.d, &att.start.user, ch).ok().flatten()?;
                Some(format!(" to {}", crate::delivery::address::mask(ch, &to)))
            })
            .unwrap_or_default();
        text.push_str(&format!("  {}) {}{to}\n", i + 1, f.label()));
    }
    text.push_str("Number: ");
    io.send(Response::Prompt { echo: true, text }).await.ok()?;
    let answer = match io.read().await {
        Ok(Request::Answer { text }) => text,
        Ok(_) => {
            io.send_error(ErrorCode::BadRequest, "expected an answer to the prompt")
                .await;
            return None;
        }
        Err(err) => {
            att.record("none", Audit::Deny, reason_for(&err));
            io.report(&err).await;
            return None;
        }
    };
    let picked = answer
        .expose()
        .trim()
        .parse::<usize>()
        .ok()
        .and_then(|n| options.get(n.wrapping_sub(1)));
    if picked.is_none() {
        att.record("none", Audit::Deny, "invalid factor choice");
        let _ = io
            .send(Response::Verdict {
                decision: Decision::Deny,
                message: "No such choice.".to_owned(),
                ticket: None,
            })
            .await;
    }
    picked.copied()
}

/// The audit reason for a conversation that ended without an answer.
pub(crate) fn reason_for(err: &ReadError) -> &'static str {
    match err {
        ReadError::Closed => "conversation aborted",
        ReadError::Timeout => "timed out waiting for the answer",
        _ => "malformed answer",
    }
}
