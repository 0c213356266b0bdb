//! Which sessions a trigger touches and what happens to each, in process:
//! sessions and policies built in code, no store, no processes.

use super::*;
use crate::policy::Nss;
use crate::store::{Passed, Proof};

fn session(
    id: i64,
    user: &str,
    service: &str,
    factors: &[&str],
    device: Option<&str>,
) -> StoredSession {
    StoredSession {
        id,
        audit_session: 100 + id as u32,
        user: user.to_owned(),
        uid: 1000,
        service: service.to_owned(),
        rhost: Some("192.0.2.1".to_owned()),
        tty: None,
        opened_at: 0,
        proof: Proof {
            factors: factors
                .iter()
                .map(|f| Passed {
                    factor: (*f).to_owned(),
                    at: 0,
                })
                .collect(),
            device: device.map(str::to_owned),
        },
    }
}

fn policy(text: &str) -> Policy {
    Policy::from_text(text, &Nss).unwrap().0
}

fn covering<'p>(p: &'p Policy, s: &StoredSession) -> Option<&'p Rule> {
    p.decide(
        Facts {
            user: &s.user,
            service: &s.service,
            rhost: s.rhost.as_deref(),
            signals: Signals::default(),
        },
        &Nss,
    )
}

fn lives<'a>(
    now: &'a Policy,
    before: Option<&'a Policy>,
    all: &'a [StoredSession],
) -> Vec<Live<'a>> {
    all.iter()
        .map(|s| Live {
            session: s,
            rule: covering(now, s),
            before: before.and_then(|b| covering(b, s)),
        })
        .collect()
}

/// (session, action) pairs, in session order.
fn outcome(touches: &[Touch]) -> Vec<(i64, OnRisk)> {
    touches.iter().map(|t| (t.session, t.action)).collect()
}

const POLICY: &str = r#"
[[rule]]
name = "ssh"
services = ["sshd"]
require = "totp"
trusted_devices = true
on_risk = "stepup"

[[rule]]
name = "console"
services = ["login"]
require = "totp"
on_risk = "end"

[[rule]]
name = "default"
all = true
require = "totp"
"#;

fn sessions() -> Vec<StoredSession> {
    vec![
        session(1, "alice", "sshd", &["totp"], None),
        session(2, "alice", "login", &["totp"], None),
        session(3, "alice", "cron-ish", &["totp"], None),
        session(4, "bob", "sshd", &["totp"], None),
        session(5, "alice", "sshd", &[], Some("ssh-ed25519 SHA256:lost")),
        session(6, "alice", "sshd", &[], Some("ssh-ed25519 SHA256:kept")),
    ]
}

#[test]
fn a_login_from_a_new_place_or_a_lock_touches_the_users_sessions_as_their_rules_say() {
    let p = policy(POLICY);
    let all = sessions();
    let live = lives(&p, None, &all);
    let place = Trigger::NewPlace {
        user: "alice",
        rhost: "203.0.113.9",
        what: "a new country (FR)",
        up_to: 6,
    };
    let lock = Trigger::Locked {
        user: "alice",
        source: "203.0.113.9",
    };
    // Bob's session is not touched; session 3's rule says nothing (none).
    let want = vec![
        (1, OnRisk::Stepup),
        (2, OnRisk::End),
        (5, OnRisk::Stepup),
        (6, OnRisk::Stepup),
    ];
    assert_eq!(outcome(&decide(&place, &live)), want);
    assert_eq!(outcome(&decide(&lock, &live)), want);
    // The session the login itself opened (recorded before the
    // re-evaluation ran) is not one it judges.
    let own = Trigger::NewPlace {
        user: "alice",
        rhost: "203.0.113.9",
        what: "a new country (FR)",
        up_to: 5,
    };
    assert_eq!(outcome(&decide(&own, &live)), want[..3].to_vec());
    assert_eq!(decide(&place, &live)[1].rule.as_deref(), Some("console"));
    assert_eq!(
        place.reason(),
        "login of alice from 203.0.113.9, a new country (FR)"
    );
    let nobody = Trigger::Locked {
        user: "carol",
        source: "local",
    };
    assert!(decide(&nobody, &live).is_empty());
}

#[test]
fn a_revoked_device_touches_only_the_sessions_it_opened() {
    let p = policy(POLICY);
    let all = sessions();
    let live = lives(&p, None, &all);
    let revoked = Trigger::DeviceRevoked {
        user: "alice",
        device: "ssh-ed25519 SHA256:lost",
    };
    assert_eq!(outcome(&decide(&revoked, &live)), vec![(5, OnRisk::Stepup)]);
    // The same key of another user is another trust.
    let bobs = Trigger::DeviceRevoked {
        user: "bob",
        device: "ssh-ed25519 SHA256:lost",
    };
    assert!(decide(&bobs, &live).is_empty());
}

#[test]
fn an_admin_step_up_touches_the_named_session_whatever_its_rule_says() {
    let p = policy(POLICY);
    let all = sessions();
    let live = lives(&p, None, &all);
    // Session 3's rule has no on_risk; session 2's says end.
    for id in [3, 2] {
        let touches = decide(&Trigger::Admin { session: id }, &live);
        assert_eq!(outcome(&touches), vec![(id, OnRisk::Stepup)]);
        assert_eq!(touches[0].rule, None);
    }
    assert!(decide(&Trigger::Admin { session: 99 }, &live).is_empty());
}

#[test]
fn a_policy_touches_only_sessions_it_asks_more_of() {
    let before = policy(
        r#"
[[rule]]
name = "ssh"
services = ["sshd"]
require = { any = ["totp", "backup"] }
trusted_devices = true

[[rule]]
name = "default"
all = true
require = "none"
"#,
    );
    let after = policy(
        r#"
[[rule]]
name = "ssh"
services = ["sshd"]
require = "totp"
on_risk = "end"

[[rule]]
name = "default"
all = true
require = "totp"
on_risk = "stepup"
"#,
    );
    let all = vec![
        // totp met both: untouched.
        session(1, "alice", "sshd", &["totp"], None),
        // backup met "any" but not "totp": ended.
        session(2, "alice", "sshd", &["backup"], None),
        // A device met the old rule; the new one forbids devices: ended.
        session(3, "alice", "sshd", &[], Some("ssh-ed25519 SHA256:k")),
        // Nothing was asked before, TOTP now: freshness cleared.
        session(4, "alice", "login", &[], None),
        // Passed TOTP under a rule that asked nothing: still meets it.
        session(5, "alice", "login", &["totp"], None),
    ];
    let live = lives(&after, Some(&before), &all);
    let touches = decide(&Trigger::Policy { version: 2 }, &live);
    assert_eq!(
        outcome(&touches),
        vec![(2, OnRisk::End), (3, OnRisk::End), (4, OnRisk::Stepup)]
    );
    // The same version again asks nothing more.
    let same = lives(&after, Some(&after), &all);
    assert!(decide(&Trigger::Policy { version: 2 }, &same).is_empty());
    // A session that met neither version was not let in by the policy
    // that changed: not touched (no rule met before).
    let deny =
        policy("[[rule]]\nname = \"d\"\nall = true\nrequire = \"deny\"\non_risk = \"end\"\n");
    let l = lives(&deny, Some(&deny), &all);
    assert!(decide(&Trigger::Policy { version: 3 }, &l).is_empty());
}
