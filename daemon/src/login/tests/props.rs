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
}
