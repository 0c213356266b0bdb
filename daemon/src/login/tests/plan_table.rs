//! Every rule shape × what the user has → what the plan asks.

use super::*;
use crate::login::plan::{Ask, Denial, Grant};
use Factor::{Backup, Email, Sms, Totp};

/// A plan in a few letters: `ask:any[totp backup*]+trust`, a `*` marks a
/// decoy step.
fn short(p: &Plan) -> String {
    match p {
        Plan::Deny(Denial::NoRule) => "deny:no-rule".to_owned(),
        Plan::Deny(Denial::Policy) => "deny:policy".to_owned(),
        Plan::Allow(Grant::NothingRequired) => "allow:none".to_owned(),
        Plan::Allow(Grant::Unenrolled) => "allow:unenrolled".to_owned(),
        Plan::Allow(Grant::Grace { .. }) => "allow:grace".to_owned(),
        Plan::Allow(Grant::Device { .. }) => "allow:device".to_owned(),
        Plan::Allow(Grant::Session(c)) => format!("allow:session{}", c.factors.len()),
        Plan::Enroll => "enroll".to_owned(),
        Plan::Ask(Ask {
            chain,
            steps,
            offer_trust,
            ..
        }) => {
            let steps: Vec<String> = steps
                .iter()
                .map(|s| format!("{}{}", s.factor.name(), if s.decoy { "*" } else { "" }))
                .collect();
            format!(
                "ask:{}[{}]{}",
                if *chain { "chain" } else { "any" },
                steps.join(" "),
                if offer_trust.is_some() { "+trust" } else { "" }
            )
        }
    }
}

fn with(mut r: Rule, f: impl FnOnce(&mut Rule)) -> Rule {
    f(&mut r);
    r
}

/// What, the rule, what the user has, session and device, the plan.
type Row<'a> = (&'a str, Option<Rule>, &'a [Factor], Extra<'a>, &'a str);

const KEY: &str = "ssh-ed25519 SHA256:abc";

