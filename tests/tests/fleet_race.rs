//! One TOTP code submitted 64 times at once, split across two real mfad
//! daemons sharing one real PostgreSQL: accepted once in the fleet.
//!
//! In a test binary of its own, so that it runs alone: beside the other
//! fleet tests (their `initdb`s, databases and daemons) on a 2-core CI
//! machine, its last losers could wait past the store's 4 s deadline or
//! pam_mfa's 5 s for an answer (one CI run got PAM_AUTHINFO_UNAVAIL).
//!
//! Needs root, Debian's `postgresql` and `cargo build --workspace` first.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use mfad_tests::daemon::TEST_RHOST;
use mfad_tests::pam::*;
use mfad_tests::postgres::Postgres;
use mfad_tests::users::unique_name;

const SVC: &str = "mfa-test";

#[test]
fn one_code_submitted_64_times_across_two_hosts_is_accepted_once() {
    let pg = Postgres::start();
    let (a, b) = pg.pair(SVC, |c| {
        // The lockout would end the race early: this test is about single use.
        c.lockout.threshold = 100;
        c.lockout.account_threshold = 100;
        // 32 logins queue for each daemon's connections, and the 63 losers
        // on the user's rows: the 2 s deadline could deny some (closed, but
        // not the outcome this test is about). 4 s is the most mfad takes,
        // below pam_mfa's 5 s wait.
        c.store = c.store.as_ref().map(|s| {
            s.replace("statement_timeout_ms = 2000", "statement_timeout_ms = 4000")
                .replace("pool_size = 4", "pool_size = 16")
        });
    });
    let user = unique_name("bob");
    let secret = a.enroll_totp(&user);
    let code = a.totp_code(&secret, 0);
    let barrier = std::sync::Barrier::new(64);
    let rcs: Vec<i32> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..64)
            .map(|i| {
                let d = if i % 2 == 0 { &a } else { &b };
                let (code, user, barrier) = (&code, &user, &barrier);
                s.spawn(move || {
                    let mut pam = d.pam(SVC, user, vec![code.clone()]);
                    pam.set_item(PAM_RHOST, TEST_RHOST);
                    barrier.wait();
                    pam.authenticate(0).0
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // The 63 losers' lines would hide (in CI's cut output) the one that
    // says what went wrong.
    let logs = a.log_text() + &b.log_text();
    let unusual: Vec<&str> = logs
        .lines()
        .filter(|l| !l.contains("code already used"))
        .collect();
    let unusual = unusual.join("\n");
    let ok = rcs.iter().filter(|&&rc| rc == PAM_SUCCESS).count();
    assert_eq!(ok, 1, "results {rcs:?}\n{unusual}");
    assert!(
        rcs.iter()
            .all(|&rc| rc == PAM_SUCCESS || rc == PAM_AUTH_ERR),
        "results {rcs:?}\n{unusual}"
    );
    // Each loser was told why (not a store error), whichever host it asked.
    assert_eq!(logs.matches("code already used").count(), 63, "{unusual}");
    // A loser's transaction ends with the COMMIT sent with it (a rollback,
    // after its failed step): no second ROLLBACK draws a server warning.
    assert!(!logs.contains("WARNING"), "{unusual}");
}
