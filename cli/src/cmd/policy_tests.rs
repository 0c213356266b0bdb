use super::*;
use crate::cmd::testing::mfactl;
use serde_json::{Value, json};

const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

pub(super) fn version(n: i64, in_force: bool) -> PolicyVersion {
    PolicyVersion {
        version: n,
        sha256: SHA.replace('0', &n.to_string()),
        loaded_at: 1_795_460_645 + n,
        loaded_by: if n == 1 { "startup" } else { "uid 0" }.into(),
        in_force,
    }
}

pub(super) fn loaded(version: i64, changed: bool, diagnostics: &[&str]) -> Response {
    Response::PolicyLoaded {
        version,
        changed,
        rejected: false,
        diagnostics: diagnostics.iter().map(|d| (*d).to_owned()).collect(),
    }
}

fn rejected(version: i64, diagnostics: &[&str]) -> Response {
    Response::PolicyLoaded {
        version,
        changed: false,
        rejected: true,
        diagnostics: diagnostics.iter().map(|d| (*d).to_owned()).collect(),
    }
}

const WARNING: &str = "line 9, column 1: warning: no catch-all rule: a login that matches no rule is denied\n  hint: end the file with a rule that has `all = true`";
const ERROR: &str =
    "line 4, column 11: error: unknown factor \"push\" (known: totp, backup, sms, email)";

#[test]
fn reload_reports_the_version_in_force_and_warnings() {
    let out = mfactl(
        &["policy", "reload"],
        vec![loaded(5, true, &[WARNING])],
        "",
        false,
    );
    assert!(out.result.is_ok());
    assert_eq!(out.requests, vec![json!({"type": "policy_reload"})]);
    assert_eq!(
        out.stdout,
        "policy version 5 in force (changed)\n\
         \x20 line 9, column 1: warning: no catch-all rule: a login that matches no rule is denied\n\
         \x20   hint: end the file with a rule that has `all = true`\n"
    );
    let out = mfactl(
        &["policy", "reload"],
        vec![loaded(5, false, &[WARNING])],
        "",
        false,
    );
    assert!(out.result.is_ok(), "the same file again is no failure");
    assert!(
        out.stdout
            .starts_with("policy version 5 in force (unchanged)\n")
    );
}

#[test]
fn a_rejected_file_exits_1_after_listing_its_errors() {
    let out = mfactl(
        &["policy", "reload"],
        vec![rejected(4, &[WARNING, ERROR])],
        "",
        false,
    );
    assert!(
        out.stdout
            .starts_with("policy version 4 in force (unchanged)\n")
    );
    assert!(out.stdout.ends_with(&format!("  {ERROR}\n")));
    let err = out.result.unwrap_err();
    assert_eq!(err.exit_code(), 1);
    assert!(err.result_printed());
    assert!(
        err.to_string().contains("version 4 stays in force"),
        "{err}"
    );
    assert!(err.hint().unwrap().contains("mfactl policy check"));
    // An unreadable file is no positioned diagnostic, and just as fatal.
    let unreadable = "cannot read the policy /etc/mfad/policy.toml: Permission denied";
    let out = mfactl(
        &["policy", "reload"],
        vec![rejected(4, &[unreadable])],
        "",
        false,
    );
    assert!(out.result.is_err());
}

#[test]
fn reload_json_is_the_reply_and_still_fails_on_errors() {
    let out = mfactl(
        &["--json", "policy", "reload"],
        vec![rejected(4, &[ERROR])],
        "",
        false,
    );
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        v,
        json!({"type": "policy_loaded", "version": 4, "changed": false, "rejected": true, "diagnostics": [ERROR]})
    );
    assert!(
        out.result.unwrap_err().result_printed(),
        "one JSON document only"
    );
}

#[test]
fn history_marks_the_version_in_force() {
    let reply = Response::PolicyVersions {
        versions: vec![version(1, false), version(2, true)],
    };
    let out = mfactl(&["policy", "history"], vec![reply.clone()], "", false);
    assert_eq!(out.requests, vec![json!({"type": "policy_history"})]);
    assert_eq!(
        out.stdout,
        "VERSION  LOADED                BY       SHA256\n\
         \x20 1      2026-11-23 19:04:06Z  startup  1123456789ab\n\
         * 2      2026-11-23 19:04:07Z  uid 0    2123456789ab\n"
    );
    let out = mfactl(&["--json", "policy", "history"], vec![reply], "", false);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["type"], "policy_versions");
    assert_eq!(v["versions"][1]["in_force"], true);
    assert_eq!(v["versions"][0]["sha256"], version(1, false).sha256);
    let empty = Response::PolicyVersions { versions: vec![] };
    let out = mfactl(&["policy", "history"], vec![empty], "", false);
    assert_eq!(out.stdout, "No policy versions recorded.\n");
}

