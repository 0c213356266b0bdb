//! Codes by SMS end to end: the real libpam loads the real pam_mfa.so,
//! mfad sends the code through its real HTTP client to a local server that
//! speaks each provider's API (and checks the request's shape), and the
//! test reads the code from the SMS that server received.
//!
//! Needs root and `cargo build --workspace` first.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use mfad_tests::daemon::TEST_RHOST;
use mfad_tests::pam::*;
use mfad_tests::sms::{ACCOUNT_SID, API_KEY_SID, Mode, Provider, SmsInbox, SmsServer, code_in};
use mfad_tests::smtp::free_port;
use mfad_tests::users::unique_name;
use mfad_tests::{TestConfig, TestDaemon};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SVC: &str = "mfa-test";
const PHONE: &str = "+44 7700 900123";
const E164: &str = "+447700900123";
const MASKED: &str = "+44*******123";
const SECRET: &str = "s3cr3t-t0ken";

fn sms_daemon(
    provider: Provider,
    require: &str,
    tweak: impl FnOnce(&mut TestConfig),
) -> (TestDaemon, SmsServer) {
    sms_daemon_with(provider, require, |_| {}, tweak)
}

/// As [`sms_daemon`], with `prepare` run on the provider before its
/// settings are taken.
fn sms_daemon_with(
    provider: Provider,
    require: &str,
    prepare: impl FnOnce(&SmsServer),
    tweak: impl FnOnce(&mut TestConfig),
) -> (TestDaemon, SmsServer) {
    let sms = SmsServer::start(provider, ACCOUNT_SID, SECRET, "+15550001111");
    prepare(&sms);
    let mut config = TestConfig {
        sms: Some(sms.config()),
        ..TestConfig::requiring(require)
    };
    tweak(&mut config);
    (TestDaemon::serving(SVC, config), sms)
}

/// Answers a "Code sent" prompt with the code of the newest SMS (or of the
/// one `back` before it).
fn code_from(inbox: SmsInbox, back: usize) -> Option<Responder> {
    Some(Box::new(move |prompt: &str| {
        if !prompt.contains("Enter it") {
            return None;
        }
        let got = inbox.received();
        let sms = got.get(got.len().checked_sub(1 + back)?)?;
        code_in(&sms.text)
    }))
}

/// The code with its last digit changed.
fn wrong(code: &str) -> String {
    let mut c: Vec<char> = code.chars().collect();
    let last = c.last_mut().unwrap();
    *last = if *last == '9' {
        '0'
    } else {
        char::from(*last as u8 + 1)
    };
    c.into_iter().collect()
}

fn audit_with(d: &TestDaemon, user: &str, decision: &str, reason: &str) -> Vec<Value> {
    d.audit_rows()
        .into_iter()
        .filter(|r| {
            r["user"] == user
                && r["decision"] == decision
                && r["reason"].as_str().unwrap_or_default().contains(reason)
        })
        .collect()
}