#[test]
fn each_rule_shape_plans_what_it_says() {
    let fresh_totp = |r: &mut Rule| r.fresh = vec![(Totp, Duration::from_secs(3600))];
    let trust = |r: &mut Rule| r.trusted_devices = TrustedDevices::Days(30);
    let session_passed = [passed(Totp, 60)];
    let stale = [passed(Totp, 7200)];
    let in_session = |p: &'static [Passed]| Extra {
        session: Some(Session { id: 7, passed: p }),
        device: None,
    };
    let session_ok: &'static [Passed] = Box::leak(Box::new(session_passed));
    let session_stale: &'static [Passed] = Box::leak(Box::new(stale));
    let trusted = Extra {
        session: None,
        device: Some(Device {
            label: KEY,
            trusted_at: Some(NOW - 86_400),
        }),
    };
    let trusted_long_ago = Extra {
        session: None,
        device: Some(Device {
            label: KEY,
            trusted_at: Some(NOW - 40 * 86_400),
        }),
    };
    let untrusted = Extra {
        session: None,
        device: Some(Device {
            label: KEY,
            trusted_at: None,
        }),
    };
    let none = Extra::default();
    #[rustfmt::skip]
    let table: Vec<Row<'_>> = vec![
        ("no rule", None, &[Totp], none, "deny:no-rule"),
        ("require none", Some(rule(Requirement::None)), &[], none, "allow:none"),
        ("require deny", Some(rule(Requirement::Deny)), &[Totp], none, "deny:policy"),
        ("an empty list fails closed", Some(any(&[])), &[Totp], none, "deny:policy"),
        ("an empty chain fails closed", Some(chain(&[])), &[Totp], none, "deny:policy"),
        ("one factor", Some(any(&[Totp])), &[Totp], none, "ask:any[totp]"),
        ("one factor, not enrolled", Some(any(&[Totp])), &[], none, "ask:any[totp*]"),
        ("any: the whole menu whatever is enrolled", Some(any(&[Totp, Backup, Sms])), &[Totp], none, "ask:any[totp backup* sms*]"),
        ("any, nothing enrolled: the same menu", Some(any(&[Totp, Backup, Sms])), &[], none, "ask:any[totp* backup* sms*]"),
        ("chain", Some(chain(&[Totp, Sms])), &[Totp, Sms], none, "ask:chain[totp sms]"),
        ("chain, a step missing: asked, fails", Some(chain(&[Totp, Email])), &[Totp], none, "ask:chain[totp email*]"),
        ("unenrolled allow", Some(with(any(&[Totp]), |r| r.unenrolled = Unenrolled::Allow)), &[], none, "allow:unenrolled"),
        ("unenrolled allow, but enrolled", Some(with(any(&[Totp]), |r| r.unenrolled = Unenrolled::Allow)), &[Totp], none, "ask:any[totp]"),
        ("grace, running", Some(with(any(&[Totp]), |r| r.unenrolled = Unenrolled::GraceUntil(NOW + 1))), &[], none, "allow:grace"),
        ("enroll at login", Some(with(any(&[Totp]), |r| r.unenrolled = Unenrolled::Enroll)), &[], none, "enroll"),
        ("enroll, but enrolled", Some(with(any(&[Totp]), |r| r.unenrolled = Unenrolled::Enroll)), &[Totp], none, "ask:any[totp]"),
        ("grace, over", Some(with(any(&[Totp]), |r| r.unenrolled = Unenrolled::GraceUntil(NOW))), &[], none, "ask:any[totp*]"),
        ("trusted device", Some(with(any(&[Totp]), trust)), &[Totp], trusted, "allow:device"),
        ("device trusted before the rule's window", Some(with(any(&[Totp]), trust)), &[Totp], trusted_long_ago, "ask:any[totp]+trust"),
        ("device not trusted: offered", Some(with(any(&[Totp]), trust)), &[Totp], untrusted, "ask:any[totp]+trust"),
        ("trust forbidden: the device does not count", Some(any(&[Totp])), &[Totp], trusted, "ask:any[totp]"),
        ("session covers the factor", Some(with(any(&[Totp, Sms]), fresh_totp)), &[Totp, Sms], in_session(session_ok), "allow:session1"),
        ("session too old", Some(with(any(&[Totp]), fresh_totp)), &[Totp], in_session(session_stale), "ask:any[totp]"),
        ("no fresh entry: a session never counts", Some(any(&[Totp])), &[Totp], in_session(session_ok), "ask:any[totp]"),
        ("chain half covered: the rest is asked", Some(with(chain(&[Totp, Sms]), fresh_totp)), &[Totp, Sms], in_session(session_ok), "ask:chain[sms]"),
    ];
    for (what, rule, enrolled, extra, want) in table {
        let p = plan(&Inputs {
            rule: rule.as_ref(),
            enrolled,
            session: extra.session,
            device: extra.device,
            now: NOW,
        });
        assert_eq!(short(&p), want, "{what}");
    }
}

#[test]
fn a_plan_asks_the_same_whatever_is_enrolled() {
    // Threat: the shape of the questions must not tell who is enrolled.
    for r in [
        any(&[Totp, Backup]),
        chain(&[Totp, Sms]),
        any(&[Email]),
        any(&[Totp, Backup, Sms, Email]),
    ] {
        let shapes: Vec<Vec<Factor>> = [&[][..], &[Totp][..], &[Backup, Sms][..], &Factor::ALL[..]]
            .iter()
            .map(|enrolled| {
                match plan(&Inputs {
                    rule: Some(&r),
                    enrolled,
                    session: None,
                    device: None,
                    now: NOW,
                }) {
                    Plan::Ask(ask) => ask.steps.iter().map(|s| s.factor).collect(),
                    other => panic!("{other:?}"),
                }
            })
            .collect();
        assert!(shapes.windows(2).all(|w| w[0] == w[1]), "{shapes:?}");
    }
}
