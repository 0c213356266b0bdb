//! `explain` describes the plan a login runs: for the same inputs, what it
//! says is what the login does.

use super::*;
use crate::explain::describe;
use Factor::{Backup, Sms, Totp};

#[test]
fn the_explanation_and_the_login_agree() {
    let mut trust = any(&[Totp]);
    trust.trusted_devices = TrustedDevices::Days(30);
    let mut fresh = chain(&[Totp, Sms]);
    fresh.fresh = vec![(Totp, Duration::from_secs(3600))];
    let session = [passed(Totp, 60)];
    let device = Device {
        label: "k",
        trusted_at: Some(NOW - 100),
    };
    let cases: Vec<(Option<Rule>, &[Factor], Extra<'_>)> = vec![
        (None, &[Totp], Extra::default()),
        (Some(rule(Requirement::None)), &[], Extra::default()),
        (Some(any(&[Totp, Backup])), &[Totp], Extra::default()),
        (Some(any(&[Totp])), &[], Extra::default()),
        (
            Some(trust.clone()),
            &[Totp],
            Extra {
                session: None,
                device: Some(device),
            },
        ),
        (Some(trust), &[Totp], Extra::default()),
        (
            Some(fresh.clone()),
            &[Totp, Sms],
            Extra {
                session: Some(Session {
                    id: 3,
                    passed: &session,
                }),
                device: None,
            },
        ),
        (Some(fresh), &[Totp, Sms], Extra::default()),
    ];
    for (rule, enrolled, extra) in cases {
        let inputs = Inputs {
            rule: rule.as_ref(),
            enrolled,
            session: extra.session,
            device: extra.device,
            now: NOW,
        };
        let said = describe(&plan(&inputs));
        let mut fake = Fake::with(enrolled);
        let done = run_plan(plan(&inputs), &mut fake, &[]);
        // With no answer given, the login either ends at once as the
        // explanation says, or asks first what the explanation names.
        match done.outcome() {
            Outcome::Allow | Outcome::Pass => assert!(said.starts_with("allowed"), "{said}"),
            Outcome::Deny => assert!(said.starts_with("denied"), "{said}"),
            Outcome::Aborted => {
                let first = &done.shown[0];
                let named = Factor::ALL
                    .iter()
                    .filter(|f| said.contains(f.label()))
                    .count();
                assert!(said.contains("asked"), "{said}");
                match named {
                    1 => assert!(!first.contains("Choose"), "{said} / {first}"),
                    _ => assert!(
                        first.contains("Choose") || said.contains("in order"),
                        "{said} / {first}"
                    ),
                }
                if said.contains("covered by session 3") {
                    assert!(
                        fake.audit
                            .iter()
                            .any(|a| a.2.contains("covered by session 3"))
                    );
                    assert_eq!(
                        done.shown,
                        [
                            "send:sms",
                            "Code sent to +44*******123, valid 5 minutes. Enter it, or r for a new code: "
                        ]
                    );
                }
            }
            other => panic!("{other:?}"),
        }
    }
}