fn parse_err(args: &[&str]) -> clap::error::ErrorKind {
    use clap::Parser;
    match crate::cmd::Cli::try_parse_from(std::iter::once("mfactl").chain(args.iter().copied())) {
        Ok(cli) => panic!("{args:?} parsed: {cli:?}"),
        Err(e) => e.kind(),
    }
}

#[test]
fn bad_policy_command_lines_are_usage_errors() {
    use clap::error::ErrorKind::*;
    assert_eq!(parse_err(&["policy", "show", "0"]), ValueValidation);
    assert_eq!(parse_err(&["policy", "show", "x"]), ValueValidation);
    assert_eq!(parse_err(&["policy", "diff"]), MissingRequiredArgument);
    assert_eq!(
        parse_err(&["policy", "diff", "1", "2", "3"]),
        UnknownArgument
    );
    assert_eq!(parse_err(&["policy", "check"]), MissingRequiredArgument);
    let no_service = ["policy", "explain", "--user", "alice"];
    assert_eq!(parse_err(&no_service), MissingRequiredArgument);
    assert_eq!(parse_err(&["policy", "reload", "now"]), UnknownArgument);
    assert_eq!(
        parse_err(&["backup-codes"]),
        DisplayHelpOnMissingArgumentOrSubcommand
    );
    assert_eq!(parse_err(&["policy", "check", "f", "--help"]), DisplayHelp);
}

#[test]
fn help_texts_say_what_each_command_does() {
    let help = |args: &[&str]| {
        use clap::Parser;
        let argv = std::iter::once("mfactl").chain(args.iter().copied());
        crate::cmd::Cli::try_parse_from(argv)
            .unwrap_err()
            .to_string()
    };
    let check = help(&["policy", "check", "--help"]);
    assert!(check.contains("without asking mfad"), "{check}");
    assert!(check.contains("Exit status: 0 when the file is valid (even with warnings)"));
    let policy = help(&["policy", "--help"]);
    for sub in [
        "check", "explain", "reload", "push", "status", "history", "show", "diff",
    ] {
        assert!(policy.contains(&format!("\n  {sub} ")), "{sub}: {policy}");
    }
    assert!(help(&["policy", "reload", "--help"]).contains(paths::POLICY));
    assert!(help(&["policy", "explain", "--help"]).contains("--rhost <IP>"));
    let codes = help(&["backup-codes", "regenerate", "--help"]);
    assert!(codes.contains("voids every code"), "{codes}");
}

#[test]
fn push_sends_the_file_and_fails_on_a_rejected_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fleet.toml");
    std::fs::write(&file, "[[rule]]\n").unwrap();
    let path = file.to_str().unwrap();
    let out = mfactl(
        &["policy", "push", path],
        vec![loaded(7, true, &[])],
        "",
        false,
    );
    assert!(out.result.is_ok());
    assert_eq!(
        out.requests,
        vec![json!({"type": "policy_push", "text": "[[rule]]\n"})]
    );
    assert_eq!(out.stdout, "policy version 7 in force (changed)\n");
    let out = mfactl(
        &["policy", "push", path],
        vec![rejected(7, &[ERROR])],
        "",
        false,
    );
    let err = out.result.unwrap_err();
    assert_eq!(err.exit_code(), 1);
    assert!(err.to_string().contains("was not pushed"), "{err}");
    assert!(out.stdout.contains("line 4, column 11"), "{}", out.stdout);
    // A file that cannot be read is not sent.
    let out = mfactl(
        &["policy", "push", "/nonexistent/p.toml"],
        vec![],
        "",
        false,
    );
    assert!(out.result.is_err());
    assert!(out.requests.is_empty());
}

#[test]
fn status_lists_each_host_and_whether_it_has_the_latest_push() {
    let host = |name: &str, version| mfad_protocol::HostPolicy {
        host: name.into(),
        version,
        since: 1_795_460_645,
    };
    let reply = Response::PolicyStatus {
        hosts: vec![host("web-1", 3), host("web-2", 2)],
        pushed: Some(3),
    };
    let out = mfactl(&["policy", "status"], vec![reply], "", false);
    assert!(out.result.is_ok());
    assert_eq!(out.requests, vec![json!({"type": "policy_status"})]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "latest pushed version: 3");
    assert!(
        lines[1].starts_with("HOST   VERSION  SINCE"),
        "{}",
        out.stdout
    );
    assert!(
        lines[2].starts_with("web-1  3 ") && lines[2].ends_with("yes"),
        "{}",
        out.stdout
    );
    assert!(
        lines[3].starts_with("web-2  2 ") && lines[3].ends_with("NO"),
        "{}",
        out.stdout
    );
    let none = Response::PolicyStatus {
        hosts: vec![host("solo", 1)],
        pushed: None,
    };
    let out = mfactl(&["policy", "status"], vec![none], "", false);
    assert!(
        out.stdout.starts_with("no version pushed"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("solo"), "{}", out.stdout);
}
