//! `bench [--users N] [--clients C]`: the mfad benchmark. Run it as
//! `sudo scripts/bench`, which installs what it needs, builds in release
//! and runs this binary with `MFAD_TARGET_DIR=target/release`.
//!
//! It starts the real daemon in a temporary directory, enrolls N users over
//! the protocol, and times `pam_authenticate` through the real libpam
//! (`pam_start_confdir`, so the host's /etc/pam.d is never read) loading
//! the real `libpam_mfa.so`: N successes one after the other, N wrong codes,
//! then N successes from C concurrent clients. The same three runs go
//! through Debian's `pam_google_authenticator.so` with the same secrets.
//! Every call is checked (PAM_SUCCESS / PAM_AUTH_ERR); mismatches are listed
//! and make the exit status 1. Everything it creates (the temporary
//! directories, the daemon) goes away when it exits or panics; if it is
//! killed, the daemon dies with it (PR_SET_PDEATHSIG) but /tmp/mfad-test-*
//! and /tmp/mfad-bench-gauth-* stay behind.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cpu;
mod measure;
mod probe;
mod report;
mod setup;
mod summary;
mod users;

use measure::{Expect, Target, concurrent, sequential, with_cpu};
use report::{Memory, Runs};
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage: bench [--users N] [--clients C]
  --users N     accounts to enroll and authenticate (at least 1000; default 2000)
  --clients C   concurrent PAM clients in the concurrent run (default 4)
Run as root, through scripts/bench (which builds in release first).";

/// Wrong codes timed with mfad's default failure delay.
const DELAY_SAMPLES: usize = 5;
/// Direct protocol probes.
const PINGS: usize = 2000;
const DIRECT_AUTHS: usize = 500;

struct Options {
    users: usize,
    clients: usize,
}

fn parse_args() -> Result<Options, String> {
    let mut opts = Options {
        users: 2000,
        clients: 4,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<usize, String> {
            let v = inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))?;
            v.parse()
                .map_err(|_| format!("{name}: {v:?} is not a number"))
        };
        match flag.as_str() {
            "--users" => opts.users = value("--users")?,
            "--clients" => opts.clients = value("--clients")?,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if opts.users < 1000 {
        return Err("--users must be at least 1000".into());
    }
    if opts.clients == 0 || opts.clients > opts.users {
        return Err("--clients must be between 1 and --users".into());
    }
    Ok(opts)
}

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(opts) => opts,
        Err(e) => {
            eprintln!("bench: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    mfad_tests::require_root();
    let (n, c) = (opts.users, opts.clients);
    println!("mfad benchmark: N = {n} users, C = {c} concurrent clients");
    eprintln!(
        "[bench] starting mfad from {}",
        mfad_tests::bins::target_dir().display()
    );
    let mut daemon = setup::start_mfad();
    let pid = daemon.pid().expect("the daemon runs");
    std::thread::sleep(Duration::from_millis(200));
    let idle = Memory::of(pid);

    eprintln!("[bench] enrolling {n} users over the protocol");
    let (users, enroll_time) = setup::enroll(&daemon, n);
    let enrolled = Memory::of(pid);
    let gauth = setup::Gauth::create(&users);

    let mfad_target = Target {
        label: "mfad",
        confdir: daemon.pam_confdir(),
        service: setup::MFAD_SERVICE,
    };
    let gauth_target = Target {
        label: "google-authenticator",
        confdir: gauth.pam_confdir(),
        service: setup::GAUTH_SERVICE,
    };
    eprintln!("[bench] mfad: {n} successes, then {n} wrong codes");
    let m_success = with_cpu(Some(pid), || {
        sequential(&mfad_target, &users, Expect::Success)
    });
    let m_wrong = with_cpu(Some(pid), || {
        sequential(&mfad_target, &users, Expect::Wrong)
    });
    let inodes = gauth.inodes(&users);
    eprintln!("[bench] google-authenticator: {n} successes, then {n} wrong codes");
    let g_success = with_cpu(None, || sequential(&gauth_target, &users, Expect::Success));
    let after_success = gauth.inodes(&users);
    let g_wrong = with_cpu(None, || sequential(&gauth_target, &users, Expect::Wrong));
    let after_wrong = gauth.inodes(&users);
    let replaced =
        |before: &[u64], after: &[u64]| before.iter().zip(after).filter(|(b, a)| b != a).count();
    let rewrites = [
        replaced(&inodes, &after_success),
        replaced(&after_success, &after_wrong),
    ];

    eprintln!("[bench] mfad: protocol probes without libpam");
    let pings = probe::ping_one_connection(&daemon, PINGS);
    let connects = probe::connect_and_ping(&daemon, PINGS);
    let direct = probe::auth_wrong_direct(&daemon, &users[..DIRECT_AUTHS.min(n)]);

    // Each user's current step is used up: the concurrent runs need the next.
    let used = m_success.max_step.max(g_success.max_step);
    eprintln!("[bench] waiting for the next 30-second TOTP step (each code works once)");
    let waited = users::wait_for_step_after(used);
    eprintln!(
        "[bench] waited {:.1} s; {c} concurrent clients",
        waited.as_secs_f64()
    );
    let m_conc = with_cpu(Some(pid), || {
        concurrent(&mfad_target, &users, c, Expect::Success)
    });
    let loaded = Memory::of(pid);
    let g_conc = with_cpu(None, || {
        concurrent(&gauth_target, &users, c, Expect::Success)
    });

    eprintln!("[bench] mfad with its default failure delay (restart)");
    setup::restart_with_default_delay(&mut daemon);
    let delayed = sequential(&mfad_target, &users[n - DELAY_SAMPLES..], Expect::Wrong);

    let mfad = Runs {
        label: "mfad",
        has_daemon: true,
        success: m_success,
        wrong: m_wrong,
        concurrent: m_conc,
    };
    let ga = Runs {
        label: "google-authenticator",
        has_daemon: false,
        success: g_success,
        wrong: g_wrong,
        concurrent: g_conc,
    };
    summary::print(&summary::Report {
        n,
        c,
        daemon_dir: daemon.dir(),
        gauth: &gauth,
        rewrites,
        enroll_time,
        memory: [idle, enrolled, loaded],
        mfad: &mfad,
        gauth_runs: &ga,
        probes: [&pings, &connects, &direct],
        delayed: &delayed,
    })
}
