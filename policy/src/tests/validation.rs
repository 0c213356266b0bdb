//! Every problem in a policy file is reported with the line and column of
//! the offending token and a hint; warnings do not stop the policy.

use super::FakeDir;
use crate::{BUILTIN, Diagnostic, OnRisk, Policy, Severity, StoreUnreachable, parse};

fn errors(text: &str) -> Vec<Diagnostic> {
    match Policy::from_text(text, &FakeDir::standard()) {
        Ok((policy, warnings)) => panic!(
            "expected errors, got a policy of {} rules; warnings {warnings:#?}",
            policy.rules.len()
        ),
        Err(diags) => diags
            .into_iter()
            .filter(|d| d.severity == Severity::Error)
            .collect(),
    }
}

fn warnings(text: &str) -> Vec<Diagnostic> {
    match Policy::from_text(text, &FakeDir::standard()) {
        Ok((_, warnings)) => {
            assert!(warnings.iter().all(|w| w.severity == Severity::Warning));
            warnings
        }
        Err(diags) => panic!("expected a policy, got {diags:#?}"),
    }
}

/// The 1-based (line, column) of `token` on line `line` of `text`.
fn at(text: &str, line: usize, token: &str) -> (usize, usize) {
    let l = text
        .lines()
        .nth(line - 1)
        .unwrap_or_else(|| panic!("no line {line}"));
    let byte = l
        .find(token)
        .unwrap_or_else(|| panic!("no {token:?} on line {line}: {l:?}"));
    (line, l[..byte].chars().count() + 1)
}

/// Exactly one error, at `token` on `line`, whose message contains
/// `message` and which has a hint.
#[track_caller]
fn one_error(text: &str, line: usize, token: &str, message: &str) -> Diagnostic {
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let d = errs.into_iter().next().expect("one");
    assert_eq!((d.line, d.column), at(text, line, token), "{d}");
    assert!(d.message.contains(message), "{d}");
    assert!(
        d.hint.as_deref().is_some_and(|h| !h.is_empty()),
        "no hint: {d}"
    );
    d
}

const CATCH_ALL: &str = "\n[[rule]]\nname = \"default\"\nall = true\nrequire = \"totp\"\n";

#[test]
fn unknown_factor() {
    let text =
        format!("[[rule]]\nname = \"r\"\nservices = [\"sshd\"]\nrequire = \"push\"\n{CATCH_ALL}");
    let d = one_error(&text, 4, "\"push\"", "unknown factor \"push\"");
    assert!(d.message.contains("known: totp, backup, sms, email"), "{d}");
}

#[test]
fn unknown_factor_in_a_list() {
    // toml::Value items carry no position: the column is the list's table.
    for require in [r#"{ any = ["totp", "push"] }"#, r#"{ chain = ["push"] }"#] {
        let text = format!(
            "[[rule]]\nname = \"r\"\nservices = [\"sshd\"]\nrequire = {require}\n{CATCH_ALL}"
        );
        one_error(&text, 4, "{", "unknown factor \"push\"");
    }
}

#[test]
fn unknown_service_group() {
    let text = format!(
        "[service_groups]\nprivileged = [\"sudo\"]\n\n[[rule]]\nname = \"r\"\nservices = [\"sshd\", \"@nope\"]\nrequire = \"totp\"\n{CATCH_ALL}"
    );
    let d = one_error(&text, 6, "\"@nope\"", "unknown service group \"@nope\"");
    assert!(
        d.hint
            .as_deref()
            .is_some_and(|h| h.contains("[service_groups]"))
    );
}

#[test]
fn service_group_naming_a_group() {
    let text = format!("[service_groups]\na = [\"sudo\"]\nb = [\"su\", \"@a\"]\n{CATCH_ALL}");
    one_error(&text, 3, "\"@a\"", "names another group");
}

