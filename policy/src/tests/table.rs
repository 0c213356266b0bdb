//! Rules × requests → the deciding rule and what it requires.

use super::FakeDir;
use crate::{Factor, Facts, Miss, Policy, Requirement, Severity, TrustedDevices, Unenrolled, Why};
use std::time::Duration;

/// Modelled on DESIGN.md's example. `{CLASS}` and `{TAGS}` are filled in per
/// host; `{DEFAULT}` is the catch-all or nothing.
const TEMPLATE: &str = r#"# A production-like policy (see DESIGN.md, "Policy").
[host]
class = "{CLASS}"
tags = [{TAGS}]

[service_groups]
privileged = ["sudo", "su", "pkexec"]

[[rule]]
name = "intranet-none"
services = ["intranet-app"]
require = "none"
unenrolled = "allow"

[[rule]]
name = "telnet-deny"
services = ["telnet"]
require = "deny"

[[rule]]
name = "ops-network-staging"
host_class = ["staging"]
services = ["sshd"]
from = ["10.20.0.0/16"]
require = "none"

[[rule]]
name = "prod-privileged"
host_class = ["production"]
services = ["@privileged"]
require = { chain = ["totp", "backup"] }
fresh = { totp = "8h", backup = "0s" }
trusted_devices = false

[[rule]]
name = "admins-v6"
users = ["alice", "%wheel"]
from = ["2001:db8:42::/48"]
require = { any = ["totp", "backup"] }

[[rule]]
name = "ops-office"
services = ["sshd"]
users = ["%ops"]
from = ["192.0.2.0/24", "198.51.100.7"]
require = { any = ["backup"] }

[[rule]]
name = "eu-cron"
host_tags = ["eu", "apac"]
services = ["cron"]
require = "none"

[[rule]]
name = "sshd-totp"
services = ["sshd"]
require = "totp"
trusted_devices = { days = 30 }
{DEFAULT}"#;

const DEFAULT_RULE: &str = r#"
[[rule]]
name = "default"
all = true
require = { any = ["backup", "totp"] }
unenrolled = "deny"
"#;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Host {
    /// class production, tags eu and web, with the catch-all.
    Prod,
    /// class staging, tag us, with the catch-all.
    Staging,
    /// Prod without the catch-all.
    ProdOpen,
}

