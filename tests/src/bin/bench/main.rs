//! `bench [--users N] [--runs R] [--clients C]`: the mfad benchmark.
//! `bench --store postgres [...]`: mfad on PostgreSQL beside it, and a fleet
//! of daemons sharing one database (see fleet.rs). Run it
//! as `sudo scripts/bench`, which installs what it needs, builds in release
//! and runs this binary with `MFAD_TARGET_DIR=target/release` in a private
//! mount namespace with a /dev of its own.
//!
//! It starts the real daemon in a temporary directory, enrolls 3 x N x R
//! users over the protocol (each TOTP code works once, so every measured
//! login needs a user of its own), and runs R rounds of: N logins through
//! mfad, google-authenticator and pam_permit, each on a new handle; N logins
//! through mfad from C clients on reused handles; N logins through mfad
//! while an enrollment loop writes beside them; and the floor under any
//! daemon (floor.rs): a login's conversation with a server that does
//! nothing else. Every module and the daemon
//! log to the same /dev/log listener; a short run under `strace -f -T`
//! checks that none writes to /dev/console. Every call is checked
//! (PAM_SUCCESS); mismatches are listed and make the exit status 1. What it
//! creates goes away when it exits or panics; if it is killed, the daemon
//! dies with it (PR_SET_PDEATHSIG) but /tmp/mfad-test-* and
//! /tmp/mfad-bench-gauth-* stay behind.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod console;
mod cpu;
mod fleet;
mod floor;
mod measure;
mod report;
mod setup;
mod summary;
mod users;

