//! `policy show` and `policy diff` against a scripted daemon.

use super::tests::{loaded, version};
use super::*;
use crate::cmd::testing::{done, error, mfactl};
use mfad_protocol::ErrorCode;
use serde_json::{Value, json};

fn text(n: i64, in_force: bool, text: &str) -> Response {
    Response::PolicyText {
        version: version(n, in_force),
        text: text.to_owned(),
    }
}

const OLD: &str = "[[rule]]\nname = \"default\"\nall = true\nrequire = \"totp\"\n";
const NEW: &str = "[[rule]]\nname = \"default\"\nall = true\nrequire = \"backup\"\n";

#[test]
fn show_prints_the_text_verbatim_and_the_header_on_stderr() {
    let raw = "# tab\there, CRLF\r\nno newline at the end";
    let out = mfactl(
        &["policy", "show", "3"],
        vec![text(3, false, raw)],
        "",
        false,
    );
    assert!(out.result.is_ok());
    assert_eq!(
        out.requests,
        vec![json!({"type": "policy_show", "version": 3})]
    );
    assert_eq!(out.stdout, raw);
    assert_eq!(
        out.stderr,
        format!(
            "policy version 3, sha256 {}, loaded 2026-11-23 19:04:08Z by uid 0\n",
            version(3, false).sha256
        )
    );
    let out = mfactl(&["policy", "show"], vec![text(2, true, OLD)], "", false);
    assert_eq!(out.requests[0]["version"], Value::Null);
    assert!(
        out.stderr
            .starts_with("policy version 2 (in force), sha256 2123")
    );
    let out = mfactl(
        &["--json", "policy", "show"],
        vec![text(2, true, OLD)],
        "",
        false,
    );
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        (v["type"].as_str(), v["text"].as_str()),
        (Some("policy_text"), Some(OLD))
    );
    assert_eq!(v["version"]["version"], 2);
    assert_eq!(out.stderr, "");
}

#[test]
fn diff_asks_for_both_versions_on_one_connection() {
    let replies = vec![text(1, false, OLD), text(2, true, NEW)];
    let out = mfactl(&["policy", "diff", "1", "2"], replies, "", false);
    assert!(out.result.is_ok());
    assert_eq!(
        out.requests,
        vec![
            json!({"type": "policy_show", "version": 1}),
            json!({"type": "policy_show", "version": 2}),
        ]
    );
    assert_eq!(
        out.stdout,
        "--- version 1\n+++ version 2\n@@ -1,4 +1,4 @@\n \
         [[rule]]\n name = \"default\"\n all = true\n-require = \"totp\"\n+require = \"backup\"\n"
    );
}

#[test]
fn diff_of_equal_texts_and_against_the_version_in_force() {
    let replies = vec![text(1, false, OLD), text(3, true, OLD)];
    let out = mfactl(&["policy", "diff", "1"], replies, "", false);
    assert_eq!(
        out.requests[1],
        json!({"type": "policy_show", "version": null})
    );
    assert_eq!(out.stdout, "versions 1 and 3 are identical\n");
}

#[test]
fn diff_json_carries_both_versions_and_the_diff() {
    let replies = vec![text(1, false, OLD), text(2, true, NEW)];
    let out = mfactl(&["--json", "policy", "diff", "1", "2"], replies, "", false);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        (v["from"]["version"].as_i64(), v["to"]["version"].as_i64()),
        (Some(1), Some(2))
    );
    assert_eq!(v["identical"], false);
    assert!(
        v["diff"]
            .as_str()
            .unwrap()
            .contains("\n+require = \"backup\"\n")
    );
    let replies = vec![text(1, false, OLD), text(1, false, OLD)];
    let out = mfactl(&["--json", "policy", "diff", "1", "1"], replies, "", false);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        (v["identical"].as_bool(), v["diff"].as_str()),
        (Some(true), Some(""))
    );
}

#[test]
fn missing_versions_and_wrong_replies_fail() {
    let out = mfactl(
        &["policy", "diff", "1", "9"],
        vec![text(1, false, OLD), error(ErrorCode::BadRequest)],
        "",
        false,
    );
    assert!(matches!(
        out.result,
        Err(CliError::Daemon {
            code: ErrorCode::BadRequest,
            ..
        })
    ));
    assert_eq!(out.stdout, "");
    let out = mfactl(&["policy", "show"], vec![done("x")], "", false);
    assert!(matches!(out.result, Err(CliError::Unexpected("done"))));
    let out = mfactl(
        &["policy", "reload"],
        vec![error(ErrorCode::PermissionDenied)],
        "",
        false,
    );
    assert!(
        out.result
            .unwrap_err()
            .hint()
            .unwrap()
            .contains("admin group")
    );
    let out = mfactl(
        &["policy", "history"],
        vec![loaded(1, true, &[])],
        "",
        false,
    );
    assert!(matches!(
        out.result,
        Err(CliError::Unexpected("policy_loaded"))
    ));
}