#[test]
fn rule_after_a_catch_all_is_shadowed() {
    let text = "[[rule]]\nname = \"everything\"\nall = true\nrequire = \"totp\"\n\n[[rule]]\nname = \"ssh\"\nservices = [\"sshd\"]\nrequire = \"none\"\n\n[[rule]]\nname = \"su\"\nservices = [\"su\"]\nrequire = \"deny\"\n";
    let errs = errors(text);
    let got: Vec<(usize, usize)> = errs.iter().map(|d| (d.line, d.column)).collect();
    assert_eq!(
        got,
        [at(text, 6, "[[rule]]"), at(text, 11, "[[rule]]")],
        "{errs:#?}"
    );
    for (d, name) in errs.iter().zip(["ssh", "su"]) {
        assert!(
            d.message.contains(&format!(
                "rule {name:?} can never match: the catch-all rule \"everything\""
            )),
            "{d}"
        );
        assert!(d.hint.as_deref().is_some_and(|h| h.contains("end")), "{d}");
    }
    // A second catch-all is shadowed too.
    let text = format!("{CATCH_ALL}\n[[rule]]\nname = \"again\"\nall = true\nrequire = \"deny\"\n");
    one_error(&text, 7, "[[rule]]", "can never match");
}

#[test]
fn empty_requirement_lists() {
    for key in ["chain", "any"] {
        let text = format!(
            "[[rule]]\nname = \"r\"\nservices = [\"sshd\"]\nrequire = {{ {key} = [] }}\n{CATCH_ALL}"
        );
        let d = one_error(
            &text,
            4,
            "{",
            &format!("an empty `{key}` can never be satisfied"),
        );
        assert!(d.hint.as_deref().is_some_and(|h| h.contains("deny")), "{d}");
    }
}

#[test]
fn duplicate_factor_in_a_chain() {
    for require in [
        r#"{ chain = ["totp", "backup", "totp"] }"#,
        r#"{ any = ["backup", "backup"] }"#,
    ] {
        let text = format!(
            "[[rule]]\nname = \"r\"\nservices = [\"sudo\"]\nrequire = {require}\n{CATCH_ALL}"
        );
        one_error(&text, 4, "{", "is listed twice");
    }
}

#[test]
fn invalid_networks() {
    let text = format!(
        "[[rule]]\nname = \"r\"\nservices = [\"sshd\"]\nfrom = [\n  \"10.20.0.0/16\",\n  \"10.0.0.0/33\",\n  \"2001:db8::/129\", \"example.com\",\n  \"10.1.2.3/8\",\n]\nrequire = \"none\"\n{CATCH_ALL}"
    );
    let errs = errors(&text);
    let got: Vec<(usize, usize)> = errs.iter().map(|d| (d.line, d.column)).collect();
    assert_eq!(
        got,
        [
            at(&text, 6, "\"10.0.0.0/33\""),
            at(&text, 7, "\"2001:db8::/129\""),
            at(&text, 7, "\"example.com\"")
        ],
        "{errs:#?}"
    );
    assert!(errs[0].message.contains("\"10.0.0.0/33\" is not a network"));
    assert!(errs[2].message.contains("\"example.com\" is not a network"));
    assert!(
        errs.iter()
            .all(|d| d.hint.as_deref().is_some_and(|h| h.contains("CIDR")))
    );
}

#[test]
fn unknown_unix_group() {
    let text = format!(
        "[[rule]]\nname = \"r\"\nusers = [\"alice\", \"%wheel\", \"%nogroup\"]\nrequire = \"totp\"\n{CATCH_ALL}"
    );
    let d = one_error(&text, 3, "\"%nogroup\"", "unknown group \"nogroup\"");
    assert!(
        d.hint
            .as_deref()
            .is_some_and(|h| h.contains("getent group nogroup"))
    );
    // A group without members still exists.
    let text =
        format!("[[rule]]\nname = \"r\"\nusers = [\"%empty\"]\nrequire = \"totp\"\n{CATCH_ALL}");
    assert!(warnings(&text).is_empty());
}

