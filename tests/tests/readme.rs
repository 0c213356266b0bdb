//! The README's quick start and test commands work as written in a root
//! shell (a minimal Debian has no `sudo`), and CI runs the same test
//! command.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::Path;

fn repo_file(path: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The first command of the first ```sh block after `heading`.
fn first_command(readme: &str, heading: &str) -> String {
    let section = &readme[readme
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading:?} in README.md"))..];
    let block = &section[section.find("```sh\n").unwrap() + 6..];
    block.lines().next().unwrap().trim().to_owned()
}

#[test]
fn quick_start_and_tests_need_no_sudo_and_ci_runs_the_readme_command() {
    let readme = repo_file("README.md");
    let demo = first_command(&readme, "## Quick start");
    let test = first_command(&readme, "## Tests");
    assert_eq!(
        (demo.as_str(), test.as_str()),
        ("scripts/demo", "scripts/test")
    );
    let ci = repo_file(".ci/run");
    assert!(
        ci.lines().any(|l| l.trim() == format!("exec {test}")),
        ".ci/run does not run {test:?}:\n{ci}"
    );
    // The scripts themselves call no sudo (they only suggest it to
    // non-root users).
    for script in ["scripts/demo", "scripts/test"] {
        for line in repo_file(script).lines() {
            let code = line.trim_start();
            assert!(
                code.starts_with('#')
                    || code.contains("echo")
                    || !code.split_whitespace().any(|w| w == "sudo"),
                "{script} calls sudo: {line}"
            );
        }
    }
}

/// One failure hides no other: every stage of scripts/test runs after a
/// failed one (no `set -e`, each stage through `stage`), and `cargo test`
/// runs every test binary after a failed one.
#[test]
fn the_test_command_runs_everything_after_a_failure() {
    let script = repo_file("scripts/test");
    let code: Vec<&str> = script
        .lines()
        .map(str::trim_start)
        .filter(|l| !l.starts_with('#'))
        .collect();
    assert!(
        !code.iter().any(|l| l.starts_with("set -")
            && l.split_whitespace()
                .any(|w| w.starts_with('-') && w.contains('e'))),
        "scripts/test stops at the first failure (set -e)"
    );
    let cargo: Vec<&&str> = code.iter().filter(|l| l.contains("cargo ")).collect();
    assert!(!cargo.is_empty(), "no cargo command in scripts/test");
    for line in &cargo {
        assert!(line.starts_with("stage "), "not run as a stage: {line}");
    }
    let tests: Vec<&&&str> = cargo.iter().filter(|l| l.contains("cargo test")).collect();
    assert!(
        !tests.is_empty() && tests.iter().all(|l| l.contains("--no-fail-fast")),
        "cargo test stops at the first failing test binary: {tests:?}"
    );
}
