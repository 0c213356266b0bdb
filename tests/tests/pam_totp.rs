//! TOTP logins end to end: the real libpam loads the real pam_mfa.so, which
//! talks to the real mfad; codes come from the real oathtool.
//!
//! Needs root and `cargo build --workspace` first. Each test has its own
//! daemon, so they run in parallel.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use mfad_tests::daemon::{TEST_RHOST, show};
use mfad_tests::pam::*;
use mfad_tests::users::unique_name;
use mfad_tests::{TestConfig, TestDaemon, TestPolicy};

const SVC: &str = "mfa-test";
const RHOST: &str = TEST_RHOST;

fn daemon_with(config: TestConfig) -> TestDaemon {
    let d = TestDaemon::with_config(config);
    d.write_pam_service(SVC, &[]);
    d
}

fn daemon() -> TestDaemon {
    daemon_with(TestConfig::default())
}

fn policy(default: &str, unenrolled: &str) -> TestConfig {
    TestConfig {
        policy: TestPolicy {
            default: default.into(),
            unenrolled: unenrolled.into(),
            ..TestPolicy::default()
        },
        ..TestConfig::default()
    }
}

fn login(d: &TestDaemon, user: &str, answers: &[&str]) -> (i32, Transcript) {
    d.login(SVC, user, RHOST, answers)
}

/// Five wrong codes from [`RHOST`]: the threshold.
fn fail_five_times(d: &TestDaemon, user: &str, wrong: &str) {
    assert_eq!(d.config().lockout.threshold, 5);
    d.fail_to_threshold(SVC, user, RHOST, wrong);
}

#[test]
fn a_code_from_oathtool_is_accepted() {
    let d = daemon();
    let user = unique_name("alice");
    let secret = d.enroll_totp(&user);
    let code = d.totp_code(&secret, 0);
    let t = d.expect_rc(login(&d, &user, &[&code]), PAM_SUCCESS);
    assert_eq!(t.prompts().len(), 1, "{t}");
}

#[test]
fn a_wrong_code_is_refused() {
    let d = daemon();
    let user = unique_name("bob");
    let secret = d.enroll_totp(&user);
    let wrong = d.wrong_code(&secret);
    d.expect_rc(login(&d, &user, &[&wrong]), PAM_AUTH_ERR);
}

#[test]
fn a_code_is_accepted_only_once() {
    let d = daemon();
    let user = unique_name("carol");
    let secret = d.enroll_totp(&user);
    let code = d.totp_code(&secret, 0);
    d.expect_rc(login(&d, &user, &[&code]), PAM_SUCCESS);
    let t = d.expect_rc(login(&d, &user, &[&code]), PAM_AUTH_ERR);
    // DESIGN.md pitfalls: say so instead of a bare failure.
    assert!(t.contains("next code"), "{t}");
}

