//! Audit retention with the real daemon: the maintenance that runs at start
//! (and every 10 minutes) deletes the audit rows older than
//! `[audit] retention_days`, and keeps the newer ones and an intact chain.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use mfad_tests::users::unique_name;
use mfad_tests::{TestConfig, TestDaemon};
use std::time::{Duration, Instant};

const DAY: i64 = 86_400;

fn users_in_audit(d: &TestDaemon) -> Vec<String> {
    d.audit_rows()
        .iter()
        .map(|r| r["user"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn audit_rows_older_than_the_retention_are_deleted_and_newer_ones_kept() {
    let mut d = TestDaemon::with_config(TestConfig {
        audit: "[audit]\nretention_days = 1".into(),
        ..TestConfig::default()
    });
    let old = unique_name("old");
    d.enroll_totp(&old);
    assert!(users_in_audit(&d).contains(&old), "{:?}", d.audit_rows());

    // Two days later (the daemon's clock), a restart runs the maintenance.
    d.stop();
    d.config_mut().clock_offset_secs = 2 * DAY;
    d.launch();
    let new = unique_name("new");
    d.enroll_totp(&new);
    let started = Instant::now();
    while users_in_audit(&d).contains(&old) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "rows of two days ago are still there: {:?}\n{}",
            d.audit_rows(),
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let users = users_in_audit(&d);
    assert!(users.contains(&new), "today's rows went too: {users:?}");
    // The hash chain still verifies, from the oldest row left.
    let out = d.mfactl(["audit", "verify"]);
    assert!(out.status.success(), "{}", mfad_tests::daemon::show(&out));
    assert!(
        d.log_text()
            .contains("audit rows older than audit.retention_days")
    );
}
