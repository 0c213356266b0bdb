//! No SMS pumping: the global caps on what mfad sends, end to end. Real
//! libpam and pam_mfa.so, the real daemon and its HTTP client, a local
//! server playing Vonage. A capped send reaches no provider, the user is
//! told why and until when, the audit row says so, and the admin is warned
//! once per cap and period, not once per refusal.
//!
//! Needs root and `cargo build --workspace` first.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use mfad_tests::daemon::{EmailConfig, TEST_RHOST, show};
use mfad_tests::pam::*;
use mfad_tests::sms::{ACCOUNT_SID, Provider, SmsServer, code_in};
use mfad_tests::smtp::SmtpServer;
use mfad_tests::users::{NOBODY_UID, NOGROUP_GID, unique_name};
use mfad_tests::{TestConfig, TestDaemon};
use serde_json::Value;

const SVC: &str = "mfa-test";
const REFUSED: &str = "this server has sent as many text messages as it may for now";

/// A daemon requiring SMS, sending to a fake Vonage, with these lines in
/// `[sms.cap]`.
fn capped(caps: &str, tweak: impl FnOnce(&mut TestConfig)) -> (TestDaemon, SmsServer) {
    let sms = SmsServer::start(Provider::Vonage, ACCOUNT_SID, "s3cr3t", "+15550001111");
    let mut sms_config = sms.config();
    sms_config.extra = format!("[sms.cap]\n{caps}");
    let mut config = TestConfig {
        sms: Some(sms_config),
        ..TestConfig::requiring("sms")
    };
    tweak(&mut config);
    (TestDaemon::serving(SVC, config), sms)
}

/// A login of a new user whose phone is `phone`, answering the code if
/// one was sent: whether a code was sent, the user, the transcript.
fn login(d: &TestDaemon, sms: &SmsServer, phone: &str) -> (bool, String, Transcript) {
    let user = unique_name("pump");
    d.set_contact(&user, "phone", phone);
    let before = sms.received().len();
    let inbox = sms.inbox();
    let answer: Option<Responder> = Some(Box::new(move |prompt: &str| {
        prompt.contains("Enter it").then(|| {
            let got = inbox.received();
            code_in(&got.last().unwrap().text).unwrap()
        })
    }));
    let (rc, t) = d.login_with(SVC, &user, TEST_RHOST, &[], answer);
    let sent = sms.received().len() > before;
    assert_eq!(
        rc,
        if sent { PAM_SUCCESS } else { PAM_AUTH_ERR },
        "{t}\n{}",
        d.log_text()
    );
    (sent, user, t)
}

fn rows(d: &TestDaemon, user: &str, decision: &str, reason: &str) -> Vec<Value> {
    d.audit_rows()
        .into_iter()
        .filter(|r| {
            r["user"] == user
                && r["decision"] == decision
                && r["reason"].as_str().unwrap_or_default().contains(reason)
        })
        .collect()
}

fn warnings(d: &TestDaemon) -> usize {
    d.log_text().matches("sms cap reached").count()
}

#[test]
fn forty_logins_under_a_cap_of_five_an_hour_send_five_texts() {
    let (mut d, sms) = capped("hourly = 5\n", |_| {});
    for i in 0..40 {
        let (sent, user, t) = login(&d, &sms, &format!("+4477009001{i:02}"));
        assert_eq!(sent, i < 5, "login {i}: {t}");
        if i >= 5 {
            assert!(t.prompts().is_empty(), "login {i}: {t}");
            assert!(t.contains(REFUSED) && t.contains("Try again after"), "{t}");
            let denied = rows(
                &d,
                &user,
                "deny",
                "held back by mfad: the cap of 5 text messages an hour in all",
            );
            assert_eq!(denied.len(), 1, "login {i}: {:#?}", d.audit_rows());
        }
    }
    assert_eq!(
        sms.received().len(),
        5,
        "no capped SMS reaches the provider"
    );
    assert_eq!(
        warnings(&d),
        1,
        "one warning, not one per refusal:\n{}",
        d.log_text()
    );
    // The count survives a restart.
    d.restart();
    let (sent, _, t) = login(&d, &sms, "+447700900199");
    assert!(!sent && t.contains(REFUSED), "{t}");
    assert_eq!(sms.received().len(), 5);
}

