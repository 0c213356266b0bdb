//! What a login must still prove, and why: a pure function of the deciding
//! rule, the user's enrollments, the session the login comes from, the SSH
//! key that passed sshd's first method, and the time. The login
//! (`machine.rs`) and `mfactl policy explain` (`explain.rs`) both start
//! from it, so an explanation cannot disagree with a login.
//!
//! Threat: a login must not tell who is enrolled. Whatever the user has,
//! the plan asks the rule's factors in the rule's shape (a menu for `any`,
//! every step for a chain); a factor this user cannot answer becomes a
//! decoy that fails like a wrong code.

use crate::policy::{Factor, Requirement, Rule, TrustedDevices, Unenrolled};
use crate::store::Passed;

/// The session a login comes from (step-up), as far as the plan cares.
#[derive(Debug, Clone, Copy)]
pub struct Session<'a> {
    pub id: i64,
    pub passed: &'a [Passed],
}

/// The SSH key that passed sshd's first method.
#[derive(Debug, Clone, Copy)]
pub struct Device<'a> {
    pub label: &'a str,
    /// When the newest active trust of this key for this user was given.
    pub trusted_at: Option<i64>,
}

/// Everything a plan depends on.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub rule: Option<&'a Rule>,
    /// The rule's factors this user can answer now.
    pub enrolled: &'a [Factor],
    pub session: Option<Session<'a>>,
    pub device: Option<Device<'a>>,
    pub now: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    Deny(Denial),
    Allow(Grant),
    Ask(Ask),
    /// Not enrolled, and the rule sets up TOTP inside the login.
    Enroll,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    NoRule,
    Policy,
}

/// Why a login passes without a code now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    NothingRequired,
    /// No factor enrolled, and the rule lets such users in.
    Unenrolled,
    /// No factor enrolled, within the enrollment grace period.
    Grace {
        until: i64,
    },
    /// The key is trusted for this user within the rule's window.
    Device {
        label: String,
    },
    /// The session this login comes from passed what the rule asks,
    /// recently enough.
    Session(Covered),
}

/// Factors a session passed recently enough to count, with their age.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Covered {
    pub session: i64,
    pub factors: Vec<(Factor, i64)>,
}

/// What the user is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    /// Every step in order; otherwise the user chooses one of several.
    pub chain: bool,
    pub steps: Vec<Step>,
    /// What the session already covers (a chain asks only the rest).
    pub covered: Option<Covered>,
    /// Offer to trust the key (days, its label) after the factors.
    pub offer_trust: Option<(u32, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub factor: Factor,
    /// The user cannot answer this factor: it is asked all the same and
    /// fails like a wrong code.
    pub decoy: bool,
}

impl Ask {
    /// Whether the user picks one step from a menu first.
    pub fn chooses(&self) -> bool {
        !self.chain && self.steps.len() > 1
    }
}

const DAY: i64 = 86_400;

pub fn plan(i: &Inputs<'_>) -> Plan {
    let Some(rule) = i.rule else {
        return Plan::Deny(Denial::NoRule);
    };
    let (factors, chain) = match &rule.require {
        Requirement::None => return Plan::Allow(Grant::NothingRequired),
        Requirement::Deny => return Plan::Deny(Denial::Policy),
        Requirement::Any(f) => (f.as_slice(), false),
        Requirement::Chain(f) => (f.as_slice(), true),
    };
    // The parser refuses an empty list; should one ever get here, asking
    // nothing must not become an allow.
    if factors.is_empty() {
        return Plan::Deny(Denial::Policy);
    }
    let has = |f: &Factor| i.enrolled.contains(f);
    if !factors.iter().any(has) {
        match rule.unenrolled {
            Unenrolled::Allow => return Plan::Allow(Grant::Unenrolled),
            Unenrolled::GraceUntil(until) if i.now < until => {
                return Plan::Allow(Grant::Grace { until });
            }
            Unenrolled::Enroll => return Plan::Enroll,
            Unenrolled::Deny | Unenrolled::GraceUntil(_) => {}
        }
    }
    let trust_days = match rule.trusted_devices {
        TrustedDevices::Days(days) => Some(days),
        TrustedDevices::Forbidden => None,
    };
    if let (Some(days), Some(device)) = (trust_days, i.device) {
        // Within the window of the rule deciding now: a rule tightened
        // later shortens trust given under a longer one.
        let since = i.now.saturating_sub(i64::from(days) * DAY);
        if device.trusted_at.is_some_and(|at| at > since) {
            return Plan::Allow(Grant::Device {
                label: device.label.to_owned(),
            });
        }
    }
    let covered = i
        .session
        .map(|s| Covered {
            session: s.id,
            factors: covered(rule, s.passed, i.now)
                .into_iter()
                .filter(|(f, _)| has(f))
                .collect(),
        })
        .filter(|c| !c.factors.is_empty());
    if let Some(c) = &covered {
        let all = factors
            .iter()
            .all(|f| c.factors.iter().any(|(g, _)| g == f));
        if !chain || all {
            return Plan::Allow(Grant::Session(c.clone()));
        }
    }
    let is_covered = |f: &Factor| {
        covered
            .as_ref()
            .is_some_and(|c| c.factors.iter().any(|(g, _)| g == f))
    };
    let steps = factors
        .iter()
        .filter(|f| !is_covered(f))
        .map(|&factor| Step {
            factor,
            decoy: !has(&factor),
        })
        .collect();
    Plan::Ask(Ask {
        chain,
        steps,
        covered,
        offer_trust: trust_days.zip(i.device.map(|d| d.label.to_owned())),
    })
}

/// The factors of `rule` that a session passed recently enough to count
/// now, with their age in seconds. A factor without a `fresh` entry never
/// counts; "0s" never does either.
pub fn covered(rule: &Rule, passed: &[Passed], now: i64) -> Vec<(Factor, i64)> {
    rule.fresh
        .iter()
        .filter_map(|&(factor, limit)| {
            let limit = i64::try_from(limit.as_secs()).unwrap_or(i64::MAX);
            passed
                .iter()
                .filter(|p| p.factor == factor.name())
                .map(|p| now.saturating_sub(p.at))
                .find(|&age| age >= 0 && age < limit)
                .map(|age| (factor, age))
        })
        .collect()
}

/// "2h 5m", "40s": an age for people.
pub fn age(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s => format!("{}h {}m", s / 3600, (s % 3600) / 60),
    }
}

impl Covered {
    /// "covered by session 4: totp 2m ago"
    pub fn describe(&self) -> String {
        let list: Vec<String> = self
            .factors
            .iter()
            .map(|(f, a)| format!("{} {} ago", f.name(), age(*a)))
            .collect();
        format!("covered by session {}: {}", self.session, list.join(", "))
    }
}
