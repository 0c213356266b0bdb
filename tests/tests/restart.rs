//! What a daemon restart (SIGTERM, start again on the same state) keeps:
//! enrollments, used TOTP steps and lockouts (security rule 2: counters
//! survive a restart); and the policy file it reads at start.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use mfad_tests::daemon::TEST_RHOST;
use mfad_tests::pam::*;
use mfad_tests::users::unique_name;
use mfad_tests::{TestDaemon, TestPolicy};

const SVC: &str = "mfa-test";

fn daemon() -> TestDaemon {
    let d = TestDaemon::start();
    d.write_pam_service(SVC, &[]);
    d
}

#[test]
fn enrollment_and_used_steps_survive_a_restart() {
    let mut d = daemon();
    let user = unique_name("kim");
    let secret = d.enroll_totp(&user);
    let code = d.totp_code(&secret, 0);
    d.expect_rc(d.login(SVC, &user, TEST_RHOST, &[&code]), PAM_SUCCESS);

    let before = d.pid();
    let status = d.stop().expect("the daemon was running");
    assert!(
        status.success(),
        "mfad exited with {status} on SIGTERM\n{}",
        d.log_text()
    );
    d.restart();
    assert_ne!(d.pid(), before);
    assert_eq!(
        d.log_text().matches("listening on").count(),
        2,
        "{}",
        d.log_text()
    );

    d.expect_rc(d.login(SVC, &user, TEST_RHOST, &[&code]), PAM_AUTH_ERR);
    let next = d.totp_code(&secret, 1);
    d.expect_rc(d.login(SVC, &user, TEST_RHOST, &[&next]), PAM_SUCCESS);
}

#[test]
fn a_lock_survives_a_restart() {
    let mut d = daemon();
    let user = unique_name("leo");
    let secret = d.enroll_totp(&user);
    let wrong = d.wrong_code(&secret);
    d.fail_to_threshold(SVC, &user, TEST_RHOST, &wrong);
    d.restart();
    let code = d.totp_code(&secret, 0);
    let t = d.expect_rc(d.login(SVC, &user, TEST_RHOST, &[&code]), PAM_MAXTRIES);
    assert!(t.contains("lock"), "{t}");
}

/// Lockouts release themselves (a lock is also a denial-of-service tool):
/// with the daemon's clock moved past the lock's duration, the right code
/// works again without an admin.
#[test]
fn a_lock_releases_itself_after_its_duration() {
    let mut d = daemon();
    let user = unique_name("lou");
    let secret = d.enroll_totp(&user);
    let wrong = d.wrong_code(&secret);
    d.fail_to_threshold(SVC, &user, TEST_RHOST, &wrong);
    let duration = d.config().lockout.duration_secs as i64;
    let period = d.config().totp.period as i64;
    // Just short of the duration: still locked.
    d.config_mut().clock_offset_secs = (duration / period - 1) * period;
    d.restart();
    let code = d.totp_code(&secret, 0);
    let t = d.expect_rc(d.login(SVC, &user, TEST_RHOST, &[&code]), PAM_MAXTRIES);
    assert!(t.contains("lock"), "{t}");
    // Past it: the code is accepted.
    d.config_mut().clock_offset_secs = (duration / period + 1) * period;
    d.restart();
    let code = d.totp_code(&secret, 0);
    d.expect_rc(d.login(SVC, &user, TEST_RHOST, &[&code]), PAM_SUCCESS);
    assert!(
        d.log_text().contains("clock_offset_secs"),
        "{}",
        d.log_text()
    );
}

#[test]
fn a_new_policy_applies_after_a_restart() {
    let mut d = daemon();
    let user = unique_name("mia");
    d.expect_rc(d.login(SVC, &user, TEST_RHOST, &["123456"]), PAM_AUTH_ERR);
    d.write_policy(&TestPolicy::default().service(SVC, "none"));
    d.restart();
    let t = d.expect_rc(d.login(SVC, &user, TEST_RHOST, &[]), PAM_SUCCESS);
    assert!(t.prompts().is_empty(), "{t}");
}

/// An accepted step is committed without fsync, so a power loss can lose
/// the record of a used code. After any unclean stop (here kill -9), the
/// daemon refuses every code the old process might have accepted: the one
/// it did accept, and the next step's, which it never saw but which window
/// 1 would have let it take.
#[test]
fn after_an_unclean_stop_no_code_the_old_process_could_have_taken_works() {
    let mut d = daemon();
    let user = unique_name("max");
    let secret = d.enroll_totp(&user);
    // The fence is counted from the restart's step: stay in one step.
    mfad_tests::otp::wait_for_fresh_step(d.config().totp.period, 10);
    let code = d.totp_code(&secret, 0);
    let next = d.totp_code(&secret, 1);
    d.expect_rc(d.login(SVC, &user, TEST_RHOST, &[&code]), PAM_SUCCESS);

    d.kill().expect("the daemon was running");
    d.launch();
    assert!(
        d.log_text().contains("did not stop cleanly"),
        "{}",
        d.log_text()
    );
    d.expect_rc(d.login(SVC, &user, TEST_RHOST, &[&code]), PAM_AUTH_ERR);
    d.expect_rc(d.login(SVC, &user, TEST_RHOST, &[&next]), PAM_AUTH_ERR);

    // A clean stop leaves no fence: the next step's code works again.
    d.restart();
    assert_eq!(d.log_text().matches("did not stop cleanly").count(), 1);
    d.expect_rc(d.login(SVC, &user, TEST_RHOST, &[&next]), PAM_SUCCESS);
}
