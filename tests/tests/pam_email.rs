//! Codes by email, contacts and the login notification end to end: mfad
//! sends through its real SMTP client (lettre) to a real SMTP server on
//! loopback (Debian's python3-aiosmtpd), and the test reads the code from
//! the delivered message.
//!
//! Needs root, python3-aiosmtpd and `cargo build --workspace` first.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use mfad_tests::daemon::{EmailConfig, TEST_RHOST, show};
use mfad_tests::pam::*;
use mfad_tests::sms::{Provider, SmsServer, code_in};
use mfad_tests::smtp::{Mailbox, SmtpServer, body};
use mfad_tests::users::{NOBODY_UID, NOGROUP_GID, unique_name};
use mfad_tests::{TestConfig, TestDaemon};

const SVC: &str = "mfa-test";
const ADDRESS: &str = "yvonne@example.com";
const MASKED: &str = "y***@example.com";

fn email_daemon(require: &str, tweak: impl FnOnce(&mut TestConfig)) -> (TestDaemon, SmtpServer) {
    let smtp = SmtpServer::start();
    let mut config = TestConfig {
        email: Some(EmailConfig::on_port(smtp.port())),
        ..TestConfig::requiring(require)
    };
    tweak(&mut config);
    (TestDaemon::serving(SVC, config), smtp)
}

/// Answers a "Code sent" prompt with the code of the newest email.
fn code_from(mail: Mailbox) -> Option<Responder> {
    Some(Box::new(move |prompt: &str| {
        prompt.contains("Enter it").then(|| mail.last_code())
    }))
}

fn header<'a>(message: &'a str, name: &str) -> &'a str {
    message
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} header in {message}"))
}

#[test]
fn a_user_with_only_a_phone_and_one_with_only_an_email_address_each_log_in() {
    let sms = SmsServer::start(
        Provider::Twilio,
        mfad_tests::sms::ACCOUNT_SID,
        "tok",
        "+15550001111",
    );
    let (d, smtp) = email_daemon(r#"{ any = ["totp", "sms", "email"] }"#, |c| {
        c.sms = Some(sms.config());
    });
    let phone_only = unique_name("phil");
    let mail_only = unique_name("yvonne");
    d.set_contact(&phone_only, "phone", "+447700900123");
    d.set_contact(&mail_only, "email", ADDRESS);

    // Everyone sees the rule's whole menu, whatever they have: the menu
    // does not tell who has a phone or an address.
    let t = d.expect_rc(
        d.login_with(SVC, &mail_only, TEST_RHOST, &["3"], code_from(smtp.inbox())),
        PAM_SUCCESS,
    );
    let menu = "Choose how to verify:\n  1) authenticator app code (TOTP)\n  2) code by text message (SMS)\n  3) code by email\nNumber: ";
    assert_eq!(
        t.prompts(),
        [
            menu.to_owned(),
            format!("Code sent to {MASKED}, valid 5 minutes. Enter it, or r for a new code: ")
        ]
    );
    let mail = smtp.wait_for(1);
    assert_eq!(mail.len(), 1);
    assert!(header(&mail[0], "To").contains(ADDRESS), "{}", mail[0]);
    assert!(header(&mail[0], "From").contains("mfad@test.example"));
    assert!(
        header(&mail[0], "Subject").ends_with("login code"),
        "{}",
        mail[0]
    );
    let text = body(&mail[0]);
    assert!(text.contains("valid for 5 minutes"), "{text}");

    let sms_code = {
        let inbox = sms.inbox();
        Some(Box::new(move |p: &str| {
            p.contains("Enter it")
                .then(|| inbox.received().last().and_then(|s| code_in(&s.text)))
                .flatten()
        }) as Responder)
    };
    let t = d.expect_rc(
        d.login_with(SVC, &phone_only, TEST_RHOST, &["2"], sms_code),
        PAM_SUCCESS,
    );
    assert_eq!(t.prompts()[0], menu, "{t}");
    assert!(t.prompts()[1].contains("+44*******123"), "{t}");
    assert_eq!(smtp.messages().len(), 1, "no email for the phone-only user");
    let rows = d.audit_rows();
    let sent = |user: &str, channel: &str| {
        rows.iter()
            .any(|r| r["user"] == user && r["channel"] == channel && r["decision"] == "sent")
    };
    assert!(
        sent(&mail_only, "email") && sent(&phone_only, "sms"),
        "{rows:#?}"
    );
    // The reply of the SMTP server is recorded.
    assert!(
        rows.iter()
            .any(|r| r["reason"].as_str().unwrap().contains("(250")),
        "{rows:#?}"
    );

    // With both, the same menu; where the code went is in the next prompt.
    let both = unique_name("bo");
    d.set_contact(&both, "phone", "+447700900123");
    d.set_contact(&both, "email", ADDRESS);
    let t = d.expect_rc(
        d.login_with(SVC, &both, TEST_RHOST, &["3"], code_from(smtp.inbox())),
        PAM_SUCCESS,
    );
    assert_eq!(t.prompts()[0], menu, "{t}");
    assert!(t.prompts()[1].contains("y***@example.com"), "{t}");

    // Someone with none of them: the same menu, and a code "sent" to a
    // masked address that does not tell there is none; it cannot succeed.
    let nobody = unique_name("nemo");
    let (rc, t) = d.login(SVC, &nobody, TEST_RHOST, &["3", "123456"]);
    assert_ne!(rc, PAM_SUCCESS, "{t}");
    assert_eq!(t.prompts()[0], menu, "{t}");
    assert!(
        t.prompts()[1].starts_with("Code sent to ") && t.prompts()[1].contains("***@test.example"),
        "{t}"
    );
    assert_eq!(smtp.messages().len(), 2, "nothing sent for the decoy");
}

