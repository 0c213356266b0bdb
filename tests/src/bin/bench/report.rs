//! The machine, the daemon's memory, and the printed report.

use crate::cpu::Cpu;
use crate::floor::Floor;
use crate::measure::{Fresh, Phase};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

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

/// One round of every measurement.
pub struct Round {
    /// A new handle per login, N distinct users, one after the other.
    pub mfad: Fresh,
    pub gauth: Fresh,
    pub permit: Fresh,
    /// The bare and the tokio floor server (floor.rs), in that order.
    pub floors: [Floor; 2],
    /// The CPU time spent during mfad's logins above.
    pub mfad_cpu: Cpu,
    /// C clients on reused handles.
    pub concurrent: Phase,
    pub concurrent_cpu: Cpu,
    /// A new handle per login, with an enrollment loop beside it.
    pub under_load: Fresh,
    pub enrollments: usize,
    /// Syslog messages received during mfad's, google-authenticator's and
    /// pam_permit's logins.
    pub logs: [usize; 3],
}

/// CPU time per call, in µs.
fn per_login(cpu: Duration, calls: usize) -> f64 {
    cpu.as_secs_f64() * 1e6 / calls.max(1) as f64
}

/// The figures of one round, in the order of [`COLUMNS`].
fn figures(r: &Round) -> Vec<f64> {
    let n = r.mfad.auth.calls().max(1) as f64;
    let (m50, m99) = (r.mfad.auth.pct_us(50.0), r.mfad.auth.pct_us(99.0));
    let (g50, g99) = (r.gauth.auth.pct_us(50.0), r.gauth.auth.pct_us(99.0));
    let (se_m, se_p) = (
        r.mfad.start_end.pct_us(50.0),
        r.permit.start_end.pct_us(50.0),
    );
    vec![
        m50,
        m99,
        g50,
        g99,
        r.permit.auth.pct_us(50.0),
        r.permit.auth.pct_us(99.0),
        g50 / m50,
        g99 / m99,
        se_m,
        se_p,
        se_m / se_p,
        r.concurrent.per_sec(),
        r.under_load.auth.pct_us(99.0),
        r.enrollments as f64 / r.under_load.auth.wall.as_secs_f64(),
        per_login(r.mfad_cpu.daemon, r.mfad.auth.calls()),
        per_login(r.concurrent_cpu.daemon, r.concurrent.calls()),
        r.logs[0] as f64 / n,
    ]
}

/// Column headings (two lines) and decimals.
const COLUMNS: [(&str, &str, usize); 17] = [
    ("mfad", "p50", 0),
    ("mfad", "p99", 0),
    ("g-a", "p50", 0),
    ("g-a", "p99", 0),
    ("permit", "p50", 0),
    ("permit", "p99", 0),
    ("g-a/mfad", "p50", 1),
    ("g-a/mfad", "p99", 1),
    ("start+end", "mfad", 0),
    ("start+end", "permit", 0),
    ("start+end", "ratio", 2),
    ("C clients", "logins/s", 0),
    ("w/ writes", "p99", 0),
    ("w/ writes", "enroll/s", 0),
    ("daemon CPU", "µs/login", 1),
    ("CPU C cl.", "µs/login", 1),
    ("syslog", "msg/login", 1),
];

/// The floor's figures of one round, in the order of [`FLOOR_COLUMNS`].
fn floor_figures(r: &Round) -> Vec<f64> {
    let mut row = Vec::new();
    for f in &r.floors {
        row.extend([
            f.sequential.pct_us(50.0),
            f.sequential.pct_us(99.0),
            f.cpu_us,
            f.concurrent.per_sec(),
        ]);
    }
    let [bare, tokio] = &r.floors;
    let floor = r.permit.auth.pct_us(50.0) + bare.sequential.pct_us(50.0);
    row.extend([
        floor,
        r.mfad.auth.pct_us(50.0) - floor,
        per_login(r.mfad_cpu.daemon, r.mfad.auth.calls()) - tokio.cpu_us,
    ]);
    row
}

const FLOOR_COLUMNS: [(&str, &str, usize); 11] = [
    ("bare", "p50", 0),
    ("bare", "p99", 0),
    ("bare", "CPU µs", 1),
    ("bare", "C cl./s", 0),
    ("tokio", "p50", 0),
    ("tokio", "p99", 0),
    ("tokio", "CPU µs", 1),
    ("tokio", "C cl./s", 0),
    ("floor", "p50", 0),
    ("mfad above", "p50", 0),
    ("mfad above", "CPU µs", 1),
];

/// One row per round, then the median of each column (ratios: the median
/// of the per-round ratios).
pub fn rounds_table(rounds: &[Round]) {
    table(&COLUMNS, rounds.iter().map(figures).collect());
}

/// The floor under the same rounds.
pub fn floor_table(rounds: &[Round]) {
    table(&FLOOR_COLUMNS, rounds.iter().map(floor_figures).collect());
}

fn table(columns: &[(&str, &str, usize)], rows: Vec<Vec<f64>>) {
    let width = 11;
    let mut top = format!("{:<7}", "");
    let mut bottom = format!("{:<7}", "run");
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
        show(&(i + 1).to_string(), row);
    }
    let medians: Vec<f64> = (0..columns.len())
        .map(|c| median(rows.iter().map(|r| r[c]).collect()))
        .collect();
    show("median", &medians);
}

pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Every call that did not return what it had to, or a line saying none.
/// Returns the number of mismatches.
pub fn checks(rounds: &[Round]) -> usize {
    let phases: Vec<(String, &Phase)> = rounds
        .iter()
        .enumerate()
        .flat_map(|(i, r)| {
            [
                ("mfad", &r.mfad.auth),
                ("google-authenticator", &r.gauth.auth),
                ("pam_permit", &r.permit.auth),
                ("mfad, C clients", &r.concurrent),
                ("mfad with writes", &r.under_load.auth),
            ]
            .map(|(name, p)| (format!("run {}: {name}", i + 1), p))
        })
        .collect();
    check_phases(&phases)
}

/// As [`checks`], for named phases.
pub fn check_phases(phases: &[(String, &Phase)]) -> usize {
    let total: usize = phases.iter().map(|(_, p)| p.mismatches).sum();
    let calls: usize = phases.iter().map(|(_, p)| p.calls()).sum();
    if total == 0 {
        println!("all {calls} measured logins returned PAM_SUCCESS");
        return 0;
    }
    println!("{total} of {calls} measured logins did NOT return PAM_SUCCESS:");
    for (name, p) in phases.iter().filter(|(_, p)| p.mismatches > 0) {
        println!("  {name}: {} mismatches; first ones:", p.mismatches);
        for e in &p.examples {
            println!("    {e}");
        }
    }
    total
}

pub fn heading(text: &str) {
    println!("\n{text}\n{}", "-".repeat(text.chars().count()));
}
