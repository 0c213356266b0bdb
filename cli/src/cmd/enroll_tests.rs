use super::*;
use crate::cmd::testing::{OFFER_URI as URI, done, error, mfactl, offer};
use mfad_protocol::ErrorCode;
use serde_json::{Value, json};

fn confirm(code: &str) -> Value {
    json!({"type": "enroll_totp_confirm", "user": null, "code": code})
}

#[test]
fn print_uri_prints_only_the_uri() {
    let out = mfactl(
        &["enroll", "totp", "--print-uri", "--replace"],
        vec![offer()],
        "",
        false,
    );
    assert!(out.result.is_ok());
    assert_eq!(out.stdout, format!("{URI}\n"));
    assert_eq!(
        out.requests,
        vec![json!({"type": "enroll_totp_begin", "user": null, "replace": true})]
    );
}

#[test]
fn print_uri_json_is_the_offer() {
    let args = ["--json", "enroll", "totp", "--print-uri", "--user", "alice"];
    let out = mfactl(&args, vec![offer()], "", false);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["uri"], URI);
    assert_eq!(v["secret_base32"], "JBSWY3DPEHPK3PXP");
    assert_eq!(
        (v["user"].as_str(), v["issuer"].as_str()),
        (Some("alice"), Some("mfad"))
    );
    assert_eq!(
        (v["digits"].as_u64(), v["period"].as_u64()),
        (Some(6), Some(30))
    );
    assert_eq!(v["expires"], 1_795_460_645);
    assert_eq!(out.requests[0]["user"], "alice");
}

#[test]
fn interactive_enrollment_shows_qr_and_confirms() {
    let replies = vec![offer(), done("")];
    let out = mfactl(&["enroll", "totp"], replies, "123 456\n", true);
    assert!(out.result.is_ok());
    assert!(out.stdout.contains('█'), "no QR code:\n{}", out.stdout);
    assert!(out.stdout.contains(&format!("  URI:       {URI}\n")));
    assert!(out.stdout.contains("  secret:    JBSWY3DPEHPK3PXP\n"));
    assert!(
        out.stdout
            .contains("  algorithm: SHA1, 6 digits, 30 s period\n")
    );
    assert!(out.stdout.contains("discarded at 2026-11-23 19:04:05Z"));
    assert!(out.stdout.ends_with("TOTP is now active for alice.\n"));
    assert_eq!(out.stderr, PROMPT);
    assert_eq!(out.requests[1], confirm("123456"));
    assert!(!out.stdout.contains("123") && !out.stderr.contains("123"));
}

#[test]
fn no_qr_leaves_out_the_drawing_only() {
    let out = mfactl(
        &["enroll", "totp", "--no-qr"],
        vec![offer(), done("")],
        "1\n",
        true,
    );
    assert!(!out.stdout.contains('█') && !out.stdout.contains('▀'));
    assert!(
        out.stdout
            .starts_with("Add this account to your authenticator app:\n")
    );
}

#[test]
fn wrong_codes_get_three_tries() {
    let wrong = || error(ErrorCode::WrongCode);
    let replies = vec![offer(), wrong(), wrong(), done("Backup codes: 1 2 3")];
    let out = mfactl(
        &["enroll", "totp", "--no-qr"],
        replies,
        "111111\n\n222222\n333333\n",
        true,
    );
    assert!(out.result.is_ok());
    assert_eq!(out.requests.len(), 4, "the blank line is not sent");
    assert_eq!(out.requests[3], confirm("333333"));
    assert!(
        out.stderr
            .contains("That code was wrong (2 of 3 tries left)")
    );
    assert!(out.stderr.contains("(1 of 3 tries left)"));
    assert!(
        out.stdout
            .ends_with("active for alice.\nBackup codes: 1 2 3\n")
    );
}

