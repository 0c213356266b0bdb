//! Argument parsing, and whole commands against a scripted daemon.

use super::Cli;
use super::testing::{done, error, mfactl};
use crate::error::CliError;
use clap::Parser;
use clap::error::ErrorKind;
use mfad_protocol::{AuditRow, ErrorCode, Response, UserStatus, paths};
use serde_json::{Value, json};

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("mfactl").chain(args.iter().copied()))
}

fn parse_err(args: &[&str]) -> ErrorKind {
    match parse(args) {
        Ok(cli) => panic!("{args:?} parsed: {cli:?}"),
        Err(e) => e.kind(),
    }
}

#[test]
fn defaults_and_global_flags_anywhere() {
    let cli = parse(&["status"]).unwrap();
    if std::env::var_os("MFAD_SOCKET").is_none() {
        assert_eq!(cli.socket.to_str(), Some(paths::SOCKET));
    }
    assert_eq!((cli.json, cli.timeout), (false, 10));
    let cli = parse(&["user", "list", "--json", "--timeout", "2"]).unwrap();
    assert!(cli.json);
    assert_eq!(cli.timeout, 2);
}

#[test]
fn bad_command_lines_are_usage_errors() {
    use ErrorKind::*;
    let both = ["enroll", "totp", "--print-uri", "--confirm-code", "1"];
    assert_eq!(parse_err(&both), ArgumentConflict);
    let replace = ["enroll", "totp", "--replace", "--confirm-code", "1"];
    assert_eq!(parse_err(&replace), ArgumentConflict);
    assert_eq!(
        parse_err(&["enroll", "totp", "--no-qr", "--print-uri"]),
        ArgumentConflict
    );
    assert_eq!(
        parse_err(&["enroll", "totp", "--confirm-code", " "]),
        ValueValidation
    );
    assert_eq!(parse_err(&["audit", "--limit", "0"]), ValueValidation);
    assert_eq!(parse_err(&["audit", "--limit", "10001"]), ValueValidation);
    assert_eq!(parse_err(&["ping", "--timeout", "0"]), ValueValidation);
    assert_eq!(parse_err(&["user", "reset"]), MissingRequiredArgument);
    assert_eq!(
        parse_err(&["enroll"]),
        DisplayHelpOnMissingArgumentOrSubcommand
    );
    assert_eq!(parse_err(&["frobnicate"]), InvalidSubcommand);
    assert!(parse(&["enroll", "totp", "--print-uri", "--replace", "--user", "x"]).is_ok());
    assert!(parse(&["enroll", "totp", "--confirm-code", "-", "--user", "x"]).is_ok());
}

#[test]
fn help_mentions_the_process_list_risk() {
    let help = parse(&["enroll", "totp", "--help"])
        .unwrap_err()
        .to_string();
    assert!(help.contains("visible in the process list"), "{help}");
    assert!(help.contains("--confirm-code <CODE>"));
}

#[test]
fn ping_human_and_json() {
    let pong = || Response::Pong {
        daemon_version: "0.1.0".into(),
        protocol: 1,
    };
    let out = mfactl(&["ping"], vec![pong()], "", false);
    assert!(out.result.is_ok());
    assert_eq!(out.requests, vec![json!({"type": "ping"})]);
    assert!(
        out.stdout.starts_with("mfad 0.1.0, protocol 1\nmfactl "),
        "{}",
        out.stdout
    );
    let out = mfactl(&["ping", "--json"], vec![pong()], "", false);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        v,
        json!({"type": "pong", "daemon_version": "0.1.0", "protocol": 1})
    );
}

fn bob() -> Response {
    Response::Status(UserStatus {
        user: "bob".into(),
        totp: None,
        totp_pending: false,
        backup_codes: 0,
        locks: vec![],
        contacts: vec![],
        trusted_devices: 0,
        last_login: None,
    })
}

#[test]
fn status_asks_for_own_or_named_account() {
    let out = mfactl(&["status"], vec![bob()], "", false);
    assert_eq!(out.requests, vec![json!({"type": "status", "user": null})]);
    assert_eq!(
        out.stdout,
        "user: bob\ntotp: not enrolled\nbackup codes: 0 left\nphone: not set\nemail: not set\n\
         trusted devices: 0\nlast login: none recorded\nlocks: none\n"
    );
    let out = mfactl(
        &["--json", "status", "--user", "bob"],
        vec![bob()],
        "",
        false,
    );
    assert_eq!(out.requests, vec![json!({"type": "status", "user": "bob"})]);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        (v["type"].as_str(), v["user"].as_str()),
        (Some("status"), Some("bob"))
    );
    assert_eq!(v["totp"], Value::Null);
}

