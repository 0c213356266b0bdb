//! Scripted logins: answers in, prompts and endings out.

use super::*;
use Factor::{Backup, Email, Sms, Totp};

fn one(r: &Rule, fake: &mut Fake, answers: &[&str]) -> Run {
    run(Some(r), fake, Extra::default(), answers)
}

#[test]
fn rules_without_a_question_end_at_once() {
    let mut fake = Fake::with(&[Totp]);
    let r = run(None, &mut fake, Extra::default(), &[]);
    assert_eq!(r.outcome(), &Outcome::Deny);
    assert!(r.shown.is_empty());
    assert_eq!(fake.audit[0].2, "no policy rule matched");

    let r = one(&rule(Requirement::Deny), &mut fake, &[]);
    assert_eq!(r.outcome(), &Outcome::Deny);
    assert!(r.ending.message.contains("refused by the MFA policy"));

    // Let through without proving anything: a Pass, not an Allow.
    let r = one(&rule(Requirement::None), &mut fake, &[]);
    assert_eq!(r.outcome(), &Outcome::Pass);
    assert!(!r.ending.proved());
}

#[test]
fn a_right_totp_code_allows_and_is_the_proof() {
    let mut fake = Fake::with(&[Totp]);
    let r = one(&any(&[Totp]), &mut fake, &[TOTP]);
    assert_eq!(r.shown, ["Verification code: "]);
    assert_eq!(r.outcome(), &Outcome::Allow);
    assert_eq!(r.ending.proof.factors, [passed(Totp, 0)]);
    assert_eq!(fake.accepted, [Totp]);
}

#[test]
fn a_wrong_code_is_counted_and_told_after_the_pause() {
    let mut fake = Fake::with(&[Totp]);
    let r = one(&any(&[Totp]), &mut fake, &["000000"]);
    assert_eq!(r.outcome(), &Outcome::Deny);
    assert_eq!(r.ending.message, "Wrong code.");
    assert_eq!(r.ending.pause, Duration::from_millis(250));
    assert_eq!(fake.failures, 1);
    assert_eq!(fake.audit.last().map(|a| a.1), Some(Audit::Deny));
}

#[test]
fn the_failure_that_reaches_the_threshold_locks() {
    let mut fake = Fake::with(&[Totp]);
    fake.lock_after = Some(1);
    let r = one(&any(&[Totp]), &mut fake, &["000000"]);
    assert_eq!(r.outcome(), &Outcome::Locked);
    assert!(
        r.ending
            .message
            .starts_with("Wrong code. Too many failed attempts")
    );
}

#[test]
fn a_locked_factor_is_not_even_asked() {
    let mut fake = Fake::with(&[Totp]);
    fake.locked.insert(Totp, NOW + 60);
    let r = one(&any(&[Totp]), &mut fake, &[TOTP]);
    assert_eq!(r.outcome(), &Outcome::Locked);
    assert!(r.shown.is_empty());
    assert!(fake.checked.is_empty());
    assert_eq!(fake.audit[0].1, Audit::Locked);
}

#[test]
fn the_menu_takes_a_number_a_code_or_asks_again() {
    let r2 = any(&[Totp, Backup]);
    let mut fake = Fake::with(&[Totp, Backup]);
    let r = one(&r2, &mut fake, &["2", BACKUP]);
    assert!(
        r.shown[0].contains("1) authenticator app code") && r.shown[0].contains("2) backup code")
    );
    assert_eq!(r.shown[1], "Backup code: ");
    assert_eq!(r.outcome(), &Outcome::Allow);

    // A TOTP code typed at "Number:" is unambiguous: taken as the answer.
    let mut fake = Fake::with(&[Totp, Backup]);
    let r = one(&r2, &mut fake, &[TOTP]);
    assert_eq!(r.shown.len(), 1);
    assert_eq!(r.outcome(), &Outcome::Allow);
    assert_eq!(fake.accepted, [Totp]);

    // Also one that reads as a small number.
    let mut fake = Fake::with(&[Totp, Backup]);
    let r = one(&r2, &mut fake, &["000001"]);
    assert_eq!(r.shown.len(), 1, "{:?}", r.shown);
    assert_eq!(
        fake.checked.len(),
        1,
        "checked as a code, not taken as choice 1"
    );

    // So is a backup code.
    let mut fake = Fake::with(&[Totp, Backup]);
    assert_eq!(one(&r2, &mut fake, &[BACKUP]).outcome(), &Outcome::Allow);

    // Anything else asks again, with the menu; the third miss ends it.
    let mut fake = Fake::with(&[Totp, Backup]);
    let r = one(&r2, &mut fake, &["9", "x", "1", TOTP]);
    assert!(r.shown[1].starts_with("No such choice"), "{:?}", r.shown);
    assert_eq!(r.outcome(), &Outcome::Allow);
    let mut fake = Fake::with(&[Totp, Backup]);
    let r = one(&r2, &mut fake, &["9", "x", "y"]);
    assert_eq!(r.outcome(), &Outcome::Deny);
    assert_eq!(r.ending.message, "No such choice.");
    assert_eq!(
        fake.audit.last().map(|a| a.2.as_str()),
        Some("invalid factor choice")
    );
}

