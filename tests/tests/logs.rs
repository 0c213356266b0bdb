//! What the real daemon writes to syslog (a receiver of the test's own,
//! through `syslog_socket`), to stderr and to its database: audit lines with
//! the authpriv facility, never a secret or a typed code (security rule 9),
//! the TOTP secret only encrypted, and no line a client can forge.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use mfad_protocol::{AuthStart, Client, ErrorCode, Request, Response, SecretString};
use mfad_tests::daemon::{SyslogReceiver, TEST_RHOST, show};
use mfad_tests::pam::*;
use mfad_tests::users::unique_name;
use mfad_tests::{TestConfig, TestDaemon};
use std::time::Duration;

const SVC: &str = "mfa-test";
/// RFC 3164 PRI of authpriv.info: facility 10 * 8 + severity 6.
const AUTHPRIV_INFO: &str = "<86>";

/// A daemon logging to syslog at `<dir>/syslog.sock`, where the returned
/// receiver listens (bound before the daemon starts).
fn daemon_with_syslog() -> (TestDaemon, SyslogReceiver) {
    let mut d = TestDaemon::prepare(TestConfig {
        syslog: true,
        syslog_socket: Some("syslog.sock".into()),
        ..TestConfig::default()
    });
    let rx = SyslogReceiver::bind(&d.dir().join("syslog.sock"));
    d.launch();
    d.write_pam_service(SVC, &[]);
    assert!(
        rx.wait_for(Duration::from_secs(5), |m| m.contains("listening on")),
        "no start-up message reached the syslog receiver: {:?}\n{}",
        rx.messages(),
        d.log_text()
    );
    (d, rx)
}

/// The message of an RFC 3164 datagram, after `<PRI>Mmm dd hh:mm:ss mfad[pid]: `.
fn body(datagram: &str) -> &str {
    datagram.split_once("]: ").map_or(datagram, |(_, m)| m)
}

