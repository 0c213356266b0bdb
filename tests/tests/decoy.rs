//! Nothing to learn from the prompts: a user with a verified phone and a
//! user mfad has never heard of go through the same logins, through the
//! real libpam and pam_mfa.so, and see the same transcripts (prompts,
//! texts, lock points), apart from the masked destination and the clock
//! times in them. Each test runs one sequence for both and compares.
//!
//! Needs root and `cargo build --workspace` first.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use mfad_tests::daemon::{EmailConfig, TEST_RHOST};
use mfad_tests::pam::*;
use mfad_tests::sms::{ACCOUNT_SID, Mode, Provider, SmsInbox, SmsServer, code_in};
use mfad_tests::smtp::SmtpServer;
use mfad_tests::users::unique_name;
use mfad_tests::{TestConfig, TestDaemon};

const SVC: &str = "mfa-test";
const PHONE: &str = "+44 7700 900123";
const OTHER_RHOST: &str = "192.0.2.11";

fn sms_daemon(require: &str, tweak: impl FnOnce(&mut TestConfig)) -> (TestDaemon, SmsServer) {
    let sms = SmsServer::start(Provider::Twilio, ACCOUNT_SID, "s3cr3t", "+15550001111");
    let mut config = TestConfig {
        sms: Some(sms.config()),
        ..TestConfig::requiring(require)
    };
    tweak(&mut config);
    (TestDaemon::serving(SVC, config), sms)
}

/// A code that is not the newest SMS's (the live code of the real user).
fn not_the_code(inbox: &SmsInbox) -> String {
    other_than(inbox.received().last().and_then(|s| code_in(&s.text)))
}

fn other_than(code: Option<String>) -> String {
    match code.as_deref() {
        Some("000-000") => "111-111".to_owned(),
        _ => "000-000".to_owned(),
    }
}

/// A responder that answers `n` prompts with a wrong code, then leaves the
/// next prompt unanswered.
fn wrong_codes(inbox: SmsInbox, n: usize) -> Option<Responder> {
    let mut left = n;
    Some(Box::new(move |_prompt: &str| {
        left = left.checked_sub(1)?;
        Some(not_the_code(&inbox))
    }))
}

/// One login: its return code and what it showed.
type Seen = (i32, Transcript);

/// A transcript with what may differ without telling anything made
/// plain: each user's masked destination becomes `<to>`, clock times
/// `<time>`, durations are in seconds, and every number is set apart (as
/// `#`) to be compared within a second of clock drift between the runs.
fn shape(t: &Transcript) -> (Vec<String>, Vec<i64>) {
    let masks: Vec<&str> = t
        .messages
        .iter()
        .filter_map(|m| {
            let (_, rest) = m
                .text
                .split_once("Code sent to ")
                .or_else(|| m.text.split_once("Sending a code to "))?;
            rest.split(", valid").next()?.split("...").next()
        })
        .collect();
    let mut lines = Vec::new();
    let mut numbers = Vec::new();
    for m in &t.messages {
        let mut text = format!("[{:?}] {}", m.style, m.text);
        for mask in &masks {
            text = text.replace(mask, "<to>");
        }
        let text = times_out(&text)
            .replace(" 1 minute", " 60 seconds")
            .replace(" 5 minutes", " 300 seconds");
        let mut line = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            if !c.is_ascii_digit() {
                line.push(c);
                continue;
            }
            let mut n = i64::from(c.to_digit(10).unwrap());
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                n = n * 10 + i64::from(d);
                chars.next();
            }
            numbers.push(n);
            line.push('#');
        }
        lines.push(line);
    }
    if t.ran_out_of_answers {
        lines.push("[harness] ran out of answers".to_owned());
    }
    (lines, numbers)
}

