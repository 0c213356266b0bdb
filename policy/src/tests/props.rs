//! Random policies and requests, checked against a naive re-implementation
//! of the conditions written here from the documented semantics (services
//! and `@groups`, users and `%groups`, CIDRs by bit arithmetic, IPv4-mapped
//! sources as IPv4, host names and local logins matching no network).

use super::FakeDir;
use crate::{Facts, Miss, Policy};
use proptest::prelude::*;
use std::net::IpAddr;

const CLASSES: [&str; 3] = ["production", "staging", "dev"];
const TAGS: [&str; 4] = ["web", "db", "eu", "us"];
/// `@privileged` = sudo, su, pkexec; `@remote` = sshd, xrdp; `@none` is empty.
const SERVICES: [&str; 8] = [
    "sshd",
    "sudo",
    "su",
    "login",
    "cron",
    "@privileged",
    "@remote",
    "@none",
];
const GROUPS: [(&str, &[&str]); 3] = [
    ("privileged", &["sudo", "su", "pkexec"]),
    ("remote", &["sshd", "xrdp"]),
    ("none", &[]),
];
const USERS: [&str; 7] = ["alice", "bob", "carol", "root", "%wheel", "%ops", "%empty"];
const NETS: [&str; 11] = [
    "10.0.0.0/8",
    "10.20.0.0/16",
    "10.20.1.0/24",
    "192.0.2.0/24",
    "198.51.100.7",
    "2001:db8::/32",
    "2001:db8:42::/48",
    "::1",
    "0.0.0.0/0",
    "::/0",
    "10.20.1.77/20",
];
const REQUIRES: [&str; 6] = [
    r#""none""#,
    r#""deny""#,
    r#""totp""#,
    r#""backup""#,
    r#"{ any = ["totp", "backup"] }"#,
    r#"{ chain = ["backup", "totp"] }"#,
];

const REQ_USERS: [&str; 8] = [
    "alice", "bob", "carol", "dave", "eve", "root", "wheel", "bobby",
];
const REQ_SERVICES: [&str; 9] = [
    "sshd", "sudo", "su", "pkexec", "login", "cron", "xrdp", "telnet", "none",
];
const HOSTNAMES: [&str; 6] = [
    "ops-gw.example.com",
    "localhost",
    "10.20.1.2.example.org",
    "[::1]",
    "10.20.1.2:22",
    "",
];

#[derive(Debug, Clone)]
struct GenRule {
    host_class: Option<Vec<usize>>,
    host_tags: Option<Vec<usize>>,
    services: Option<Vec<usize>>,
    users: Option<Vec<usize>>,
    from: Option<Vec<usize>>,
    require: usize,
}

#[derive(Debug, Clone)]
struct GenPolicy {
    class: Option<usize>,
    tags: Vec<usize>,
    /// Each rule with its original index, which is its name (`r{i}`).
    rules: Vec<(usize, GenRule)>,
    catch_all: bool,
}

#[derive(Debug, Clone)]
struct Request {
    user: &'static str,
    service: &'static str,
    rhost: Option<String>,
}

fn list(n: usize) -> impl Strategy<Value = Option<Vec<usize>>> {
    prop::option::weighted(0.35, prop::collection::vec(0..n, 1..=3))
}

fn gen_rule() -> impl Strategy<Value = GenRule> {
    (
        list(CLASSES.len()),
        list(TAGS.len()),
        list(SERVICES.len()),
        list(USERS.len()),
        list(NETS.len()),
        0..REQUIRES.len(),
        0..SERVICES.len(),
    )
        .prop_map(
            |(host_class, host_tags, services, users, from, require, fallback)| {
                let mut rule = GenRule {
                    host_class,
                    host_tags,
                    services,
                    users,
                    from,
                    require,
                };
                // A rule needs a condition; `all = true` is only the final one.
                if rule.host_class.is_none()
                    && rule.host_tags.is_none()
                    && rule.services.is_none()
                    && rule.users.is_none()
                    && rule.from.is_none()
                {
                    rule.services = Some(vec![fallback]);
                }
                rule
            },
        )
}

fn gen_policy() -> impl Strategy<Value = GenPolicy> {
    (
        prop::option::of(0..CLASSES.len()),
        prop::collection::vec(0..TAGS.len(), 0..=2),
        prop::collection::vec(gen_rule(), 1..=30),
        any::<bool>(),
    )
        .prop_map(|(class, tags, rules, catch_all)| GenPolicy {
            class,
            tags,
            rules: rules.into_iter().enumerate().collect(),
            catch_all,
        })
}

