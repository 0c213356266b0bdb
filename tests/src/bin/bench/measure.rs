//! The measured loops through the real libpam. Codes are computed and
//! handed to the conversation before the clock starts. Two shapes: a new
//! handle per login, as sshd and sudo use PAM (`pam_authenticate` timed on
//! its own, and `pam_start` + `pam_end` apart: libpam loads and unloads the
//! stack's modules with each handle), and a reused handle per client, for
//! the throughput of the login itself.

use crate::cpu::Cpu;
use crate::users::{self, BenchUser};
use mfad_tests::pam::{PAM_AUTH_ERR, PAM_RHOST, PAM_SUCCESS, PAM_USER, PamSession, strerror};
use std::path::{Path, PathBuf};
use std::sync::Barrier;
use std::time::{Duration, Instant};

/// PAM_RHOST as sshd would set it (a documentation address).
const RHOST: &str = "192.0.2.10";
/// Mismatches kept verbatim for the report; the rest are only counted.
const KEEP_MISMATCHES: usize = 10;

/// A PAM service to authenticate against.
pub struct Target {
    pub label: &'static str,
    pub confdir: PathBuf,
    pub service: &'static str,
    /// The daemon's stderr, where its side of a mismatch is told.
    pub log: Option<PathBuf>,
}

/// The daemon's last line about `user` in `log`: why it decided as it did.
fn daemon_said(log: &Path, user: &str) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    let name = format!("{user:?}");
    let line = text.lines().rev().find(|l| l.contains(&name))?;
    Some(line.to_owned())
}

/// What each call must return.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The user's current code: PAM_SUCCESS.
    Success,
    /// A wrong code: PAM_AUTH_ERR.
    Wrong,
}

impl Expect {
    fn rc(self) -> i32 {
        match self {
            Expect::Success => PAM_SUCCESS,
            Expect::Wrong => PAM_AUTH_ERR,
        }
    }
}

/// The result of one loop (or of all clients of a concurrent one).
#[derive(Default)]
pub struct Phase {
    /// Per call, sorted once the phase is over.
    pub latencies: Vec<Duration>,
    /// From the first call to the last return (all clients).
    pub wall: Duration,
    /// Calls that returned what they had to.
    pub ok: usize,
    pub mismatches: usize,
    pub examples: Vec<String>,
}

impl Phase {
    fn merge(&mut self, other: Phase) {
        self.latencies.extend(other.latencies);
        self.ok += other.ok;
        self.mismatches += other.mismatches;
        let room = KEEP_MISMATCHES.saturating_sub(self.examples.len());
        self.examples.extend(other.examples.into_iter().take(room));
    }

    /// Sorts the latencies and sets the wall time.
    pub fn finish(mut self, wall: Duration) -> Phase {
        self.latencies.sort_unstable();
        self.wall = wall;
        self
    }

    /// Records one timed call outside the PAM loops (the probes).
    pub fn record(&mut self, took: Duration, ok: Result<(), String>) {
        self.latencies.push(took);
        match ok {
            Ok(()) => self.ok += 1,
            Err(why) => {
                self.mismatches += 1;
                if self.examples.len() < KEEP_MISMATCHES {
                    self.examples.push(why);
                }
            }
        }
    }

    pub fn calls(&self) -> usize {
        self.latencies.len()
    }

    /// Nearest-rank percentile, in µs.
    pub fn pct_us(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        let i = rank.clamp(1, self.latencies.len()) - 1;
        self.latencies[i].as_secs_f64() * 1e6
    }

    /// Calls that returned what they had to, per second of wall time.
    pub fn per_sec(&self) -> f64 {
        self.ok as f64 / self.wall.as_secs_f64()
    }
}

/// Runs `run`; returns its result and the CPU time the daemon (if any)
/// and this process spent meanwhile.
pub fn with_cpu<T>(daemon_pid: Option<u32>, run: impl FnOnce() -> T) -> (T, Cpu) {
    let before = Cpu::now(daemon_pid);
    let result = run();
    (result, Cpu::now(daemon_pid).since(before))
}

/// A PAM handle with recording off: the conversation answers every prompt
/// with the answer set before each call, and allocates nothing else.
fn session(target: &Target, first_user: &str) -> PamSession {
    let mut s = PamSession::start(&target.confdir, target.service, first_user, Vec::new());
    s.set_recording(false);
    s
}

