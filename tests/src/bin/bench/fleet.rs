//! `--store postgres`: mfad on PostgreSQL, in the same run as mfad on SQLite
//! and google-authenticator; the database work per login; and a fleet of N
//! daemons (1, 2, 5, 10, 20 by default) sharing the one database.
//!
//! The database is a cluster of the benchmark's own, started as the fleet
//! tests start theirs (initdb in a temporary directory, run as `postgres` or
//! `nobody`, loopback TCP without TLS), with the production defaults fsync
//! on and synchronous_commit on: a commit returns once its WAL is on disk.
//! Enrollment (setup, not measured) runs with synchronous_commit off, and
//! so does one labelled measurement per run: SQLite's durability in WAL mode
//! with synchronous=NORMAL (what mfad uses there), where a crash may lose
//! the last commits but never corrupts. pg_stat_statements (loaded at
//! start) counts the statements of mfad's role; a short run under strace
//! reads mfad's writes to the database socket: the round trips.

use crate::cpu::process_cpu;
use crate::measure::{Expect, Fresh, Phase, Target, fleet, fresh_handles};
use crate::report::{self, heading, median};
use crate::setup::{self, MFAD_SERVICE};
use crate::users::{self, BenchUser, PERIOD};
use mfad_tests::TestDaemon;
use mfad_tests::postgres::Postgres;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Logins traced under strace to count round trips.
const TRACED_LOGINS: usize = 100;
/// Threads enrolling the fleet's users (each against its own daemon).
const ENROLLERS: usize = 4;

pub struct Options {
    pub users: usize,
    pub runs: usize,
    /// The fleet sizes, in order.
    pub daemons: Vec<usize>,
    /// How long each fleet size runs.
    pub seconds: u64,
    /// Clients in all, spread over the daemons.
    pub clients: usize,
    /// Users enrolled for the fleet runs (each logs in once per step).
    pub pool: usize,
}

/// Users handed out one at a time, each at most once per TOTP step (a code
/// works once); when the step changes, everyone is free again.
pub struct Pool<'a> {
    users: &'a [BenchUser],
    next: Mutex<(u64, usize)>,
}

impl<'a> Pool<'a> {
    pub fn new(users: &'a [BenchUser]) -> Self {
        Pool {
            users,
            next: Mutex::new((0, 0)),
        }
    }

    /// The next user free in the current step, if any is left.
    pub fn take(&self) -> Option<&'a BenchUser> {
        let step = users::now().as_secs() / PERIOD;
        let mut next = self.next.lock().expect("the pool's lock");
        if next.0 != step {
            *next = (step, 0);
        }
        let user = self.users.get(next.1)?;
        next.1 += 1;
        Some(user)
    }

    /// `n` users one after the other, sleeping into the next step (not
    /// while a login is timed) when this one's are used up.
    pub fn sequence(&self, n: usize) -> impl Iterator<Item = &'a BenchUser> + '_ {
        (0..n).map(|_| {
            loop {
                if let Some(user) = self.take() {
                    return user;
                }
                sleep_into_next_step();
            }
        })
    }
}

fn sleep_into_next_step() {
    let into = users::now().as_millis() % u128::from(PERIOD * 1000);
    let left = u64::try_from(u128::from(PERIOD * 1000) - into).unwrap_or(0);
    std::thread::sleep(Duration::from_millis(left + 100));
}

/// The server and the counters read around each measurement.
struct Db {
    pg: Postgres,
}

/// pg_stat_statements of mfad's role, and the server's CPU time.
#[derive(Clone, Copy)]
struct DbStats {
    statements: u64,
    commits: u64,
    cpu: Duration,
}

impl Db {
    fn start() -> Db {
        let pg = Postgres::start_configured(&["shared_preload_libraries=pg_stat_statements"]);
        pg.sql("CREATE EXTENSION pg_stat_statements");
        Db { pg }
    }

