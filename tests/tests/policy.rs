//! The policy engine through the real libpam and the real mfactl: chains,
//! choices, the patterns an admin writes in one file, reloads (by mfactl and
//! SIGHUP) while logins are in flight, stored versions and `explain`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use mfad_tests::daemon::{TEST_RHOST, show};
use mfad_tests::pam::*;
use mfad_tests::users::{TempGroup, TempUser, unique_name};
use mfad_tests::{TestConfig, TestDaemon, TestPolicy};
use serde_json::Value;

fn daemon(policy: &str, services: &[&str]) -> TestDaemon {
    let d = TestDaemon::with_config(TestConfig {
        policy: TestPolicy::text(policy),
        ..TestConfig::default()
    });
    for service in services {
        d.write_pam_service(service, &[]);
    }
    d
}

/// The newest audit row of `user`.
fn last_row(d: &TestDaemon, user: &str) -> Value {
    d.audit_rows()
        .into_iter()
        .find(|r| r["user"] == user)
        .unwrap_or_else(|| panic!("no audit row for {user}"))
}

/// Rewrites the policy file and loads it with `mfactl policy reload`.
fn reload(d: &mut TestDaemon, text: &str) -> Value {
    d.write_policy(&TestPolicy::text(text));
    d.mfactl_json(&["policy", "reload"])
}

