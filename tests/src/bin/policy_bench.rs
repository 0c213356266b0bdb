//! `policy_bench`: how long the policy engine takes to decide a login. Run
//! by `sudo scripts/bench` after the PAM benchmark; needs nothing but CPU.
//!
//! It builds a 200-rule policy with varied conditions (services and
//! `@groups`, users and `%groups`, lists of IPv4 and IPv6 networks, host
//! class and tags), then times `Policy::decide` and `Policy::explain` in
//! batches for the best case (the first rule decides), the realistic worst
//! case (the deciding rule is near the end) and a login that no rule
//! matches before the final catch-all. Group membership comes from an
//! in-memory directory, so NSS (which the daemon calls at most once per
//! decision) is not part of the figure. Every decision is checked once
//! before timing; a wrong one makes the exit status 1. There is no
//! threshold.

use mfad_policy::{Directory, Facts, Policy, Severity, Signals};
use std::collections::HashMap;
use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

const RULES: usize = 200;
const WARMUP: usize = 20_000;
const BATCH: usize = 1_000;
const BATCHES: usize = 200;
const EXPLAIN_BATCHES: usize = 50;
const PARSES: usize = 50;

/// Users in a dozen groups each, as on a real LDAP-backed host.
struct Dir {
    groups: HashMap<String, Vec<String>>,
}

impl Dir {
    fn new() -> Self {
        let mut groups = HashMap::new();
        let mut add = |user: &str, extra: &[&str]| {
            let mut g: Vec<String> = (0..10).map(|i| format!("staff{i}")).collect();
            g.push(user.to_owned());
            g.extend(extra.iter().map(|s| (*s).to_owned()));
            groups.insert(user.to_owned(), g);
        };
        add("alice", &["admins"]);
        add("bob", &["developers"]);
        Self { groups }
    }
}

impl Directory for Dir {
    fn groups_of(&self, user: &str) -> Vec<String> {
        self.groups.get(user).cloned().unwrap_or_default()
    }

    fn group_exists(&self, group: &str) -> bool {
        group.starts_with("team")
            || group.starts_with("staff")
            || ["admins", "developers"].contains(&group)
    }
}

/// 199 rules of five kinds that the timed logins miss at different
/// conditions, then `near-end` (rule 199), then the catch-all (rule 200).
fn policy_text() -> String {
    let mut t = String::from(
        "[host]\nclass = \"production\"\ntags = [\"web\", \"eu\", \"pci\"]\n\n[service_groups]\n",
    );
    for g in 0..10 {
        t.push_str(&format!(
            "grp{g} = [\"app{g}a\", \"app{g}b\", \"app{g}c\", \"sudo{g}\"]\n"
        ));
    }
    t.push_str("privileged = [\"sudo\", \"su\", \"pkexec\"]\n");
    for i in 0..RULES - 2 {
        t.push_str(&format!("\n[[rule]]\nname = \"rule-{i}\"\n"));
        let (a, b) = (i / 256, i % 256);
        match i % 5 {
            0 => t.push_str(&format!("services = [\"svc{i}\", \"svc{i}-admin\", \"@grp{}\"]\n", i % 10)),
            1 => t.push_str(&format!(
                "host_class = [\"production\", \"staging\"]\nservices = [\"@grp{}\", \"@privileged\"]\nusers = [\"user{i}\", \"%team{}\"]\n",
                i % 10,
                i % 20
            )),
            2 => t.push_str(&format!(
                "services = [\"sshd\", \"login\"]\nusers = [\"user{i}\", \"op{i}\", \"%team{}\", \"%team{}\"]\n",
                i % 20,
                (i + 7) % 20
            )),
            3 => t.push_str(&format!(
                "services = [\"sshd\", \"sudo\"]\nfrom = [\"10.{a}.{b}.0/24\", \"172.16.{b}.0/24\", \"192.168.{b}.0/24\", \"2001:db8:{i:x}::/48\", \"fd00:{i:x}::/32\"]\n"
            )),
            _ => t.push_str(&format!(
                "host_tags = [\"eu\", \"tag{i}\"]\nusers = [\"%team{}\", \"%staff3\"]\nfrom = [\"10.{a}.{b}.0/24\", \"100.64.{b}.0/24\", \"2001:db8:{i:x}::/48\"]\n",
                i % 20
            )),
        }
        let require = [
            "\"totp\"",
            "{ any = [\"totp\", \"backup\"] }",
            "{ chain = [\"totp\", \"backup\"] }",
            "\"none\"",
        ][i % 4];
        t.push_str(&format!("require = {require}\n"));
    }
    t.push_str(
        "\n[[rule]]\nname = \"near-end\"\nservices = [\"sshd\"]\nusers = [\"%admins\"]\nfrom = [\"203.0.113.0/24\", \"2001:db8:ffff::/48\"]\nrequire = { chain = [\"totp\", \"backup\"] }\n",
    );
    t.push_str("\n[[rule]]\nname = \"default\"\nall = true\nrequire = \"totp\"\n");
    t
}