#[test]
fn each_country_calling_code_has_its_own_cap() {
    let (d, sms) = capped(
        "hourly = 20\nhourly_per_prefix = 2\nprefix = { \"+1\" = 3 }\n",
        |_| {},
    );
    let sent: Vec<bool> = (0..3)
        .map(|i| login(&d, &sms, &format!("+4477009003{i:02}")).0)
        .collect();
    assert_eq!(sent, [true, true, false]);
    let sent: Vec<bool> = (0..4)
        .map(|i| login(&d, &sms, &format!("+1555010{i:04}")).0)
        .collect();
    assert_eq!(sent, [true, true, true, false]);
    // Another country is not held back by those two.
    let (sent, _, t) = login(&d, &sms, "+33612345678");
    assert!(sent, "{t}");
    let (_, user, _) = login(&d, &sms, "+447700900399");
    assert_eq!(
        rows(&d, &user, "deny", "an hour to +44").len(),
        1,
        "{:#?}",
        d.audit_rows()
    );
    assert_eq!(sms.received().len(), 6);
    assert_eq!(warnings(&d), 2, "one per capped prefix:\n{}", d.log_text());
}

/// Verification codes go to numbers a user typed: each counts toward the
/// caps, and one uid may have only so many sent a day. An admin's request
/// is not held by the per-uid cap.
#[test]
fn verifications_a_user_asks_for_are_capped_per_uid_per_day() {
    let (d, sms) = capped("verify_daily_per_uid = 2\n", |c| {
        c.sms.as_mut().unwrap().code.resend_cooldown_secs = 0;
    });
    for i in 0..2 {
        let out = d.mfactl_as(
            NOBODY_UID,
            NOGROUP_GID,
            ["phone", "set", &format!("+4477009004{i:02}")],
        );
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    }
    assert_eq!(sms.received().len(), 2);
    let out = d.mfactl_as(NOBODY_UID, NOGROUP_GID, ["phone", "set", "+447700900499"]);
    assert_ne!(out.status.code(), Some(0), "{}", show(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("no more verification codes can be sent at your request before"),
        "{}",
        show(&out)
    );
    assert_eq!(sms.received().len(), 2, "the third reached no provider");
    assert_eq!(
        rows(&d, "nobody", "failed", "verify_daily_per_uid").len(),
        1,
        "{:#?}",
        d.audit_rows()
    );
    // The refused number did not replace the pending one.
    let status = d.mfactl_json(&["status", "--user", "nobody"]);
    assert_eq!(
        status["contacts"][0]["pending"], "+44*******401",
        "{status}"
    );
    // Root is not capped per uid; the send counts toward the global caps.
    let out = d.mfactl(["phone", "set", "+447700900498", "--user", "nobody"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(sms.received().len(), 3);
}

/// Email has caps of its own, counted per domain.
#[test]
fn email_has_caps_of_its_own() {
    let smtp = SmtpServer::start();
    let mut email = EmailConfig::on_port(smtp.port());
    email.extra = "[email.cap]\nhourly = 10\nprefix = { \"example.com\" = 2 }\n".into();
    let d = TestDaemon::serving(
        SVC,
        TestConfig {
            email: Some(email),
            ..TestConfig::requiring("email")
        },
    );
    for (address, sent) in [
        ("a@example.com", true),
        ("b@Example.com", true),
        ("c@example.com", false),
        ("d@example.org", true),
    ] {
        let user = unique_name("mail");
        let out = d.mfactl(["email", "set", address, "--user", &user, "--force"]);
        assert_eq!(out.status.success(), sent, "{address}: {}", show(&out));
        if !sent {
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("as many emails as it may"),
                "{}",
                show(&out)
            );
        }
    }
    assert_eq!(smtp.messages().len(), 3);
}