#[test]
fn third_wrong_code_keeps_the_enrollment_pending() {
    let wrong = || error(ErrorCode::WrongCode);
    let replies = vec![offer(), wrong(), wrong(), wrong()];
    let args = ["enroll", "totp", "--no-qr", "--user", "alice"];
    let out = mfactl(&args, replies, "1\n2\n3\n4\n", true);
    let err = out.result.unwrap_err();
    assert!(
        matches!(err, CliError::WrongCodes { tries: 3, .. }),
        "{err:?}"
    );
    let hint = err.hint().unwrap();
    assert!(hint.contains("kept until 2026-11-23 19:04:05Z"), "{hint}");
    assert!(
        hint.contains("mfactl enroll totp --user alice --confirm-code -"),
        "{hint}"
    );
}

#[test]
fn end_of_input_says_how_to_finish() {
    let out = mfactl(&["enroll", "totp", "--no-qr"], vec![offer()], "", false);
    let err = out.result.unwrap_err();
    assert!(matches!(err, CliError::NoCode { .. }));
    assert!(err.hint().unwrap().contains("--confirm-code"));
    assert_eq!(
        out.stderr,
        format!("{PROMPT}\n"),
        "a piped answer ends the line"
    );
}

#[test]
fn other_errors_stop_at_once() {
    let replies = vec![offer(), error(ErrorCode::NoPendingEnrollment)];
    let out = mfactl(&["enroll", "totp", "--no-qr"], replies, "1\n2\n", true);
    assert!(matches!(
        out.result,
        Err(CliError::Daemon {
            code: ErrorCode::NoPendingEnrollment,
            ..
        })
    ));
    let out = mfactl(
        &["enroll", "totp"],
        vec![error(ErrorCode::AlreadyEnrolled)],
        "",
        true,
    );
    assert!(
        out.result
            .unwrap_err()
            .hint()
            .unwrap()
            .contains("--replace")
    );
}

#[test]
fn interactive_enrollment_refuses_json() {
    let out = mfactl(&["--json", "enroll", "totp"], vec![], "", true);
    assert_eq!(out.result.unwrap_err().exit_code(), 2);
    assert!(out.requests.is_empty());
}

#[test]
fn confirm_code_sends_only_the_confirmation() {
    let out = mfactl(
        &["enroll", "totp", "--confirm-code", "654321"],
        vec![done("TOTP is active.")],
        "",
        false,
    );
    assert_eq!(out.requests, vec![confirm("654321")]);
    assert_eq!(out.stdout, "TOTP is active.\n");

    let out = mfactl(
        &["enroll", "totp", "--confirm-code", "-"],
        vec![done("ok")],
        " 65 43 21\n",
        false,
    );
    assert_eq!(out.requests, vec![confirm("654321")]);
    assert_eq!(out.stderr, "", "no prompt when stdin is not a terminal");

    let out = mfactl(
        &["enroll", "totp", "--confirm-code", "-"],
        vec![done("ok")],
        "9\n",
        true,
    );
    assert_eq!(out.stderr, PROMPT);

    let out = mfactl(
        &["enroll", "totp", "--confirm-code", "-"],
        vec![],
        "",
        false,
    );
    assert!(matches!(out.result, Err(CliError::NoCode { .. })));
}

#[test]
fn qr_code_has_a_quiet_zone_and_colours_on_a_terminal() {
    let plain = qr_code(URI, false);
    let lines: Vec<&str> = plain.lines().collect();
    let width = lines[0].chars().count();
    assert!(
        width >= 25 + 8,
        "version 2 or more plus a 4-module quiet zone"
    );
    assert!(lines.iter().all(|l| l.chars().count() == width));
    // 4 blank modules = 2 blank text lines above, and 4 columns left.
    assert!(lines[0].trim().is_empty() && lines[1].trim().is_empty());
    assert!(lines[2].starts_with("    █"));
    let ansi = qr_code(URI, true);
    assert!(
        ansi.lines()
            .all(|l| l.starts_with("\x1b[30;47m") && l.ends_with("\x1b[0m"))
    );
}
