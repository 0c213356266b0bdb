//! `mfactl import`: factors moved over from files made by the real
//! `google-authenticator` tool and from a pam_oath usersfile, then used to
//! log in through the real libpam; codes from oathtool.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use mfad_tests::daemon::{TEST_RHOST, show};
use mfad_tests::otp::oathtool_totp;
use mfad_tests::pam::*;
use mfad_tests::users::{TempUser, unique_name};
use mfad_tests::{TestConfig, TestDaemon, TestPolicy};
use std::path::Path;
use std::process::Command;

const SVC: &str = "mfa-test";

fn daemon() -> TestDaemon {
    let d = TestDaemon::with_config(TestConfig {
        policy: TestPolicy {
            default: r#"{ any = ["totp", "backup"] }"#.into(),
            ..TestPolicy::default()
        },
        ..TestConfig::default()
    });
    d.write_pam_service(SVC, &[]);
    d
}

/// Runs the real google-authenticator non-interactively, writing `file`.
fn google_authenticator(file: &Path, time_based: bool) {
    // Reuse is a TOTP setting only.
    let mode: &[&str] = if time_based { &["-t", "-d"] } else { &["-c"] };
    let out = Command::new("google-authenticator")
        .args(mode)
        .args(["-f", "-q", "-C", "-Q", "NONE", "-r", "3", "-R", "30"])
        .args(["-w", "3", "-e", "5", "-s"])
        .arg(file)
        .output()
        .expect("run google-authenticator (package libpam-google-authenticator)");
    assert!(out.status.success(), "{}", show(&out));
}

fn audit_reasons(d: &TestDaemon, user: &str) -> Vec<String> {
    d.audit_rows()
        .iter()
        .filter(|r| r["user"] == user)
        .map(|r| r["reason"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn google_authenticator_files_are_imported_with_their_scratch_codes() {
    let d = daemon();
    let homes = tempfile::tempdir().unwrap();
    let alice = TempUser::create_login(homes.path());
    let bob = TempUser::create_login(homes.path());
    let home = |u: &TempUser| {
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
        let line = passwd
            .lines()
            .find(|l| l.starts_with(&format!("{}:", u.name)))
            .unwrap()
            .to_owned();
        Path::new(line.split(':').nth(5).unwrap()).join(".google_authenticator")
    };
    let (alice_file, bob_file) = (home(&alice), home(&bob));
    google_authenticator(&alice_file, true);
    google_authenticator(&bob_file, false);
    let before = std::fs::read(&alice_file).unwrap();
    let text = String::from_utf8(before.clone()).unwrap();
    let secret = text.lines().next().unwrap().to_owned();
    let scratch: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('"'))
        .skip(1)
        .collect();
    assert_eq!(scratch.len(), 5, "{text}");
    let users = ["import", "google-authenticator", &alice.name, &bob.name];

    // A dry run lists, and changes nothing.
    let out = d.mfactl([&users[..], &["--dry-run"]].concat());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(&format!(
            "{}: would import: 6 digits, 30 s, 5 scratch codes",
            alice.name
        )),
        "{}",
        show(&out)
    );
    assert!(
        said.contains(&format!("{}: skipped: ", bob.name)),
        "{}",
        show(&out)
    );
    assert!(
        said.contains("note: WINDOW_SIZE 3 not kept"),
        "{}",
        show(&out)
    );
    let status = d.mfactl_json(&["status", "--user", &alice.name]);
    assert!(status["totp"].is_null(), "{status}");

    // The real import: Alice's file, not Bob's counter-based one.
    let out = d.mfactl(users);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "bob was skipped: {}", show(&out));
    assert!(
        said.contains(&format!("{}: imported: ", alice.name)),
        "{}",
        show(&out)
    );
    assert!(said.contains("HOTP"), "{}", show(&out));
    let status = d.mfactl_json(&["status", "--user", &alice.name]);
    assert_eq!(status["totp"]["period"], 30, "{status}");
    assert_eq!(status["backup_codes"], 5, "{status}");
    assert!(d.mfactl_json(&["status", "--user", &bob.name])["totp"].is_null());
    assert_eq!(
        std::fs::read(&alice_file).unwrap(),
        before,
        "the old file is untouched"
    );

    // Her authenticator's code and her old scratch codes work here.
    let code = oathtool_totp(&secret, "SHA1", 6, 30, 0);
    d.expect_rc(
        d.login(SVC, &alice.name, TEST_RHOST, &["1", &code]),
        PAM_SUCCESS,
    );
    d.expect_rc(
        d.login(SVC, &alice.name, TEST_RHOST, &["2", scratch[0]]),
        PAM_SUCCESS,
    );
    d.expect_rc(
        d.login(SVC, &alice.name, TEST_RHOST, &["2", scratch[0]]),
        PAM_AUTH_ERR,
    );

    // One audit row for the import; a second import is refused.
    let imported: Vec<String> = audit_reasons(&d, &alice.name)
        .into_iter()
        .filter(|r| r.starts_with("totp imported from google-authenticator"))
        .collect();
    assert_eq!(imported.len(), 1, "{imported:?}");
    let out = d.mfactl(["import", "google-authenticator", &alice.name]);
    assert!(!out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("refused: "),
        "{}",
        show(&out)
    );
    assert!(
        !secret.is_empty() && !d.log_text().contains(&secret),
        "the secret in mfad's log"
    );
}

#[test]
fn a_pam_oath_usersfile_is_imported_with_its_step_and_digits() {
    let d = daemon();
    let (carol, dave) = (unique_name("carol"), unique_name("dave"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.oath");
    // RFC 4226's test secret, "12345678901234567890", in hex.
    std::fs::write(
        &file,
        format!(
            "HOTP/T30/8 {carol} - 3132333435363738393031323334353637383930\n\
             HOTP {dave} - 3132333435363738393031323334353637383930 12\n"
        ),
    )
    .unwrap();
    let out = d.mfactl(["import", "oath", file.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(&format!("{carol}: imported: ")),
        "{}",
        show(&out)
    );
    assert!(
        said.contains(&format!("{dave}: skipped: ")),
        "{}",
        show(&out)
    );
    let status = d.mfactl_json(&["status", "--user", &carol]);
    assert_eq!(status["totp"]["digits"], 8, "{status}");
    let code = oathtool_totp("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", "SHA1", 8, 30, 0);
    d.expect_rc(d.login(SVC, &carol, TEST_RHOST, &["1", &code]), PAM_SUCCESS);
    assert!(
        audit_reasons(&d, &carol)
            .iter()
            .any(|r| r.starts_with("totp imported from oath ") && r.contains(":1 (8 digits, 30 s)")),
        "{:?}",
        audit_reasons(&d, &carol)
    );
}