fn ipv4() -> impl Strategy<Value = u32> {
    prop_oneof![
        any::<u32>(),
        any::<u32>().prop_map(|x| 0x0a00_0000 | (x & 0x00ff_ffff)),
        any::<u32>().prop_map(|x| 0x0a14_0000 | (x & 0xffff)),
        any::<u32>().prop_map(|x| 0x0a14_0100 | (x & 0xff)),
        any::<u32>().prop_map(|x| 0xc000_0200 | (x & 0xff)),
        Just(0xc633_6407u32),
        Just(0xc633_6408u32),
    ]
}

fn rhost() -> impl Strategy<Value = Option<String>> {
    let v4 = ipv4().prop_map(|x| std::net::Ipv4Addr::from(x).to_string());
    let v6 = prop_oneof![
        any::<u128>(),
        any::<u128>().prop_map(|x| (0x2001_0db8u128 << 96) | (x & ((1 << 96) - 1))),
        any::<u128>().prop_map(|x| (0x2001_0db8_0042u128 << 80) | (x & ((1 << 80) - 1))),
        Just(1u128),
    ]
    .prop_map(|x| std::net::Ipv6Addr::from(x).to_string());
    let mapped = ipv4().prop_map(|x| std::net::Ipv4Addr::from(x).to_ipv6_mapped().to_string());
    prop_oneof![
        1 => Just(None),
        3 => v4.prop_map(Some),
        2 => v6.prop_map(Some),
        1 => mapped.prop_map(Some),
        1 => prop::sample::select(&HOSTNAMES[..]).prop_map(|h| Some(h.to_owned())),
    ]
}

fn request() -> impl Strategy<Value = Request> {
    (
        prop::sample::select(&REQ_USERS[..]),
        prop::sample::select(&REQ_SERVICES[..]),
        rhost(),
    )
        .prop_map(|(user, service, rhost)| Request {
            user,
            service,
            rhost,
        })
}

fn quoted(items: &[usize], pool: &[&str]) -> String {
    let items: Vec<String> = items.iter().map(|&i| format!("{:?}", pool[i])).collect();
    format!("[{}]", items.join(", "))
}

fn render(p: &GenPolicy) -> String {
    let mut t = String::new();
    if p.class.is_some() || !p.tags.is_empty() {
        t.push_str("[host]\n");
        if let Some(c) = p.class {
            t.push_str(&format!("class = {:?}\n", CLASSES[c]));
        }
        t.push_str(&format!("tags = {}\n", quoted(&p.tags, &TAGS)));
    }
    t.push_str("\n[service_groups]\n");
    for (name, members) in GROUPS {
        let members: Vec<String> = members.iter().map(|m| format!("{m:?}")).collect();
        t.push_str(&format!("{name} = [{}]\n", members.join(", ")));
    }
    for (i, r) in &p.rules {
        t.push_str(&format!("\n[[rule]]\nname = \"r{i}\"\n"));
        let fields = [
            ("host_class", &r.host_class, &CLASSES[..]),
            ("host_tags", &r.host_tags, &TAGS[..]),
            ("services", &r.services, &SERVICES[..]),
            ("users", &r.users, &USERS[..]),
            ("from", &r.from, &NETS[..]),
        ];
        for (key, items, pool) in fields {
            if let Some(items) = items {
                t.push_str(&format!("{key} = {}\n", quoted(items, pool)));
            }
        }
        t.push_str(&format!("require = {}\n", REQUIRES[r.require]));
    }
    if p.catch_all {
        t.push_str("\n[[rule]]\nname = \"default\"\nall = true\nrequire = \"totp\"\n");
    }
    t
}

/// An address as (is IPv4, bits), IPv4-mapped IPv6 counted as IPv4.
fn addr(s: &str) -> Option<(bool, u128)> {
    match s.parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => Some((true, u128::from(u32::from(v4)))),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            if bits >> 32 == 0xffff {
                Some((true, bits & 0xffff_ffff))
            } else {
                Some((false, bits))
            }
        }
    }
}

/// Whether `net` (a pool entry: CIDR or single address) holds `ip`.
fn net_contains(net: &str, ip: (bool, u128)) -> bool {
    let (a, prefix) = net.split_once('/').unwrap_or((net, ""));
    let v4 = !a.contains(':');
    let width: u32 = if v4 { 32 } else { 128 };
    let prefix: u32 = if prefix.is_empty() {
        width
    } else {
        prefix.parse().expect("pool prefix")
    };
    let bits = match a.parse::<IpAddr>().expect("pool address") {
        IpAddr::V4(x) => u128::from(u32::from(x)),
        IpAddr::V6(x) => u128::from(x),
    };
    if ip.0 != v4 {
        return false;
    }
    let shift = width - prefix;
    shift == width || (ip.1 ^ bits) >> shift == 0
}

