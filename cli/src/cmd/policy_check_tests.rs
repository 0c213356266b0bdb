use super::*;
use crate::cmd::testing::{Outcome, mfactl};
use serde_json::Value;

const VALID: &str = r#"# sudo needs TOTP; everything else one of TOTP and a backup code
[[rule]]
name = "sudo"
services = ["sudo"]
require = "totp"

[[rule]]
name = "default"
all = true
require = { any = ["totp", "backup"] }
"#;

/// A catch-all that every case below ends with, unless it tests one.
const CATCH_ALL: &str = "\n[[rule]]\nname = \"default\"\nall = true\nrequire = \"totp\"\n";

/// Writes `text` to a file in a fresh directory and runs `policy check` on it.
fn check_file(text: &str, json: bool) -> (Outcome, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, text).unwrap();
    let file = path.to_str().unwrap().to_owned();
    let mut args = vec!["policy", "check", &file];
    if json {
        args.insert(0, "--json");
    }
    let out = mfactl(&args, vec![], "", false);
    assert!(out.requests.is_empty(), "policy check asks nothing of mfad");
    (out, file)
}

fn assert_rejected(out: &Outcome) {
    let Err(err) = &out.result else {
        panic!("accepted:\n{}", out.stdout)
    };
    assert!(
        matches!(
            err,
            CliError::Rejected {
                code: "invalid_policy",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.exit_code(), 1);
    assert!(err.result_printed());
}

#[test]
fn a_valid_file_gets_its_rule_count_and_hash() {
    let (out, file) = check_file(VALID, false);
    assert!(out.result.is_ok(), "{:?}", out.result);
    let prefix = format!("{file}: valid, 2 rules (sha256 ");
    let sha = out
        .stdout
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix(")\n"))
        .unwrap_or_else(|| panic!("{}", out.stdout));
    assert_eq!(sha.len(), 64);
    assert!(sha.bytes().all(|b| b.is_ascii_hexdigit()));
    let (again, _) = check_file(VALID, false);
    assert!(again.stdout.contains(sha), "same text, same hash");
}

#[test]
fn an_unknown_factor_is_an_error_at_its_value() {
    let text = "[[rule]]\nname = \"ssh\"\nservices = [\"sshd\"]\nrequire = \"yubikey\"\n";
    let (out, file) = check_file(&format!("{text}{CATCH_ALL}"), false);
    assert_rejected(&out);
    assert_eq!(
        out.stdout,
        format!(
            "{file}:4:11: error: unknown factor \"yubikey\" (known: totp, backup, sms, email)\n\
             \x20 hint: write \"none\", \"deny\", a factor such as \"totp\", {{ any = [...] }} or {{ chain = [...] }}\n\
             {file}: 1 error\n"
        )
    );
}

#[test]
fn a_rule_after_the_catch_all_is_an_error_at_its_table() {
    let late = "\n[[rule]]\nname = \"late\"\nservices = [\"su\"]\nrequire = \"totp\"\n";
    let (out, file) = check_file(&format!("{CATCH_ALL}{late}"), false);
    assert_rejected(&out);
    let want = format!(
        "{file}:7:1: error: rule \"late\" can never match: the catch-all rule \"default\" before it matches everything\n\
         \x20 hint: move the catch-all to the end, or this rule above it\n"
    );
    assert!(out.stdout.starts_with(&want), "{}", out.stdout);
    assert!(out.stdout.ends_with(&format!("{file}: 1 error\n")));
}

#[test]
fn an_invalid_cidr_is_an_error_at_the_string() {
    let text =
        "[[rule]]\nname = \"lan\"\nfrom = [\"192.0.2.1\", \"10.0.0.0/33\"]\nrequire = \"none\"\n";
    let (out, file) = check_file(&format!("{text}{CATCH_ALL}"), false);
    assert_rejected(&out);
    assert!(
        out.stdout.starts_with(&format!(
            "{file}:3:22: error: \"10.0.0.0/33\" is not a network\n  hint: write a CIDR"
        )),
        "{}",
        out.stdout
    );
}

#[test]
fn every_problem_is_listed_in_file_order_and_counted() {
    let text = "[[rule]]\nname = \"a\"\nrequire = \"push\"\nfrom = [\"300.1.1.1\"]\n\
                \n[[rule]]\nname = \"a\"\nall = true\nrequire = \"totp\"\n";
    let (out, file) = check_file(text, false);
    assert_rejected(&out);
    let positions: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{file}:")))
        .filter_map(|l| l.split_once(": error: ").map(|(at, _)| at))
        .collect();
    assert_eq!(positions, ["3:11", "4:9", "7:8"], "{}", out.stdout);
    assert!(out.stdout.ends_with(&format!("{file}: 3 errors\n")));
}

#[test]
fn warnings_alone_keep_the_file_valid() {
    let text = "[[rule]]\nname = \"ssh\"\nservices = [\"sshd\"]\nrequire = \"totp\"\n";
    let (out, file) = check_file(text, false);
    assert!(out.result.is_ok(), "{:?}", out.result);
    assert!(
        out.stdout.starts_with(&format!(
            "{file}:5:1: warning: no catch-all rule: a login that matches no rule is denied\n\
             \x20 hint: end the file with a rule that has `all = true`\n\
             {file}: valid, 1 rule (sha256 "
        )),
        "{}",
        out.stdout
    );
}

#[test]
fn json_reports_validity_and_each_diagnostic() {
    let (out, file) = check_file(VALID, true);
    assert!(out.result.is_ok());
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        (v["file"].as_str(), v["valid"].as_bool()),
        (Some(&*file), Some(true))
    );
    assert_eq!(v["rules"], 2);
    assert_eq!(v["sha256"].as_str().map(str::len), Some(64));
    assert_eq!(v["diagnostics"], serde_json::json!([]));

    let bad = "[[rule]]\nname = \"x\"\nall = true\nrequire = \"push\"\n";
    let (out, _) = check_file(bad, true);
    assert_rejected(&out);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!((&v["rules"], &v["sha256"]), (&Value::Null, &Value::Null));
    let d = &v["diagnostics"][0];
    assert_eq!(d["severity"], "error");
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(4), Some(11))
    );
    assert!(d["message"].as_str().unwrap().contains("\"push\""));
    assert!(d["hint"].as_str().unwrap().contains("{ any = [...] }"));
}

