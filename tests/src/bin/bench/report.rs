//! The machine, the daemon's memory, and the printed report.

use crate::measure::Phase;
use std::path::Path;
use std::process::Command;

/// Trimmed stdout of a command, or "?" if it cannot run.
fn command_text(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "?".to_owned())
}

/// The machine the numbers come from.
pub fn machine() -> Vec<(String, String)> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_owned())
        .unwrap_or_else(|| "?".to_owned());
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mem_kib = proc_kib("/proc/meminfo", "MemTotal:").unwrap_or(0);
    let packages = command_text(
        "dpkg-query",
        &[
            "-W",
            "-f=${Package} ${Version}, ",
            "libpam0g",
            "libpam-google-authenticator",
        ],
    );
    vec![
        ("cpu".into(), format!("{model}, nproc {nproc}")),
        (
            "memory".into(),
            format!("{:.1} GiB", mem_kib as f64 / 1048576.0),
        ),
        ("kernel".into(), kernel.trim().to_owned()),
        (
            "packages".into(),
            packages.trim_end_matches([',', ' ']).to_owned(),
        ),
    ]
}

/// The filesystem type holding `path` (its fsyncs are part of the cost).
pub fn fs_type(path: &Path) -> String {
    let path = path.to_string_lossy();
    let fs = command_text("findmnt", &["-n", "-o", "FSTYPE", "--target", &path]);
    let source = command_text("findmnt", &["-n", "-o", "SOURCE", "--target", &path]);
    format!("{fs} ({source})")
}

/// A `Key: 1234 kB` line of a /proc file, in KiB.
fn proc_kib(file: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// VmRSS and VmHWM of a process, in KiB.
#[derive(Clone, Copy, Default)]
pub struct Memory {
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

impl Memory {
    pub fn of(pid: u32) -> Memory {
        let file = format!("/proc/{pid}/status");
        Memory {
            rss_kib: proc_kib(&file, "VmRSS:").unwrap_or(0),
            hwm_kib: proc_kib(&file, "VmHWM:").unwrap_or(0),
        }
    }

    pub fn show(&self) -> String {
        format!(
            "VmRSS {:.1} MiB, VmHWM {:.1} MiB",
            self.rss_kib as f64 / 1024.0,
            self.hwm_kib as f64 / 1024.0
        )
    }
}

/// The three runs of one module.
pub struct Runs {
    pub label: &'static str,
    /// Whether a daemon does part of the work (its CPU time is shown).
    pub has_daemon: bool,
    pub success: Phase,
    pub wrong: Phase,
    pub concurrent: Phase,
}

pub fn heading(text: &str) {
    println!("\n{text}\n{}", "-".repeat(text.chars().count()));
}

/// Per phase: calls, checks, percentiles, max and rate.
pub fn phase_table(runs: &[&Runs], clients: usize) {
    println!(
        "{:<20} {:<25} {:>5} {:>5} {:>7} {:>7} {:>7} {:>7} {:>6} {:>14}",
        "", "", "", "", "", "", "", "", "", "CPU µs/call"
    );
    println!(
        "{:<20} {:<25} {:>5} {:>5} {:>7} {:>7} {:>7} {:>7} {:>6} {:>6} {:>7}",
        "module",
        "run (latency in µs)",
        "calls",
        "ok",
        "p50",
        "p90",
        "p99",
        "max",
        "ok/s",
        "daemon",
        "client"
    );
    for r in runs {
        let conc = format!("c. success, {clients} clients");
        for (name, p) in [
            ("a. success, sequential", &r.success),
            ("b. wrong code, sequential", &r.wrong),
            (conc.as_str(), &r.concurrent),
        ] {
            let (daemon, client) = p.cpu_per_call_us();
            let daemon = if r.has_daemon {
                format!("{daemon:.0}")
            } else {
                "-".to_owned()
            };
            println!(
                "{:<20} {:<25} {:>5} {:>5} {:>7.0} {:>7.0} {:>7.0} {:>7.0} {:>6.0} {:>6} {:>7.0}",
                r.label,
                name,
                p.calls(),
                p.ok,
                p.pct_us(50.0),
                p.pct_us(90.0),
                p.pct_us(99.0),
                p.max_us(),
                p.per_sec(),
                daemon,
                client
            );
        }
    }
}

/// The comparison: one row per module, then google-authenticator / mfad.
pub fn summary_table(mfad: &Runs, gauth: &Runs, clients: usize) {
    let row = |r: &Runs| -> [f64; 8] {
        [
            r.success.pct_us(50.0),
            r.success.pct_us(90.0),
            r.success.pct_us(99.0),
            r.wrong.pct_us(50.0),
            r.wrong.pct_us(90.0),
            r.wrong.pct_us(99.0),
            r.success.per_sec(),
            r.concurrent.per_sec(),
        ]
    };
    let conc = format!("{clients} clients/s");
    println!(
        "{:<22} {:>27} {:>27} {:>11} {:>11}",
        "", "success (µs)", "wrong code (µs)", "sequential", "concurrent"
    );
    println!(
        "{:<22} {:>8} {:>9} {:>9} {:>8} {:>9} {:>9} {:>11} {:>11}",
        "module", "p50", "p90", "p99", "p50", "p90", "p99", "auths/s", conc
    );
    let (m, g) = (row(mfad), row(gauth));
    for (label, v) in [(mfad.label, m), (gauth.label, g)] {
        println!(
            "{label:<22} {:>8.0} {:>9.0} {:>9.0} {:>8.0} {:>9.0} {:>9.0} {:>11.0} {:>11.0}",
            v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]
        );
    }
    let ratio: Vec<f64> = g.iter().zip(m.iter()).map(|(g, m)| g / m).collect();
    println!(
        "{:<22} {:>8.2} {:>9.2} {:>9.2} {:>8.2} {:>9.2} {:>9.2} {:>11.2} {:>11.2}",
        "ratio ga / mfad",
        ratio[0],
        ratio[1],
        ratio[2],
        ratio[3],
        ratio[4],
        ratio[5],
        ratio[6],
        ratio[7]
    );
    println!(
        "(latency ratio > 1: google-authenticator is slower; throughput ratio < 1: it does fewer auths/s)"
    );
}

/// Every call that did not return what it had to, or a line saying none.
/// Returns the number of mismatches.
pub fn checks(phases: &[(&str, &Phase)]) -> usize {
    let total: usize = phases.iter().map(|(_, p)| p.mismatches).sum();
    let calls: usize = phases.iter().map(|(_, p)| p.calls()).sum();
    if total == 0 {
        println!(
            "all {calls} measured calls returned what they had to \
             (PAM_SUCCESS for current codes, PAM_AUTH_ERR for wrong ones)"
        );
        return 0;
    }
    println!("{total} of {calls} measured calls did NOT return what they had to:");
    for (name, p) in phases.iter().filter(|(_, p)| p.mismatches > 0) {
        println!("  {name}: {} mismatches; first ones:", p.mismatches);
        for e in &p.examples {
            println!("    {e}");
        }
    }
    total
}