use measure::{Expect, concurrent, fresh_handles, with_cpu};
use report::{Memory, Round};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const USAGE: &str = "usage: bench [--users N] [--runs R] [--clients C]
       bench --store postgres [--users N] [--runs R] [--daemons LIST] [--seconds S]
                              [--fleet-clients C] [--pool U]
  --users N     logins per measurement (at least 100; default 1000)
  --runs R      rounds of every measurement (default 5)
  --clients C   concurrent PAM clients on reused handles (default 4)
  --store postgres
                mfad on PostgreSQL (a cluster of the benchmark's own, fsync on)
                beside mfad on SQLite and google-authenticator, the database
                work per login, then a fleet of daemons on the one database:
  --daemons LIST  fleet sizes, comma-separated (default 1,2,5,10,20)
  --seconds S     how long each fleet size runs (1 to 25; default 10)
  --fleet-clients C  PAM clients spread over the fleet (at least the largest
                  size; default 20)
  --pool U        users enrolled for the fleet runs; each logs in once per
                  30 s step (default 15000)
Run as root, through scripts/bench (which builds in release first).";

struct Options {
    users: usize,
    runs: usize,
    clients: usize,
    console_check: bool,
    /// The child serving the floor's exchanges (floor.rs): its kind and socket.
    floor_server: Option<(String, String)>,
    /// `--store postgres`: the fleet benchmark, with its settings.
    postgres: Option<fleet::Options>,
}

/// `1,2,5`: the fleet sizes.
fn sizes(v: &str) -> Result<Vec<usize>, String> {
    let sizes: Vec<usize> = v
        .split(',')
        .map(|n| n.trim().parse().ok().filter(|&n| n > 0))
        .collect::<Option<_>>()
        .ok_or_else(|| format!("--daemons: {v:?} is not a list of numbers like 1,2,5"))?;
    Ok(sizes)
}

fn parse_args() -> Result<Options, String> {
    let mut opts = Options {
        users: 1000,
        runs: 5,
        clients: 4,
        console_check: false,
        floor_server: None,
        postgres: None,
    };
    let mut store = "sqlite".to_owned();
    let mut fleet = fleet::Options {
        users: 0,
        runs: 0,
        daemons: vec![1, 2, 5, 10, 20],
        seconds: 10,
        clients: 20,
        pool: 15_000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        let mut text = |name: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        let mut value = |name: &str| -> Result<usize, String> {
            let v = text(name)?;
            v.parse()
                .map_err(|_| format!("{name}: {v:?} is not a number"))
        };
        match flag.as_str() {
            "--users" => opts.users = value("--users")?,
            "--runs" => opts.runs = value("--runs")?,
            "--clients" => opts.clients = value("--clients")?,
            "--store" => store = text("--store")?,
            "--daemons" => fleet.daemons = sizes(&text("--daemons")?)?,
            "--seconds" => fleet.seconds = value("--seconds")? as u64,
            "--fleet-clients" => fleet.clients = value("--fleet-clients")?,
            "--pool" => fleet.pool = value("--pool")?,
            // The child run under strace (console::check).
            "--console-check" => opts.console_check = true,
            // A child of floor::measure.
            "--floor-server" => {
                let kind = text("--floor-server")?;
                opts.floor_server = Some((kind, text("--floor-server")?));
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if opts.users < 100 {
        return Err("--users must be at least 100".into());
    }
    if opts.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    if opts.clients == 0 || opts.clients > opts.users {
        return Err("--clients must be between 1 and --users".into());
    }
    match store.as_str() {
        "sqlite" => {}
        "postgres" => {
            if !(1..=25).contains(&fleet.seconds) {
                return Err(
                    "--seconds must be between 1 and 25 (a run stays in one TOTP step)".into(),
                );
            }
            let biggest = fleet.daemons.iter().copied().max().unwrap_or(0);
            if fleet.clients < biggest {
                return Err(format!(
                    "--fleet-clients must be at least the largest fleet ({biggest}), so every daemon has a client"
                ));
            }
            fleet.users = opts.users;
            fleet.runs = opts.runs;
            opts.postgres = Some(fleet);
        }
        other => return Err(format!("--store: {other:?} is neither sqlite nor postgres")),
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
    if let Some((kind, socket)) = &opts.floor_server {
        return floor::serve(kind, std::path::Path::new(socket));
    }
    mfad_tests::require_root();
    if opts.console_check {
        return console::traced_run();
    }
    if let Some(postgres) = &opts.postgres {
        return fleet::run(postgres);
    }
    let (n, runs, c) = (opts.users, opts.runs, opts.clients);
    println!("mfad benchmark: N = {n} logins per measurement, R = {runs} runs, C = {c} clients");
    let sink = console::listen();
    let tmp = tempfile::tempdir().expect("a temporary directory");
    eprintln!("[bench] the logging check under strace -f -T");
    let trace = console::check(tmp.path());

    eprintln!(
        "[bench] starting mfad from {}",
        mfad_tests::bins::target_dir().display()
    );
    let daemon = setup::start_mfad();
    let pid = daemon.pid().expect("the daemon runs");
    std::thread::sleep(Duration::from_millis(200));
    let idle = Memory::of(pid);
    eprintln!("[bench] enrolling {} users over the protocol", 3 * n * runs);
    let (users, enroll_time) = setup::enroll(&daemon, "bench", 3 * n * runs);
    let enrolled = Memory::of(pid);
    let gauth = setup::Gauth::create(&users);
    let mfad = setup::mfad_target(&daemon);
    let ga = setup::gauth_target(&gauth);
    let permit = setup::permit_target(&daemon);

    let mut rounds = Vec::with_capacity(runs);
    for (r, users) in users.chunks(3 * n).enumerate() {
        let (fresh, rest) = users.split_at(n);
        let (conc, loaded) = rest.split_at(n);
        eprintln!("[bench] run {}/{runs}", r + 1);
        let logged = sink.count();
        let (m, m_cpu) = with_cpu(Some(pid), || fresh_handles(&mfad, fresh, Expect::Success));
        let m_logs = sink.count() - logged;
        let logged = sink.count();
        let g = fresh_handles(&ga, fresh, Expect::Success);
        let g_logs = sink.count() - logged;
        let logged = sink.count();
        let p = fresh_handles(&permit, fresh, Expect::Success);
        let p_logs = sink.count() - logged;
        let floors = floor::Kind::ALL.map(|kind| floor::measure(kind, tmp.path(), n, c));
        let (concurrent, c_cpu) =
            with_cpu(Some(pid), || concurrent(&mfad, conc, c, Expect::Success));
        let stop = AtomicBool::new(false);
        let (under_load, enrollments) = std::thread::scope(|scope| {
            let writer = scope.spawn(|| setup::enroll_until(&daemon, &format!("load{r}"), &stop));
            let run = fresh_handles(&mfad, loaded, Expect::Success);
            stop.store(true, Ordering::Relaxed);
            (run, writer.join().expect("the enrollment loop panicked"))
        });
        rounds.push(Round {
            mfad: m,
            mfad_cpu: m_cpu,
            concurrent_cpu: c_cpu,
            gauth: g,
            permit: p,
            floors,
            concurrent,
            under_load,
            enrollments,
            logs: [m_logs, g_logs, p_logs],
        });
    }
    let loaded = Memory::of(pid);
    summary::print(&summary::Report {
        n,
        c,
        daemon_dir: daemon.dir(),
        gauth: &gauth,
        enroll_time,
        enrolled_users: users.len(),
        memory: [idle, enrolled, loaded],
        trace: &trace,
        rounds: &rounds,
    })
}