#[test]
fn syntax_errors_and_missing_files() {
    let (out, file) = check_file("[[rule]\n", false);
    assert_rejected(&out);
    assert!(
        out.stdout.starts_with(&format!("{file}:1:")),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains(": error: "));

    let out = mfactl(
        &["policy", "check", "/nonexistent/policy.toml"],
        vec![],
        "",
        false,
    );
    let err = out.result.unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot read /nonexistent/policy.toml: No such file or directory"
    );
    assert_eq!((err.code().as_str(), err.exit_code()), ("input", 1));
    assert!(!err.result_printed());
    assert_eq!(out.stdout, "");
}

#[test]
fn names_and_messages_cannot_reach_the_terminal_raw() {
    let report = check(
        "evil\u{1b}[2J.toml".to_owned(),
        "x = 1\n",
        &FromMfad::default(),
    );
    let text = render(&report);
    assert!(
        text.contains("evil?[2J.toml:1:1: error: ") && !text.contains('\u{1b}'),
        "{text}"
    );
}

#[test]
fn each_group_says_who_knows_it() {
    let text = "[[rule]]\nname = \"ops\"\nusers = [\"%root\", \"%ldapops\", \"%nowhere-x1\"]\n\
                require = \"totp\"\n";
    let from_mfad = FromMfad {
        groups: BTreeSet::from(["ldapops".to_owned()]),
        profiles: None,
    };
    let report = check("p.toml".to_owned(), text, &from_mfad);
    let got: Vec<(&str, &str)> = report
        .groups
        .iter()
        .map(|g| (g.name.as_str(), g.source))
        .collect();
    assert_eq!(
        got,
        [
            ("ldapops", "directory"),
            ("nowhere-x1", "unknown"),
            ("root", "nss")
        ]
    );
    // Only the group nobody knows is an error.
    assert!(!report.valid);
    let errors: Vec<&str> = report
        .diagnostics
        .iter()
        .filter(|d| d.severity == "error")
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(errors, ["unknown group \"nowhere-x1\""]);
    let text = render(&report);
    assert!(
        text.contains("p.toml: %ldapops: known to mfad's directory\n"),
        "{text}"
    );
    assert!(
        text.contains("p.toml: %root: known through NSS\n"),
        "{text}"
    );
}

