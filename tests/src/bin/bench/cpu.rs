//! CPU time spent during a run, by the daemon and by the benchmark process
//! (libpam and the module run inside it): where the time goes.

use std::time::Duration;

/// CPU time (user + system) of the daemon and of this process.
#[derive(Clone, Copy, Default)]
pub struct Cpu {
    pub daemon: Duration,
    pub client: Duration,
}

impl Cpu {
    /// Now; `daemon_pid` is `None` when only this process counts.
    pub fn now(daemon_pid: Option<u32>) -> Cpu {
        Cpu {
            daemon: daemon_pid.map(process_cpu).unwrap_or_default(),
            client: own_cpu(),
        }
    }

    /// The CPU time spent since `earlier`.
    pub fn since(self, earlier: Cpu) -> Cpu {
        Cpu {
            daemon: self.daemon.saturating_sub(earlier.daemon),
            client: self.client.saturating_sub(earlier.client),
        }
    }
}

/// utime + stime of a whole process (exited threads included), from
/// /proc/<pid>/stat, in clock ticks (usually 10 ms: fine over a run).
fn process_cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which may contain spaces: state is
    // field 3, utime 14 and stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = u64::try_from(hz).ok().filter(|&h| h > 0).unwrap_or(100);
    Duration::from_micros(ticks * 1_000_000 / hz)
}

/// This process's user + system time, all threads (getrusage, µs).
fn own_cpu() -> Duration {
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF and a valid out-pointer.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}