#[test]
fn each_preset_sends_its_documented_request_and_the_code_logs_in() {
    for (provider, id) in [
        (Provider::Twilio, "SM00000000000000000000000000000001"),
        (Provider::Vonage, "VON1"),
        (Provider::Infobip, "IB1"),
        (Provider::MessageBird, "MB1"),
        (Provider::Generic, "GEN1"),
    ] {
        let (d, sms) = sms_daemon(provider, "sms", |_| {});
        let user = unique_name("sam");
        d.set_contact(&user, "phone", PHONE);
        let t = d.expect_rc(
            d.login_with(SVC, &user, TEST_RHOST, &[], code_from(sms.inbox(), 0)),
            PAM_SUCCESS,
        );
        // sshd shows info text only with the next prompt: it is all in the prompt.
        assert_eq!(
            t.prompts(),
            [format!(
                "Code sent to {MASKED}, valid 5 minutes. Enter it, or r for a new code: "
            )],
            "{provider:?}"
        );
        let got = sms.received();
        assert_eq!(got.len(), 1, "{provider:?}: {got:#?}");
        assert!(got[0].problems.is_empty(), "{provider:?}: {:#?}", got[0]);
        let want_to = match provider {
            Provider::Twilio | Provider::Generic => E164,
            _ => &E164[1..],
        };
        assert_eq!(got[0].to, want_to, "{provider:?}");
        assert!(got[0].text.contains("login code"), "{:?}", got[0].text);
        let sent = audit_with(&d, &user, "sent", MASKED);
        assert_eq!(sent.len(), 1, "{provider:?}: {:#?}", d.audit_rows());
        assert!(
            sent[0]["reason"].as_str().unwrap().contains(id),
            "the provider's message id is recorded: {}",
            sent[0]
        );
        assert_eq!(sent[0]["channel"], "sms");
        assert_eq!(audit_with(&d, &user, "allow", "ok").len(), 1);
        // Neither the secret, the code nor the whole number reaches a log.
        let code = code_in(&got[0].text).unwrap();
        let audit = serde_json::to_string(&d.audit_rows()).unwrap();
        for (what, text) in [("stderr", d.log_text()), ("audit", audit)] {
            for secret in [SECRET, code.as_str(), E164, &E164[1..]] {
                assert!(!text.contains(secret), "{secret:?} in the {what}:\n{text}");
            }
        }
    }
}

/// Each provider's own refusal (inside a 2xx where it does that, like
/// Infobip's REJECTED group or a Vonage part with a non-zero status) and
/// its answer to bad credentials are failed sends: the user is told no code
/// was sent, the audit row says deny with the provider's words, and no row
/// says sent.
#[test]
fn each_providers_refusals_and_errors_are_failed_sends_never_sent() {
    for (provider, refused, error) in [
        (
            Provider::Twilio,
            "is not a valid phone number. (error 21211)",
            "Authenticate: Your AccountSid or AuthToken was incorrect. (error 20003)",
        ),
        (
            Provider::Vonage,
            "part 2 of 2: status 1: Throttled",
            "part 1 of 1: status 4: Bad Credentials",
        ),
        (
            Provider::Infobip,
            "REJECTED: REJECTED_NOT_ENOUGH_CREDITS: Not enough credits",
            "HTTP 401: Invalid login details",
        ),
        (
            Provider::MessageBird,
            "recipient status delivery_failed",
            "HTTP 401: Request not allowed (incorrect access_key) (access_key)",
        ),
    ] {
        let (d, sms) = sms_daemon(provider, "sms", |_| {});
        for (mode, words) in [(Mode::Reject, refused), (Mode::Error, error)] {
            sms.set_mode(mode);
            let user = unique_name("rej");
            d.set_contact(&user, "phone", PHONE);
            let t = d.expect_rc(d.login(SVC, &user, TEST_RHOST, &[]), PAM_AUTH_ERR);
            assert!(t.prompts().is_empty(), "{provider:?} {mode:?}: {t}");
            assert!(
                t.contains(&format!("No code could be sent to {MASKED}"))
                    && t.contains("refused the message"),
                "{provider:?} {mode:?}: {t}"
            );
            let rows = audit_with(&d, &user, "deny", "delivery failed");
            assert_eq!(
                rows.len(),
                1,
                "{provider:?} {mode:?}: {:#?}",
                d.audit_rows()
            );
            assert!(
                rows[0]["reason"].as_str().unwrap().contains(words),
                "{provider:?} {mode:?}: {}",
                rows[0]
            );
            assert!(
                audit_with(&d, &user, "sent", "").is_empty(),
                "{provider:?} {mode:?}"
            );
        }
        // A verification code refused inside a 2xx is not sent either.
        sms.set_mode(Mode::Reject);
        let other = unique_name("rev");
        let out = d.mfactl(["phone", "set", "+447700900999", "--user", &other, "--force"]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}",
            mfad_tests::daemon::show(&out)
        );
        assert_eq!(
            audit_with(
                &d,
                &other,
                "failed",
                "verification code to +44*******999 not sent"
            )
            .len(),
            1,
            "{provider:?}: {:#?}",
            d.audit_rows()
        );
        let status = d.mfactl_json(&["status", "--user", &other]);
        assert_eq!(
            status["contacts"],
            serde_json::json!([]),
            "{provider:?}: {status}"
        );
    }
}