#[test]
fn groups_nss_lacks_are_asked_of_mfad() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(
        &path,
        "[[rule]]\nname = \"ops\"\nusers = [\"%root\", \"%ldapops\"]\nrequire = \"totp\"\n",
    )
    .unwrap();
    let reply = Response::GroupSources {
        groups: vec![mfad_protocol::GroupSource {
            name: "ldapops".into(),
            nss: false,
            directory: Some(true),
        }],
        totp_profiles: Some(vec![]),
    };
    let out = mfactl(
        &["policy", "check", path.to_str().unwrap()],
        vec![reply],
        "",
        false,
    );
    assert!(out.result.is_ok(), "{}", out.stdout);
    assert_eq!(
        out.requests,
        [serde_json::json!({"type": "group_sources", "groups": ["ldapops"]})]
    );
    assert!(
        out.stdout.contains("%ldapops: known to mfad's directory"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_totp_profile_is_checked_against_the_profiles_mfad_names() {
    let text = |profile: &str| {
        format!(
            "[[rule]]\nname = \"ssh\"\nrequire = \"totp\"\n\
             unenrolled = \"enroll\"\nservices = [\"sshd\"]\ntotp_profile = \"{profile}\"\n"
        )
    };
    let from_mfad = FromMfad {
        groups: BTreeSet::new(),
        profiles: Some(BTreeSet::from(["strict".to_owned()])),
    };
    assert!(check("p.toml".to_owned(), &text("strict"), &from_mfad).valid);
    let report = check("p.toml".to_owned(), &text("strcit"), &from_mfad);
    assert!(!report.valid);
    assert_eq!(
        report.diagnostics[0].message,
        "no TOTP profile \"strcit\" in mfad.toml"
    );
    assert_eq!(
        (report.diagnostics[0].line, report.diagnostics[0].column),
        (6, 16)
    );
    // Without mfad's answer the name cannot be judged: not an error here
    // (mfad still refuses it at reload).
    assert!(check("p.toml".to_owned(), &text("strcit"), &FromMfad::default()).valid);
}

#[test]
fn a_totp_profile_alone_asks_mfad_and_without_an_answer_is_left_unchecked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(
        &path,
        "[[rule]]\nname = \"ssh\"\nrequire = \"totp\"\n\
         unenrolled = \"enroll\"\nservices = [\"sshd\"]\ntotp_profile = \"strcit\"\n",
    )
    .unwrap();
    let args = ["policy", "check", path.to_str().unwrap()];
    let answer = Response::GroupSources {
        groups: vec![],
        totp_profiles: Some(vec!["strict".into()]),
    };
    let out = mfactl(&args, vec![answer], "", false);
    assert_eq!(
        out.requests,
        [serde_json::json!({"type": "group_sources", "groups": []})]
    );
    assert!(out.result.is_err());
    assert!(
        out.stdout
            .contains(":6:16: error: no TOTP profile \"strcit\" in mfad.toml"),
        "{}",
        out.stdout
    );
    // mfad refusing to answer (not an admin): valid here, and said so.
    let refused = Response::Error {
        code: mfad_protocol::ErrorCode::PermissionDenied,
        message: "admins only".into(),
        supported: vec![],
    };
    let out = mfactl(&args, vec![refused], "", false);
    assert!(out.result.is_ok(), "{}", out.stdout);
    assert!(
        out.stderr
            .contains("TOTP profile names are not checked against mfad.toml"),
        "{}",
        out.stderr
    );
}
