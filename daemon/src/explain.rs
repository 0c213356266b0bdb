//! `mfactl policy explain`: which rule would decide a login, why each earlier
//! rule did not, and what the user would be asked for. It reads the policy,
//! the enrollments and the locks, and changes nothing.

use crate::policy::{Factor, Facts, Nss, Requirement, Unenrolled, Why};
use crate::{Daemon, clock, factor, risk};
use mfad_protocol::{ExplainedRule, Explanation};

pub fn explain(
    d: &Daemon,
    user: &str,
    service: &str,
    rhost: Option<&str>,
) -> Result<Explanation, String> {
    let loaded = d.policy();
    let policy = &loaded.policy;
    let (signals, explained) = risk::signals(d, user, &risk::place(d, rhost));
    let facts = Facts {
        user,
        service,
        rhost,
        signals,
    };
    let seen = policy.explain(facts, &Nss);
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
    let Some(rule) = seen
        .last()
        .filter(|(_, miss)| miss.is_none())
        .map(|(rule, _)| *rule)
    else {
        return Ok(Explanation {
            policy_version: loaded.version,
            rules,
            rule: None,
            requirement: "deny".to_owned(),
            enrolled: Vec::new(),
            outcome: "denied: no rule matches this login".to_owned(),
            signals: explained,
        });
    };
    let factors = rule.require.factors();
    let mut enrolled = Vec::new();
    for &f in factors {
        if factor::enrolled(d, user, f)? {
            enrolled.push(f);
        }
    }
    let labels = |fs: &[Factor]| fs.iter().map(|f| f.label()).collect::<Vec<_>>().join(", ");
    let now = clock::now();
    let outcome = match &rule.require {
        Requirement::None => "allowed without a second factor".to_owned(),
        Requirement::Deny => "denied by the policy".to_owned(),
        _ if enrolled.is_empty() => match rule.unenrolled {
            Unenrolled::Allow => "allowed: no factor enrolled, and the rule allows unenrolled users".to_owned(),
            Unenrolled::GraceUntil(t) if now < t => {
                format!("allowed: no factor enrolled, within the grace period ending {}", mfad_protocol::time::utc(t))
            }
            _ => "denied: no factor enrolled (asked for a code that cannot succeed, like a wrong one)".to_owned(),
        },
        Requirement::Chain(_) if enrolled.len() < factors.len() => {
            let missing: Vec<Factor> = factors.iter().copied().filter(|f| !enrolled.contains(f)).collect();
            format!("denied: the chain needs {}, not enrolled", labels(&missing))
        }
        Requirement::Chain(_) => format!("asked for, in order: {}", labels(&enrolled)),
        _ if enrolled.len() == 1 => format!("asked for: {}", labels(&enrolled)),
        _ => format!("asked to choose one of: {}", labels(&enrolled)),
    };
    let source = rhost.filter(|r| !r.is_empty()).unwrap_or("local");
    let mut locks = Vec::new();
    for f in &enrolled {
        if let Some(until) = d
            .store
            .locked_until(user, f.name(), source, now)
            .map_err(|e| e.to_string())?
        {
            locks.push(format!(
                "{} is locked until {}",
                f.name(),
                mfad_protocol::time::utc(until)
            ));
        }
    }
    let outcome = if locks.is_empty() {
        outcome
    } else {
        format!("{outcome}; but {}", locks.join(", "))
    };
    Ok(Explanation {
        policy_version: loaded.version,
        rules,
        rule: Some(rule.name.clone()),
        requirement: rule.require.describe(),
        enrolled: enrolled.iter().map(|f| f.name().to_owned()).collect(),
        outcome,
        signals: explained,
    })
}