fn text(host: Host) -> String {
    let (class, tags, default) = match host {
        Host::Prod => ("production", r#""eu", "web""#, DEFAULT_RULE),
        Host::Staging => ("staging", r#""us""#, DEFAULT_RULE),
        Host::ProdOpen => ("production", r#""eu", "web""#, ""),
    };
    TEMPLATE
        .replace("{CLASS}", class)
        .replace("{TAGS}", tags)
        .replace("{DEFAULT}", default)
}

fn load(host: Host, dir: &FakeDir) -> Policy {
    match Policy::from_text(&text(host), dir) {
        Ok((policy, warnings)) => {
            let expected = usize::from(host == Host::ProdOpen);
            assert_eq!(warnings.len(), expected, "{host:?}: {warnings:?}");
            assert!(warnings.iter().all(|w| w.severity == Severity::Warning));
            policy
        }
        Err(d) => panic!("{host:?} does not parse: {d:#?}"),
    }
}

fn totp() -> Requirement {
    Requirement::Any(vec![Factor::Totp])
}

fn chain() -> Requirement {
    Requirement::Chain(vec![Factor::Totp, Factor::Backup])
}

fn both() -> Requirement {
    Requirement::Any(vec![Factor::Totp, Factor::Backup])
}

fn backup() -> Requirement {
    Requirement::Any(vec![Factor::Backup])
}

fn default() -> Requirement {
    Requirement::Any(vec![Factor::Backup, Factor::Totp])
}

use Host::{Prod, ProdOpen, Staging};

type Row = (
    Host,
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<(&'static str, Requirement)>,
);

/// (host, user, service, rhost) → (rule, requirement), or `None` for no match.
#[rustfmt::skip]
fn rows() -> Vec<Row> {
    vec![
        // A low-risk service needs nothing, from anywhere, for anyone.
        (Prod, "alice", "intranet-app", None, Some(("intranet-none", Requirement::None))),
        (Prod, "mallory", "intranet-app", Some("203.0.113.9"), Some(("intranet-none", Requirement::None))),
        // A service that is denied outright, even from the ops network.
        (Prod, "alice", "telnet", Some("10.20.1.2"), Some(("telnet-deny", Requirement::Deny))),
        (Staging, "bob", "telnet", Some("10.20.1.2"), Some(("telnet-deny", Requirement::Deny))),
        // sshd from the ops network on staging needs nothing...
        (Staging, "bob", "sshd", Some("10.20.1.2"), Some(("ops-network-staging", Requirement::None))),
        (Staging, "dave", "sshd", Some("10.20.0.0"), Some(("ops-network-staging", Requirement::None))),
        (Staging, "dave", "sshd", Some("10.20.255.255"), Some(("ops-network-staging", Requirement::None))),
        // ...an IPv4-mapped IPv6 source counts as its IPv4 address...
        (Staging, "dave", "sshd", Some("::ffff:10.20.1.2"), Some(("ops-network-staging", Requirement::None))),
        (Staging, "dave", "sshd", Some("::FFFF:10.20.77.1"), Some(("ops-network-staging", Requirement::None))),
        // ...but just outside the network, a host name, a local login, an
        // IPv4-compatible (not mapped) address or the same network on
        // production fall through to TOTP.
        (Staging, "dave", "sshd", Some("10.19.255.255"), Some(("sshd-totp", totp()))),
        (Staging, "dave", "sshd", Some("10.21.0.0"), Some(("sshd-totp", totp()))),
        (Staging, "dave", "sshd", Some("ops-gw.example.com"), Some(("sshd-totp", totp()))),
        (Staging, "dave", "sshd", Some("10.20.1.2.example.com"), Some(("sshd-totp", totp()))),
        (Staging, "dave", "sshd", None, Some(("sshd-totp", totp()))),
        (Staging, "dave", "sshd", Some("::10.20.1.2"), Some(("sshd-totp", totp()))),
        (Prod, "dave", "sshd", Some("10.20.1.2"), Some(("sshd-totp", totp()))),
        // @privileged on production: a chain of two factors.
        (Prod, "dave", "sudo", None, Some(("prod-privileged", chain()))),
        (Prod, "dave", "su", Some("10.20.1.2"), Some(("prod-privileged", chain()))),
        (Prod, "alice", "pkexec", Some("2001:db8:42::1"), Some(("prod-privileged", chain()))),
        (Prod, "dave", "sudoedit", None, Some(("default", default()))),
        (Staging, "dave", "sudo", None, Some(("default", default()))),
        // users = ["alice", "%wheel"] from an IPv6 network.
        (Prod, "alice", "sshd", Some("2001:db8:42::1"), Some(("admins-v6", both()))),
        (Prod, "carol", "sshd", Some("2001:db8:42:ffff:ffff:ffff:ffff:ffff"), Some(("admins-v6", both()))),
        (Prod, "alice", "login", Some("2001:DB8:42::beef"), Some(("admins-v6", both()))),
        (Prod, "carol", "sshd", Some("2001:db8:43::1"), Some(("sshd-totp", totp()))),
        (Prod, "bob", "sshd", Some("2001:db8:42::1"), Some(("sshd-totp", totp()))),
        (Prod, "ALICE", "sshd", Some("2001:db8:42::1"), Some(("sshd-totp", totp()))),
        (Prod, "alice2", "sshd", Some("2001:db8:42::1"), Some(("sshd-totp", totp()))),
        (Prod, "wheel", "sshd", Some("2001:db8:42::1"), Some(("sshd-totp", totp()))),
        (Prod, "alice", "sshd", Some("192.0.2.1"), Some(("sshd-totp", totp()))),
        (Prod, "alice", "login", None, Some(("default", default()))),
        // %ops from a list of networks, one of them a single address.
        (Prod, "bob", "sshd", Some("192.0.2.200"), Some(("ops-office", backup()))),
        (Prod, "carol", "sshd", Some("198.51.100.7"), Some(("ops-office", backup()))),
        (Prod, "bob", "sshd", Some("::ffff:192.0.2.5"), Some(("ops-office", backup()))),
        (Prod, "bob", "sshd", Some("198.51.100.8"), Some(("sshd-totp", totp()))),
        (Prod, "alice", "sshd", Some("192.0.2.200"), Some(("sshd-totp", totp()))),
        (Prod, "bob", "login", Some("192.0.2.200"), Some(("default", default()))),
        // Host tags: any one listed tag is enough.
        (Prod, "eve", "cron", None, Some(("eu-cron", Requirement::None))),
        (Staging, "eve", "cron", None, Some(("default", default()))),
        // Names are compared exactly.
        (Prod, "alice", "SSHD", None, Some(("default", default()))),
        (Prod, "dave", "sshd-extra", None, Some(("default", default()))),
        (Prod, "", "", None, Some(("default", default()))),
        // Without the catch-all, a login that matches nothing has no rule.
        (ProdOpen, "dave", "login", None, None),
        (ProdOpen, "alice", "login", Some("192.0.2.1"), None),
        (ProdOpen, "alice", "sudoedit", Some("2001:db8::1"), None),
        (ProdOpen, "dave", "sshd", None, Some(("sshd-totp", totp()))),
        (ProdOpen, "dave", "intranet-app", None, Some(("intranet-none", Requirement::None))),
    ]
}

#[test]
fn table() {
    let dir = FakeDir::standard();
    let policies = [
        (Prod, load(Prod, &dir)),
        (Staging, load(Staging, &dir)),
        (ProdOpen, load(ProdOpen, &dir)),
    ];
    let rows = rows();
    assert!(rows.len() >= 25);
    let mut failures = Vec::new();
    for (i, (host, user, service, rhost, expected)) in rows.into_iter().enumerate() {
        let policy = &policies.iter().find(|(h, _)| *h == host).expect("policy").1;
        let facts = Facts {
            user,
            service,
            rhost,
            signals: Default::default(),
        };
        let got = policy
            .decide(facts, &dir)
            .map(|r| (r.name.as_str(), r.require.clone()));
        if got != expected {
            failures.push(format!(
                "row {i}: {host:?} {facts:?}: expected {expected:?}, got {got:?}"
            ));
        }
        // explain ends with the same decision, or misses every rule.
        let explained = policy.explain(facts, &dir);
        let consistent = match &got {
            Some((name, _)) => explained
                .last()
                .is_some_and(|(r, m)| r.name == *name && m.is_none()),
            None => {
                explained.len() == policy.rules.len() && explained.iter().all(|(_, m)| m.is_some())
            }
        };
        if !consistent {
            failures.push(format!("row {i}: explain disagrees: {explained:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn rule_settings_are_read() {
    let dir = FakeDir::standard();
    let policy = load(Prod, &dir);
    let rule = |name: &str| {
        policy
            .rules
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("no rule {name}"))
    };
    assert_eq!(policy.host.class.as_deref(), Some("production"));
    assert_eq!(policy.host.tags, ["eu", "web"]);
    let names: Vec<&str> = policy.rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "intranet-none",
            "telnet-deny",
            "ops-network-staging",
            "prod-privileged",
            "admins-v6",
            "ops-office",
            "eu-cron",
            "sshd-totp",
            "default"
        ]
    );
    let lines: Vec<usize> = policy.rules.iter().map(|r| r.line).collect();
    assert_eq!(lines, [10, 16, 21, 28, 36, 42, 49, 55, 61]);
    let p = rule("prod-privileged");
    let mut fresh = p.fresh.clone();
    fresh.sort_unstable();
    assert_eq!(
        fresh,
        [
            (Factor::Totp, Duration::from_secs(8 * 3600)),
            (Factor::Backup, Duration::ZERO)
        ]
    );
    assert_eq!(p.trusted_devices, TrustedDevices::Forbidden);
    assert_eq!(p.unenrolled, Unenrolled::Deny);
    let services = &p.when.services.as_ref().expect("services").0;
    let mut expanded: Vec<&str> = services.iter().map(String::as_str).collect();
    expanded.sort_unstable();
    assert_eq!(expanded, ["pkexec", "su", "sudo"]);
    assert_eq!(rule("intranet-none").unenrolled, Unenrolled::Allow);
    assert_eq!(rule("sshd-totp").trusted_devices, TrustedDevices::Days(30));
    assert!(rule("default").when.all);
    assert_eq!(
        rule("ops-office")
            .when
            .from
            .as_ref()
            .expect("from")
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["192.0.2.0/24", "198.51.100.7/32"]
    );
    assert_eq!(chain().describe(), "chain [totp, backup]");
    assert_eq!(default().describe(), "any of [backup, totp]");
    assert_eq!(totp().describe(), "totp");
}

/// What `explain` says about each rule before the decision, and `Why` in words.
#[test]
fn explain_names_the_failed_condition() {
    let dir = FakeDir::standard();
    let staging = load(Staging, &dir);
    let why = |policy: &Policy, facts: Facts<'_>| -> Vec<(String, Option<Miss>, String)> {
        policy
            .explain(facts, &dir)
            .into_iter()
            .map(|(rule, miss)| {
                let text = miss.map_or(String::new(), |miss| {
                    Why {
                        rule,
                        host: &policy.host,
                        facts,
                        miss,
                    }
                    .to_string()
                });
                (rule.name.clone(), miss, text)
            })
            .collect()
    };
    let got = why(
        &staging,
        Facts {
            user: "alice",
            service: "sshd",
            rhost: Some("ops-gw.example.com"),
            signals: Default::default(),
        },
    );
    let summary: Vec<(&str, Option<Miss>)> = got.iter().map(|(n, m, _)| (n.as_str(), *m)).collect();
    assert_eq!(
        summary,
        [
            ("intranet-none", Some(Miss::Service)),
            ("telnet-deny", Some(Miss::Service)),
            ("ops-network-staging", Some(Miss::Network)),
            ("prod-privileged", Some(Miss::HostClass)),
            ("admins-v6", Some(Miss::Network)),
            ("ops-office", Some(Miss::User)),
            ("eu-cron", Some(Miss::HostTags)),
            ("sshd-totp", None),
        ]
    );
    assert_eq!(got[0].2, r#"service "sshd" is not in ["intranet-app"]"#);
    assert_eq!(
        got[2].2,
        r#"source "ops-gw.example.com" is a host name, which never matches a network"#
    );
    assert_eq!(got[3].2, r#"host class "staging" is not in ["production"]"#);
    assert_eq!(
        got[5].2,
        r#"user "alice" is neither listed nor in a listed group of ["%ops"]"#
    );
    assert_eq!(got[6].2, r#"host tags ["us"] share none of ["eu", "apac"]"#);

    let local = why(
        &staging,
        Facts {
            user: "alice",
            service: "sshd",
            rhost: None,
            signals: Default::default(),
        },
    );
    assert_eq!(
        local[2].2,
        "the login is local (no remote host), which matches no network"
    );
    let outside = why(
        &staging,
        Facts {
            user: "alice",
            service: "sshd",
            rhost: Some("10.21.0.1"),
            signals: Default::default(),
        },
    );
    assert_eq!(
        outside[2].2,
        r#"source 10.21.0.1 is not in ["10.20.0.0/16"]"#
    );
    let privileged = why(
        &load(Prod, &dir),
        Facts {
            user: "dave",
            service: "login",
            rhost: None,
            signals: Default::default(),
        },
    );
    assert_eq!(
        privileged[3].2,
        r#"service "login" is not in ["@privileged"]"#
    );
    assert_eq!(privileged.last().map(|l| l.0.as_str()), Some("default"));
    assert!(
        privileged[..privileged.len() - 1]
            .iter()
            .all(|l| l.1.is_some())
    );
}

/// Group membership is looked up only when a rule with `%group` is
/// consulted, and at most once per decision.
#[test]
fn groups_are_looked_up_lazily_and_once() {
    let dir = FakeDir::standard();
    let policy = load(Prod, &dir);
    dir.take_lookups();
    let cases = [
        // telnet-deny decides before any %group rule.
        ("dave", "telnet", None, 0),
        // alice is listed by name in admins-v6 (no lookup needed there),
        // its network misses, then ops-office asks for %ops: one lookup.
        ("alice", "sshd", Some("192.0.2.1"), 1),
        // admins-v6 (%wheel) and ops-office (%ops): still one lookup.
        ("bob", "sshd", Some("192.0.2.1"), 1),
        ("dave", "login", None, 1),
        ("dave", "sudo", None, 0),
    ];
    for (user, service, rhost, lookups) in cases {
        let facts = Facts {
            user,
            service,
            rhost,
            signals: Default::default(),
        };
        policy.decide(facts, &dir);
        assert_eq!(dir.take_lookups(), lookups, "decide {facts:?}");
        policy.explain(facts, &dir);
        assert_eq!(dir.take_lookups(), lookups, "explain {facts:?}");
    }
}

/// A `from` entry written as an IPv4-mapped IPv6 address or network: the
/// rhost is compared as IPv4, so the entry should match the same sources.
#[test]
fn mapped_network_in_from_matches_its_ipv4_sources() {
    let dir = FakeDir::standard();
    let text = r#"
[[rule]]
name = "mapped"
from = ["::ffff:10.20.0.0/112", "::ffff:192.0.2.7"]
require = "none"

[[rule]]
name = "default"
all = true
require = "totp"
"#;
    let (policy, _) = Policy::from_text(text, &dir).expect("parses");
    for rhost in [
        "10.20.1.2",
        "::ffff:10.20.1.2",
        "192.0.2.7",
        "::ffff:192.0.2.7",
    ] {
        let facts = Facts {
            user: "dave",
            service: "sshd",
            rhost: Some(rhost),
            signals: Default::default(),
        };
        assert_eq!(
            policy.decide(facts, &dir).map(|r| r.name.as_str()),
            Some("mapped"),
            "{rhost}"
        );
    }
}