struct Case {
    label: &'static str,
    facts: Facts<'static>,
    expect: &'static str,
}

const CASES: [Case; 4] = [
    Case {
        label: "best: the first rule decides",
        facts: Facts {
            user: "bob",
            service: "svc0",
            rhost: Some("198.51.100.1"),
            signals: Signals {
                new_network: false,
                new_country: false,
            },
        },
        expect: "rule-0",
    },
    Case {
        label: "worst: rule 199 of 200 decides",
        facts: Facts {
            user: "alice",
            service: "sshd",
            rhost: Some("203.0.113.77"),
            signals: Signals {
                new_network: false,
                new_country: false,
            },
        },
        expect: "near-end",
    },
    Case {
        label: "worst, IPv6 source",
        facts: Facts {
            user: "alice",
            service: "sshd",
            rhost: Some("2001:db8:ffff::17"),
            signals: Signals {
                new_network: false,
                new_country: false,
            },
        },
        expect: "near-end",
    },
    Case {
        label: "no rule matches: the catch-all",
        facts: Facts {
            user: "bob",
            service: "sshd",
            rhost: Some("198.51.100.1"),
            signals: Signals {
                new_network: false,
                new_country: false,
            },
        },
        expect: "default",
    },
];

/// Median and 99th percentile of per-batch ns per call.
fn time(batches: usize, mut call: impl FnMut()) -> (f64, f64) {
    for _ in 0..WARMUP {
        call();
    }
    let mut per_call: Vec<f64> = (0..batches)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..BATCH {
                call();
            }
            start.elapsed().as_nanos() as f64 / BATCH as f64
        })
        .collect();
    per_call.sort_by(f64::total_cmp);
    let at = |q: f64| per_call[((per_call.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

fn main() -> ExitCode {
    let dir = Dir::new();
    let text = policy_text();
    let policy = match Policy::from_text(&text, &dir) {
        Ok((policy, warnings)) => {
            if let Some(w) = warnings.iter().find(|w| w.severity == Severity::Warning) {
                eprintln!("policy_bench: unexpected warning: {w}");
                return ExitCode::FAILURE;
            }
            policy
        }
        Err(diags) => {
            for d in diags {
                eprintln!("policy_bench: {d}");
            }
            return ExitCode::FAILURE;
        }
    };
    if policy.rules.len() != RULES {
        eprintln!(
            "policy_bench: {} rules, expected {RULES}",
            policy.rules.len()
        );
        return ExitCode::FAILURE;
    }
    let mut ok = true;
    for case in &CASES {
        let got = policy.decide(case.facts, &dir).map(|r| r.name.as_str());
        let explained = policy.explain(case.facts, &dir);
        if got != Some(case.expect) || explained.last().map(|(r, _)| r.name.as_str()) != got {
            eprintln!(
                "policy_bench: {}: decided {got:?}, expected {:?}",
                case.label, case.expect
            );
            ok = false;
        }
    }
    if !ok {
        return ExitCode::FAILURE;
    }

    let parse = {
        let mut samples: Vec<f64> = (0..PARSES)
            .map(|_| {
                let start = Instant::now();
                black_box(Policy::from_text(black_box(&text), &dir).is_ok());
                start.elapsed().as_nanos() as f64 / 1000.0
            })
            .collect();
        samples.sort_by(f64::total_cmp);
        samples[samples.len() / 2]
    };

    println!();
    println!(
        "policy engine: {RULES} rules ({} bytes), {} decisions per case in batches of {BATCH} after {WARMUP} warm-up; in-memory group directory",
        text.len(),
        BATCHES * BATCH
    );
    println!(
        "{:<34} {:>10} {:>14} {:>10}",
        "decide", "rule", "median ns", "p99 ns"
    );
    for case in &CASES {
        let position = policy
            .rules
            .iter()
            .position(|r| r.name == case.expect)
            .map_or(0, |p| p + 1);
        let (median, p99) = time(BATCHES, || {
            black_box(policy.decide(black_box(case.facts), &dir));
        });
        println!(
            "{:<34} {:>10} {median:>14.0} {p99:>10.0}",
            case.label,
            format!("#{position}")
        );
    }
    println!(
        "{:<34} {:>10} {:>14} {:>10}",
        "explain", "entries", "median ns", "p99 ns"
    );
    for case in &CASES {
        let entries = policy.explain(case.facts, &dir).len();
        let (median, p99) = time(EXPLAIN_BATCHES, || {
            black_box(policy.explain(black_box(case.facts), &dir));
        });
        println!(
            "{:<34} {entries:>10} {median:>14.0} {p99:>10.0}",
            case.label
        );
    }
    println!("parse and validate the {RULES}-rule policy: {parse:.0} µs (median of {PARSES})");
    ExitCode::SUCCESS
}