/// `2026-12-04 06:01:02Z` as `<time>`.
fn times_out(text: &str) -> String {
    const SHAPE: &[u8] = b"dddd-dd-dd dd:dd:ddZ";
    let b = text.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        let fits = b.len() - i >= SHAPE.len()
            && SHAPE.iter().zip(&b[i..]).all(|(s, c)| match s {
                b'd' => c.is_ascii_digit(),
                s => s == c,
            });
        if fits {
            out.push_str("<time>");
            i += SHAPE.len();
        } else {
            let ch = text[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// Asserts that two users' logins looked the same.
#[track_caller]
fn assert_alike(enrolled: &[Seen], unknown: &[Seen]) {
    assert_eq!(enrolled.len(), unknown.len());
    for (i, ((rc_e, t_e), (rc_u, t_u))) in enrolled.iter().zip(unknown).enumerate() {
        let ((lines_e, nums_e), (lines_u, nums_u)) = (shape(t_e), shape(t_u));
        let close = nums_e.len() == nums_u.len()
            && nums_e.iter().zip(&nums_u).all(|(a, b)| (a - b).abs() <= 1);
        assert!(
            rc_e == rc_u && lines_e == lines_u && close,
            "login {} differs:\n--- enrolled ({rc_e}) ---\n{t_e}--- unknown ({rc_u}) ---\n{t_u}",
            i + 1
        );
    }
}

#[test]
fn the_shape_of_a_transcript_leaves_out_only_the_destination_and_the_clock() {
    let t = |texts: &[&str]| Transcript {
        messages: texts
            .iter()
            .map(|text| Message {
                style: Style::PromptEchoOff,
                text: (*text).to_owned(),
            })
            .collect(),
        ran_out_of_answers: false,
    };
    let real = t(&[
        "Sending a code to y***@example.com...",
        "Code sent to +44*******123, valid 5 minutes. Enter it",
        "No more codes before 2026-12-04 06:01:02Z (at most 3). Code sent to +44*******123, valid 299 seconds.",
    ]);
    let decoy = t(&[
        "Sending a code to q***@test.example...",
        "Code sent to +71*******086, valid 300 seconds. Enter it",
        "No more codes before 2026-12-04 06:01:09Z (at most 3). Code sent to +71*******086, valid 300 seconds.",
    ]);
    assert_alike(&[(7, real.clone())], &[(7, decoy)]);
    for other in [
        "Code sent to +44*******123, valid 297 seconds. Enter it",
        "Code sent to +44*******123, valid 5 minutes. Enter it now",
    ] {
        let moved = t(&[&real.messages[0].text, other, &real.messages[2].text]);
        let differs =
            std::panic::catch_unwind(|| assert_alike(&[(7, real.clone())], &[(7, moved)]));
        assert!(differs.is_err(), "{other:?} passed for the same");
    }
}

/// Runs `logins` for a user with a verified phone (first) and for an
/// unknown one, and compares what they saw. `logins` gets the daemon and
/// the user.
fn same_for_both(
    d: &TestDaemon,
    logins: impl Fn(&TestDaemon, &str) -> Vec<Seen>,
) -> (Vec<Seen>, Vec<Seen>) {
    let (enrolled, unknown) = (unique_name("ena"), unique_name("unk"));
    d.set_contact(&enrolled, "phone", PHONE);
    let seen_e = logins(d, &enrolled);
    let seen_u = logins(d, &unknown);
    assert_alike(&seen_e, &seen_u);
    (seen_e, seen_u)
}

/// `r` at once is held back by the cooldown; a second login inside the
/// cooldown keeps the code of the first (no new send), and its wrong tries
/// count on: the third wrong answer voids the code and locks the channel.
#[test]
fn a_resend_at_once_and_a_second_login_keep_the_code_and_its_tries() {
    let (d, sms) = sms_daemon("sms", |_| {});
    let (seen, _) = same_for_both(&d, |d, user| {
        vec![
            d.login_with(SVC, user, TEST_RHOST, &["r"], wrong_codes(sms.inbox(), 1)),
            d.login_with(SVC, user, TEST_RHOST, &[], wrong_codes(sms.inbox(), 1)),
            d.login_with(SVC, user, TEST_RHOST, &[], wrong_codes(sms.inbox(), 1)),
        ]
    });
    let (_, first) = &seen[0];
    assert!(
        first.prompts()[1].starts_with("A new code can be sent in "),
        "{first}"
    );
    let (_, second) = &seen[1];
    assert!(!second.contains("Sending a code"), "{second}");
    let (rc, third) = &seen[2];
    assert_eq!(*rc, PAM_MAXTRIES, "{third}");
    assert!(third.contains("That was the last try"), "{third}");
    assert_eq!(sms.received().len(), 1, "one code sent, to the real phone");
}

/// The same by email: a decoy address keeps its code as a real one does.
#[test]
fn an_email_decoy_keeps_its_code_and_its_cooldown_as_a_real_one() {
    let smtp = SmtpServer::start();
    let config = TestConfig {
        email: Some(EmailConfig::on_port(smtp.port())),
        ..TestConfig::requiring("email")
    };
    let d = TestDaemon::serving(SVC, config);
    let (enrolled, unknown) = (unique_name("ena"), unique_name("unk"));
    d.set_contact(&enrolled, "email", "yvonne@example.com");
    let logins = |user: &str| {
        let wrong = || {
            let mail = smtp.inbox();
            let code = (!mail.messages().is_empty()).then(|| mail.last_code());
            other_than(code)
        };
        vec![
            d.login(SVC, user, TEST_RHOST, &["r", &wrong()]),
            d.login(SVC, user, TEST_RHOST, &[&wrong()]),
        ]
    };
    let seen_e = logins(&enrolled);
    let seen_u = logins(&unknown);
    assert_alike(&seen_e, &seen_u);
    let (_, first) = &seen_e[0];
    assert!(
        first.prompts()[1].starts_with("A new code can be sent in "),
        "{first}"
    );
    let (_, second) = &seen_e[1];
    assert!(!second.contains("Sending a code"), "{second}");
    assert_eq!(smtp.inbox().messages().len(), 1, "{}", seen_u[0].1);
}

/// A code typed after its validity is "expired" for both (the two logins
/// wait at once, 31 s: the shortest validity is 30 s).
#[test]
fn a_wrong_code_after_the_validity_is_expired_for_both() {
    let (d, sms) = sms_daemon("sms", |c| {
        let code = &mut c.sms.as_mut().unwrap().code;
        code.validity_secs = 30;
        code.resend_cooldown_secs = 30;
    });
    let (enrolled, unknown) = (unique_name("ena"), unique_name("unk"));
    d.set_contact(&enrolled, "phone", PHONE);
    let late = |user: &str| {
        let inbox = sms.inbox();
        let mut answered = false;
        let answer: Responder = Box::new(move |_: &str| {
            if std::mem::replace(&mut answered, true) {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_secs(31));
            Some(not_the_code(&inbox))
        });
        d.login_with(SVC, user, TEST_RHOST, &[], Some(answer))
    };
    let (seen_e, seen_u) = std::thread::scope(|s| {
        let e = s.spawn(|| late(&enrolled));
        let u = s.spawn(|| late(&unknown));
        (e.join().unwrap(), u.join().unwrap())
    });
    assert!(seen_e.1.contains("That code has expired"), "{}", seen_e.1);
    assert_alike(&[seen_e], &[seen_u]);
}

/// The user's hourly cap: `r` past it is refused with the cap's prompt
/// while the last code lives, and so is the next login's send.
#[test]
fn the_hourly_cap_holds_both_alike() {
    let (d, sms) = sms_daemon("sms", |c| {
        let code = &mut c.sms.as_mut().unwrap().code;
        code.resend_cooldown_secs = 0;
        code.hourly_cap = 3;
    });
    let (seen, _) = same_for_both(&d, |d, user| {
        vec![
            d.login(SVC, user, TEST_RHOST, &["r", "r", "r"]),
            d.login_with(SVC, user, TEST_RHOST, &[], wrong_codes(sms.inbox(), 3)),
            // Another host: the channel is locked from the first.
            d.login(SVC, user, OTHER_RHOST, &[]),
        ]
    });
    let (_, first) = &seen[0];
    assert!(
        first.prompts()[3].starts_with("No more codes can be sent before "),
        "{first}"
    );
    let (rc, second) = &seen[1];
    assert!(
        second.prompts()[0].starts_with("No more codes can be sent before "),
        "{second}"
    );
    assert_eq!(*rc, PAM_MAXTRIES, "{second}");
    // No live code left: the cap ends the login.
    let (rc, third) = &seen[2];
    assert_eq!(*rc, PAM_AUTH_ERR, "{third}");
    assert!(third.contains("Log in again later"), "{third}");
    assert_eq!(sms.received().len(), 3);
}

/// An any-of menu offers the rule's factors to everyone; what a factor
/// cannot do for the unknown user fails as a wrong code does.
#[test]
fn an_any_of_menu_is_the_same_for_an_enrolled_and_an_unknown_user() {
    let (d, sms) = sms_daemon(r#"{ any = ["sms", "totp"] }"#, |_| {});
    let (enrolled, unknown) = (unique_name("ena"), unique_name("unk"));
    d.set_contact(&enrolled, "phone", PHONE);
    let secret = d.enroll_totp(&enrolled);
    let wrong_totp = d.wrong_code(&secret);
    let logins = |user: &str| {
        vec![
            // A TOTP-shaped answer at the menu is taken as a TOTP code.
            d.login(SVC, user, TEST_RHOST, &[&wrong_totp]),
            d.login(SVC, user, TEST_RHOST, &["2", &wrong_totp]),
            d.login_with(SVC, user, TEST_RHOST, &["1"], wrong_codes(sms.inbox(), 1)),
        ]
    };
    let seen_e = logins(&enrolled);
    let seen_u = logins(&unknown);
    assert_alike(&seen_e, &seen_u);
    let (rc, first) = &seen_e[0];
    assert_eq!(*rc, PAM_AUTH_ERR, "{first}");
    assert!(
        first.prompts()[0].starts_with("Choose how to verify:"),
        "{first}"
    );
    let (_, third) = &seen_e[2];
    assert_eq!(
        third.prompts().last(),
        Some(&"Wrong code. Try again: "),
        "{third}"
    );
    assert_eq!(sms.received().len(), 1);
}

/// When the channel's caps (`[sms.cap]`) hold real sends back, a decoy is
/// held back the same way: one real send fills `hourly = 1`, and then the
/// next user with a phone and an unknown user see the same refusal.
#[test]
fn a_full_channel_cap_refuses_a_decoy_as_it_refuses_a_real_send() {
    let (d, sms) = sms_daemon("sms", |c| {
        c.sms.as_mut().unwrap().extra = "[sms.cap]\nhourly = 1\n".into();
    });
    let first = unique_name("fil");
    d.set_contact(&first, "phone", PHONE);
    d.login_with(SVC, &first, TEST_RHOST, &[], wrong_codes(sms.inbox(), 1));
    assert_eq!(sms.received().len(), 1);
    let (seen, _) = same_for_both(&d, |d, user| {
        vec![d.login_with(SVC, user, TEST_RHOST, &[], wrong_codes(sms.inbox(), 1))]
    });
    let (rc, t) = &seen[0];
    assert_ne!(*rc, PAM_SUCCESS, "{t}");
    assert!(
        t.contains("this server has sent as many text messages as it may for now"),
        "{t}"
    );
    assert_eq!(sms.received().len(), 1, "nothing more was sent");
}

/// While the provider fails real sends, decoys fail as they do: the same
/// message, after as long. Here every recent real send failed, so every
/// decoy does.
#[test]
fn while_the_provider_fails_a_decoy_fails_as_a_real_send_does() {
    let (d, sms) = sms_daemon("sms", |c| {
        // Every send is a first one: no code is kept across these logins.
        c.sms.as_mut().unwrap().code.resend_cooldown_secs = 0;
    });
    sms.set_mode(Mode::Fail);
    let (seen, _) = same_for_both(&d, |d, user| {
        vec![d.login_with(SVC, user, TEST_RHOST, &[], wrong_codes(sms.inbox(), 1))]
    });
    let (rc, t) = &seen[0];
    assert_eq!(*rc, PAM_AUTH_ERR, "{t}");
    assert!(
        t.contains("The text message service refused the message"),
        "{t}"
    );
    // Back up: the next real send goes, and so do decoys again once real
    // sends have (the last 16 decide).
    sms.set_mode(Mode::Normal);
    let sent_before = sms.received().len();
    for _ in 0..16 {
        let real = unique_name("bak");
        d.set_contact(&real, "phone", PHONE);
        let (_, t) = d.login_with(SVC, &real, TEST_RHOST, &[], wrong_codes(sms.inbox(), 0));
        assert!(t.contains("Code sent to"), "{t}");
    }
    assert_eq!(sms.received().len(), sent_before + 16);
    let (_, t) = d.login_with(
        SVC,
        &unique_name("unk"),
        TEST_RHOST,
        &[],
        wrong_codes(sms.inbox(), 0),
    );
    assert!(t.contains("Code sent to"), "{t}");
}
