//! `mfactl policy explain`: which rule would decide a login, why each earlier
//! rule did not, and what the user would be asked for. It gathers what a
//! login gathers, makes the same [`plan`], and describes it: no second
//! decision tree. It reads and changes nothing.

use crate::config::StoreConfig;
use crate::login::checks::{self, CheckError};
use crate::login::plan::{self, Ask, Denial, Grant, Plan};
use crate::policy::Factor;
use crate::policy::{Facts, Why};
use crate::store::ACCOUNT;
use crate::{Daemon, clock, device, risk};
use mfad_protocol::{ExplainedRule, Explanation};

/// What the login to explain comes with besides user, service and source.
#[derive(Debug, Default)]
pub struct Context<'a> {
    /// The SSH public key of sshd's first method (`ssh-ed25519 AAAA...`).
    pub device_key: Option<&'a str>,
    /// The session it would come from (step-up), by id.
    pub session: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error("{0} is not an SSH public key (expected a line like `ssh-ed25519 AAAA...`)")]
    BadKey(String),
    #[error("there is no active session {0}")]
    NoSession(i64),
    #[error(transparent)]
    Check(#[from] CheckError),
}

pub fn explain(
    d: &Daemon,
    user: &str,
    service: &str,
    rhost: Option<&str>,
    ctx: &Context<'_>,
) -> Result<Explanation, ExplainError> {
    let loaded = d.policy();
    let policy = &loaded.policy;
    let (signals, explained) = risk::signals(d, user, &risk::place(d, rhost));
    let facts = Facts {
        user,
        service,
        rhost,
        signals,
    };
    let seen = policy.explain(facts, &d.groups());
    let rules = seen
        .iter()
        .map(|(rule, miss)| ExplainedRule {
            rule: rule.name.clone(),
            line: rule.line,
            matched: miss.is_none(),
            reason: miss.map_or(String::new(), |miss| {
                Why {
                    rule,
                    host: &policy.host,
                    facts,
                    miss,
                }
                .to_string()
            }),
        })
        .collect();
    let rule = seen
        .last()
        .filter(|(_, miss)| miss.is_none())
        .map(|(rule, _)| *rule);
    // As a login: only a service that vouches for devices brings one.
    let key = match ctx
        .device_key
        .filter(|_| policy.host.vouches_for_devices(service))
    {
        Some(line) => Some(
            device::from_auth_info(&format!("publickey {}", line.trim()))
                .ok_or_else(|| ExplainError::BadKey(line.to_owned()))?,
        ),
        None => None,
    };
    let session = match ctx.session {
        Some(id) => Some(
            d.store
                .session(&d.boot_id, id)
                .map_err(CheckError::from)?
                .filter(|s| s.user == user)
                .ok_or(ExplainError::NoSession(id))?,
        ),
        None => None,
    };
    let now = clock::now();
    let gathered = checks::gather(d, user, rule, key.as_ref(), session, now, None)?;
    let plan = plan::plan(&gathered.inputs(rule, now));
    let locks = locks_in_the_way(d, user, rhost, &plan, now)?;
    let outcome = describe(&plan);
    let outcome = match locks.is_empty() {
        true => outcome,
        false => format!("{outcome}; but {}", locks.join(", ")),
    };
    Ok(Explanation {
        policy_version: loaded.version,
        rules,
        rule: rule.map(|r| r.name.clone()),
        requirement: rule.map_or("deny".to_owned(), |r| r.require.describe()),
        enrolled: gathered
            .enrolled
            .iter()
            .map(|f| f.name().to_owned())
            .collect(),
        outcome,
        signals: explained,
        on_risk: rule.and_then(|r| r.on_risk.describe()).map(str::to_owned),
        // SQLite hosts keep everything locally: the key never acts there.
        store_unreachable: rule
            .filter(|_| matches!(d.config.store, StoreConfig::Postgres(_)))
            .map(|r| r.store_unreachable.describe().to_owned()),
    })
}

/// The locks that would stop this login at a factor it asks: of its source
/// (the remote host; for a local login, any local caller, since su and sudo
/// count per real uid of who runs them) or of the whole account.
fn locks_in_the_way(
    d: &Daemon,
    user: &str,
    rhost: Option<&str>,
    plan: &Plan,
    now: i64,
) -> Result<Vec<String>, CheckError> {
    let asked: Vec<&str> = match plan {
        Plan::Ask(ask) => ask
            .steps
            .iter()
            .filter(|s| !s.decoy)
            .map(|s| s.factor.name())
            .collect(),
        Plan::Enroll => vec![Factor::Totp.name()],
        Plan::Deny(_) | Plan::Allow(_) => Vec::new(),
    };
    let remote = rhost.filter(|r| !r.is_empty());
    let applies = |source: &str| match remote {
        Some(rhost) => source == rhost || source == ACCOUNT,
        None => source.starts_with("local") || source == ACCOUNT,
    };
    Ok(d.store
        .failure_counts(user, now, d.config.lockout.rule())?
        .into_iter()
        .filter(|l| asked.contains(&l.factor.as_str()) && applies(&l.source))
        .filter_map(|l| {
            let until = l.locked_until?;
            let whom = match l.source.as_str() {
                ACCOUNT => "from everywhere".to_owned(),
                source => format!("from {source}"),
            };
            Some(format!(
                "{} is locked {whom} until {}",
                l.factor,
                mfad_protocol::time::utc(until)
            ))
        })
        .collect())
}

/// A plan in words, for admins (who may know what a login does not show:
/// which asked factors this user cannot answer).
pub fn describe(plan: &Plan) -> String {
    match plan {
        Plan::Deny(Denial::NoRule) => "denied: no rule matches this login".to_owned(),
        Plan::Deny(Denial::Policy) => "denied by the policy".to_owned(),
        Plan::Allow(Grant::NothingRequired) => "allowed without a second factor".to_owned(),
        Plan::Allow(Grant::Unenrolled) => {
            "allowed: no factor enrolled, and the rule allows unenrolled users".to_owned()
        }
        Plan::Allow(Grant::Grace { until }) => format!(
            "allowed: no factor enrolled, within the grace period ending {}",
            mfad_protocol::time::utc(*until)
        ),
        Plan::Allow(Grant::Device { label }) => {
            format!("allowed: trusted device {label}")
        }
        Plan::Allow(Grant::Session(covered)) => format!("allowed: {}", covered.describe()),
        Plan::Ask(ask) => describe_ask(ask),
        Plan::Enroll => {
            "offered TOTP enrollment in the login (QR code, first code, backup codes), then allowed"
                .to_owned()
        }
    }
}

fn describe_ask(ask: &Ask) -> String {
    let labels: Vec<String> = ask
        .steps
        .iter()
        .map(|s| match s.decoy {
            true => format!(
                "{} (not enrolled: fails like a wrong code)",
                s.factor.label()
            ),
            false => s.factor.label().to_owned(),
        })
        .collect();
    let mut text = match (ask.chain, ask.steps.len()) {
        (_, 1) => format!("asked for: {}", labels.join(", ")),
        (true, _) => format!("asked for, in order: {}", labels.join(", ")),
        (false, _) => format!("asked to choose one of: {}", labels.join(", ")),
    };
    if ask.steps.iter().all(|s| s.decoy) {
        text = format!("denied: no factor enrolled ({text})");
    }
    if let Some(covered) = &ask.covered {
        text.push_str(&format!("; {}", covered.describe()));
    }
    if let Some((days, _)) = &ask.offer_trust {
        text.push_str(&format!(
            "; then offered to trust the device for {days} days"
        ));
    }
    text
}