#[test]
fn the_same_code_from_16_threads_succeeds_exactly_once() {
    let mut config = TestConfig::default();
    // Keep the lockout out of the way: this test is about single use.
    config.lockout.threshold = 50;
    config.lockout.account_threshold = 50;
    let d = daemon_with(config);
    let user = unique_name("dave");
    let secret = d.enroll_totp(&user);
    let code = d.totp_code(&secret, 0);
    let barrier = std::sync::Barrier::new(16);
    let results: Vec<(i32, Transcript)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|_| {
                s.spawn(|| {
                    let mut pam = d.pam(SVC, &user, vec![code.clone()]);
                    pam.set_item(PAM_RHOST, RHOST);
                    barrier.wait();
                    pam.authenticate(0)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = results.iter().filter(|(rc, _)| *rc == PAM_SUCCESS).count();
    let rcs: Vec<i32> = results.iter().map(|(rc, _)| *rc).collect();
    assert_eq!(ok, 1, "results {rcs:?}\n{}", d.log_text());
    assert!(
        rcs.iter()
            .all(|&rc| rc == PAM_SUCCESS || rc == PAM_AUTH_ERR),
        "results {rcs:?}\n{}",
        d.log_text()
    );
}

#[test]
fn five_failures_lock_the_channel_until_an_admin_unlocks() {
    let d = daemon();
    let user = unique_name("erin");
    let secret = d.enroll_totp(&user);
    let wrong = d.wrong_code(&secret);
    fail_five_times(&d, &user, &wrong);
    // Locked: even the right code is refused, and the user is told why.
    let code = d.totp_code(&secret, 0);
    let t = d.expect_rc(login(&d, &user, &[&code]), PAM_MAXTRIES);
    assert!(
        t.contains("lock"),
        "the transcript does not say locked:\n{t}"
    );

    let out = d.mfactl(["user", "unlock", &user]);
    assert!(out.status.success(), "unlock: {}", show(&out));
    // The next step's code: the current one may count as used.
    let next = d.totp_code(&secret, 1);
    d.expect_rc(login(&d, &user, &[&next]), PAM_SUCCESS);
}

#[test]
fn a_lock_is_per_source() {
    let d = daemon();
    let user = unique_name("frank");
    let secret = d.enroll_totp(&user);
    let wrong = d.wrong_code(&secret);
    fail_five_times(&d, &user, &wrong);
    let code = d.totp_code(&secret, 0);
    d.expect_rc(login(&d, &user, &[&code]), PAM_MAXTRIES);
    // An attacker at one address cannot lock the user out from another.
    d.expect_rc(d.login(SVC, &user, "198.51.100.7", &[&code]), PAM_SUCCESS);
}

#[test]
fn daemon_down_fails_closed_with_a_message() {
    let mut d = daemon();
    d.stop();
    let t = d.expect_rc(login(&d, "nobody", &["123456"]), PAM_AUTHINFO_UNAVAIL);
    assert!(!t.errors().is_empty(), "no error message shown:\n{t}");
}

/// `failmode=open` makes the module return PAM_IGNORE when the daemon is
/// unreachable. The harness sees the stack's result, so the module line is
/// `auth [success=done ignore=ignore default=die] ... failmode=open`:
/// followed by pam_deny the stack gives PAM_AUTH_ERR (pam_deny decided),
/// followed by pam_permit it gives PAM_SUCCESS, which only PAM_IGNORE (or
/// success) from our module can produce; the same stack without
/// `failmode=open` gives PAM_AUTHINFO_UNAVAIL (`default=die`). The unit test
/// `pam::tests::ignore_semantics_of_the_failmode_stacks` checks those libpam
/// semantics with pam_debug.
#[test]
fn failmode_open_ignores_only_an_unreachable_daemon() {
    let mut d = daemon();
    let head = |args: &[&str]| {
        format!(
            "auth [success=done ignore=ignore default=die] {}\n",
            d.module_line(args)
        )
    };
    let open = head(&["failmode=open"]);
    d.write_pam_stack("open-deny", &format!("{open}auth required pam_deny.so\n"));
    d.write_pam_stack(
        "open-permit",
        &format!("{open}auth required pam_permit.so\n"),
    );
    let closed = head(&[]);
    d.write_pam_stack(
        "closed-permit",
        &format!("{closed}auth required pam_permit.so\n"),
    );

    // Daemon up: failmode=open changes nothing about a wrong code.
    let user = unique_name("gina");
    let secret = d.enroll_totp(&user);
    let wrong = d.wrong_code(&secret);
    d.expect_rc(
        d.login("open-permit", &user, RHOST, &[&wrong]),
        PAM_AUTH_ERR,
    );

    d.stop();
    d.expect_rc(d.login("open-deny", &user, RHOST, &["1"]), PAM_AUTH_ERR);
    d.expect_rc(d.login("open-permit", &user, RHOST, &["1"]), PAM_SUCCESS);
    d.expect_rc(
        d.login("closed-permit", &user, RHOST, &["1"]),
        PAM_AUTHINFO_UNAVAIL,
    );
}

/// A daemon that accepted the connection is there, not absent, whatever it
/// does next: never answers (stopped with SIGSTOP, wedged), hangs up, or
/// answers garbage. `failmode=open` must not wave the login through. The
/// "daemon" is a root-owned listener; the stack ends in pam_permit, so only
/// the module's own result can refuse the login.
#[test]
fn failmode_open_denies_when_a_silent_daemon_accepted_the_connection() {
    let mut d = daemon();
    let open = format!(
        "auth [success=done ignore=ignore default=die] {}\nauth required pam_permit.so\n",
        d.module_line(&["failmode=open", "timeout=1"])
    );
    d.write_pam_stack("open-wedged", &open);
    d.stop();
    type Behaviour = fn(std::os::unix::net::UnixStream);
    let behaviours: [(&str, Behaviour); 3] = [
        // Holds the connection open, unanswered, until the client gives up.
        ("silent", |mut stream| {
            let _ = std::io::Read::read_to_end(&mut stream, &mut Vec::new());
        }),
        ("hangs up", drop),
        // A well-formed frame whose body is not a response.
        ("garbage", |mut stream| {
            let _ = std::io::Write::write_all(&mut stream, b"\0\0\0\x05hello");
            let _ = std::io::Read::read_to_end(&mut stream, &mut Vec::new());
        }),
    ];
    for (what, behave) in behaviours {
        let listener = std::os::unix::net::UnixListener::bind(d.socket()).unwrap();
        let fake = std::thread::spawn(move || behave(listener.accept().unwrap().0));
        let (rc, t) = d.login("open-wedged", &unique_name("wedge"), RHOST, &["1"]);
        assert_eq!(rc, PAM_AUTHINFO_UNAVAIL, "a daemon that {what}: {t}");
        assert!(t.prompts().is_empty(), "{what}: {t}");
        fake.join().unwrap();
        std::fs::remove_file(d.socket()).unwrap();
    }
}

#[test]
fn an_unenrolled_user_is_denied_when_the_policy_says_deny() {
    let d = daemon_with(policy("totp", "deny"));
    let enrolled = unique_name("known");
    let secret = d.enroll_totp(&enrolled);
    let wrong = d.wrong_code(&secret);
    let t = d.expect_rc(login(&d, &unique_name("nemo"), &[&wrong]), PAM_AUTH_ERR);
    // Security rule 9: an unknown user looks like a wrong code, in text.
    let t_wrong = d.expect_rc(login(&d, &enrolled, &[&wrong]), PAM_AUTH_ERR);
    assert_eq!(t, t_wrong);
}

#[test]
fn an_unenrolled_user_is_allowed_when_the_policy_says_allow() {
    let d = daemon_with(policy("totp", "allow"));
    let t = d.expect_rc(login(&d, &unique_name("newbie"), &[]), PAM_SUCCESS);
    assert!(t.prompts().is_empty(), "{t}");
}

#[test]
fn policy_none_allows_without_a_prompt() {
    let d = daemon_with(policy("none", "deny"));
    let t = d.expect_rc(login(&d, &unique_name("hal"), &[]), PAM_SUCCESS);
    assert!(t.prompts().is_empty(), "{t}");
}

/// pam_mfa is never the reason a stack succeeds when it verified nothing:
/// for a rule requiring nothing, or an unenrolled user let in, it returns
/// PAM_IGNORE, so `sufficient pam_mfa.so` followed by pam_deny denies.
#[test]
fn a_login_that_verified_nothing_is_ignored_not_allowed() {
    let sufficient = |d: &TestDaemon| {
        let stack = format!(
            "auth sufficient {}\nauth required pam_deny.so\n",
            d.module_line(&[])
        );
        d.write_pam_stack("mfa-sufficient", &stack);
    };
    let d = daemon_with(policy("totp", "allow"));
    sufficient(&d);
    d.expect_rc(
        d.login("mfa-sufficient", &unique_name("newbie"), RHOST, &[]),
        PAM_AUTH_ERR,
    );
    // An enrolled user who gives the code is what makes it sufficient.
    let user = unique_name("kim");
    let secret = d.enroll_totp(&user);
    let code = d.totp_code(&secret, 0);
    d.expect_rc(
        d.login("mfa-sufficient", &user, RHOST, &[&code]),
        PAM_SUCCESS,
    );

    let d = daemon_with(policy("none", "deny"));
    sufficient(&d);
    d.expect_rc(
        d.login("mfa-sufficient", &unique_name("hal"), RHOST, &[]),
        PAM_AUTH_ERR,
    );
}

#[test]
fn policy_deny_denies_even_a_valid_code() {
    let d = daemon_with(policy("deny", "allow"));
    let user = unique_name("ivan");
    let secret = d.enroll_totp(&user);
    let code = d.totp_code(&secret, 0);
    let t = d.expect_rc(login(&d, &user, &[&code]), PAM_AUTH_ERR);
    assert!(t.prompts().is_empty(), "{t}");
}

#[test]
fn per_service_policy_overrides_the_default() {
    let config = TestConfig {
        policy: TestPolicy::default()
            .service("cron-test", "none")
            .service("blocked", "deny"),
        ..TestConfig::default()
    };
    let d = daemon_with(config);
    d.write_pam_service("cron-test", &[]);
    d.write_pam_service("blocked", &[]);
    let user = unique_name("judy");
    let secret = d.enroll_totp(&user);
    let code = d.totp_code(&secret, 0);
    let t = d.expect_rc(d.login("cron-test", &user, RHOST, &[]), PAM_SUCCESS);
    assert!(t.prompts().is_empty(), "{t}");
    let t = d.expect_rc(d.login("blocked", &user, RHOST, &[&code]), PAM_AUTH_ERR);
    assert!(t.prompts().is_empty(), "{t}");
    d.expect_rc(login(&d, &user, &[&code]), PAM_SUCCESS);
}

/// `[totp.profiles.strict]`: SHA256, 8 digits, 60-second steps.
const STRICT: &str = "\n[totp.profiles.strict]\nalgorithm = \"SHA256\"\ndigits = 8\nperiod = 60\n";

/// The code of `secret` under the strict profile, `steps` from now.
fn strict_code(d: &TestDaemon, secret: &str, steps: i64) -> String {
    let at = mfad_tests::otp::now_unix() as i64 + d.config().clock_offset_secs + steps * 60;
    mfad_tests::otp::oathtool_totp_at(secret, "SHA256", 8, 60, at as u64)
}

#[test]
fn a_totp_profile_chosen_at_enrollment_sets_how_codes_are_made_and_checked() {
    let mut config = TestConfig::default();
    config.totp.profiles = STRICT.to_owned();
    let d = daemon_with(config);
    let user = unique_name("prof");
    let offer = d.mfactl_json(&[
        "enroll",
        "totp",
        "--user",
        &user,
        "--force",
        "--profile",
        "strict",
        "--print-uri",
        "--json",
    ]);
    assert_eq!(offer["algorithm"], "SHA256", "{offer}");
    assert_eq!(offer["digits"], 8, "{offer}");
    assert_eq!(offer["period"], 60, "{offer}");
    // The URI carries the profile to the app.
    let uri = offer["uri"].as_str().unwrap();
    for part in ["algorithm=SHA256", "digits=8", "period=60"] {
        assert!(uri.contains(part), "{part} not in {uri}");
    }
    let secret = mfad_tests::otp::secret_from_uri(uri);
    let confirm = strict_code(&d, &secret, -1);
    let out = d.mfactl_with_stdin(
        ["enroll", "totp", "--user", &user, "--confirm-code", "-"],
        &format!("{confirm}\n"),
    );
    assert!(out.status.success(), "{}", show(&out));
    let status = d.mfactl_json(&["status", "--user", &user]);
    assert_eq!(status["totp"]["algorithm"], "SHA256", "{status}");
    assert_eq!(status["totp"]["digits"], 8, "{status}");
    // A code of the default kind (SHA1, 6 digits, 30 s) from the same
    // secret is wrong; the profile's code is right.
    let sha1 = d.totp_code(&secret, 0);
    d.expect_rc(login(&d, &user, &[&sha1]), PAM_AUTH_ERR);
    let t = d.expect_rc(
        login(&d, &user, &[&strict_code(&d, &secret, 0)]),
        PAM_SUCCESS,
    );
    assert_eq!(t.prompts().len(), 1, "{t}");

    // A profile mfad.toml does not define is refused, naming those it does.
    let out = d.mfactl([
        "enroll",
        "totp",
        "--user",
        "nobody-else",
        "--force",
        "--profile",
        "lax",
        "--print-uri",
    ]);
    assert!(!out.status.success());
    let text = show(&out);
    assert!(text.contains("no TOTP profile \"lax\""), "{text}");
    assert!(text.contains("strict"), "{text}");
}

#[test]
fn a_policy_naming_a_totp_profile_mfad_toml_lacks_is_rejected() {
    let mut config = TestConfig::default();
    config.totp.profiles = STRICT.to_owned();
    let d = daemon_with(config);
    let rule = |profile: &str| {
        format!(
            "[[rule]]\nname = \"ssh\"\nservices = [\"sshd\"]\nrequire = \"totp\"\n\
             unenrolled = \"enroll\"\ntotp_profile = \"{profile}\"\n\n\
             [[rule]]\nname = \"default\"\nall = true\nrequire = \"totp\"\n"
        )
    };
    std::fs::write(d.policy_path(), rule("lax")).unwrap();
    let out = d.mfactl(["policy", "reload"]);
    assert!(!out.status.success(), "{}", show(&out));
    let text = show(&out);
    assert!(text.contains("no TOTP profile \"lax\""), "{text}");
    assert!(text.contains("line 6"), "{text}");
    std::fs::write(d.policy_path(), rule("strict")).unwrap();
    let out = d.mfactl(["policy", "reload"]);
    assert!(out.status.success(), "{}", show(&out));
}
