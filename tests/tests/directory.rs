//! Contacts and groups from a real directory: a slapd started by the test
//! (tests/src/ldap.rs) with TLS from a test CA, the memberOf overlay, and
//! the shape of a POSIX tree or of Active Directory. Logins go through the
//! real libpam and pam_mfa.so; SMS codes through the fake provider.
//!
//! Not covered here: AD nested groups (the matching rule
//! 1.2.840.113556.1.4.1941 is AD's; slapd does not implement it): the
//! filter is tested in daemon/src/directory/filter.rs.
//!
//! Needs root, slapd, ldap-utils and openssl (scripts/deps test), and
//! `cargo build --workspace` first.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use mfad_tests::daemon::TEST_RHOST;
use mfad_tests::daemon::show;
use mfad_tests::ldap::{Shape, Slapd};
use mfad_tests::pam::*;
use mfad_tests::sms::{ACCOUNT_SID, Provider, SmsInbox, SmsServer, code_in};
use mfad_tests::{TestConfig, TestDaemon, TestPolicy};
use serde_json::Value;
use std::net::TcpListener;
use std::time::{Duration, Instant};

const SVC: &str = "mfa-ldap";
const E164: &str = "+447700900123";
const MASKED: &str = "+44*******123";

/// `%ldapops` needs an SMS code; everyone else is denied.
const POLICY: &str = "[[rule]]\nname = \"ops\"\nusers = [\"%ldapops\"]\nrequire = \"sms\"\n\
unenrolled = \"deny\"\n\n[[rule]]\nname = \"default\"\nall = true\nrequire = \"deny\"\n";

fn daemon(directory: String) -> (TestDaemon, SmsServer) {
    let sms = SmsServer::start(Provider::Twilio, ACCOUNT_SID, "s3cr3t", "+15550001111");
    let config = TestConfig {
        sms: Some(sms.config()),
        policy: TestPolicy::text(POLICY),
        directory: Some(directory),
        ..TestConfig::default()
    };
    (TestDaemon::serving(SVC, config), sms)
}

fn code_from(inbox: SmsInbox) -> Option<Responder> {
    Some(Box::new(move |prompt: &str| {
        if !prompt.contains("Enter it") {
            return None;
        }
        code_in(&inbox.received().last()?.text)
    }))
}

fn last_row(d: &TestDaemon, user: &str) -> Value {
    d.audit_rows()
        .into_iter()
        .find(|r| r["user"] == user)
        .unwrap_or_else(|| panic!("no audit row for {user}"))
}

/// `mfactl doctor --json` findings whose check starts with "directory".
fn doctor(d: &TestDaemon, user: &str) -> Vec<Value> {
    let out = d.mfactl([
        "doctor",
        "--json",
        "--service",
        "none-such",
        "--directory-user",
        user,
    ]);
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("doctor --json: {e}: {}", show(&out)));
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"].as_str().unwrap().starts_with("directory"))
        .cloned()
        .collect()
}

