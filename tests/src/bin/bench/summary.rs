//! The printed report: setup, the runs, the comparison, the daemon's
//! memory and probes, and the checks.

use crate::measure::Phase;
use crate::report::{self, Memory, Runs, heading};
use crate::setup;
use std::process::ExitCode;
use std::time::Duration;

/// Everything the report shows.
pub struct Report<'a> {
    pub n: usize,
    pub c: usize,
    pub daemon_dir: &'a std::path::Path,
    pub gauth: &'a setup::Gauth,
    /// Secret files replaced during google-authenticator's runs a and b.
    pub rewrites: [usize; 2],
    pub enroll_time: Duration,
    pub memory: [Memory; 3],
    pub mfad: &'a Runs,
    pub gauth_runs: &'a Runs,
    pub probes: [&'a Phase; 3],
    pub delayed: &'a Phase,
}

/// Prints the report; failure if any call did not return what it had to.
pub fn print(r: &Report<'_>) -> ExitCode {
    heading("Setup");
    for (key, value) in report::machine() {
        println!("{key:<10} {value}");
    }
    println!("users      N = {} (same secrets in both modules)", r.n);
    println!(
        "clients    C = {} threads, each its own PAM handle, disjoint users",
        r.c
    );
    println!(
        "mfad       release build, default worker_threads (2) and window (1); state on {}",
        report::fs_type(r.daemon_dir)
    );
    println!("           deliberate failure delay OFF in the runs below (failure_delay_ms = 0;");
    println!("           the default, 250 ms, is measured apart); lockout thresholds 100 / 100");
    println!("google-authenticator  {}", r.gauth.auth_line());
    println!(
        "           secret files on {}: TOTP_AUTH, DISALLOW_REUSE, WINDOW_SIZE 3, no RATE_LIMIT",
        report::fs_type(r.gauth.dir())
    );
    println!(
        "           it replaced the secret file (new file, fsync, rename) of {} of {} users \
         in run a, {} in run b",
        r.rewrites[0], r.n, r.rewrites[1]
    );
    println!("timing     only the pam_authenticate call (code computed before the clock starts);");
    println!("           one reused PAM handle per client, PAM_RHOST set as sshd would");
    println!(
        "enrollment {} users over the protocol in {:.2} s ({:.2} ms each: begin + confirm, both fsynced)",
        r.n,
        r.enroll_time.as_secs_f64(),
        r.enroll_time.as_secs_f64() * 1e3 / r.n as f64
    );

    heading("Runs");
    report::phase_table(&[r.mfad, r.gauth_runs], r.c);
    println!(
        "CPU µs/call: daemon = mfad's user + system time (clock ticks) / calls; client = this\n\
         process (libpam, the module, the harness). The {} clients and the daemon share nproc CPUs.",
        r.c
    );

    heading("Comparison");
    report::summary_table(r.mfad, r.gauth_runs, r.c);

    heading("mfad daemon");
    let [idle, enrolled, loaded] = r.memory;
    println!("memory idle after start:    {}", idle.show());
    println!("memory after enrollment:    {}", enrolled.show());
    println!("memory after the load:      {}", loaded.show());
    println!(
        "wrong code with the default failure delay (250 ms): p50 {:.1} ms over {} users",
        r.delayed.pct_us(50.0) / 1e3,
        r.delayed.calls()
    );
    let [pings, connects, direct] = r.probes;
    println!("protocol without libpam or the module, p50 / p99 µs:");
    for (name, p) in [
        ("ping on one open connection", pings),
        ("connect + peer check + ping", connects),
        (
            "wrong-code conversation (connect, auth_start, prompt, answer, verdict)",
            direct,
        ),
    ] {
        println!(
            "  {name}: {:.0} / {:.0} ({} calls)",
            p.pct_us(50.0),
            p.pct_us(99.0),
            p.calls()
        );
    }

    heading("Checks");
    let mismatches = report::checks(&[
        ("mfad a", &r.mfad.success),
        ("mfad b", &r.mfad.wrong),
        ("mfad c", &r.mfad.concurrent),
        ("google-authenticator a", &r.gauth_runs.success),
        ("google-authenticator b", &r.gauth_runs.wrong),
        ("google-authenticator c", &r.gauth_runs.concurrent),
        ("mfad with failure delay", r.delayed),
        ("probe: pings", pings),
        ("probe: connect + ping", connects),
        ("probe: direct wrong codes", direct),
    ]);
    if mismatches == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