/// The conditions of `r` that do not hold (empty: the rule matches).
fn naive_misses(p: &GenPolicy, r: &GenRule, q: &Request, dir: &FakeDir) -> Vec<Miss> {
    let mut misses = Vec::new();
    if let Some(classes) = &r.host_class
        && !classes.iter().any(|&c| p.class == Some(c))
    {
        misses.push(Miss::HostClass);
    }
    if let Some(tags) = &r.host_tags
        && !tags.iter().any(|t| p.tags.contains(t))
    {
        misses.push(Miss::HostTags);
    }
    if let Some(services) = &r.services
        && !services
            .iter()
            .any(|&s| match SERVICES[s].strip_prefix('@') {
                Some(g) => GROUPS
                    .iter()
                    .any(|(name, members)| *name == g && members.contains(&q.service)),
                None => SERVICES[s] == q.service,
            })
    {
        misses.push(Miss::Service);
    }
    if let Some(users) = &r.users
        && !users.iter().any(|&u| match USERS[u].strip_prefix('%') {
            Some(g) => dir.member(q.user, g),
            None => USERS[u] == q.user,
        })
    {
        misses.push(Miss::User);
    }
    if let Some(nets) = &r.from {
        let ip = q.rhost.as_deref().and_then(addr);
        if !ip.is_some_and(|ip| nets.iter().any(|&n| net_contains(NETS[n], ip))) {
            misses.push(Miss::Network);
        }
    }
    misses
}

/// The name of the first rule the naive matcher accepts.
fn naive_decide(p: &GenPolicy, q: &Request, dir: &FakeDir) -> Option<String> {
    p.rules
        .iter()
        .find(|(_, r)| naive_misses(p, r, q, dir).is_empty())
        .map(|(i, _)| format!("r{i}"))
        .or_else(|| p.catch_all.then(|| "default".to_owned()))
}

fn load(p: &GenPolicy, dir: &FakeDir) -> Option<Policy> {
    Policy::from_text(&render(p), dir)
        .ok()
        .map(|(policy, _)| policy)
}