/// Twilio API keys: the request is signed with the key SID and its secret,
/// under the Account SID's URL.
#[test]
fn twilio_sends_with_an_api_key() {
    let (d, sms) = sms_daemon_with(
        Provider::Twilio,
        "sms",
        |s| s.use_api_key(API_KEY_SID),
        |_| {},
    );
    let user = unique_name("key");
    d.set_contact(&user, "phone", PHONE);
    d.expect_rc(
        d.login_with(SVC, &user, TEST_RHOST, &[], code_from(sms.inbox(), 0)),
        PAM_SUCCESS,
    );
    let got = sms.received();
    assert!(got[0].problems.is_empty(), "{:#?}", got[0]);
}

/// Text outside the GSM alphabet goes out as Unicode where the provider
/// needs to be told (Vonage `type=unicode`; MessageBird always gets
/// `datacoding=auto`, checked with every request); GSM text does not.
#[test]
fn non_gsm_text_is_sent_as_unicode() {
    for (message, unicode) in [(None, false), (Some("Ваш код {code} для {host}"), true)] {
        let (d, sms) = sms_daemon(Provider::Vonage, "sms", |c| {
            c.sms.as_mut().unwrap().message = message.map(str::to_owned);
        });
        let user = unique_name("uni");
        d.set_contact(&user, "phone", PHONE);
        d.expect_rc(
            d.login_with(SVC, &user, TEST_RHOST, &[], code_from(sms.inbox(), 0)),
            PAM_SUCCESS,
        );
        let got = sms.received();
        assert!(got[0].problems.is_empty(), "{:#?}", got[0]);
        assert_eq!(
            got[0].form.get("type").map(String::as_str),
            unicode.then_some("unicode"),
            "{message:?}"
        );
        if unicode {
            assert!(got[0].text.starts_with("Ваш код"), "{:?}", got[0].text);
        }
    }
}