    /// synchronous_commit on or off for every session (mfad's pooled ones
    /// too) through ALTER SYSTEM and a reload; waits until new sessions see
    /// it.
    fn synchronous_commit(&self, on: bool) {
        let value = if on { "on" } else { "off" };
        self.pg
            .sql(&format!("ALTER SYSTEM SET synchronous_commit = {value}"));
        self.pg.sql("SELECT pg_reload_conf()");
        let started = Instant::now();
        while self.pg.sql("SHOW synchronous_commit") != value {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "synchronous_commit did not become {value}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stats(&self) -> DbStats {
        let row = self.pg.sql(
            "SELECT coalesce(sum(calls), 0),
                    coalesce(sum(calls) FILTER (WHERE query ILIKE 'COMMIT%'), 0)
             FROM pg_stat_statements WHERE userid = 'mfad'::regrole",
        );
        let (statements, commits) = row.split_once('|').expect("two columns");
        DbStats {
            statements: statements.parse().expect("a count"),
            commits: commits.parse().expect("a count"),
            cpu: self.pg.cpu(),
        }
    }

    /// mfad's statements since the last reset, with their calls.
    fn breakdown(&self) -> Vec<(u64, String)> {
        self.pg
            .sql(
                "SELECT calls, regexp_replace(query, '\\s+', ' ', 'g')
                 FROM pg_stat_statements WHERE userid = 'mfad'::regrole ORDER BY calls DESC, query",
            )
            .lines()
            .filter_map(|l| {
                let (calls, query) = l.split_once('|')?;
                Some((calls.parse().ok()?, query.to_owned()))
            })
            .collect()
    }

    fn reset(&self) {
        self.pg.sql("SELECT pg_stat_statements_reset()");
    }
}

/// The fleet's daemons, `bench-01`..., on the one database; the first one
/// migrates it and makes the fleet's key, the others get a copy.
fn start_fleet(db: &Db, n: usize) -> Vec<TestDaemon> {
    let mut fleet: Vec<TestDaemon> = Vec::with_capacity(n);
    for i in 1..=n {
        let mut d = db.pg.member(
            setup::bench_config(),
            &format!("bench-{i:02}"),
            fleet.first(),
        );
        if i == 1 {
            d.migrate();
        }
        d.launch();
        d.write_pam_service(MFAD_SERVICE, &[]);
        fleet.push(d);
    }
    fleet
}

/// `n` users enrolled over the protocol, split over the first daemons.
fn enroll_fleet(fleet: &[TestDaemon], n: usize) -> Vec<BenchUser> {
    let threads = ENROLLERS.min(fleet.len());
    let share = n.div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|i| {
                let count = share.min(n - i * share);
                scope.spawn(move || setup::enroll(&fleet[i], &format!("pg{i}"), count).0)
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("an enrolling thread panicked"))
            .collect()
    })
}

/// One run of the side-by-side logins.
struct Round {
    sqlite: Fresh,
    pg: Fresh,
    gauth: Fresh,
    /// With synchronous_commit off.
    pg_async: Fresh,
    /// Over the fsync-on PostgreSQL logins.
    db: DbStats,
    daemon_cpu: Duration,
}

/// A fleet size's run.
struct FleetRun {
    daemons: usize,
    clients: usize,
    phase: Phase,
    db: DbStats,
    daemons_cpu: Duration,
    client_cpu: Duration,
    target: Duration,
}

fn cpu_of(daemons: &[TestDaemon]) -> Duration {
    daemons
        .iter()
        .filter_map(TestDaemon::pid)
        .map(process_cpu)
        .sum()
}

fn since(after: DbStats, before: DbStats) -> DbStats {
    DbStats {
        statements: after.statements.saturating_sub(before.statements),
        commits: after.commits.saturating_sub(before.commits),
        cpu: after.cpu.saturating_sub(before.cpu),
    }
}