fn facts(q: &Request) -> Facts<'_> {
    Facts {
        user: q.user,
        service: q.service,
        rhost: q.rhost.as_deref(),
        signals: Default::default(),
    }
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        // No proptest-regressions files in the source tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// (a) `decide` returns the first rule the naive matcher accepts, None
    /// only when none does, and never None with a trailing catch-all.
    #[test]
    fn decide_is_the_first_naive_match(
        p in gen_policy(),
        requests in prop::collection::vec(request(), 1..16),
    ) {
        let dir = FakeDir::standard();
        let policy = load(&p, &dir);
        prop_assume!(policy.is_some());
        let policy = policy.expect("assumed");
        let names: Vec<&str> = policy.rules.iter().map(|r| r.name.as_str()).collect();
        prop_assert_eq!(names.len(), p.rules.len() + usize::from(p.catch_all));
        for q in &requests {
            dir.take_lookups();
            let got = policy.decide(facts(q), &dir).map(|r| r.name.clone());
            prop_assert!(dir.take_lookups() <= 1, "groups looked up more than once");
            let expected = naive_decide(&p, q, &dir);
            prop_assert_eq!(&got, &expected, "request {:?}\n{}", q, render(&p));
            if p.catch_all {
                prop_assert!(got.is_some());
            }
        }
    }

    /// (b) `explain` lists exactly the rules up to the decision: the last
    /// with no miss, every earlier one with a miss that really fails.
    #[test]
    fn explain_agrees_with_decide(
        p in gen_policy(),
        requests in prop::collection::vec(request(), 1..16),
    ) {
        let dir = FakeDir::standard();
        let policy = load(&p, &dir);
        prop_assume!(policy.is_some());
        let policy = policy.expect("assumed");
        for q in &requests {
            let decided = policy.decide(facts(q), &dir);
            let explained = policy.explain(facts(q), &dir);
            let upto = decided.map_or(policy.rules.len(), |d| {
                policy.rules.iter().position(|r| std::ptr::eq(r, d)).expect("a rule of the policy") + 1
            });
            prop_assert_eq!(explained.len(), upto, "request {:?}", q);
            for (k, ((rule, miss), expected)) in explained.iter().zip(&policy.rules).enumerate() {
                prop_assert!(std::ptr::eq(*rule, expected), "entry {} is {}", k, rule.name);
                let last = decided.is_some() && k + 1 == explained.len();
                if last {
                    prop_assert_eq!(*miss, None);
                } else {
                    let miss = miss.expect("a miss before the decision");
                    // The catch-all never misses; the others are p.rules[k].
                    let (_, generated) = &p.rules[k];
                    let failing = naive_misses(&p, generated, q, &dir);
                    prop_assert!(failing.contains(&miss), "{} said {:?}, naive {:?} for {:?}", rule.name, miss, failing, q);
                }
            }
        }
    }

    /// (c) Deterministic, and indifferent to the order of, or the presence
    /// of, the rules after the decision.
    #[test]
    fn later_rules_do_not_matter(
        p in gen_policy(),
        requests in prop::collection::vec(request(), 1..8),
        keys in prop::collection::vec(any::<u32>(), 30),
    ) {
        let dir = FakeDir::standard();
        let policy = load(&p, &dir);
        prop_assume!(policy.is_some());
        let policy = policy.expect("assumed");
        for q in &requests {
            let first = policy.decide(facts(q), &dir).map(|r| r.name.clone());
            for _ in 0..3 {
                prop_assert_eq!(policy.decide(facts(q), &dir).map(|r| r.name.clone()), first.clone());
            }
            let reparsed = load(&p, &dir).expect("the same text parses again");
            prop_assert_eq!(reparsed.decide(facts(q), &dir).map(|r| r.name.clone()), first.clone());

            // The index of the deciding generated rule; the length if the
            // catch-all or nothing decided.
            let k = p.rules.iter().position(|(i, _)| first.as_deref() == Some(format!("r{i}").as_str()))
                .unwrap_or(p.rules.len());
            // When no generated rule decided, none matches: shuffle them all.
            let (head, tail) = p.rules.split_at(if k < p.rules.len() { k + 1 } else { 0 });
            let mut tail = tail.to_vec();
            tail.sort_by_key(|(i, _)| keys[*i % keys.len()]);
            let mut shuffled = p.clone();
            shuffled.rules = head.iter().cloned().chain(tail).collect();
            let shuffled_policy = load(&shuffled, &dir).expect("a permutation stays valid");
            prop_assert_eq!(
                shuffled_policy.decide(facts(q), &dir).map(|r| r.name.clone()),
                first.clone(),
                "request {:?}\n{}", q, render(&shuffled)
            );
            // Dropping every rule after the deciding one changes nothing
            // either (the catch-all stays if it decided).
            if k < p.rules.len() {
                let mut truncated = p.clone();
                truncated.rules.truncate(k + 1);
                truncated.catch_all = false;
                let truncated_policy = load(&truncated, &dir).expect("a prefix stays valid");
                prop_assert_eq!(
                    truncated_policy.decide(facts(q), &dir).map(|r| r.name.clone()),
                    first.clone()
                );
            }
        }
    }
}

/// The naive matcher itself, on a few known cases.
#[test]
fn naive_networks() {
    let v4 = |s: &str| addr(s).expect("an address");
    assert!(net_contains("10.20.0.0/16", v4("10.20.255.1")));
    assert!(!net_contains("10.20.0.0/16", v4("10.21.0.1")));
    assert!(net_contains("10.20.0.0/16", v4("::ffff:10.20.0.1")));
    assert!(net_contains("10.20.1.77/20", v4("10.20.15.255")));
    assert!(!net_contains("10.20.1.77/20", v4("10.20.16.0")));
    assert!(net_contains("0.0.0.0/0", v4("255.255.255.255")));
    assert!(!net_contains("0.0.0.0/0", v4("::1")));
    assert!(net_contains("::/0", v4("::1")));
    assert!(!net_contains("::/0", v4("1.2.3.4")));
    assert!(net_contains("198.51.100.7", v4("198.51.100.7")));
    assert!(!net_contains("198.51.100.7", v4("198.51.100.8")));
    assert!(net_contains("2001:db8:42::/48", v4("2001:db8:42:ffff::1")));
    assert!(!net_contains("2001:db8:42::/48", v4("2001:db8:43::1")));
    assert!(net_contains("::1", v4("::1")));
    assert!(addr("ops-gw.example.com").is_none());
    assert!(addr("[::1]").is_none());
}