#[test]
fn duplicate_rule_name() {
    let text = "[[rule]]\nname = \"r\"\nservices = [\"sshd\"]\nrequire = \"totp\"\n\n[[rule]]\nname = \"r\"\nservices = [\"su\"]\nrequire = \"totp\"\n\n[[rule]]\nname = \"r\"\nall = true\nrequire = \"deny\"\n";
    let errs = errors(text);
    let got: Vec<(usize, usize)> = errs.iter().map(|d| (d.line, d.column)).collect();
    assert_eq!(
        got,
        [at(text, 7, "\"r\""), at(text, 12, "\"r\"")],
        "{errs:#?}"
    );
    assert!(
        errs.iter()
            .all(|d| d.message.contains("a second rule is named \"r\"")
                && d.hint.as_deref().is_some_and(|h| h.contains("unique")))
    );
}

#[test]
fn rule_without_condition() {
    let text = format!("[[rule]]\nname = \"bare\"\nrequire = \"totp\"\n{CATCH_ALL}");
    let d = one_error(&text, 2, "\"bare\"", "rule \"bare\" has no condition");
    assert!(
        d.hint
            .as_deref()
            .is_some_and(|h| h.contains("`all = true`")),
        "{d}"
    );
}

#[test]
fn all_with_another_condition() {
    let text = "[[rule]]\nname = \"r\"\nservices = [\"sshd\"]\nall = true\nrequire = \"totp\"\n";
    one_error(text, 4, "true", "cannot be combined");
    let text = format!(
        "[[rule]]\nname = \"r\"\nall = false\nservices = [\"sshd\"]\nrequire = \"totp\"\n{CATCH_ALL}"
    );
    one_error(&text, 3, "false", "`all = false` means nothing");
}

#[test]
fn empty_condition_lists() {
    for key in ["host_class", "host_tags", "services", "users", "from"] {
        let text = format!(
            "[host]\nclass = \"production\"\n\n[[rule]]\nname = \"r\"\n{key} = []\nrequire = \"totp\"\n{CATCH_ALL}"
        );
        one_error(&text, 6, "[]", &format!("`{key}` is an empty list"));
    }
}