#[test]
fn directory_phone_and_group_log_in_then_the_cache_then_deny() {
    mfad_tests::require_root();
    let mut slapd = Slapd::start(Shape::Posix);
    slapd.add_user("alice", Some("+44 7700 900123"), Some("alice@example.org"));
    slapd.add_user("bob", Some("+44 7700 900456"), None);
    slapd.add_group("ldapops", &["alice"]);
    let (d, sms) = daemon(slapd.mfad_config("cache_ttl_secs = 3\ntimeout_ms = 1000"));

    // alice: in %ldapops through memberOf, her code goes to her LDAP mobile.
    let t = d.expect_rc(
        d.login_with(SVC, "alice", TEST_RHOST, &[], code_from(sms.inbox())),
        PAM_SUCCESS,
    );
    assert!(t.prompts()[0].contains(MASKED), "{t}");
    assert_eq!(sms.received().last().unwrap().to, E164);
    let row = last_row(&d, "alice");
    assert_eq!(
        (&row["decision"], &row["rule"]),
        (&"allow".into(), &"ops".into()),
        "{row}"
    );

    // bob has a phone but is not in the group: the catch-all denies him.
    d.expect_rc(d.login(SVC, "bob", TEST_RHOST, &[]), PAM_AUTH_ERR);
    assert_eq!(last_row(&d, "bob")["rule"], "default");
    assert_eq!(sms.received().len(), 1, "no code for bob");

    // status shows the directory's phone, masked, and says where it is from.
    let status = d.mfactl_json(&["status", "--user", "alice"]);
    let contacts = status["contacts"].as_array().unwrap();
    let phone = contacts.iter().find(|c| c["channel"] == "sms").unwrap();
    assert_eq!(
        (&phone["verified"], &phone["from_directory"]),
        (&MASKED.into(), &true.into())
    );
    let out = d.mfactl(["user", "show", "alice"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("phone: {MASKED} (from the directory)")),
        "{}",
        show(&out)
    );
    assert!(!text.contains(E164), "the number is masked: {text}");

    // policy check asks mfad about the group NSS does not know.
    let out = d.mfactl(["policy", "check", d.policy_path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("%ldapops: known to mfad's directory"),
        "{}",
        show(&out)
    );

    // doctor: TLS and the bind, then the sample lookup with what it found.
    let found = doctor(&d, "alice");
    assert_eq!(found.len(), 2, "{found:#?}");
    assert_eq!(found[0]["status"], "ok", "{found:#?}");
    assert!(
        found[0]["message"].as_str().unwrap().contains("ldaps"),
        "{found:#?}"
    );
    let lookup = found[1]["message"].as_str().unwrap();
    assert_eq!(found[1]["status"], "ok", "{found:#?}");
    assert!(
        lookup.contains("uid=alice,ou=people") && lookup.contains(MASKED),
        "{lookup}"
    );
    assert!(lookup.contains("ldapops"), "{lookup}");
    // A name with filter syntax is matched literally: no entry, no error.
    let found = doctor(&d, "al*");
    assert_eq!(found[1]["status"], "warn", "{found:#?}");
    assert!(
        found[1]["message"]
            .as_str()
            .unwrap()
            .contains("(uid=al\\2a)"),
        "{found:#?}"
    );

    // The directory goes away: within the TTL the cached entry still
    // serves (group and phone), without waiting on the dead server.
    // (Past the TTL first, so the login before the outage fetches a
    // fresh entry and the one after it is surely within the TTL.)
    std::thread::sleep(Duration::from_millis(3100));
    d.login_with(SVC, "alice", TEST_RHOST, &[], code_from(sms.inbox()));
    slapd.stop();
    let t = d.expect_rc(
        d.login_with(SVC, "alice", TEST_RHOST, &[], code_from(sms.inbox())),
        PAM_SUCCESS,
    );
    assert!(t.prompts()[0].contains(MASKED), "{t}");

    // Past the TTL: neither group nor phone is known, so the rule needing
    // them does not apply, and the catch-all denies.
    std::thread::sleep(Duration::from_millis(3200));
    let started = Instant::now();
    d.expect_rc(d.login(SVC, "alice", TEST_RHOST, &[]), PAM_AUTH_ERR);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(last_row(&d, "alice")["rule"], "default");
    assert!(
        d.log_text().contains("directory: cannot look up \"alice\""),
        "{}",
        d.log_text()
    );
    let found = doctor(&d, "alice");
    assert_eq!(found[0]["status"], "fail", "{found:#?}");
    // The bind password never reaches a log.
    assert!(!d.log_text().contains(mfad_tests::ldap::BIND_PW));
}

#[test]
fn a_silent_directory_never_holds_a_login_longer_than_timeout_ms() {
    mfad_tests::require_root();
    // Accepts connections (the kernel does) and never answers.
    let hole = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hole.local_addr().unwrap().port();
    let (d, _sms) = daemon(format!(
        "[directory]\nurl = \"ldap://127.0.0.1:{port}\"\nstarttls = false\n\
         base = \"dc=example,dc=org\"\ntimeout_ms = 500\n"
    ));
    let started = Instant::now();
    d.expect_rc(d.login(SVC, "alice", TEST_RHOST, &[]), PAM_AUTH_ERR);
    let took = started.elapsed();
    assert!(took < Duration::from_millis(2500), "{took:?}");
    assert_eq!(last_row(&d, "alice")["rule"], "default");
    assert!(
        d.log_text().contains("no answer within 500 ms"),
        "{}",
        d.log_text()
    );
    let found = doctor(&d, "alice");
    assert_eq!(found[0]["status"], "fail", "{found:#?}");
    assert!(
        found[0]["message"]
            .as_str()
            .unwrap()
            .contains("no answer within 500 ms")
    );
}

#[test]
fn active_directory_shape_over_starttls() {
    mfad_tests::require_root();
    let slapd = Slapd::start(Shape::Ad);
    slapd.add_user("carol", Some("+44 7700 900123"), Some("carol@corp.example"));
    slapd.add_group("ldapops", &["carol"]);
    // StartTLS on ldap://, sAMAccountName, and the directory as the
    // authority for contacts.
    let starttls = |ca: &std::path::Path| {
        slapd
            .mfad_config("local_contacts = \"refuse\"")
            .replace(
                &format!("ldaps://127.0.0.1:{}", slapd.ldaps_port),
                &format!("ldap://127.0.0.1:{}", slapd.ldap_port),
            )
            .replace(
                &slapd.ca_file().display().to_string(),
                &ca.display().to_string(),
            )
    };
    let (d, sms) = daemon(starttls(&slapd.ca_file()));
    let found = doctor(&d, "carol");
    assert_eq!(found[0]["status"], "ok", "{found:#?}");
    assert!(
        found[0]["message"].as_str().unwrap().contains("StartTLS"),
        "{found:#?}"
    );
    let lookup = found[1]["message"].as_str().unwrap();
    assert!(lookup.contains("(sAMAccountName=carol)"), "{lookup}");
    // slapd returns the DN in its own spelling of the attribute types.
    assert!(
        lookup.to_lowercase().contains("cn=carol,ou=users"),
        "{lookup}"
    );
    assert!(lookup.contains("c***@corp.example"), "{lookup}");
    d.expect_rc(
        d.login_with(SVC, "carol", TEST_RHOST, &[], code_from(sms.inbox())),
        PAM_SUCCESS,
    );
    assert_eq!(sms.received().last().unwrap().to, E164);

    // local_contacts = "refuse": mfactl may not set another number.
    let out = d.mfactl([
        "phone",
        "set",
        "+33 6 12 34 56 78",
        "--user",
        "carol",
        "--verified",
    ]);
    assert!(!out.status.success(), "{}", show(&out));
    assert!(
        show(&out).contains("change it in the directory"),
        "{}",
        show(&out)
    );

    // A CA that did not sign the server's certificate: TLS fails, and
    // doctor says so.
    let other = slapd.other_ca_file();
    let (d2, _sms2) = daemon(starttls(&other));
    let found = doctor(&d2, "carol");
    assert_eq!(found[0]["status"], "fail", "{found:#?}");
    let why = found[0]["message"].as_str().unwrap().to_lowercase();
    assert!(
        why.contains("certificate") || why.contains("unknownissuer"),
        "{why}"
    );
    d2.expect_rc(d2.login(SVC, "carol", TEST_RHOST, &[]), PAM_AUTH_ERR);
}

#[test]
fn sasl_external_binds_with_a_client_certificate() {
    mfad_tests::require_root();
    let slapd = Slapd::start(Shape::Posix);
    slapd.add_user("dave", Some("+44 7700 900123"), None);
    slapd.add_group("ldapops", &["dave"]);
    let (cert, key) = slapd.client_cert();
    // Only the bind account may read entries: the lookup finding dave
    // shows the certificate was taken as that account.
    let config = slapd
        .mfad_config("")
        .lines()
        .filter(|l| !l.starts_with("bind_dn") && !l.starts_with("password_file"))
        .collect::<Vec<_>>()
        .join("\n")
        + &format!(
            "\nclient_cert_file = {:?}\nclient_key_file = {:?}\n",
            cert.display().to_string(),
            key.display().to_string()
        );
    let (d, _sms) = daemon(config);
    let found = doctor(&d, "dave");
    assert_eq!(found[0]["status"], "ok", "{found:#?}");
    assert!(
        found[0]["message"]
            .as_str()
            .unwrap()
            .contains("SASL EXTERNAL"),
        "{found:#?}"
    );
    assert_eq!(found[1]["status"], "ok", "{found:#?}");
    assert!(
        found[1]["message"].as_str().unwrap().contains(MASKED),
        "{found:#?}"
    );
}
