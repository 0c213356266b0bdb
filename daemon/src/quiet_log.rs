//! Refused connections, logged without letting a flood write the log: the
//! first refusal after a quiet spell is logged in full; the ones after it
//! are counted per uid and summed up in one line per interval.
//!
//! Threat: any local user can open connections as fast as the kernel allows;
//! a warning per refusal would let them fill the disk and bury other lines.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often held-back refusals are summed up.
pub const INTERVAL: Duration = Duration::from_secs(10);
/// Uids named in a summary line, the busiest first; the rest are counted.
const NAMED_UIDS: usize = 8;

#[derive(Debug)]
pub struct QuietLog {
    interval: Duration,
    state: Mutex<Window>,
}

#[derive(Debug, Default)]
struct Window {
    /// Refusals up to this instant are counted, not logged.
    quiet_until: Option<Instant>,
    counts: HashMap<u32, u64>,
    /// A summary is due at `quiet_until`.
    flush_due: bool,
}

/// What [`QuietLog::note`] decided.
#[derive(Debug, PartialEq, Eq)]
enum Noted {
    /// Log this refusal in full, after the summary of refusals held back
    /// whose summary is overdue.
    Log { overdue: Option<String> },
    /// Counted; the first one counted in a window asks for a summary then.
    Counted { summary_at: Option<Instant> },
}

impl QuietLog {
    pub fn new(interval: Duration) -> Arc<Self> {
        Arc::new(Self {
            interval,
            state: Mutex::new(Window::default()),
        })
    }

    fn window(&self) -> std::sync::MutexGuard<'_, Window> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Logs a refused connection of `uid`, or counts it for the next summary.
    pub fn refused(self: &Arc<Self>, uid: u32, pid: Option<i32>, why: &str) {
        match self.note(uid, Instant::now()) {
            Noted::Log { overdue } => {
                if let Some(line) = overdue {
                    log::warn!("{line}");
                }
                log::warn!(
                    "refused a connection from uid {uid} (pid {pid:?}): {why} \
                     (more refusals within {} s are summed up)",
                    self.interval.as_secs()
                );
            }
            Noted::Counted {
                summary_at: Some(at),
            } => {
                let me = Arc::clone(self);
                tokio::spawn(async move {
                    tokio::time::sleep_until(at.into()).await;
                    if let Some(line) = me.flush(Instant::now()) {
                        log::warn!("{line}");
                    }
                });
            }
            Noted::Counted { summary_at: None } => {}
        }
    }

    fn note(&self, uid: u32, now: Instant) -> Noted {
        let mut w = self.window();
        match w.quiet_until {
            Some(until) if now < until => {
                *w.counts.entry(uid).or_default() += 1;
                let first = !w.flush_due;
                w.flush_due = true;
                Noted::Counted {
                    summary_at: first.then_some(until),
                }
            }
            _ => {
                let overdue = (!w.counts.is_empty())
                    .then(|| summary(&std::mem::take(&mut w.counts), self.interval));
                w.quiet_until = Some(now + self.interval);
                w.flush_due = false;
                Noted::Log { overdue }
            }
        }
    }

    /// The summary of the refusals held back, if any. After one, the next
    /// interval stays quiet too, so a steady flood gives one line per
    /// interval.
    fn flush(&self, now: Instant) -> Option<String> {
        let mut w = self.window();
        w.flush_due = false;
        if w.counts.is_empty() {
            return None;
        }
        let counts = std::mem::take(&mut w.counts);
        w.quiet_until = Some(now + self.interval);
        Some(summary(&counts, self.interval))
    }
}

fn summary(counts: &HashMap<u32, u64>, interval: Duration) -> String {
    let total: u64 = counts.values().sum();
    let busiest: BTreeMap<(std::cmp::Reverse<u64>, u32), ()> = counts
        .iter()
        .map(|(uid, n)| ((std::cmp::Reverse(*n), *uid), ()))
        .collect();
    let mut named: Vec<String> = busiest
        .keys()
        .take(NAMED_UIDS)
        .map(|(n, uid)| format!("uid {uid}: {}", n.0))
        .collect();
    if counts.len() > NAMED_UIDS {
        named.push(format!("{} more uids", counts.len() - NAMED_UIDS));
    }
    format!(
        "refused {total} more connections within {} s ({})",
        interval.as_secs(),
        named.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted(n: &Noted) -> bool {
        matches!(n, Noted::Counted { .. })
    }

    #[test]
    fn a_flood_gives_one_line_then_one_summary_per_interval() {
        let q = QuietLog::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(q.note(7, t0), Noted::Log { overdue: None });
        // The first refusal held back asks for a summary at the window's end.
        assert_eq!(
            q.note(7, t0 + Duration::from_secs(1)),
            Noted::Counted {
                summary_at: Some(t0 + Duration::from_secs(10))
            }
        );
        for i in 0..998 {
            let uid = if i % 2 == 0 { 7 } else { 1000 + i % 20 };
            assert_eq!(
                q.note(uid, t0 + Duration::from_secs(2)),
                Noted::Counted { summary_at: None }
            );
        }
        let line = q.flush(t0 + Duration::from_secs(10)).unwrap();
        assert!(
            line.starts_with("refused 999 more connections within 10 s (uid 7: 500, "),
            "{line}"
        );
        assert!(line.ends_with(", 3 more uids)"), "{line}");
        // The flood goes on: the next interval is quiet too.
        assert!(counted(&q.note(7, t0 + Duration::from_secs(11))));
        assert_eq!(
            q.flush(t0 + Duration::from_secs(20)).as_deref(),
            Some("refused 1 more connections within 10 s (uid 7: 1)")
        );
        // After a quiet interval the next refusal is logged in full again.
        assert_eq!(q.flush(t0 + Duration::from_secs(30)), None);
        assert_eq!(
            q.note(7, t0 + Duration::from_secs(31)),
            Noted::Log { overdue: None }
        );
    }

    #[test]
    fn an_overdue_summary_is_never_lost() {
        let q = QuietLog::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert!(!counted(&q.note(5, t0)));
        assert!(counted(&q.note(5, t0 + Duration::from_secs(1))));
        // The summary task has not run yet when the window ends.
        assert_eq!(
            q.note(6, t0 + Duration::from_secs(12)),
            Noted::Log {
                overdue: Some("refused 1 more connections within 10 s (uid 5: 1)".to_owned())
            }
        );
        assert_eq!(q.flush(t0 + Duration::from_secs(12)), None);
    }
}