#[test]
fn unknown_key_in_a_rule() {
    let text = format!(
        "[[rule]]\nname = \"r\"\nservices = [\"sshd\"]\nrequire = \"totp\"\nservces = [\"su\"]\n{CATCH_ALL}"
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!((errs[0].line, errs[0].column), at(&text, 5, "servces"));
    assert!(
        errs[0].message.contains("unknown field `servces`"),
        "{}",
        errs[0]
    );
    assert!(errs[0].message.contains("`services`"), "{}", errs[0]);
    // In [host] too.
    let text = format!("[host]\nclass = \"production\"\ntag = [\"web\"]\n{CATCH_ALL}");
    let errs = errors(&text);
    assert_eq!((errs[0].line, errs[0].column), at(&text, 3, "tag"));
}

#[test]
fn toml_syntax_errors() {
    let cases = [
        // An unterminated string: at the end of its line.
        ("[[rule]]\nname = \"r\nrequire = \"totp\"\n", 2, 10),
        // A missing value.
        ("[[rule]]\nname = \"r\"\nall = true\nrequire =\n", 4, 10),
        // The same key twice.
        (
            "[[rule]]\nname = \"r\"\nall = true\nrequire = \"totp\"\nrequire = \"deny\"\n",
            5,
            1,
        ),
        // A missing required key: at the rule.
        ("[[rule]]\nname = \"r\"\nall = true\n", 1, 1),
    ];
    for (text, line, column) in cases {
        let errs = errors(text);
        assert_eq!(errs.len(), 1, "{text}: {errs:#?}");
        assert_eq!(
            (errs[0].line, errs[0].column),
            (line, column),
            "{text}: {}",
            errs[0]
        );
        assert!(!errs[0].message.is_empty());
    }
}

/// DESIGN/brief: every error has a hint; the TOML-level ones (syntax, an
/// unknown or missing key) come straight from the toml crate without one.
#[test]
fn toml_errors_have_hints() {
    for text in [
        format!(
            "[[rule]]\nname = \"r\"\nservices = [\"sshd\"]\nrequire = \"totp\"\nservces = [\"su\"]\n{CATCH_ALL}"
        ),
        "[[rule]]\nname = \"r\nrequire = \"totp\"\n".to_owned(),
    ] {
        let errs = errors(&text);
        assert!(errs.iter().all(|d| d.hint.is_some()), "{errs:#?}");
    }
}

#[test]
fn every_error_is_reported() {
    let text = r#"[service_groups]
privileged = ["sudo", "su"]

[[rule]]
name = "a"
services = ["sshd"]
require = "push"

[[rule]]
name = "b"
services = ["@privileged", "@nope"]
from = ["10.0.0.0/33"]
require = "totp"

[[rule]]
name = "a"
users = ["%nogroup"]
require = { chain = [] }

[[rule]]
name = "d"
require = "totp"

[[rule]]
name = "default"
all = true
require = "totp"

[[rule]]
name = "late"
services = ["login"]
require = "none"
"#;
    let errs = errors(text);
    let got: Vec<(usize, usize)> = errs.iter().map(|d| (d.line, d.column)).collect();
    let mut got_sorted = got.clone();
    got_sorted.sort_unstable();
    let expected = [
        at(text, 7, "\"push\""),
        at(text, 11, "\"@nope\""),
        at(text, 12, "\"10.0.0.0/33\""),
        at(text, 16, "\"a\""),
        at(text, 17, "\"%nogroup\""),
        at(text, 18, "{"),
        at(text, 21, "\"d\""),
        at(text, 29, "[[rule]]"),
    ];
    assert_eq!(errs.len(), 8, "{errs:#?}");
    assert_eq!(got_sorted, expected, "{errs:#?}");
    assert!(errs.iter().all(|d| d.hint.is_some()), "{errs:#?}");
    // Not a single warning: there is a catch-all.
    let all = Policy::from_text(text, &FakeDir::standard())
        .err()
        .unwrap_or_default();
    assert_eq!(all.len(), 8);
}

#[test]
fn warning_without_catch_all() {
    let text = "[[rule]]\nname = \"r\"\nservices = [\"sshd\"]\nrequire = \"totp\"\n";
    let w = warnings(text);
    assert_eq!(w.len(), 1, "{w:#?}");
    assert!(w[0].message.contains("no catch-all rule"), "{}", w[0]);
    assert_eq!((w[0].line, w[0].column), (5, 1));
    assert!(
        w[0].hint
            .as_deref()
            .is_some_and(|h| h.contains("all = true"))
    );
    // The warning also comes with errors.
    let diags = Policy::from_text(
        "[[rule]]\nname = \"r\"\nservices = [\"sshd\"]\nrequire = \"push\"\n",
        &FakeDir::standard(),
    )
    .err()
    .unwrap_or_default();
    let kinds: Vec<Severity> = diags.iter().map(|d| d.severity).collect();
    assert_eq!(kinds, [Severity::Error, Severity::Warning]);
}

#[test]
fn warning_host_class_without_host_class() {
    let text = format!(
        "[host]\ntags = [\"web\"]\n\n[[rule]]\nname = \"r\"\nhost_class = [\"production\"]\nrequire = \"totp\"\n{CATCH_ALL}"
    );
    let w = warnings(&text);
    assert_eq!(w.len(), 1, "{w:#?}");
    assert_eq!((w[0].line, w[0].column), at(&text, 6, "["));
    // As the warning says, the rule never matches.
    let dir = FakeDir::standard();
    let (policy, _) = Policy::from_text(&text, &dir).expect("a policy");
    let facts = crate::Facts {
        user: "alice",
        service: "sshd",
        rhost: None,
        signals: Default::default(),
    };
    assert_eq!(
        policy.decide(facts, &dir).map(|r| r.name.as_str()),
        Some("default")
    );
    assert!(w[0].message.contains("no [host] class"), "{}", w[0]);
    assert!(w[0].hint.as_deref().is_some_and(|h| h.contains("class")));
    // Without any [host] at all, too; with a class, no warning.
    let text = format!(
        "[[rule]]\nname = \"r\"\nhost_class = [\"production\"]\nrequire = \"totp\"\n{CATCH_ALL}"
    );
    assert_eq!(warnings(&text).len(), 1);
    let text = format!(
        "[host]\nclass = \"staging\"\n[[rule]]\nname = \"r\"\nhost_class = [\"production\"]\nrequire = \"totp\"\n{CATCH_ALL}"
    );
    assert!(warnings(&text).is_empty());
}

#[test]
fn builtin_text_is_the_builtin_policy() {
    let dir = FakeDir::standard();
    let (parsed, diags) = parse(BUILTIN, &dir);
    assert!(diags.is_empty(), "{diags:#?}");
    let parsed = parsed.expect("BUILTIN parses");
    let builtin = Policy::builtin();
    assert_eq!(parsed.rules.len(), 1);
    assert_eq!(builtin.rules.len(), 1);
    let (p, b) = (&parsed.rules[0], &builtin.rules[0]);
    assert_eq!(p.name, "builtin-default");
    assert_eq!(p.name, b.name);
    assert_eq!(p.require, b.require);
    assert_eq!(p.unenrolled, b.unenrolled);
    assert_eq!(p.trusted_devices, b.trusted_devices);
    assert_eq!(p.fresh, b.fresh);
    assert!(p.when.all && b.when.all);
    assert_eq!(parsed.text, builtin.text);
    assert_eq!(parsed.sha256, builtin.sha256);
    assert_eq!(parsed.sha256.len(), 64);
    assert_eq!(parsed.host.class, builtin.host.class);
    assert_eq!(parsed.host.tags, builtin.host.tags);
    // And it decides everything the same way.
    for (user, service, rhost) in [("root", "sshd", Some("192.0.2.1")), ("dave", "login", None)] {
        let facts = crate::Facts {
            user,
            service,
            rhost,
            signals: Default::default(),
        };
        let p = parsed.decide(facts, &dir).map(|r| &r.name);
        assert_eq!(p, builtin.decide(facts, &dir).map(|r| &r.name));
        assert_eq!(p.map(String::as_str), Some("builtin-default"));
    }
}

#[test]
fn builtin_line_matches_its_text() {
    let (parsed, _) = parse(BUILTIN, &FakeDir::standard());
    let parsed = parsed.expect("BUILTIN parses");
    assert_eq!(parsed.rules[0].line, Policy::builtin().rules[0].line);
}

#[test]
fn sha256_follows_the_text() {
    let dir = FakeDir::standard();
    let a =
        format!("[[rule]]\nname = \"r\"\nservices = [\"sshd\"]\nrequire = \"totp\"\n{CATCH_ALL}");
    let b = format!("{a}# a comment changes the version\n");
    let (pa, _) = Policy::from_text(&a, &dir).expect("a");
    let (pb, _) = Policy::from_text(&b, &dir).expect("b");
    let (pa2, _) = Policy::from_text(&a, &dir).expect("a again");
    assert_eq!(pa.sha256, pa2.sha256);
    assert_ne!(pa.sha256, pb.sha256);
    // Of the exact bytes: FIPS 180-2's "abc", and "abc\n" differs.
    let sha = |t: &str| Policy::new(Default::default(), Vec::new(), t.to_owned()).sha256;
    assert_eq!(
        sha("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        sha(""),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_ne!(sha("abc\n"), sha("abc"));
}

/// `grace_until` names a day; a day that does not exist is a typo.
#[test]
fn grace_until_rejects_impossible_dates() {
    for day in ["2025-02-31", "2025-04-31", "2025-02-29"] {
        let text = format!(
            "[[rule]]\nname = \"r\"\nall = true\nrequire = \"totp\"\nunenrolled = {{ grace_until = \"{day}\" }}\n"
        );
        let errs = errors(&text);
        assert_eq!(errs.len(), 1, "{day}: {errs:#?}");
        assert_eq!(errs[0].line, 5);
    }
}

#[test]
fn grace_until_is_the_end_of_the_day() {
    let dir = FakeDir::standard();
    for (day, end) in [
        ("\"2025-06-30\"", 1_751_328_000),
        ("2025-06-30", 1_751_328_000),
        ("\"2024-02-29\"", 1_709_251_200),
    ] {
        let text = format!(
            "[[rule]]\nname = \"r\"\nall = true\nrequire = \"totp\"\nunenrolled = {{ grace_until = {day} }}\n"
        );
        let (policy, _) = Policy::from_text(&text, &dir).expect(day);
        assert_eq!(
            policy.rules[0].unenrolled,
            crate::Unenrolled::GraceUntil(end),
            "{day}"
        );
    }
}

/// A catch-all with a mistake elsewhere is still a catch-all: the rule
/// after it is shadowed, and "no catch-all" would be wrong.
#[test]
fn broken_catch_all_still_shadows() {
    let text = "[[rule]]\nname = \"default\"\nall = true\nrequire = \"push\"\n\n[[rule]]\nname = \"late\"\nservices = [\"su\"]\nrequire = \"none\"\n";
    let diags = Policy::from_text(text, &FakeDir::standard())
        .err()
        .unwrap_or_default();
    let got: Vec<(Severity, usize)> = diags.iter().map(|d| (d.severity, d.line)).collect();
    assert_eq!(
        got,
        [(Severity::Error, 4), (Severity::Error, 6)],
        "{diags:#?}"
    );
}

#[test]
fn a_sent_code_alone_for_a_privileged_service_is_warned_about() {
    let groups = "[service_groups]\nadmin = [\"pkexec\"]\n\n";
    for (services, require, warned) in [
        (r#"["sudo"]"#, r#""sms""#, true),
        (r#"["@admin"]"#, r#"{ any = ["totp", "email"] }"#, true),
        (r#"["su"]"#, r#"{ chain = ["sms", "email"] }"#, true),
        (r#"["sudo"]"#, r#"{ chain = ["totp", "sms"] }"#, false),
        (r#"["sshd"]"#, r#""sms""#, false),
        (r#"["sudo"]"#, r#""totp""#, false),
    ] {
        let text = format!(
            "{groups}[[rule]]\nname = \"r\"\nservices = {services}\nrequire = {require}\n{CATCH_ALL}"
        );
        let w = warnings(&text);
        assert_eq!(w.len(), usize::from(warned), "{services} {require}: {w:#?}");
        if warned {
            assert_eq!(w[0].line, 7, "{}", w[0]);
            assert!(w[0].message.contains("privileged service"), "{}", w[0]);
            assert!(w[0].hint.as_deref().unwrap().contains("chain"), "{}", w[0]);
        }
    }
}

/// A rule that names no service (a catch-all, or one on users or networks
/// only) covers sudo and su too, unless earlier rules always decide them.
#[test]
fn a_sent_code_alone_in_a_rule_without_services_is_warned_about() {
    let all =
        "[service_groups]\nprivileged = [\"sudo\", \"sudo-i\", \"su\", \"su-l\", \"pkexec\"]\n";
    let before = |services: &str, extra: &str| {
        format!(
            "[[rule]]\nname = \"p\"\nservices = {services}\n{extra}require = {{ chain = [\"totp\", \"sms\"] }}\n\n"
        )
    };
    for (head, rule, warned) in [
        (
            String::new(),
            "all = true\nrequire = \"sms\"",
            Some("sudo, sudo-i, su, su-l, pkexec"),
        ),
        (
            String::new(),
            "from = [\"10.0.0.0/8\"]\nrequire = { any = [\"totp\", \"email\"] }",
            Some("sudo"),
        ),
        (
            String::new(),
            "all = true\nrequire = { any = [\"totp\", \"backup\"] }",
            None,
        ),
        // Every privileged service is decided first: no warning.
        (
            format!("{all}\n{}", before("[\"@privileged\"]", "")),
            "all = true\nrequire = \"sms\"",
            None,
        ),
        // sudo alone, and only from one network: su and sudo still reach it.
        (
            before("[\"sudo\"]", "from = [\"10.0.0.0/8\"]\n"),
            "all = true\nrequire = \"sms\"",
            Some("sudo, sudo-i"),
        ),
        (
            before("[\"sudo\"]", ""),
            "all = true\nrequire = \"sms\"",
            Some("(sudo-i, su"),
        ),
    ] {
        let w = warnings(&format!("{head}[[rule]]\nname = \"r\"\n{rule}\n"));
        let sent: Vec<_> = w
            .iter()
            .filter(|d| d.message.contains("privileged service"))
            .collect();
        assert_eq!(
            sent.len(),
            usize::from(warned.is_some()),
            "{head}{rule}: {w:#?}"
        );
        if let Some(named) = warned {
            assert!(sent[0].message.contains(named), "{named}: {}", sent[0]);
        }
    }
}

#[test]
fn enrollment_at_login_is_only_for_chosen_unprivileged_services_asking_totp() {
    let ok = "[[rule]]\nname = \"ssh\"\nservices = [\"sshd\"]\nrequire = \"totp\"\nunenrolled = \"enroll\"\n";
    let policy = format!("{ok}{CATCH_ALL}");
    assert!(warnings(&policy).is_empty());
    let no_services =
        "[[rule]]\nname = \"all\"\nall = true\nrequire = \"totp\"\nunenrolled = \"enroll\"\n";
    one_error(no_services, 5, "\"enroll\"", "needs a `services` list");
    let sudo = format!(
        "[[rule]]\nname = \"s\"\nservices = [\"sshd\", \"sudo\"]\nrequire = \"totp\"\nunenrolled = \"enroll\"\n{CATCH_ALL}"
    );
    one_error(&sudo, 5, "\"enroll\"", "never allowed for sudo");
    let sms = format!(
        "[[rule]]\nname = \"s\"\nservices = [\"sshd\"]\nrequire = \"sms\"\nunenrolled = \"enroll\"\n{CATCH_ALL}"
    );
    one_error(&sms, 5, "\"enroll\"", "sets up TOTP");
}

#[test]
fn only_the_services_the_host_names_vouch_for_devices() {
    let (policy, _) = Policy::from_text(CATCH_ALL, &FakeDir::standard()).unwrap();
    assert!(policy.host.vouches_for_devices("sshd"));
    assert!(!policy.host.vouches_for_devices("sudo"));
    let text = format!("[host]\ndevice_services = [\"sshd\", \"sshd-alt\"]\n{CATCH_ALL}");
    let (policy, _) = Policy::from_text(&text, &FakeDir::standard()).unwrap();
    assert!(policy.host.vouches_for_devices("sshd-alt"));
    assert!(!policy.host.vouches_for_devices("su"));
}

#[test]
fn on_risk_says_what_happens_to_live_sessions() {
    let rule = |on_risk: &str| {
        format!(
            "[[rule]]\nname = \"ssh\"\nservices = [\"sshd\"]\nrequire = \"totp\"\n{on_risk}{CATCH_ALL}"
        )
    };
    for (line, want) in [
        ("", OnRisk::None),
        ("on_risk = \"none\"\n", OnRisk::None),
        ("on_risk = \"stepup\"\n", OnRisk::Stepup),
        ("on_risk = \"end\"\n", OnRisk::End),
    ] {
        let (policy, _) = Policy::from_text(&rule(line), &FakeDir::standard()).unwrap();
        assert_eq!(policy.rules[0].on_risk, want, "{line}");
        assert_eq!(policy.rules[1].on_risk, OnRisk::None);
    }
    let d = one_error(
        &rule("on_risk = \"kill\"\n"),
        5,
        "\"kill\"",
        "unknown `on_risk` \"kill\"",
    );
    assert!(d.hint.unwrap().contains("\"stepup\""));
    // sudo opens no session: on_risk there would never act.
    let sudo = format!(
        "[[rule]]\nname = \"s\"\nservices = [\"sudo\"]\nrequire = \"totp\"\non_risk = \"end\"\n{CATCH_ALL}"
    );
    let w = warnings(&sudo);
    assert_eq!(w.len(), 1, "{w:#?}");
    assert_eq!(
        (w[0].line, w[0].column),
        at(&sudo, 5, "\"end\""),
        "{}",
        w[0]
    );
    assert!(w[0].message.contains("no effect"), "{}", w[0]);
    assert!(warnings(&rule("on_risk = \"end\"\n")).is_empty());
    // Not a string: the TOML layer names the field and its place.
    let errs = errors(&rule("on_risk = true\n"));
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].line, 5, "{}", errs[0]);
}

#[test]
fn store_unreachable_is_deny_by_default_and_cached_only_helps_totp() {
    let rule = |require: &str, line: &str| {
        format!(
            "[[rule]]\nname = \"ssh\"\nservices = [\"sshd\"]\nrequire = {require}\n{line}{CATCH_ALL}"
        )
    };
    for (line, want) in [
        ("", StoreUnreachable::Deny),
        ("store_unreachable = \"deny\"\n", StoreUnreachable::Deny),
        ("store_unreachable = \"cached\"\n", StoreUnreachable::Cached),
    ] {
        let text = rule("{ any = [\"totp\", \"sms\"] }", line);
        let (policy, _) = Policy::from_text(&text, &FakeDir::standard()).unwrap();
        assert_eq!(policy.rules[0].store_unreachable, want, "{line}");
        assert_eq!(policy.rules[1].store_unreachable, StoreUnreachable::Deny);
        assert!(warnings(&text).is_empty(), "{line}");
    }
    let d = one_error(
        &rule("\"totp\"", "store_unreachable = \"open\"\n"),
        5,
        "\"open\"",
        "unknown `store_unreachable` \"open\"",
    );
    assert!(d.hint.unwrap().contains("\"cached\""));
    // Only a TOTP code can be checked against the cache.
    let sms = rule("\"sms\"", "store_unreachable = \"cached\"\n");
    let w = warnings(&sms);
    assert_eq!(w.len(), 1, "{w:#?}");
    assert_eq!(
        (w[0].line, w[0].column),
        at(&sms, 5, "\"cached\""),
        "{}",
        w[0]
    );
    assert!(w[0].message.contains("without \"totp\""), "{}", w[0]);
    let errs = errors(&rule("\"totp\"", "store_unreachable = 1\n"));
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].line, 5, "{}", errs[0]);
}

#[test]
fn a_totp_profile_must_exist_and_matters_for_enrollment_at_login() {
    let rule = |profile: &str, unenrolled: &str| {
        format!(
            "[[rule]]\nname = \"ssh\"\nservices = [\"sshd\"]\nrequire = \"totp\"\n{unenrolled}\
             totp_profile = \"{profile}\"\n{CATCH_ALL}"
        )
    };
    let ok = rule("strict", "unenrolled = \"enroll\"\n");
    assert!(warnings(&ok).is_empty());
    let (policy, _) = Policy::from_text(&ok, &FakeDir::standard()).unwrap();
    assert_eq!(policy.rules[0].totp_profile.as_deref(), Some("strict"));
    assert_eq!(policy.rules[1].totp_profile, None);
    one_error(
        &rule("lax", "unenrolled = \"enroll\"\n"),
        6,
        "\"lax\"",
        "no TOTP profile \"lax\"",
    );
    let idle = warnings(&rule("strict", ""));
    assert_eq!(idle.len(), 1, "{idle:#?}");
    assert!(
        idle[0].message.contains("unenrolled = \"enroll\""),
        "{}",
        idle[0]
    );
    // Away from mfad (no configuration to ask), any name is taken.
    assert!(Policy::from_text(&rule("lax", "unenrolled = \"enroll\"\n"), &crate::Nss).is_ok());
}
