//! The PAM authentication conversation: the policy decides what the login
//! must prove, then each factor is challenged in turn. The state lives in
//! these functions and dies with the connection: no flow ids to guess.

mod challenge;
mod sent;

pub(crate) use sent::{destination, failure_message as delivery_failure, profile as code_profile};

use crate::audit::{Decision as Audit, Event};
use crate::authz::{Access, Target, authorize};
use crate::io::{FrameIo, ReadError};
use crate::peer::{self, Peer};
use crate::policy::{Factor, Facts, Nss, Requirement, Rule, Unenrolled};
use crate::{Daemon, clock, validate};
use challenge::{Step, challenge};
use mfad_protocol::{AuthStart, Decision, ErrorCode, Request, Response};

/// A verdict to send: the decision and the message for the user.
type Verdict = (Decision, String);

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
    let facts = Facts {
        user: &start.user,
        service: &start.service,
        rhost: start.rhost.as_deref(),
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
    // Whether the verdict rests on a factor the user proved.
    let mut proved = false;
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
                match factors_step(&att, io, rule, factors).await {
                    Some((verdict, passed)) => {
                        proved = passed;
                        verdict
                    }
                    None => return,
                }
            }
        },
    };
    let allowed = verdict.0 == Decision::Allow;
    let _ = io
        .send(Response::Verdict {
            decision: verdict.0,
            message: verdict.1,
        })
        .await;
    if allowed && proved {
        // After the verdict: the client has its answer and is gone.
        crate::notify::login(d, &start, peer.uid, None).await;
    }
}

/// Runs the factors a rule requires, and says whether the user proved
/// them. `None`: the conversation ended without a verdict to send (the
/// client left, or an error was already reported).
async fn factors_step(
    att: &Attempt<'_>,
    io: &mut FrameIo,
    rule: &Rule,
    factors: &[Factor],
) -> Option<(Verdict, bool)> {
    let mut enrolled = Vec::new();
    for &f in factors {
        match crate::factor::enrolled(att.d, &att.start.user, f) {
            Ok(true) => enrolled.push(f),
            Ok(false) => {}
            Err(e) => return challenge::internal(att, io, e).await.map(|v| (v, false)),
        }
    }
    let chain = matches!(rule.require, Requirement::Chain(_));
    if enrolled.is_empty() {
        return unenrolled(att, io, rule.unenrolled, factors[0])
            .await
            .map(|v| (v, false));
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
        return Some(((Decision::Deny, message), false));
    }
    let steps = if chain || enrolled.len() == 1 {
        enrolled
    } else {
        vec![choose(att, io, &enrolled).await?]
    };
    let total = steps.len();
    for (i, &factor) in steps.iter().enumerate() {
        let step = chain.then_some((i + 1, total));
        match challenge(att, io, factor, false, step).await {
            Step::Passed => {}
            Step::Verdict(verdict) => return Some((verdict, false)),
            Step::Ended => return None,
        }
    }
    Some(((Decision::Allow, String::new()), true))
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