#[test]
fn user_show_and_list_json() {
    let out = mfactl(&["user", "show", "bob"], vec![bob()], "", false);
    assert_eq!(
        out.requests,
        vec![json!({"type": "user_show", "user": "bob"})]
    );
    assert!(out.stdout.starts_with("user: bob\n"));
    let users = Response::Users { users: vec![] };
    let out = mfactl(&["user", "list", "--json"], vec![users], "", false);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v, json!({"type": "users", "users": []}));
}

#[test]
fn done_messages_are_printed() {
    let out = mfactl(
        &["user", "unlock", "bob"],
        vec![done("Unlocked bob.")],
        "",
        false,
    );
    assert_eq!(out.stdout, "Unlocked bob.\n");
    let out = mfactl(
        &["--json", "user", "unlock", "bob"],
        vec![done("ok")],
        "",
        false,
    );
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v, json!({"type": "done", "message": "ok"}));
}

#[test]
fn reset_asks_on_a_terminal_and_refuses_without_one() {
    let out = mfactl(
        &["user", "reset", "bob"],
        vec![done("Reset bob.")],
        "y\n",
        true,
    );
    assert!(out.result.is_ok());
    assert_eq!(out.stderr, "Remove every factor of bob? [y/N] ");
    assert_eq!(
        out.requests,
        vec![json!({"type": "user_reset", "user": "bob"})]
    );

    let out = mfactl(&["user", "reset", "bob"], vec![], "\n", true);
    assert!(matches!(out.result, Err(CliError::Aborted)));
    assert!(out.requests.is_empty());

    let out = mfactl(&["user", "reset", "bob"], vec![], "y\n", false);
    let err = out.result.unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("pass --yes"));
    assert!(out.requests.is_empty());

    let out = mfactl(
        &["user", "reset", "bob", "--yes"],
        vec![done("x")],
        "",
        false,
    );
    assert!(out.result.is_ok());
    assert_eq!(out.stderr, "");
}

#[test]
fn audit_defaults_and_json() {
    let row = AuditRow {
        id: 1,
        time: 0,
        user: "alice".into(),
        service: "sudo".into(),
        rhost: None,
        tty: Some("pts/0".into()),
        channel: "totp".into(),
        decision: "allow".into(),
        reason: "ok".into(),
        peer_uid: 0,
        rule: Some("sudo-totp".into()),
        policy_version: Some(3),
        ruser: None,
        caller_uid: None,
        host: None,
    };
    let reply = Response::Audit {
        rows: vec![row],
        more: false,
    };
    let out = mfactl(&["audit", "--json"], vec![reply], "", false);
    assert_eq!(
        out.requests,
        vec![json!({"type": "audit_query", "user": null, "limit": 50})]
    );
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["type"], "audit");
    assert_eq!(v["rows"][0]["tty"], "pts/0");
    assert_eq!(v["rows"][0]["rhost"], Value::Null);
    assert_eq!(
        (&v["rows"][0]["rule"], &v["rows"][0]["policy_version"]),
        (&json!("sudo-totp"), &json!(3))
    );
}

#[test]
fn daemon_errors_and_unexpected_replies_fail() {
    let out = mfactl(
        &["status"],
        vec![error(ErrorCode::PermissionDenied)],
        "",
        false,
    );
    let err = out.result.unwrap_err();
    assert!(matches!(
        err,
        CliError::Daemon {
            code: ErrorCode::PermissionDenied,
            ..
        }
    ));
    assert_eq!(err.exit_code(), 1);
    assert_eq!(out.stdout, "");
    let out = mfactl(&["ping"], vec![done("hi")], "", false);
    let err = out.result.unwrap_err();
    assert_eq!(err.to_string(), "unexpected reply from mfad: done");
    let out = mfactl(&["user", "list"], vec![bob()], "", false);
    assert!(matches!(out.result, Err(CliError::Unexpected("status"))));
}
