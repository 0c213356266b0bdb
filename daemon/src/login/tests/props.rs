//! Properties over random rules, enrollments and answers.

use super::*;
use proptest::prelude::*;

fn factor() -> impl Strategy<Value = Factor> {
    prop::sample::select(Factor::ALL.to_vec())
}

fn answer() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        TOTP, BACKUP, SENT, "000000", "r", "1", "2", "3", "9", "", "y",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// No sequence of answers reaches Allow without every required factor
    /// checked and accepted exactly once (one of them for `any`), and a
    /// factor the user does not have is never accepted.
    #[test]
    fn allow_needs_every_required_factor_once(
        factors in prop::collection::vec(factor(), 1..4),
        is_chain in proptest::bool::ANY,
        enrolled in prop::collection::vec(factor(), 0..4),
        answers in prop::collection::vec(answer(), 0..10),
    ) {
        let mut factors = factors;
        factors.dedup();
        let r = if is_chain { chain(&factors) } else { super::any(&factors) };
        let mut fake = Fake::with(&enrolled);
        let done = run(Some(&r), &mut fake, Extra::default(), &answers);
        if done.ending.verdict() == Some(mfad_protocol::Decision::Allow) {
            let mut accepted = fake.accepted.clone();
            accepted.sort();
            let before = accepted.len();
            accepted.dedup();
            prop_assert_eq!(before, accepted.len(), "a factor accepted twice");
            prop_assert!(accepted.iter().all(|f| enrolled.contains(f)));
            if is_chain {
                let mut want = factors.clone();
                want.sort();
                want.dedup();
                prop_assert_eq!(accepted, want);
            } else {
                prop_assert_eq!(accepted.len(), 1);
            }
            prop_assert_eq!(done.ending.proof.factors.len(), fake.accepted.len());
        }
    }

    /// A code said to end the login (`Checks::check`'s `ends`) ends it
    /// allowed with exactly the factors it named, and a login allowed on a
    /// code was told so with that code: what the driver records with the
    /// code is what the login proved.
    #[test]
    fn a_code_said_to_end_the_login_ends_it_with_what_it_named(
        factors in prop::collection::vec(factor(), 1..4),
        is_chain in proptest::bool::ANY,
        enrolled in prop::collection::vec(factor(), 0..4),
        answers in prop::collection::vec(answer(), 0..10),
        trust in proptest::bool::ANY,
    ) {
        let mut factors = factors;
        factors.dedup();
        let mut r = if is_chain { chain(&factors) } else { super::any(&factors) };
        if trust {
            r.trusted_devices = TrustedDevices::Days(7);
        }
        let mut fake = Fake::with(&enrolled);
        let extra = Extra {
            device: trust.then_some(Device { label: "key", trusted_at: None }),
            ..Extra::default()
        };
        let done = run(Some(&r), &mut fake, extra, &answers);
        let allowed = *done.outcome() == Outcome::Allow;
        match &fake.ended_with {
            Some(named) => {
                prop_assert!(allowed, "told the code ended it, then {:?}", done.outcome());
                prop_assert_eq!(named, &done.ending.proof.factors);
            }
            None => {
                let asked_trust = done.shown.iter().any(|s| s.contains("Trust this device"));
                prop_assert!(
                    !allowed || done.ending.proof.factors.is_empty() || asked_trust,
                    "allowed on a code never said to end it"
                );
            }
        }
    }
}
