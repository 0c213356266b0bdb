//! `bench_ssh`: how long a real `ssh` login takes with TOTP through
//! pam_mfa.so and mfad, against the same login with pam_mfa.so out of
//! sshd's stack (keyboard-interactive with no prompt). Run by
//! `sudo scripts/bench-ssh [LOGINS]`; prints the medians. There is no
//! threshold.
//!
//! Both runs use the same harness: sshd on a loopback port in a private
//! mount namespace, the real client on a terminal, public key first, and
//! the remote command `true`. Each timed login is one user's, so every
//! TOTP code is fresh (a code works once per 30-second step).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a benchmark tool

use mfad_tests::ssh::{ClientKey, SshServer, Stacks};
use mfad_tests::users::TempUser;
use mfad_tests::{TestConfig, TestDaemon, TestPolicy};
use std::time::{Duration, Instant};

const POLICY: &str = "[[rule]]\nname = \"ssh\"\nall = true\nrequire = \"totp\"\n";

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// One login as `user`; `code` answers the prompt when there is one.
fn login(server: &SshServer, user: &str, key: &ClientKey, code: Option<&str>) -> Duration {
    let started = Instant::now();
    let mut ssh = server.ssh(user, key, "127.0.0.1", "true");
    if let Some(code) = code {
        ssh.expect("Verification code: ");
        ssh.send_line(code);
    }
    let status = ssh.wait();
    let took = started.elapsed();
    assert!(status.success(), "login failed:\n{}", ssh.transcript());
    took
}

fn main() {
    let logins: usize = std::env::args()
        .nth(1)
        .map_or(15, |n| n.parse().expect("LOGINS must be a number"));
    let d = TestDaemon::with_config(TestConfig {
        policy: TestPolicy::text(POLICY),
        ..TestConfig::default()
    });
    let home = tempfile::tempdir().unwrap();
    eprintln!("enrolling {logins} users...");
    // The first user only warms each run up, untimed.
    let users: Vec<(TempUser, String)> = (0..=logins)
        .map(|_| {
            let user = TempUser::create_login(home.path());
            let secret = d.enroll_totp(&user.name);
            (user, secret)
        })
        .collect();

    let mut results = Vec::new();
    for (label, stacks) in [
        ("without pam_mfa.so", Stacks::without_mfa()),
        ("with pam_mfa.so (TOTP)", Stacks::mfa(&d)),
    ] {
        let server = SshServer::start(&stacks);
        let key = server.new_key("bench");
        for (user, _) in &users {
            server.authorize(&user.name, &key);
        }
        let with_mfa = label.starts_with("with ");
        let (warm, warm_secret) = &users[0];
        let code = with_mfa.then(|| d.totp_code(warm_secret, 0));
        login(&server, &warm.name, &key, code.as_deref());
        let times: Vec<Duration> = users[1..]
            .iter()
            .map(|(user, secret)| {
                let code = with_mfa.then(|| d.totp_code(secret, 0));
                login(&server, &user.name, &key, code.as_deref())
            })
            .collect();
        results.push((label, median(times.clone()), times));
    }
    println!("real ssh logins to a loopback sshd, {logins} per run (median, min, max):");
    for (label, med, times) in &results {
        println!(
            "  {label:<24} {}  (min {}, max {})",
            ms(*med),
            ms(*times.iter().min().unwrap()),
            ms(*times.iter().max().unwrap())
        );
    }
    if let [(_, base, _), (_, mfa, _)] = results.as_slice() {
        let diff = mfa.as_secs_f64() - base.as_secs_f64();
        println!(
            "  difference of the medians: {:+.1} ms (the prompt round trip, the driver typing, mfad's check)",
            diff * 1000.0
        );
    }
}