#[test]
fn a_chain_asks_every_step_and_a_sent_code_may_be_retyped_or_resent() {
    let mut fake = Fake::with(&[Totp, Sms]);
    let r = one(
        &chain(&[Totp, Sms]),
        &mut fake,
        &[TOTP, "r", "111111", SENT],
    );
    assert_eq!(
        r.shown,
        [
            "Verification code: ",
            "send:sms",
            "Code sent to +44*******123, valid 5 minutes. Enter it, or r for a new code: ",
            "send:sms:again",
            "Code sent to +44*******123, valid 5 minutes. Enter it, or r for a new code: ",
            "Wrong code. Try again: ",
        ]
    );
    assert_eq!(r.outcome(), &Outcome::Allow);
    assert_eq!(r.ending.proof.factors, [passed(Totp, 0), passed(Sms, 0)]);
    assert!(
        fake.audit
            .iter()
            .any(|a| a.2 == "wrong code (chain step 2 of 2)"),
        "{:?}",
        fake.audit
    );
}

#[test]
fn a_failed_chain_step_ends_the_login() {
    let mut fake = Fake::with(&[Totp, Sms]);
    let r = one(&chain(&[Totp, Sms]), &mut fake, &["000000", SENT]);
    assert_eq!(r.outcome(), &Outcome::Deny);
    assert_eq!(r.shown.len(), 1);
    assert!(fake.accepted.is_empty());
}

#[test]
fn enrolled_unenrolled_and_unknown_users_see_the_same_questions() {
    // Threat: an attacker with a password probes who has which factor.
    let rules = [
        any(&[Totp]),
        any(&[Totp, Backup]),
        any(&[Totp, Backup, Sms, Email]),
        chain(&[Totp, Sms]),
        chain(&[Email, Backup]),
    ];
    let scripts: [&[&str]; 4] = [
        &["000000"],
        &["1", "000000"],
        &["2", "wrong"],
        &["3", "r", "000000", "000000"],
    ];
    for r in &rules {
        for script in scripts {
            let seen: Vec<(Vec<String>, Outcome, String)> =
                [&[][..], &[Totp][..], &[Backup, Sms][..], &Factor::ALL[..]]
                    .iter()
                    .map(|enrolled| {
                        let mut fake = Fake::with(enrolled);
                        let run = one(r, &mut fake, script);
                        (run.shown, run.ending.outcome, run.ending.message)
                    })
                    .collect();
            assert!(
                seen.windows(2).all(|w| w[0] == w[1]),
                "{:?} / {script:?}: {seen:#?}",
                r.require
            );
        }
    }
}

#[test]
fn a_decoy_step_never_passes_even_with_the_right_code() {
    let mut fake = Fake::with(&[]);
    for answer in [TOTP, BACKUP, SENT] {
        let r = one(&any(&[Totp]), &mut fake, &[answer]);
        assert_eq!(r.outcome(), &Outcome::Deny);
    }
    assert!(fake.accepted.is_empty());
    assert_eq!(fake.failures, 3, "decoy failures count like real ones");
}

#[test]
fn after_the_factors_the_device_may_be_trusted() {
    let r = with_trust();
    let device = Device {
        label: "ssh-ed25519 SHA256:abc",
        trusted_at: None,
    };
    let extra = Extra {
        session: None,
        device: Some(device),
    };
    let mut fake = Fake::with(&[Totp]);
    let run_yes = run(Some(&r), &mut fake, extra, &[TOTP, "y"]);
    assert!(run_yes.shown[1].starts_with("Trust this device (ssh-ed25519 SHA256:abc) for 30 days"));
    assert_eq!(fake.trusted, Some(30));
    assert!(
        run_yes
            .ending
            .message
            .starts_with("This device is trusted until ")
    );
    let mut fake = Fake::with(&[Totp]);
    let run_no = run(Some(&r), &mut fake, extra, &[TOTP, ""]);
    assert_eq!(run_no.outcome(), &Outcome::Allow);
    assert_eq!(fake.trusted, None);
}

