//! `mfad --check-config`: the effective settings for a good file, and for a
//! bad one exit status 2 with the file, the key (and line) and the problem,
//! before anything is started or created.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use mfad_tests::daemon::{output_within, show};
use mfad_tests::{TestConfig, TestDaemon, bins};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

fn key(d: &TestDaemon) -> PathBuf {
    d.dir().join("state/mfad.key")
}

fn db(d: &TestDaemon) -> PathBuf {
    d.dir().join("state/mfad.db")
}

/// `mfad --check-config --config F`, bounded in time.
fn check_config(config: &Path) -> Output {
    output_within(
        Command::new(bins::mfad())
            .arg("--check-config")
            .arg("--config")
            .arg(config),
        Duration::from_secs(10),
    )
}

/// A prepared (never started) daemon whose mfad.toml is `edit`ed.
fn config_file(edit: impl FnOnce(String) -> String) -> (TestDaemon, PathBuf) {
    let d = TestDaemon::prepare(TestConfig::default());
    let path = d.config_path();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, edit(text)).unwrap();
    (d, path)
}

/// The 1-based line of `path` that is exactly `line`.
fn line_of(path: &Path, line: &str) -> usize {
    let text = std::fs::read_to_string(path).unwrap();
    1 + text
        .lines()
        .position(|l| l == line)
        .unwrap_or_else(|| panic!("{line:?} not in\n{text}"))
}

#[track_caller]
fn assert_config_error(out: &Output, needles: &[&str]) {
    assert_eq!(out.status.code(), Some(2), "{}", show(out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} missing: {}", show(out));
    }
}

#[test]
fn check_config_prints_the_effective_settings() {
    let (d, path) = config_file(|t| t);
    let out = check_config(&path);
    assert!(out.status.success(), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The values of the file, and the defaults of what it leaves out
    // (worker_threads, the enrollment timeout): the effective settings.
    for needle in [
        d.socket().display().to_string(),
        key(&d).display().to_string(),
        db(&d).display().to_string(),
        "mfa-admins-test".to_owned(),
        "\"mfad-test\"".to_owned(),
        "SHA1".to_owned(),
        "6 digits".to_owned(),
        "period 30 s".to_owned(),
        "window ±1".to_owned(),
        "after 600 s".to_owned(),
        "for 900 s".to_owned(),
        "8 per non-root uid".to_owned(),
        "conversation 120 s".to_owned(),
        "worker_threads = 2".to_owned(),
        format!("policy {}: valid", d.policy_path().display()),
    ] {
        assert!(stdout.contains(&needle), "{needle:?} missing:\n{stdout}");
    }
    // Checking starts nothing and creates nothing.
    assert!(!d.socket().exists());
    assert!(!key(&d).exists(), "--check-config created the key");
    assert!(!db(&d).exists(), "--check-config created the database");
}

#[test]
fn check_config_names_an_unknown_key_and_its_line() {
    let (_d, path) = config_file(|t| t.replace("[totp]\n", "[totp]\ndigit = 6\n"));
    let line = line_of(&path, "digit = 6");
    let out = check_config(&path);
    assert_config_error(
        &out,
        &[
            &path.display().to_string(),
            "`digit`",
            &format!("line {line}"),
        ],
    );
}

#[test]
fn check_config_names_an_invalid_value() {
    let (_d, path) = config_file(|t| t.replace("digits = 6\n", "digits = 9\n"));
    let out = check_config(&path);
    // The dotted key names the place as surely as a line number does.
    assert_config_error(
        &out,
        &[&path.display().to_string(), "totp.digits", "9", "6, 7 or 8"],
    );
}

#[test]
fn check_config_names_a_policy_problem() {
    let (d, path) = config_file(|t| t);
    std::fs::write(
        d.policy_path(),
        "[[rule]]\nname = \"default\"\nall = true\nrequire = \"push\"\n",
    )
    .unwrap();
    let out = check_config(&path);
    assert_config_error(
        &out,
        &[
            &d.policy_path().display().to_string(),
            "unknown factor \"push\"",
            "line 4, column 11",
        ],
    );
    assert!(out.stdout.is_empty(), "{}", show(&out));
}

/// A country database mfad could not open at start is named by the check
/// too, so a config that passes it does not then refuse to start.
#[test]
fn check_config_names_an_unreadable_country_database() {
    let (d, path) = config_file(|t| t);
    let text = std::fs::read_to_string(&path).unwrap();
    let missing = d.dir().join("GeoLite2-Country.mmdb");
    std::fs::write(
        &path,
        format!("geoip_database = \"{}\"\n{text}", missing.display()),
    )
    .unwrap();
    let out = check_config(&path);
    assert_config_error(&out, &["geoip_database", &missing.display().to_string()]);
}