fn base32_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut n, mut out) = (0u64, 0u32, Vec::new());
    for c in s.trim_end_matches('=').bytes() {
        let v = ALPHABET
            .iter()
            .position(|&a| a == c.to_ascii_uppercase())
            .unwrap_or_else(|| panic!("{s:?} is not base32"));
        bits = (bits << 5) | v as u64;
        n += 5;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn audit_lines_reach_syslog_as_authpriv_and_no_secret_is_logged_or_stored_in_clear() {
    let (mut d, rx) = daemon_with_syslog();
    let user = unique_name("lena");
    let e = d.enroll_totp_details(&user);
    let right = d.totp_code(&e.secret, 0);
    let wrong = d.wrong_code(&e.secret);
    d.expect_rc(d.login(SVC, &user, TEST_RHOST, &[&right]), PAM_SUCCESS);
    d.expect_rc(d.login(SVC, &user, TEST_RHOST, &[&wrong]), PAM_AUTH_ERR);
    let t = d.expect_rc(d.login(SVC, &user, TEST_RHOST, &[&right]), PAM_AUTH_ERR);
    assert!(t.contains("already used"), "the replay: {t}");

    let quoted = format!("user={user:?}");
    let audit_of = |m: &str, decision: &str| {
        body(m).starts_with("audit ") && m.contains(&quoted) && m.contains(decision)
    };
    assert!(
        rx.wait_for(Duration::from_secs(5), |m| audit_of(m, "decision=allow"))
            && rx.wait_for(Duration::from_secs(5), |m| {
                m.contains("already used") && audit_of(m, "decision=deny")
            }),
        "audit lines missing from syslog: {:#?}",
        rx.messages()
    );
    let messages = rx.messages();
    let audit: Vec<&String> = messages.iter().filter(|m| m.contains(&quoted)).collect();
    let count = |decision: &str| audit.iter().filter(|m| audit_of(m, decision)).count();
    assert_eq!(count("decision=allow"), 1, "{audit:#?}");
    assert_eq!(count("decision=deny"), 2, "{audit:#?}");
    for m in &audit {
        assert!(
            m.starts_with(AUTHPRIV_INFO) && m.contains(" mfad["),
            "an audit line not sent as authpriv.info by mfad: {m:?}"
        );
    }
    for m in &messages {
        let pri: u32 = m
            .strip_prefix('<')
            .and_then(|r| r.split_once('>'))
            .and_then(|(p, _)| p.parse().ok())
            .unwrap_or_else(|| panic!("no RFC 3164 PRI in {m:?}"));
        assert_eq!(pri / 8, 10, "not the authpriv facility: {m:?}");
    }

    // What must never appear: the secret (base32 as shown, lower case, the
    // raw bytes and their hex), the URI, and every code typed.
    let raw = base32_decode(&e.secret);
    assert!(raw.len() >= 20, "a TOTP seed of at least 160 bits");
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let texts = [
        e.secret.clone(),
        e.secret.to_lowercase(),
        hex.clone(),
        hex.to_uppercase(),
        e.uri.clone(),
        "otpauth://".to_owned(),
    ];
    let codes = [e.confirm_code.clone(), right.clone(), wrong.clone()];
    let check = |what: &str, bytes: &[u8], with_codes: bool| {
        assert!(!contains(bytes, &raw), "{what} holds the raw TOTP secret");
        for needle in &texts {
            assert!(
                !contains(bytes, needle.as_bytes()),
                "{what} holds {needle:?}"
            );
        }
        if with_codes {
            for code in &codes {
                assert!(
                    !contains(bytes, code.as_bytes()),
                    "{what} holds the code {code}"
                );
            }
        }
    };
    // Raw bytes, as sent: a lossy conversion could hide the raw secret.
    for datagram in rx.datagrams() {
        check("a syslog datagram", &datagram, false);
    }
    // The codes in the message, past the pid of the header.
    for m in &messages {
        check("a syslog message", body(m).as_bytes(), true);
    }
    let stderr = std::fs::read(d.dir().join("mfad.stderr")).unwrap();
    assert!(
        contains(&stderr, quoted.as_bytes()),
        "the audit lines are on stderr too:\n{}",
        d.log_text()
    );
    check("mfad's stderr", &stderr, true);
    let stdout = std::fs::read(d.dir().join("mfad.stdout")).unwrap_or_default();
    check("mfad's stdout", &stdout, true);

    // The database, raw, while the daemon runs (WAL included) and after it
    // stopped (checkpointed).
    let db_files = |d: &TestDaemon| -> Vec<u8> {
        ["mfad.db", "mfad.db-wal"]
            .iter()
            .filter_map(|f| std::fs::read(d.dir().join("state").join(f)).ok())
            .flatten()
            .collect()
    };
    let live = db_files(&d);
    assert!(
        contains(&live, user.as_bytes()),
        "the user's rows are not in the files read"
    );
    check("the database files (running)", &live, true);
    d.stop();
    let stopped = db_files(&d);
    assert!(contains(&stopped, user.as_bytes()));
    check("the database files (stopped)", &stopped, true);
}

#[test]
fn a_user_name_with_a_newline_cannot_forge_a_log_line() {
    let (d, rx) = daemon_with_syslog();
    let victim = unique_name("forged");
    // A record as a line reader of stderr (journald) or of a syslog file
    // would take it; and one without the "mfad: info:" prefix, since user
    // names may not contain ':' and that alone must not be what stops it.
    let record = format!(
        "audit user=\"{victim}\" service=\"{SVC}\" rhost=\"-\" tty=\"-\" \
         channel=totp decision=allow reason=\"ok\" peer_uid=0"
    );
    let texts = [
        format!("eve\nmfad: info: {record}"),
        format!("eve\n{record}"),
        format!("eve\r{record}"),
        format!("eve\r\n{record}"),
    ];
    let start = AuthStart {
        user: "eve".into(),
        service: SVC.into(),
        rhost: Some(TEST_RHOST.into()),
        tty: Some("ssh".into()),
        ruser: None,
        ssh_auth_info: None,
        reason: None,
    };
    // The forged text in every field that reaches an audit line.
    let mut attempts = Vec::new();
    for text in texts {
        attempts.push(AuthStart {
            user: text.clone(),
            ..start.clone()
        });
        attempts.push(AuthStart {
            service: text.clone(),
            ..start.clone()
        });
        attempts.push(AuthStart {
            rhost: Some(text.clone()),
            ..start.clone()
        });
        attempts.push(AuthStart {
            tty: Some(text),
            ..start.clone()
        });
    }
    for attempt in attempts {
        let mut client = d.client();
        match client.call(&Request::AuthStart(attempt.clone())).unwrap() {
            Response::Error {
                code: ErrorCode::BadRequest,
                ..
            } => {}
            // Accepting it is fine only if what it logs is escaped (below).
            Response::Prompt { .. } => {
                let answer = Request::Answer {
                    text: SecretString::new("000000"),
                };
                let verdict = client.call(&answer).unwrap();
                assert!(matches!(verdict, Response::Verdict { .. }), "{verdict:?}");
            }
            other => panic!("auth_start {attempt:?}: {other:?}"),
        }
    }
    // The admin path names users too.
    let resp = Client::connect(&d.client_options())
        .unwrap()
        .call(&Request::UserUnlock {
            user: format!("eve\n{record}"),
        })
        .unwrap();
    assert!(
        matches!(
            resp,
            Response::Error {
                code: ErrorCode::BadRequest,
                ..
            } | Response::Done { .. }
        ),
        "{resp:?}"
    );

    // A last, legitimate audit line: once it is in, everything before is.
    let sentinel = unique_name("sentinel");
    let out = d.mfactl(["user", "unlock", &sentinel]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        rx.wait_for(Duration::from_secs(5), |m| m.contains(&sentinel)),
        "{:#?}",
        rx.messages()
    );

    let planted = format!("audit user=\"{victim}\"");
    for datagram in rx.datagrams() {
        let text = String::from_utf8_lossy(&datagram);
        assert!(
            !datagram.contains(&b'\n') && !datagram.contains(&b'\r'),
            "a raw line break inside a syslog datagram: {text:?}"
        );
        assert!(!text.contains(&planted), "forged syslog record: {text:?}");
    }
    let stderr = d.log_text();
    for line in stderr.split(['\n', '\r']) {
        assert!(
            !line.contains(&planted),
            "forged stderr line {line:?} in\n{stderr}"
        );
    }
    assert!(stderr.contains(&sentinel), "{stderr}");
}