fn signal_hup(d: &TestDaemon) {
    let pid = nix::unistd::Pid::from_raw(d.pid().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
}

/// Polls `done` for up to 10 s (a signal is handled asynchronously).
fn wait_for(done: impl Fn() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(start.elapsed().as_secs() < 10, "gave up waiting");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// SIGHUP, then waits until the daemon has recorded version `version`.
fn sighup(d: &TestDaemon, version: usize) {
    signal_hup(d);
    wait_for(|| {
        d.mfactl_json(&["policy", "history"])["versions"]
            .as_array()
            .is_some_and(|v| v.len() >= version)
    });
}

const CHAIN: &str = r#"
[[rule]]
name = "sudo-chain"
services = ["mfa-sudo"]
require = { chain = ["totp", "backup"] }

[[rule]]
name = "default"
all = true
require = "totp"
"#;

#[test]
fn a_chain_asks_every_step_in_order_and_a_failed_step_fails_the_attempt() {
    let d = daemon(CHAIN, &["mfa-sudo"]);
    let user = unique_name("cho");
    let e = d.enroll_totp_details(&user);
    assert_eq!(e.backup_codes.len(), 10, "{e:?}");

    let code = d.totp_code(&e.secret, 0);
    let t = d.expect_rc(
        d.login("mfa-sudo", &user, TEST_RHOST, &[&code, &e.backup_codes[0]]),
        PAM_SUCCESS,
    );
    let prompts = t.prompts();
    assert_eq!(prompts.len(), 2, "{t}");
    assert!(prompts[0].contains("Verification code"), "{t}");
    assert!(prompts[1].contains("Backup code"), "{t}");
    let row = last_row(&d, &user);
    assert_eq!(
        (&row["decision"], &row["channel"], &row["rule"]),
        (&"allow".into(), &"backup".into(), &"sudo-chain".into()),
        "{row}"
    );
    assert!(
        row["reason"].as_str().unwrap().contains("step 2 of 2"),
        "{row}"
    );

    // Step 2 wrong: the whole attempt fails, audited with the step.
    let next = d.totp_code(&e.secret, 1);
    let t = d.expect_rc(
        d.login("mfa-sudo", &user, TEST_RHOST, &[&next, "aaaa-bbbb-cc"]),
        PAM_AUTH_ERR,
    );
    assert_eq!(t.prompts().len(), 2, "{t}");
    let row = last_row(&d, &user);
    assert_eq!(
        (&row["decision"], &row["channel"], &row["policy_version"]),
        (&"deny".into(), &"backup".into(), &1.into()),
        "{row}"
    );
    assert!(
        row["reason"].as_str().unwrap().contains("step 2 of 2"),
        "{row}"
    );

    // Step 1 wrong: step 2 is never asked.
    let wrong = d.wrong_code(&e.secret);
    let t = d.expect_rc(
        d.login("mfa-sudo", &user, TEST_RHOST, &[&wrong, &e.backup_codes[1]]),
        PAM_AUTH_ERR,
    );
    assert_eq!(t.prompts().len(), 1, "{t}");
    let row = last_row(&d, &user);
    assert!(
        row["reason"].as_str().unwrap().contains("step 1 of 2"),
        "{row}"
    );

    // The other service is TOTP alone: one prompt, and no second step.
    d.write_pam_service("mfa-other", &[]);
    let t = d.expect_rc(
        d.login(
            "mfa-other",
            &user,
            TEST_RHOST,
            &[&wrong, &e.backup_codes[1]],
        ),
        PAM_AUTH_ERR,
    );
    assert_eq!(t.prompts().len(), 1, "{t}");
    assert_eq!(last_row(&d, &user)["rule"], "default");
}

#[test]
fn any_offers_a_numbered_choice_of_the_rules_factors() {
    let d = daemon(
        "[[rule]]\nname = \"either\"\nall = true\nrequire = { any = [\"totp\", \"backup\"] }\n",
        &["mfa-any"],
    );
    let user = unique_name("ann");
    let e = d.enroll_totp_details(&user);

    let t = d.expect_rc(
        d.login("mfa-any", &user, TEST_RHOST, &["2", &e.backup_codes[0]]),
        PAM_SUCCESS,
    );
    let prompts = t.prompts();
    assert_eq!(prompts.len(), 2, "{t}");
    assert!(
        prompts[0].contains("1) authenticator app code") && prompts[0].contains("2) backup code"),
        "{t}"
    );
    assert_eq!(last_row(&d, &user)["channel"], "backup");

    let code = d.totp_code(&e.secret, 0);
    d.expect_rc(
        d.login("mfa-any", &user, TEST_RHOST, &["1", &code]),
        PAM_SUCCESS,
    );
    assert_eq!(last_row(&d, &user)["channel"], "totp");

    // A wrong choice asks again; a code typed at the menu is taken.
    let code = d.totp_code(&e.secret, 1);
    let t = d.expect_rc(
        d.login("mfa-any", &user, TEST_RHOST, &["3", &code]),
        PAM_SUCCESS,
    );
    assert!(t.prompts()[1].starts_with("No such choice"), "{t}");
    assert_eq!(last_row(&d, &user)["channel"], "totp");
    let t = d.expect_rc(
        d.login("mfa-any", &user, TEST_RHOST, &["3", "x", "0"]),
        PAM_AUTH_ERR,
    );
    assert!(t.contains("No such choice."), "{t}");
    assert_eq!(last_row(&d, &user)["reason"], "invalid factor choice");
}

/// The patterns of the policy issue, in one file per host class: no MFA for
/// a low-risk service; TOTP for sshd; TOTP then another factor for sudo on
/// production; no MFA from the ops network on staging; a service denied.
fn site_policy(class: &str) -> String {
    format!(
        r#"[host]
class = "{class}"

[service_groups]
privileged = ["mfa-sudo", "mfa-su"]

[[rule]]
name = "intranet"
services = ["mfa-intranet"]
require = "none"

[[rule]]
name = "ops-network-staging"
host_class = ["staging"]
services = ["mfa-sshd"]
from = ["10.20.0.0/16", "2001:db8:20::/48"]
require = "none"

[[rule]]
name = "prod-privileged"
host_class = ["production"]
services = ["@privileged"]
require = {{ chain = ["totp", "backup"] }}

[[rule]]
name = "sshd"
services = ["mfa-sshd"]
require = "totp"

[[rule]]
name = "no-ftp"
services = ["mfa-ftp"]
require = "deny"

[[rule]]
name = "default"
all = true
require = "totp"
"#
    )
}

#[test]
fn one_file_expresses_every_pattern_and_each_is_enforced() {
    let services = ["mfa-intranet", "mfa-sshd", "mfa-sudo", "mfa-ftp"];
    let mut d = daemon(&site_policy("production"), &services);
    let user = unique_name("pat");
    let e = d.enroll_totp_details(&user);
    let ops = "10.20.3.4";

    // Production.
    let t = d.expect_rc(d.login("mfa-intranet", &user, ops, &[]), PAM_SUCCESS);
    assert!(t.prompts().is_empty(), "{t}");
    assert_eq!(last_row(&d, &user)["rule"], "intranet");

    let code = d.totp_code(&e.secret, 0);
    let t = d.expect_rc(d.login("mfa-sshd", &user, ops, &[&code]), PAM_SUCCESS);
    assert_eq!(
        t.prompts().len(),
        1,
        "the ops network is exempt on staging only: {t}"
    );
    assert_eq!(last_row(&d, &user)["rule"], "sshd");

    let code = d.totp_code(&e.secret, 1);
    let t = d.expect_rc(
        d.login("mfa-sudo", &user, ops, &[&code, &e.backup_codes[0]]),
        PAM_SUCCESS,
    );
    assert_eq!(t.prompts().len(), 2, "{t}");
    assert_eq!(last_row(&d, &user)["rule"], "prod-privileged");

    let t = d.expect_rc(d.login("mfa-ftp", &user, ops, &[]), PAM_AUTH_ERR);
    assert!(
        t.prompts().is_empty(),
        "a denied service asks for nothing: {t}"
    );
    assert!(t.contains("refused"), "{t}");
    let row = last_row(&d, &user);
    assert_eq!(
        (&row["rule"], &row["decision"]),
        (&"no-ftp".into(), &"deny".into())
    );
    assert_eq!(row["policy_version"], 1);

    // The same file on a staging host, loaded without a restart.
    let loaded = reload(&mut d, &site_policy("staging"));
    assert_eq!(
        (&loaded["version"], &loaded["changed"]),
        (&2.into(), &true.into())
    );
    for source in [ops, "2001:db8:20::9"] {
        let t = d.expect_rc(d.login("mfa-sshd", &user, source, &[]), PAM_SUCCESS);
        assert!(t.prompts().is_empty(), "{source}: {t}");
        let row = last_row(&d, &user);
        assert_eq!(
            (&row["rule"], &row["policy_version"]),
            (&"ops-network-staging".into(), &2.into()),
            "{row}"
        );
    }
    // Outside the ops network, and from a host name (which never matches a
    // network), sshd asks for TOTP. (Both codes around now are used.)
    let wrong = d.wrong_code(&e.secret);
    for source in [TEST_RHOST, "ops.example.com"] {
        let t = d.expect_rc(d.login("mfa-sshd", &user, source, &[&wrong]), PAM_AUTH_ERR);
        assert_eq!(t.prompts().len(), 1, "{source}: {t}");
        assert_eq!(last_row(&d, &user)["rule"], "sshd", "{source}");
    }
}

#[test]
fn a_reload_under_concurrent_logins_loses_none_of_them() {
    let policy = |name: &str| {
        format!(
            "[[rule]]\nname = \"{name}\"\nservices = [\"mfa-open\"]\nrequire = \"none\"\n\n\
             [[rule]]\nname = \"default\"\nall = true\nrequire = \"totp\"\n"
        )
    };
    let mut d = daemon(&policy("open-a"), &["mfa-open"]);
    const THREADS: usize = 6;
    const LOGINS: usize = 40;
    let user = unique_name("rel");
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                let d = &d;
                let user = &user;
                s.spawn(move || {
                    (0..LOGINS)
                        .map(|_| d.login("mfa-open", user, TEST_RHOST, &[]))
                        .filter(|(rc, _)| *rc != PAM_SUCCESS)
                        .map(|(rc, t)| format!("{}: {t}", strerror(rc)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        // Meanwhile: reloads by mfactl and by SIGHUP, alternating two texts.
        for i in 0..12 {
            let name = if i % 2 == 0 { "open-b" } else { "open-a" };
            std::fs::write(d.policy_path(), policy(name)).unwrap();
            if i % 3 == 0 {
                sighup(&d, i + 2);
            } else {
                let out = d.mfactl(["policy", "reload"]);
                assert!(out.status.success(), "{}", show(&out));
            }
        }
        for w in workers {
            let failures = w.join().unwrap();
            assert!(failures.is_empty(), "lost logins: {failures:#?}");
        }
    });
    // Every login is audited once, by the rule of the version it names.
    let history = d.mfactl_json(&["policy", "history"]);
    let versions = history["versions"].as_array().unwrap();
    assert!(versions.len() >= 3, "{history}");
    assert!(
        versions.iter().any(|v| v["loaded_by"] == "SIGHUP"),
        "{history}"
    );
    let rows: Vec<Value> = d
        .audit_rows()
        .into_iter()
        .filter(|r| r["user"] == user)
        .collect();
    assert_eq!(rows.len(), THREADS * LOGINS);
    for row in &rows {
        let v = row["policy_version"].as_i64().unwrap();
        let text = d.mfactl(["policy", "show", &v.to_string()]);
        let text = String::from_utf8_lossy(&text.stdout);
        let rule = row["rule"].as_str().unwrap();
        assert!(
            text.contains(&format!("name = \"{rule}\"")),
            "{row}\n{text}"
        );
    }
    // The file's last text is in force.
    d.write_policy(&TestPolicy::text(&policy("open-b")));
    let _ = reload(&mut d, &policy("open-b"));
    d.expect_rc(d.login("mfa-open", &user, TEST_RHOST, &[]), PAM_SUCCESS);
    assert_eq!(last_row(&d, &user)["rule"], "open-b");
}

#[test]
fn versions_are_kept_shown_and_compared_and_a_broken_file_never_replaces_one() {
    let v1 = site_policy("production");
    let mut d = daemon(&v1, &["mfa-sshd"]);
    let v2 = v1.replace("require = \"deny\"", "require = \"totp\"");
    assert_eq!(reload(&mut d, &v2)["version"], 2);

    // A file with an error: version 2 stays, the problem is named, exit 1.
    std::fs::write(d.policy_path(), v2.replace("\"totp\"", "\"fax\"")).unwrap();
    let out = d.mfactl(["policy", "reload"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let text = show(&out);
    assert!(
        text.contains("version 2") && text.contains("unknown factor \"fax\""),
        "{text}"
    );
    // And the same through SIGHUP.
    let logged = d.log_text().matches("keeping policy version 2").count();
    signal_hup(&d);
    wait_for(|| d.log_text().matches("keeping policy version 2").count() > logged);
    let history = d.mfactl_json(&["policy", "history"]);
    let versions = history["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2, "{history}");
    assert_eq!(versions[1]["in_force"], true);

    let out = d.mfactl(["policy", "show", "1"]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), v1);

    let out = d.mfactl(["policy", "diff", "1", "2"]);
    assert!(out.status.success(), "{}", show(&out));
    let diff = String::from_utf8_lossy(&out.stdout);
    assert!(
        diff.contains("-require = \"deny\"") && diff.contains("+require = \"totp\""),
        "{diff}"
    );
    let out = d.mfactl(["policy", "show", "9"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
}

#[test]
fn explain_names_the_rule_and_every_miss_and_touches_nothing() {
    let d = daemon(&site_policy("production"), &["mfa-sshd"]);
    let user = unique_name("exp");
    d.enroll_totp(&user);
    let rows_before = d.audit_rows().len();
    let out = d.mfactl([
        "policy",
        "explain",
        "--user",
        &user,
        "--service",
        "mfa-sudo",
        "--rhost",
        "10.20.3.4",
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "prod-privileged",
        "intranet",
        "service \"mfa-sudo\" is not in [\"mfa-intranet\"]",
        "host class \"production\" is not in [\"staging\"]",
        "chain [totp, backup]",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from\n{text}");
    }
    let doc = d.mfactl_json(&[
        "policy",
        "explain",
        "--user",
        &user,
        "--service",
        "mfa-sshd",
        "--rhost",
        "ops.example.com",
    ]);
    assert_eq!(doc["rule"], "sshd", "{doc}");
    assert_eq!(doc["policy_version"], 1);
    let ops = &doc["rules"][1];
    assert_eq!(ops["rule"], "ops-network-staging");
    assert_eq!(ops["matched"], false);
    // Nothing was recorded: explain is not an attempt.
    assert_eq!(d.audit_rows().len(), rows_before);
}

/// `%group` is resolved through NSS: a real group, and a real user who is a
/// supplementary member of it, while another user is not.
#[test]
fn a_group_condition_follows_real_membership() {
    let ops = TempGroup::create("mfadt-ops");
    let member = TempUser::create();
    member.join(&ops);
    let outsider = TempUser::create();
    let policy = format!(
        "[[rule]]\nname = \"ops-team\"\nusers = [\"%{}\"]\nrequire = \"none\"\n\n\
         [[rule]]\nname = \"default\"\nall = true\nrequire = \"totp\"\n",
        ops.name
    );
    let d = daemon(&policy, &["mfa-grp"]);
    let t = d.expect_rc(
        d.login("mfa-grp", &member.name, TEST_RHOST, &[]),
        PAM_SUCCESS,
    );
    assert!(t.prompts().is_empty(), "{t}");
    assert_eq!(last_row(&d, &member.name)["rule"], "ops-team");
    let t = d.expect_rc(
        d.login("mfa-grp", &outsider.name, TEST_RHOST, &["123456"]),
        PAM_AUTH_ERR,
    );
    assert_eq!(t.prompts().len(), 1, "{t}");
    assert_eq!(last_row(&d, &outsider.name)["rule"], "default");
}

/// `unenrolled = { grace_until = DAY }`: an unenrolled user gets in, told to
/// enroll, until the end of that day (UTC); after it, they are refused like a
/// wrong code. Time moves by the daemon's clock, not by sleeping.
#[test]
fn the_enrollment_grace_period_ends_at_the_end_of_its_day() {
    let day = 86_400;
    let tomorrow = (mfad_tests::otp::now_unix() as i64 / day + 1) * day;
    let date = mfad_protocol::time::utc(tomorrow);
    let policy = format!(
        "[[rule]]\nname = \"grace\"\nall = true\nrequire = \"totp\"\n\
         unenrolled = {{ grace_until = \"{}\" }}\n",
        &date[..10]
    );
    let mut d = daemon(&policy, &["mfa-grace"]);
    let user = unique_name("gus");
    let t = d.expect_rc(d.login("mfa-grace", &user, TEST_RHOST, &[]), PAM_SUCCESS);
    assert!(t.prompts().is_empty(), "{t}");
    assert!(
        t.contains(&date[..10]) && t.contains("mfactl enroll totp"),
        "{t}"
    );
    assert!(
        last_row(&d, &user)["reason"]
            .as_str()
            .unwrap()
            .contains("grace"),
        "{}",
        last_row(&d, &user)
    );

    // Two days on (a whole number of TOTP periods), the grace is over.
    d.config_mut().clock_offset_secs = 2 * day;
    d.restart();
    let t = d.expect_rc(
        d.login("mfa-grace", &user, TEST_RHOST, &["123456"]),
        PAM_AUTH_ERR,
    );
    assert_eq!(t.prompts().len(), 1, "{t}");
    assert!(t.contains("Wrong code"), "{t}");
}

#[test]
fn policy_check_names_a_totp_profile_mfad_toml_does_not_define() {
    let mut config = TestConfig::default();
    config.totp.profiles = "\n[totp.profiles.strict]\ndigits = 8\n".to_owned();
    let d = TestDaemon::with_config(config);
    let file = d.dir().join("candidate.toml");
    let check = |profile: &str| {
        std::fs::write(
            &file,
            format!(
                "[[rule]]\nname = \"ssh\"\nservices = [\"sshd\"]\nrequire = \"totp\"\n\
                 unenrolled = \"enroll\"\ntotp_profile = \"{profile}\"\n"
            ),
        )
        .unwrap();
        d.mfactl(["policy", "check", file.to_str().unwrap()])
    };
    let out = check("strict");
    assert!(out.status.success(), "{}", show(&out));
    // A typo: the daemon would refuse the file at reload; the check says
    // so first, with where.
    let out = check("strcit");
    assert!(!out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains(":6:16: error: no TOTP profile \"strcit\" in mfad.toml"),
        "{}",
        show(&out)
    );
}
