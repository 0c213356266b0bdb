//! The printed report: setup, the logging check, the rounds side by side
//! with their medians, the daemon's memory, and the checks.

use crate::console::Trace;
use crate::report::{self, Memory, Round, heading};
use crate::setup;
use std::process::ExitCode;
use std::time::Duration;

/// Everything the report shows.
pub struct Report<'a> {
    pub n: usize,
    pub c: usize,
    pub daemon_dir: &'a std::path::Path,
    pub gauth: &'a setup::Gauth,
    pub enroll_time: Duration,
    pub enrolled_users: usize,
    pub memory: [Memory; 3],
    pub trace: &'a Trace,
    pub rounds: &'a [Round],
}

/// Prints the report; failure if any call did not return what it had to or
/// a module wrote to the console.
pub fn print(r: &Report<'_>) -> ExitCode {
    heading("Setup");
    for (key, value) in report::machine() {
        println!("{key:<10} {value}");
    }
    println!(
        "mfad       release build, default worker_threads (2) and window (1); state on {}",
        report::fs_type(r.daemon_dir)
    );
    println!("           no deliberate failure delay; lockout thresholds 100 / 100");
    println!("google-authenticator  {}", r.gauth.auth_line());
    println!(
        "           secret files on {}: TOTP_AUTH, DISALLOW_REUSE, WINDOW_SIZE 3, no RATE_LIMIT",
        report::fs_type(r.gauth.dir())
    );
    println!("pam_permit auth required pam_permit.so (the floor: libpam alone)");
    println!(
        "enrollment {} users over the protocol in {:.2} s ({:.2} ms each: begin + confirm, both fsynced)",
        r.enrolled_users,
        r.enroll_time.as_secs_f64(),
        r.enroll_time.as_secs_f64() * 1e3 / r.enrolled_users.max(1) as f64
    );

    heading("Logging");
    println!(
        "every module and the daemon log to /dev/log, a datagram listener of the benchmark's own\n\
         (a private mount namespace with its own /dev; the host's /dev/log is untouched)"
    );
    let t = r.trace;
    println!(
        "strace -f -T over {} good and {} wrong logins per module, each on a new handle: \
         {} system calls name /dev/console, {} connect to /dev/log",
        t.logins,
        t.logins,
        t.console.len(),
        t.log_connects
    );
    for line in t.console.iter().take(5) {
        println!("  {line}");
    }

    heading("Runs (µs unless named; one row per run, then the medians)");
    println!(
        "p50/p99: inside pam_authenticate, a new handle per login (pam_start, pam_authenticate,\n\
         pam_end, as sshd does), {n} distinct users with a current code; g-a = google-authenticator.\n\
         start+end: pam_start + pam_end p50 with pam_mfa.so in the stack and with pam_permit.so.\n\
         C clients: {c} threads on reused handles, {n} logins in all. w/ writes: mfad's p99 while an\n\
         enrollment loop (the requests of `mfactl totp enroll`) runs beside it. daemon CPU: mfad's\n\
         CPU time (its CPU clock, ns) over the sequential logins and over the C-client run, per login.",
        n = r.n,
        c = r.c
    );
    report::rounds_table(r.rounds);

    heading("The floor (µs unless named; the same runs)");
    println!(
        "The conversation of a login (connect, request, prompt, answer, verdict: two round trips\n\
         over a Unix socket, frames of a real login's sizes) with a server process that does\n\
         nothing else: bare, one blocking thread; tokio, mfad's shape (2 workers, a task per\n\
         connection). p50/p99 per exchange, the server's CPU per exchange, and exchanges/s from\n\
         {c} clients. floor: pam_permit's p50 plus bare's, what a login through libpam and a\n\
         do-nothing server costs here. mfad above: mfad's p50 less the floor, and its daemon CPU\n\
         per login less the tokio server's.",
        c = r.c
    );
    report::floor_table(r.rounds);

    heading("mfad daemon");
    let [idle, enrolled, loaded] = r.memory;
    println!("memory idle after start:    {}", idle.show());
    println!("memory after enrollment:    {}", enrolled.show());
    println!("memory after the runs:      {}", loaded.show());
    if let Some(first) = r.rounds.first() {
        let per = |i: usize| first.logs[i] as f64 / r.n as f64;
        println!(
            "syslog messages per login (run 1): mfad {:.1} (module and daemon), \
             google-authenticator {:.1}, pam_permit {:.1}",
            per(0),
            per(1),
            per(2)
        );
    }

    heading("Checks");
    let mismatches = report::checks(r.rounds);
    if !t.console.is_empty() {
        println!("a module or the daemon wrote to /dev/console: the comparison is not fair");
    }
    if mismatches == 0 && t.console.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