pub fn run(opts: &Options) -> ExitCode {
    let (n, runs) = (opts.users, opts.runs);
    let biggest = opts.daemons.iter().copied().max().unwrap_or(1);
    println!(
        "mfad benchmark, store postgres: N = {n} logins per measurement, R = {runs} runs; \
         fleet of {:?} daemons, {} clients, {} s each; load at the start {}",
        opts.daemons,
        opts.clients,
        opts.seconds,
        load()
    );
    // The same sink for every module and daemon, as in the SQLite runs.
    let _sink = crate::console::listen();
    eprintln!("[bench] starting PostgreSQL (initdb in a temporary directory)");
    let db = Db::start();
    let version = db.pg.sql("SHOW server_version");
    eprintln!("[bench] starting mfad on SQLite and {biggest} mfad on PostgreSQL");
    let sqlite = setup::start_mfad();
    let fleet_daemons = start_fleet(&db, biggest);
    db.synchronous_commit(false);
    let enroll_started = Instant::now();
    let pool_size = opts.pool.max(2 * n * runs);
    eprintln!(
        "[bench] enrolling {pool_size} users on PostgreSQL (synchronous_commit off while enrolling)"
    );
    let pg_users = enroll_fleet(&fleet_daemons, pool_size);
    let pg_enroll = enroll_started.elapsed();
    eprintln!("[bench] enrolling {} users on SQLite", n * runs);
    let (sqlite_users, _) = setup::enroll(&sqlite, "sqlite", n * runs);
    let gauth = setup::Gauth::create(&sqlite_users);
    let (pg_pool, sqlite_pool, gauth_pool) = (
        Pool::new(&pg_users),
        Pool::new(&sqlite_users),
        Pool::new(&sqlite_users),
    );
    let first = &fleet_daemons[0];
    let pg_pid = first.pid().expect("the daemon runs");
    let targets: Vec<Target> = fleet_daemons
        .iter()
        .map(|d| Target {
            label: "mfad (postgres)",
            ..setup::mfad_target(d)
        })
        .collect();
    let sqlite_target = setup::mfad_target(&sqlite);
    let gauth_target = setup::gauth_target(&gauth);

    let mut rounds = Vec::with_capacity(runs);
    let mut breakdown = Vec::new();
    for r in 0..runs {
        eprintln!("[bench] run {}/{runs}", r + 1);
        let sqlite_run = fresh_handles(&sqlite_target, sqlite_pool.sequence(n), Expect::Success);
        let gauth_run = fresh_handles(&gauth_target, gauth_pool.sequence(n), Expect::Success);
        db.synchronous_commit(true);
        db.reset();
        let (before, cpu) = (db.stats(), process_cpu(pg_pid));
        let pg_run = fresh_handles(&targets[0], pg_pool.sequence(n), Expect::Success);
        let (stats, daemon_cpu) = (since(db.stats(), before), process_cpu(pg_pid) - cpu);
        if r == 0 {
            breakdown = db.breakdown();
        }
        db.synchronous_commit(false);
        let pg_async = fresh_handles(&targets[0], pg_pool.sequence(n), Expect::Success);
        rounds.push(Round {
            sqlite: sqlite_run,
            pg: pg_run,
            gauth: gauth_run,
            pg_async,
            db: stats,
            daemon_cpu,
        });
    }
    db.synchronous_commit(true);
    eprintln!("[bench] {TRACED_LOGINS} logins under strace, counting round trips");
    let writes = round_trips(&db, pg_pid, &targets[0], &pg_pool);

    let mut fleet_runs = Vec::new();
    for &size in &opts.daemons {
        eprintln!(
            "[bench] fleet of {size}: waiting for a new TOTP step, then {} s",
            opts.seconds
        );
        fleet_runs.push(fleet_run(
            &db,
            &fleet_daemons[..size],
            &targets[..size],
            opts,
            &pg_pool,
        ));
    }

    heading("Setup");
    for (key, value) in report::machine() {
        println!("{key:<10} {value}");
    }
    println!("load       {} (1, 5, 15 min, before the report)", load());
    println!(
        "PostgreSQL {version}, a cluster of the benchmark's own on 127.0.0.1 without TLS, data on {}",
        report::fs_type(Path::new("/tmp"))
    );
    println!(
        "           fsync on, synchronous_commit on (the production defaults) unless labelled; \
         other settings default; pg_stat_statements loaded"
    );
    println!(
        "mfad       release build, default worker_threads (2); [store] pool_size 4, statement timeout 2000 ms;\n\
         \x20          {biggest} daemons bench-01... (the fleet's key copied from bench-01), one of them in the\n\
         \x20          side-by-side runs; mfad on SQLite: WAL on {}",
        report::fs_type(sqlite.dir())
    );
    println!(
        "enrollment {pool_size} users over the protocol on PostgreSQL in {:.1} s ({ENROLLERS} threads, synchronous_commit off: setup only)",
        pg_enroll.as_secs_f64()
    );
    println!("google-authenticator  {}", gauth.auth_line());

    heading("Side by side (µs unless named; one row per run, then the medians)");
    println!(
        "p50/p99 inside pam_authenticate, a new handle per login, {n} distinct users each, one after the\n\
         other. pg = mfad on PostgreSQL (each commit waits for its WAL flush), sq = mfad on SQLite,\n\
         g-a = google-authenticator, pg async = mfad on PostgreSQL with synchronous_commit OFF (commits\n\
         do not wait for the flush: the durability of mfad's SQLite, WAL with synchronous=NORMAL).\n\
         stmts, commits: pg_stat_statements calls of mfad's role per login (the pg run). mfad CPU, PG\n\
         CPU: the daemon's and the PostgreSQL server's CPU time per login (the pg run)."
    );
    let per = |x: f64, calls: usize| x / calls.max(1) as f64;
    let rows: Vec<Vec<f64>> = rounds
        .iter()
        .map(|r| {
            let calls = r.pg.auth.calls();
            let (pg50, pg99) = (r.pg.auth.pct_us(50.0), r.pg.auth.pct_us(99.0));
            let (sq50, sq99) = (r.sqlite.auth.pct_us(50.0), r.sqlite.auth.pct_us(99.0));
            let (ga50, ga99) = (r.gauth.auth.pct_us(50.0), r.gauth.auth.pct_us(99.0));
            vec![
                pg50,
                pg99,
                sq50,
                sq99,
                ga50,
                ga99,
                pg50 / sq50,
                pg99 / sq99,
                ga50 / pg50,
                ga99 / pg99,
                r.pg_async.auth.pct_us(50.0),
                r.pg_async.auth.pct_us(99.0),
                per(r.db.statements as f64, calls),
                per(r.db.commits as f64, calls),
                per(r.daemon_cpu.as_secs_f64() * 1e6, calls),
                per(r.db.cpu.as_secs_f64() * 1e6, calls),
            ]
        })
        .collect();
    table(
        &[
            ("pg", "p50", 0),
            ("pg", "p99", 0),
            ("sq", "p50", 0),
            ("sq", "p99", 0),
            ("g-a", "p50", 0),
            ("g-a", "p99", 0),
            ("pg/sq", "p50", 2),
            ("pg/sq", "p99", 2),
            ("g-a/pg", "p50", 2),
            ("g-a/pg", "p99", 2),
            ("pg async", "p50", 0),
            ("pg async", "p99", 0),
            ("stmts", "/login", 1),
            ("commits", "/login", 2),
            ("mfad CPU", "µs/login", 0),
            ("PG CPU", "µs/login", 0),
        ],
        "run",
        &rows,
        true,
    );

    heading("Database work per successful login (run 1, pg_stat_statements, mfad's role)");
    for (calls, query) in &breakdown {
        let short: String = query.chars().take(96).collect();
        println!("{:>6.2}  {short}", *calls as f64 / n as f64);
    }
    let per_login = |n: usize| n as f64 / TRACED_LOGINS as f64;
    println!(
        "round trips: {:.1} per login (mfad's writes to the database socket that wait for an answer:\n\
         {:.1} prepare, {:.1} execute, {:.1} simple query such as BEGIN/COMMIT); {:.1} more writes close\n\
         unnamed statements without waiting (strace -f -yy of mfad over {TRACED_LOGINS} logins)",
        per_login(writes.prepare + writes.execute + writes.simple),
        per_login(writes.prepare),
        per_login(writes.execute),
        per_login(writes.simple),
        per_login(writes.other),
    );

    let audit = db
        .pg
        .sql("SELECT pg_total_relation_size('audit') / greatest(count(*), 1) FROM audit");
    println!("audit: {audit} bytes per row with its indexes (one row per login)");

    heading("Fleet: N daemons on the one PostgreSQL");
    println!(
        "each size runs {} s from the start of a TOTP step (each user logs in once per step), {} PAM\n\
         clients on reused handles spread over the daemons (client i on daemon i mod N). logins/s per\n\
         PG core: logins per second of PostgreSQL server CPU time. p50/p99 in µs.",
        opts.seconds, opts.clients
    );
    let rows: Vec<Vec<f64>> = fleet_runs
        .iter()
        .map(|f| {
            let calls = f.phase.calls();
            vec![
                f.daemons as f64,
                f.clients as f64,
                calls as f64,
                f.phase.wall.as_secs_f64(),
                f.phase.per_sec(),
                f.phase.pct_us(50.0),
                f.phase.pct_us(99.0),
                per(f.db.statements as f64, calls),
                per(f.db.cpu.as_secs_f64() * 1e6, calls),
                f.phase.ok as f64 / f.db.cpu.as_secs_f64(),
                per(f.daemons_cpu.as_secs_f64() * 1e6, calls),
                per(f.client_cpu.as_secs_f64() * 1e6, calls),
            ]
        })
        .collect();
    table(
        &[
            ("daemons", "N", 0),
            ("clients", "", 0),
            ("logins", "", 0),
            ("wall", "s", 1),
            ("logins/s", "", 0),
            ("p50", "", 0),
            ("p99", "", 0),
            ("stmts", "/login", 1),
            ("PG CPU", "µs/login", 0),
            ("logins/s", "/PG core", 0),
            ("mfad CPU", "µs/login", 0),
            ("PAM side", "µs/login", 0),
        ],
        "",
        &rows,
        false,
    );
    for f in fleet_runs.iter().filter(|f| f.phase.wall < f.target) {
        println!(
            "N = {}: ran {:.1} s of {} s: the {} users were used up in that step (each logs in once \
             per step; raise --pool)",
            f.daemons,
            f.phase.wall.as_secs_f64(),
            f.target.as_secs(),
            pg_users.len()
        );
    }

    heading("Checks");
    let phases: Vec<(String, &Phase)> = rounds
        .iter()
        .enumerate()
        .flat_map(|(i, r)| {
            [
                ("mfad on PostgreSQL", &r.pg.auth),
                ("mfad on SQLite", &r.sqlite.auth),
                ("google-authenticator", &r.gauth.auth),
                (
                    "mfad on PostgreSQL, synchronous_commit off",
                    &r.pg_async.auth,
                ),
            ]
            .map(|(name, p)| (format!("run {}: {name}", i + 1), p))
        })
        .chain(
            fleet_runs
                .iter()
                .map(|f| (format!("fleet of {}", f.daemons), &f.phase)),
        )
        .collect();
    if report::check_phases(&phases) == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The load average, as /proc/loadavg says.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// One fleet size: from the start of a new step, `opts.clients` clients
/// over `targets` for `opts.seconds`.
fn fleet_run(
    db: &Db,
    daemons: &[TestDaemon],
    targets: &[Target],
    opts: &Options,
    pool: &Pool<'_>,
) -> FleetRun {
    sleep_into_next_step();
    db.reset();
    let (before, cpu, client) = (db.stats(), cpu_of(daemons), process_cpu(std::process::id()));
    let target = Duration::from_secs(opts.seconds);
    let phase = fleet(targets, opts.clients, &|| pool.take(), target);
    FleetRun {
        daemons: daemons.len(),
        clients: opts.clients,
        db: since(db.stats(), before),
        daemons_cpu: cpu_of(daemons).saturating_sub(cpu),
        client_cpu: process_cpu(std::process::id()).saturating_sub(client),
        phase,
        target,
    }
}

/// mfad's writes to the database's socket, by the first message in each
/// (the protocol's type byte).
#[derive(Default)]
struct Writes {
    /// Parse: a statement prepared, then its answer awaited.
    prepare: usize,
    /// Bind and Execute of a prepared statement.
    execute: usize,
    /// A simple query (BEGIN, COMMIT).
    simple: usize,
    /// Anything else (Close of a statement, not awaited).
    other: usize,
}

/// mfad's writes to the database's socket over [`TRACED_LOGINS`] logins,
/// from `strace -f -yy` attached to it.
fn round_trips(db: &Db, pid: u32, target: &Target, pool: &Pool<'_>) -> Writes {
    let out = tempfile::NamedTempFile::new().expect("a temporary file");
    let mut strace = Command::new("strace")
        .args([
            "-f",
            "-yy",
            "-qq",
            "-e",
            "trace=write,writev,sendto,sendmsg",
            "-o",
        ])
        .arg(out.path())
        .args(["-p", &pid.to_string()])
        .stderr(Stdio::null())
        .spawn()
        .expect("run strace (scripts/deps bench installs it)");
    // strace gives no sign that it has attached; it takes a few ms.
    std::thread::sleep(Duration::from_millis(500));
    let run = fresh_handles(target, pool.sequence(TRACED_LOGINS), Expect::Success);
    std::thread::sleep(Duration::from_millis(200));
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(strace.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    );
    let _ = strace.wait();
    assert_eq!(run.auth.mismatches, 0, "the traced logins failed");
    let to_db = format!("->127.0.0.1:{}]>, ", db.pg.port);
    let mut writes = Writes::default();
    let text = std::fs::read_to_string(out.path()).expect("read the strace output");
    for line in text.lines() {
        let Some((_, data)) = line.split_once(&to_db) else {
            continue;
        };
        // `"B\0\0...` for write and sendto, `[{iov_base="B...` for writev.
        let kind = data.split_once('"').and_then(|(_, d)| d.chars().next());
        match kind {
            Some('P') => writes.prepare += 1,
            Some('B') => writes.execute += 1,
            Some('Q') => writes.simple += 1,
            _ => writes.other += 1,
        }
    }
    writes
}

/// A table of rows, then (if `medians`) the median of each column.
fn table(columns: &[(&str, &str, usize)], first: &str, rows: &[Vec<f64>], medians: bool) {
    let width = 10;
    let mut top = format!("{:<7}", "");
    let mut bottom = format!("{first:<7}");
    for (a, b, _) in columns {
        top += &format!("{a:>width$}");
        bottom += &format!("{b:>width$}");
    }
    println!("{top}\n{bottom}");
    let show = |label: &str, row: &[f64]| {
        let mut line = format!("{label:<7}");
        for (v, (_, _, decimals)) in row.iter().zip(columns) {
            line += &format!("{v:>width$.decimals$}");
        }
        println!("{line}");
    };
    for (i, row) in rows.iter().enumerate() {
        let label = if medians {
            (i + 1).to_string()
        } else {
            String::new()
        };
        show(&label, row);
    }
    if medians {
        let m: Vec<f64> = (0..columns.len())
            .map(|c| median(rows.iter().map(|r| r[c]).collect()))
            .collect();
        show("median", &m);
    }
}