#[test]
fn a_provider_that_fails_is_slow_or_down_ends_in_a_clear_denial_and_an_audit_row() {
    let (mut d, sms) = sms_daemon(Provider::Twilio, "sms", |c| {
        c.sms.as_mut().unwrap().timeout_ms = 1000;
    });
    let user = unique_name("pat");
    d.set_contact(&user, "phone", PHONE);
    let cases = [
        (Mode::Fail, "refused the message", "HTTP 500"),
        (
            Mode::Slow,
            "did not answer in time",
            "no answer within 1000 ms",
        ),
    ];
    for (mode, told, audited) in cases {
        sms.set_mode(mode);
        // A definite answer (not PAM_AUTHINFO_UNAVAIL): mfad gave up before
        // pam_mfa's 5 s reply timeout.
        let t = d.expect_rc(d.login(SVC, &user, TEST_RHOST, &[]), PAM_AUTH_ERR);
        assert!(t.prompts().is_empty(), "{t}");
        assert!(
            t.contains(&format!("No code could be sent to {MASKED}")),
            "{t}"
        );
        assert!(t.contains(told), "{mode:?}: {t}");
        let rows = audit_with(&d, &user, "deny", "delivery failed");
        assert!(
            rows.iter()
                .any(|r| r["reason"].as_str().unwrap().contains(audited)),
            "{mode:?}: {rows:#?}"
        );
    }
    // A verification code the provider refuses: mfactl says so, and the
    // audit row says the send failed (nothing was denied).
    sms.set_mode(Mode::Fail);
    let other = unique_name("pia");
    let out = d.mfactl(["phone", "set", "+447700900999", "--user", &other, "--force"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        mfad_tests::daemon::show(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("refused the message"),
        "{}",
        mfad_tests::daemon::show(&out)
    );
    let rows = audit_with(
        &d,
        &other,
        "failed",
        "verification code to +44*******999 not sent",
    );
    assert_eq!(rows.len(), 1, "{:#?}", d.audit_rows());
    // Down: nothing listens at the provider's address.
    d.config_mut().sms.as_mut().unwrap().base_url = format!("http://127.0.0.1:{}", free_port());
    d.restart();
    let t = d.expect_rc(d.login(SVC, &user, TEST_RHOST, &[]), PAM_AUTH_ERR);
    assert!(t.contains("cannot be reached"), "{t}");
    let rows = audit_with(&d, &user, "deny", "cannot reach it");
    assert_eq!(rows.len(), 1, "{:#?}", d.audit_rows());
    // Failed deliveries are not the user's failures: nothing is locked.
    let status = d.mfactl_json(&["status", "--user", &user]);
    assert_eq!(status["locks"], serde_json::json!([]), "{status}");
}

/// failmode=open steps aside only for a daemon that cannot be reached. A
/// provider slower than pam_mfa's `timeout=` is not that: mfad said it was
/// sending, so the login is denied, never waved through.
#[test]
fn a_slow_provider_never_passes_for_an_unreachable_daemon_under_failmode_open() {
    let (d, sms) = sms_daemon(Provider::Twilio, "sms", |c| {
        c.sms.as_mut().unwrap().timeout_ms = 3000;
    });
    d.write_pam_service("mfa-open", &["failmode=open", "timeout=1"]);
    let user = unique_name("oli");
    d.set_contact(&user, "phone", PHONE);
    sms.set_mode(Mode::Slow);
    let (rc, t) = d.login("mfa-open", &user, TEST_RHOST, &[]);
    assert_eq!(rc, PAM_AUTHINFO_UNAVAIL, "{t}\n{}", d.log_text());
    assert!(t.contains(&format!("Sending a code to {MASKED}")), "{t}");
    assert!(t.prompts().is_empty(), "{t}");
}

/// A user without a phone gets a decoy step: nothing is sent, and it takes
/// as long as real sends have taken of late, or the wait before the prompt
/// would tell who has a phone.
#[test]
fn a_decoy_send_takes_as_long_as_a_real_one() {
    const DELAY: Duration = Duration::from_millis(1200);
    let (d, sms) = sms_daemon(Provider::Twilio, "sms", |_| {});
    sms.set_delay(DELAY);
    // The time from the start of a login to its code prompt (which it
    // leaves unanswered), and the prompt.
    let to_prompt = |user: &str| {
        let seen = Arc::new(Mutex::new(None));
        let s = Arc::clone(&seen);
        let started = Instant::now();
        let responder: Responder = Box::new(move |prompt: &str| {
            *s.lock().unwrap() = Some((started.elapsed(), prompt.to_owned()));
            None
        });
        let (rc, t) = d.login_with(SVC, user, TEST_RHOST, &[], Some(responder));
        assert_eq!(rc, PAM_CONV_ERR, "{t}");
        let (took, prompt) = seen.lock().unwrap().take().expect("a prompt");
        assert!(prompt.starts_with("Code sent to +"), "{prompt}");
        took
    };
    // Two users without a phone: a second login of the first inside the
    // resend cooldown would keep its decoy code, sending nothing, as for a
    // real one.
    let (real, nobody, nobody2) = (unique_name("rae"), unique_name("dee"), unique_name("don"));
    d.set_contact(&real, "phone", PHONE);

    // Before any real send, a decoy waits a typical provider's time.
    let first = to_prompt(&nobody);
    assert!(first >= Duration::from_millis(250), "{first:?}");
    let took = to_prompt(&real);
    assert!(took >= DELAY, "{took:?}");
    let decoy = to_prompt(&nobody2);
    assert!(
        decoy >= DELAY / 2,
        "the decoy took {decoy:?}, a real send {took:?}"
    );
    assert_eq!(sms.received().len(), 1, "only the real user got a text");
}

#[test]
fn wrong_and_reused_codes_are_refused_and_wrong_tries_lock_the_channel() {
    let (d, sms) = sms_daemon(Provider::Vonage, "sms", |_| {});
    let user = unique_name("wes");
    d.set_contact(&user, "phone", PHONE);
    // A wrong code may be typed again in the same login, and the right
    // one then logs in.
    let inbox = sms.inbox();
    let wrong_then_right: Option<Responder> = Some(Box::new(move |prompt: &str| {
        let code = inbox.received().last().and_then(|s| code_in(&s.text))?;
        match prompt.contains("Try again") {
            true => Some(code),
            false => Some(wrong(&code)),
        }
    }));
    let t = d.expect_rc(
        d.login_with(SVC, &user, TEST_RHOST, &[], wrong_then_right),
        PAM_SUCCESS,
    );
    assert_eq!(t.prompts()[1], "Wrong code. Try again: ", "{t}");
    assert_eq!(audit_with(&d, &user, "deny", "wrong code").len(), 1);
    assert_eq!(sms.received().len(), 1);
    // The code is used up: the next login sends a new one, and the old
    // code does not open it.
    let used = sms.last_code();
    let t = d.expect_rc(d.login(SVC, &user, TEST_RHOST, &[&used]), PAM_CONV_ERR);
    assert_eq!(sms.received().len(), 2);
    assert_ne!(sms.last_code(), used);
    assert!(t.contains("Wrong code"), "{t}");
    // A second login within the cooldown keeps the code already sent.
    let fresh = sms.last_code();
    // attempts = 3: the third wrong answer for this code locks the source.
    let (rc, t) = d.login(SVC, &user, TEST_RHOST, &[&wrong(&fresh), &wrong(&fresh)]);
    assert_eq!(rc, PAM_MAXTRIES, "{t}\n{}", d.log_text());
    assert_eq!(sms.received().len(), 2, "the code sent moments ago stands");
    assert!(t.contains("locked"), "{t}");
    let t = d.expect_rc(d.login(SVC, &user, TEST_RHOST, &[&fresh]), PAM_MAXTRIES);
    assert!(
        t.prompts().is_empty(),
        "locked before anything is sent: {t}"
    );
    assert_eq!(sms.received().len(), 2, "no SMS to a locked channel");
}

/// The one test that waits: a code typed after it expired, in the same
/// login (validity 30 s, the shortest allowed).
#[test]
fn a_code_typed_after_it_expired_is_refused() {
    let (d, sms) = sms_daemon(Provider::Infobip, "sms", |c| {
        let code = &mut c.sms.as_mut().unwrap().code;
        code.validity_secs = 30;
        code.resend_cooldown_secs = 30;
    });
    let user = unique_name("eve");
    d.set_contact(&user, "phone", PHONE);
    let inbox = sms.inbox();
    let late: Option<Responder> = Some(Box::new(move |prompt: &str| {
        assert!(prompt.contains("valid 30 seconds"), "{prompt}");
        std::thread::sleep(std::time::Duration::from_secs(31));
        inbox.received().last().and_then(|s| code_in(&s.text))
    }));
    let t = d.expect_rc(
        d.login_with(SVC, &user, TEST_RHOST, &[], late),
        PAM_AUTH_ERR,
    );
    assert!(t.contains("That code has expired"), "{t}");
    assert_eq!(audit_with(&d, &user, "deny", "code expired").len(), 1);
}

#[test]
fn a_resend_inside_the_cooldown_is_refused_and_the_code_stands() {
    let (d, sms) = sms_daemon(Provider::MessageBird, "sms", |_| {});
    let user = unique_name("rae");
    d.set_contact(&user, "phone", PHONE);
    let t = d.expect_rc(
        d.login_with(SVC, &user, TEST_RHOST, &["r"], code_from(sms.inbox(), 0)),
        PAM_SUCCESS,
    );
    let prompts = t.prompts();
    assert_eq!(prompts.len(), 2, "{t}");
    // 30 s, or 29 when a second began between the send and the resend.
    assert!(
        ["30", "29"]
            .iter()
            .any(|s| prompts[1].starts_with(&format!("A new code can be sent in {s} s. "))),
        "{t}"
    );
    assert!(
        prompts[1].contains(&format!("Code sent to {MASKED}")),
        "{t}"
    );
    assert_eq!(sms.received().len(), 1);
    assert_eq!(audit_with(&d, &user, "refused", "resend refused").len(), 1);
}

#[test]
fn a_resend_voids_the_previous_code_and_the_hourly_cap_holds() {
    let (d, sms) = sms_daemon(Provider::MessageBird, "sms", |c| {
        let code = &mut c.sms.as_mut().unwrap().code;
        code.resend_cooldown_secs = 0;
        code.hourly_cap = 3;
    });
    let user = unique_name("ray");
    d.set_contact(&user, "phone", PHONE);
    // `r` sends a new code; the one before it no longer works.
    let t = d.expect_rc(
        d.login_with(SVC, &user, TEST_RHOST, &["r"], code_from(sms.inbox(), 1)),
        PAM_CONV_ERR,
    );
    assert_eq!(sms.received().len(), 2, "{t}");
    assert_eq!(t.prompts()[2], "Wrong code. Try again: ", "{t}");
    assert!(
        t.prompts()[1].starts_with(&format!("Code sent to {MASKED}")),
        "{t}"
    );
    assert_eq!(audit_with(&d, &user, "sent", "code resent to").len(), 1);
    // The third send reaches the cap of 3 an hour: `r` then sends nothing,
    // and the prompt says until when; the live code still works.
    let t = d.expect_rc(
        d.login_with(SVC, &user, TEST_RHOST, &["r"], code_from(sms.inbox(), 0)),
        PAM_SUCCESS,
    );
    assert!(
        t.prompts()[1].starts_with("No more codes can be sent before "),
        "{t}"
    );
    assert_eq!(sms.received().len(), 3);
    // With no live code left, the cap ends the login with the reason.
    let t = d.expect_rc(d.login(SVC, &user, TEST_RHOST, &[]), PAM_AUTH_ERR);
    assert!(t.contains("No more codes can be sent before"), "{t}");
    assert_eq!(sms.received().len(), 3);
    assert_eq!(audit_with(&d, &user, "refused", "send refused").len(), 2);
}

#[test]
fn a_chain_of_totp_then_sms_passes_through_libpam() {
    let (d, sms) = sms_daemon(Provider::Twilio, r#"{ chain = ["totp", "sms"] }"#, |_| {});
    let user = unique_name("cal");
    let secret = d.enroll_totp(&user);
    d.set_contact(&user, "phone", PHONE);
    let totp = d.totp_code(&secret, 0);
    let t = d.expect_rc(
        d.login_with(SVC, &user, TEST_RHOST, &[&totp], code_from(sms.inbox(), 0)),
        PAM_SUCCESS,
    );
    let prompts = t.prompts();
    assert_eq!(prompts.len(), 2, "{t}");
    assert_eq!(prompts[0], "Verification code: ");
    assert!(prompts[1].contains(MASKED), "{t}");
    // No SMS before the first step passed: a wrong TOTP code sends nothing.
    let wrong_totp = d.wrong_code(&secret);
    d.expect_rc(
        d.login(SVC, &user, TEST_RHOST, &[&wrong_totp]),
        PAM_AUTH_ERR,
    );
    assert_eq!(sms.received().len(), 1);
}

#[test]
fn the_provider_secret_comes_from_a_systemd_credential_and_must_be_private() {
    let (mut d, sms) = sms_daemon(Provider::Infobip, "sms", |c| {
        c.sms.as_mut().unwrap().systemd_credential = true;
    });
    let user = unique_name("cred");
    d.set_contact(&user, "phone", PHONE);
    d.expect_rc(
        d.login_with(SVC, &user, TEST_RHOST, &[], code_from(sms.inbox(), 0)),
        PAM_SUCCESS,
    );
    assert!(
        sms.received()[0].problems.is_empty(),
        "{:#?}",
        sms.received()
    );
    // A secret others can read stops the daemon, naming the key and the fix.
    d.stop();
    d.config_mut().sms.as_mut().unwrap().secret_mode = 0o644;
    let failure = d.start_expecting_failure();
    for want in ["sms.credentials_file", "credentials/sms", "chmod 0600"] {
        assert!(failure.stderr.contains(want), "{want}: {}", failure.stderr);
    }
    assert!(!failure.stderr.contains(SECRET), "{}", failure.stderr);
}
