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
            client: process_cpu(std::process::id()),
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

/// The CPU time of a whole process (every thread, exited ones included),
/// to the nanosecond: its CPU-time clock. /proc/<pid>/stat counts in clock
/// ticks (10 ms), too coarse for 30 µs a login over a thousand logins.
pub fn process_cpu(pid: u32) -> Duration {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return Duration::ZERO;
    };
    let mut clock: libc::clockid_t = 0;
    // SAFETY: a valid out-pointer; the call only computes a clock id.
    if unsafe { libc::clock_getcpuclockid(pid, &mut clock) } != 0 {
        return Duration::ZERO;
    }
    // SAFETY: an all-zero timespec is a valid value of this plain C struct.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: a clock id from clock_getcpuclockid and a valid out-pointer.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}