/// One timed call for `user`.
fn one(
    session: &mut PamSession,
    target: &Target,
    user: &BenchUser,
    expect: Expect,
    out: &mut Phase,
) {
    let now = users::now().as_secs();
    let code = match expect {
        Expect::Success => user.code_at(now),
        Expect::Wrong => user.wrong_code(now),
    };
    let rc = session.set_item(PAM_USER, &user.name);
    assert_eq!(rc, PAM_SUCCESS, "pam_set_item(PAM_USER)");
    let rc = session.set_item(PAM_RHOST, RHOST);
    assert_eq!(rc, PAM_SUCCESS, "pam_set_item(PAM_RHOST)");
    session.set_repeat_answer(Some(&code));
    let started = Instant::now();
    let (rc, _) = session.authenticate(0);
    let took = started.elapsed();
    let verdict = if rc == expect.rc() {
        Ok(())
    } else {
        let said = target
            .log
            .as_deref()
            .and_then(|l| daemon_said(l, &user.name));
        Err(format!(
            "{}: {}: returned {rc} ({}), expected {} ({}){}",
            target.label,
            user.name,
            strerror(rc),
            expect.rc(),
            strerror(expect.rc()),
            said.map(|s| format!("\n      the daemon: {s}"))
                .unwrap_or_default(),
        ))
    };
    out.record(took, verdict);
}

/// `pam_authenticate` and, apart, `pam_start` + `pam_end` of each login.
pub struct Fresh {
    pub auth: Phase,
    pub start_end: Phase,
}

/// Every user once, one after the other, each login on a new handle. Users
/// are taken from `users` one at a time, just before their login (a
/// [`crate::fleet::Pool`] hands out users free in the current step).
pub fn fresh_handles<'a>(
    target: &Target,
    users: impl IntoIterator<Item = &'a BenchUser>,
    expect: Expect,
) -> Fresh {
    let mut auth = Phase::default();
    let mut start_end = Phase::default();
    let started = Instant::now();
    for user in users {
        let t = Instant::now();
        let mut s = session(target, &user.name);
        let opened = t.elapsed();
        one(&mut s, target, user, expect, &mut auth);
        let t = Instant::now();
        drop(s);
        start_end.record(opened + t.elapsed(), Ok(()));
    }
    let wall = started.elapsed();
    Fresh {
        auth: auth.finish(wall),
        start_end: start_end.finish(wall),
    }
}

/// `clients` threads started together: client i runs `client(i, start)`,
/// which sets up, calls `start` (it returns once every client is ready) and
/// then runs. Their phases merged, with the wall time from the start to the
/// last return.
pub fn together(clients: usize, client: impl Fn(usize, &dyn Fn()) -> Phase + Sync) -> Phase {
    let barrier = Barrier::new(clients + 1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..clients)
            .map(|i| {
                let (barrier, client) = (&barrier, &client);
                scope.spawn(move || {
                    client(i, &|| {
                        barrier.wait();
                    })
                })
            })
            .collect();
        barrier.wait();
        let started = Instant::now();
        let mut all = Phase::default();
        for worker in workers {
            all.merge(worker.join().expect("a client thread panicked"));
        }
        all.finish(started.elapsed())
    })
}

/// `clients` threads spread over `targets` (client i on target i mod n),
/// each with its own reused handle, started together, each taking the next
/// user from `next` until it has none or `duration` has passed.
pub fn fleet<'a>(
    targets: &[Target],
    clients: usize,
    next: &(dyn Fn() -> Option<&'a BenchUser> + Sync),
    duration: Duration,
) -> Phase {
    together(clients, |i, start| {
        let target = &targets[i % targets.len()];
        let mut s = session(target, "nobody-yet");
        let mut out = Phase::default();
        start();
        let started = Instant::now();
        while started.elapsed() < duration {
            let Some(user) = next() else { break };
            one(&mut s, target, user, Expect::Success, &mut out);
        }
        out
    })
}

/// `clients` threads, each with its own reused handle and a disjoint share of the
/// users, started together; wall time from the start to the last return.
pub fn concurrent(target: &Target, users: &[BenchUser], clients: usize, expect: Expect) -> Phase {
    let share = users.len().div_ceil(clients.max(1));
    let shares: Vec<&[BenchUser]> = users.chunks(share).collect();
    together(shares.len(), |i, start| {
        let share = shares[i];
        let mut s = session(target, &share[0].name);
        let mut out = Phase::default();
        start();
        for user in share {
            one(&mut s, target, user, expect, &mut out);
        }
        out
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_mismatch_is_told_with_the_daemons_last_line_about_the_user() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("mfad.stderr");
        std::fs::write(
            &log,
            "mfad: info: audit user=\"u-1\" channel=totp decision=allow reason=\"ok\"\n\
             mfad: info: audit user=\"u-10\" channel=totp decision=deny reason=\"wrong code\"\n\
             mfad: error: authentication of \"u-1\" for \"svc\" failed internally: timeout\n\
             mfad: info: audit user=\"u-2\" channel=totp decision=allow reason=\"ok\"\n",
        )
        .unwrap();
        let said = super::daemon_said(&log, "u-1").unwrap();
        assert!(said.contains("failed internally: timeout"), "{said}");
        assert_eq!(super::daemon_said(&log, "u-3"), None);
    }
}