fn with_trust() -> Rule {
    let mut r = any(&[Totp]);
    r.trusted_devices = TrustedDevices::Days(30);
    r
}

#[test]
fn a_trusted_device_allows_unless_its_trust_ended_meanwhile() {
    let device = Device {
        label: "k",
        trusted_at: Some(NOW - 10),
    };
    let extra = Extra {
        session: None,
        device: Some(device),
    };
    let mut fake = Fake::with(&[Totp]);
    let r = run(Some(&with_trust()), &mut fake, extra, &[]);
    assert_eq!(r.outcome(), &Outcome::Allow);
    assert_eq!(r.ending.proof.device.as_deref(), Some("k"));
    fake.device_ok = false;
    let r = run(Some(&with_trust()), &mut fake, extra, &[]);
    assert_eq!(r.outcome(), &Outcome::Deny);
}

#[test]
fn an_abandoned_step_is_audited_against_its_factor() {
    let mut fake = Fake::with(&[Totp, Sms]);
    let r = one(&chain(&[Totp, Sms]), &mut fake, &[TOTP]);
    assert_eq!(r.outcome(), &Outcome::Aborted);
    assert_eq!(
        fake.audit.last().map(|a| (a.0, a.2.as_str())),
        Some(("sms", "conversation aborted (chain step 2 of 2)"))
    );
}

#[test]
fn a_broken_store_fails_closed() {
    let mut fake = Fake::with(&[Totp]);
    fake.broken = true;
    let r = one(&any(&[Totp]), &mut fake, &[TOTP]);
    assert!(matches!(r.outcome(), Outcome::Internal(_)));
    assert_eq!(r.ending.verdict(), None);
}

#[test]
fn grace_and_unenrolled_allow_pass_without_proof() {
    let mut r = any(&[Totp]);
    r.unenrolled = Unenrolled::GraceUntil(NOW + 86_400);
    let mut fake = Fake::with(&[]);
    let run1 = one(&r, &mut fake, &[]);
    assert_eq!(run1.outcome(), &Outcome::Pass);
    assert!(run1.ending.message.contains("Enroll one before"));
    r.unenrolled = Unenrolled::Allow;
    assert_eq!(one(&r, &mut fake, &[]).outcome(), &Outcome::Pass);
}

#[test]
fn an_unenrolled_user_sets_up_totp_inside_the_login() {
    let mut r = any(&[Totp, Backup]);
    r.unenrolled = Unenrolled::Enroll;
    let mut fake = Fake::with(&[]);
    let run1 = one(&r, &mut fake, &["000000", TOTP, "no", "yes"]);
    assert!(
        run1.shown[0].contains("[QR]") && run1.shown[0].contains("Secret: ABCD EFGH"),
        "{:?}",
        run1.shown
    );
    assert_eq!(run1.shown[1], "Enter the 6-digit code the app shows: ");
    assert!(run1.shown[2].starts_with("That code does not match"));
    assert!(run1.shown[3].contains(&format!(" 1. {BACKUP}")));
    assert!(run1.shown[4].starts_with("Type yes once"));
    assert_eq!(run1.outcome(), &Outcome::Allow);
    assert_eq!(run1.ending.proof.factors, [passed(Totp, 0)]);
    assert_eq!(fake.failures, 1, "a wrong first code counts");
    // Enrolled now: the next login asks for the code.
    let run2 = one(&r, &mut fake, &[TOTP]);
    assert!(run2.shown[0].starts_with("Choose how to verify"));
}

#[test]
fn an_enrollment_abandoned_before_the_first_code_stores_nothing() {
    let mut r = any(&[Totp]);
    r.unenrolled = Unenrolled::Enroll;
    let mut fake = Fake::with(&[]);
    let run1 = one(&r, &mut fake, &[]);
    assert_eq!(run1.outcome(), &Outcome::Aborted);
    assert!(fake.enrolled.is_empty());
    assert_eq!(fake.audit.last().map(|a| a.0), Some("totp"));
}