#[test]
fn a_new_address_is_verified_with_the_code_sent_to_it_and_shown_masked() {
    let (mut d, smtp) = email_daemon("email", |_| {});
    let user = unique_name("vera");
    // No local account has this name: a warning and a refusal, unless --force.
    let out = d.mfactl(["email", "set", ADDRESS, "--user", &user]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("no local account is named")
            && err.contains("--force"),
        "{}",
        show(&out)
    );
    assert!(smtp.messages().is_empty());
    let out = d.mfactl(["email", "set", ADDRESS, "--user", &user, "--force"]);
    assert!(out.status.success(), "{}", show(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("Warning: no local account"), "{said}");
    // Verification has its own text: it is not a login.
    let mail = smtp.wait_for(1);
    assert!(
        header(&mail[0], "Subject").starts_with("Confirm your address for "),
        "{}",
        mail[0]
    );
    let text = body(&mail[0]);
    assert!(text.contains("mfactl email verify"), "{text}");
    assert!(
        !text.contains("try to log in") && !text.contains("Your login code"),
        "{text}"
    );
    assert!(
        said.contains(&format!("A code was sent to {MASKED}")),
        "{said}"
    );
    assert!(
        said.contains(&format!("mfactl email verify CODE --user {user}")),
        "{said}"
    );
    let code = smtp.last_code();
    // Pending: no login codes go there yet (the user looks unenrolled).
    let t = d.expect_rc(d.login(SVC, &user, TEST_RHOST, &[&code]), PAM_CONV_ERR);
    assert_eq!(t.prompts()[1], "Wrong code. Try again: ", "{t}");
    assert_eq!(smtp.messages().len(), 1);
    let status = String::from_utf8_lossy(&d.mfactl(["user", "show", &user]).stdout).into_owned();
    assert!(
        status.contains(&format!(
            "email: none verified; {MASKED} waits for its code"
        )),
        "{status}"
    );
    assert!(!status.contains(ADDRESS), "{status}");

    let out = d.mfactl(["email", "verify", "000-000", "--user", &user]);
    assert!(!out.status.success(), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    // No hint at an authenticator app: this code came by email.
    assert!(
        err.contains("does not match") && !err.contains("authenticator"),
        "{}",
        show(&out)
    );
    let out = d.mfactl_with_stdin(
        ["email", "verify", "-", "--user", &user],
        &format!("{code}\n"),
    );
    assert!(out.status.success(), "{}", show(&out));
    let out = d.mfactl(["email", "verify", &code, "--user", &user]);
    assert!(
        !out.status.success(),
        "a verification code works once: {}",
        show(&out)
    );
    let status =
        String::from_utf8_lossy(&d.mfactl(["status", "--user", &user]).stdout).into_owned();
    assert!(
        status.contains(&format!("email: {MASKED} (verified ")),
        "{status}"
    );

    d.expect_rc(
        d.login_with(SVC, &user, TEST_RHOST, &[], code_from(smtp.inbox())),
        PAM_SUCCESS,
    );
    // Stored sealed: the address is nowhere in the database files.
    for file in ["state/mfad.db", "state/mfad.db-wal"] {
        let bytes = std::fs::read(d.dir().join(file)).unwrap_or_default();
        assert!(
            !bytes
                .windows(ADDRESS.len())
                .any(|w| w == ADDRESS.as_bytes()),
            "{file}"
        );
    }
    // Sends to one user keep the cooldown, whatever their purpose.
    let out = d.mfactl([
        "email",
        "set",
        "other@example.com",
        "--user",
        &user,
        "--force",
    ]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("A new code can be sent in"),
        "{}",
        show(&out)
    );
    // A verification code expires too.
    d.config_mut().clock_offset_secs = 60;
    d.restart();
    let out = d.mfactl([
        "email",
        "set",
        "other@example.com",
        "--user",
        &user,
        "--force",
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let late = smtp.last_code();
    d.config_mut().clock_offset_secs = 60 + 301;
    d.restart();
    let out = d.mfactl(["email", "verify", &late, "--user", &user]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("expired"),
        "{}",
        show(&out)
    );
    // Clearing it stops the channel.
    let out = d.mfactl(["email", "clear", "--user", &user]);
    assert!(out.status.success(), "{}", show(&out));
    // A wrong code may be typed again; the user gives up instead.
    let t = d.expect_rc(d.login(SVC, &user, TEST_RHOST, &["1"]), PAM_CONV_ERR);
    assert!(t.prompts()[1].starts_with("Wrong code. Try again"), "{t}");
    let reasons: Vec<String> = d
        .audit_rows()
        .iter()
        .filter(|r| r["user"] == user.as_str() && r["channel"] == "admin")
        .map(|r| r["reason"].as_str().unwrap().to_owned())
        .collect();
    for want in [
        "pending verification",
        "verified",
        "verify refused: wrong code",
        "cleared",
    ] {
        assert!(
            reasons.iter().any(|r| r.contains(want)),
            "{want}: {reasons:#?}"
        );
    }
}

#[test]
fn users_set_their_own_address_but_not_anyone_elses() {
    let (d, smtp) = email_daemon("email", |_| {});
    let out = d.mfactl_as(NOBODY_UID, NOGROUP_GID, ["email", "set", "n@example.com"]);
    assert!(out.status.success(), "{}", show(&out));
    let code = smtp.last_code();
    let out = d.mfactl_as(NOBODY_UID, NOGROUP_GID, ["email", "verify", &code]);
    assert!(out.status.success(), "{}", show(&out));
    for args in [
        &["email", "set", "n@example.com", "--user", "root"][..],
        &["email", "set", "n@example.com", "--verified"],
        &["email", "clear", "--user", "root"],
    ] {
        let out = d.mfactl_as(NOBODY_UID, NOGROUP_GID, args);
        assert!(!out.status.success(), "{args:?}: {}", show(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("mfactl:"),
            "{}",
            show(&out)
        );
    }
    let out = d.mfactl(["email", "set", "not an address", "--user", "x"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not an email address"),
        "{}",
        show(&out)
    );
    let out = d.mfactl(["phone", "set", "+447700900123", "--user", "x"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no [sms] section"),
        "{}",
        show(&out)
    );
}

#[test]
fn a_successful_login_is_notified_by_email_after_the_verdict() {
    let (mut d, smtp) = email_daemon("email", |c| c.login_notification = true);
    let user = unique_name("nina");
    d.set_contact(&user, "email", ADDRESS);
    d.expect_rc(
        d.login_with(SVC, &user, TEST_RHOST, &[], code_from(smtp.inbox())),
        PAM_SUCCESS,
    );
    let mail = smtp.wait_for(2);
    let notice = &mail[1];
    assert!(
        header(notice, "Subject").starts_with("New login to "),
        "{notice}"
    );
    let text = body(notice);
    for want in [user.as_str(), TEST_RHOST, SVC, "location: unknown", "time:"] {
        assert!(text.contains(want), "{want:?} missing from {text}");
    }
    // Every field line keeps its indentation, the first one too.
    for field in ["time:", "from:", "service:", "location:"] {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("  {field}"))),
            "{field:?} not indented in {text}"
        );
    }
    let code = code_in(&body(&mail[0])).unwrap();
    assert!(!text.contains(&code), "no code in a notice: {text}");
    // A failed login is not notified: after a failed and a successful
    // login, the mail holds two codes and one notice more.
    // A wrong code may be typed again; the user gives up instead.
    let t = d.expect_rc(d.login(SVC, &user, TEST_RHOST, &["1"]), PAM_CONV_ERR);
    assert!(t.prompts()[1].starts_with("Wrong code. Try again"), "{t}");
    d.config_mut().clock_offset_secs = 60; // past the cooldown: a new code
    d.restart();
    d.expect_rc(
        d.login_with(SVC, &user, TEST_RHOST, &[], code_from(smtp.inbox())),
        PAM_SUCCESS,
    );
    let subjects: Vec<String> = smtp
        .wait_for(5)
        .iter()
        .map(|m| header(m, "Subject").to_owned())
        .collect();
    let notices = subjects
        .iter()
        .filter(|s| s.starts_with("New login"))
        .count();
    assert_eq!((subjects.len(), notices), (5, 2), "{subjects:#?}");
    assert!(subjects[4].starts_with("New login"), "{subjects:#?}");
    let rows = d.audit_rows();
    assert!(
        rows.iter().any(|r| r["reason"]
            .as_str()
            .unwrap()
            .starts_with("login notification sent to y***@example.com")),
        "{rows:#?}"
    );
}
