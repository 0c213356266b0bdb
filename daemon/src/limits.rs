//! Per-peer admission: connection and request-rate limits for non-root
//! peers, so a slow or hostile local user cannot starve root's PAM traffic.
//! Root is never limited here (it is sshd, sudo and login).

use crate::quiet_log::{self, QuietLog};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Requests per second a non-root uid may make, with a burst allowance.
const RATE_PER_SEC: f64 = 20.0;
const BURST: f64 = 40.0;

#[derive(Debug)]
struct Bucket {
    connections: usize,
    tokens: f64,
    refreshed: Instant,
}

#[derive(Debug)]
struct State {
    total: usize,
    peers: HashMap<u32, Bucket>,
}

#[derive(Debug)]
pub struct Limits {
    max_connections: usize,
    per_uid: usize,
    state: Mutex<State>,
    /// Where refused connections are logged, rate-limited.
    pub refusals: Arc<QuietLog>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Busy {
    PerUid,
    Total,
}

/// Held for the life of a connection; frees its place when dropped.
pub struct Slot {
    limits: Arc<Limits>,
    uid: u32,
}

impl Limits {
    pub fn new(max_connections: usize, per_uid: usize) -> Arc<Self> {
        Arc::new(Self {
            max_connections,
            per_uid,
            state: Mutex::new(State {
                total: 0,
                peers: HashMap::new(),
            }),
            refusals: QuietLog::new(quiet_log::INTERVAL),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn admit(self: &Arc<Self>, uid: u32, now: Instant) -> Result<Option<Slot>, Busy> {
        if uid == 0 {
            return Ok(None);
        }
        let mut state = self.state();
        if state.total >= self.max_connections {
            return Err(Busy::Total);
        }
        let bucket = state.peers.entry(uid).or_insert(Bucket {
            connections: 0,
            tokens: BURST,
            refreshed: now,
        });
        if bucket.connections >= self.per_uid {
            return Err(Busy::PerUid);
        }
        bucket.connections += 1;
        state.total += 1;
        Ok(Some(Slot {
            limits: Arc::clone(self),
            uid,
        }))
    }

    /// Takes one request token for `uid`; false when it is over its rate.
    pub fn take_request(&self, uid: u32, now: Instant) -> bool {
        if uid == 0 {
            return true;
        }
        let mut state = self.state();
        let Some(bucket) = state.peers.get_mut(&uid) else {
            return false;
        };
        let elapsed = now
            .saturating_duration_since(bucket.refreshed)
            .as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * RATE_PER_SEC).min(BURST);
        bucket.refreshed = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.limits.state();
        state.total = state.total.saturating_sub(1);
        if let Some(bucket) = state.peers.get_mut(&self.uid) {
            bucket.connections = bucket.connections.saturating_sub(1);
            // Forget idle peers with a full bucket, so the map stays small.
            if bucket.connections == 0 && bucket.tokens >= BURST {
                state.peers.remove(&self.uid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn per_uid_and_total_limits_but_never_root() {
        let limits = Limits::new(3, 2);
        let now = Instant::now();
        let a1 = limits.admit(1000, now).unwrap();
        let _a2 = limits.admit(1000, now).unwrap();
        assert_eq!(limits.admit(1000, now).err(), Some(Busy::PerUid));
        let _b1 = limits.admit(1001, now).unwrap();
        assert_eq!(limits.admit(1002, now).err(), Some(Busy::Total));
        for _ in 0..100 {
            assert!(limits.admit(0, now).unwrap().is_none());
        }
        drop(a1);
        assert!(limits.admit(1000, now).is_ok());
    }

    #[test]
    fn request_rate_refills_over_time() {
        let limits = Limits::new(10, 10);
        let now = Instant::now();
        let _slot = limits.admit(1000, now).unwrap();
        let allowed = (0..100).filter(|_| limits.take_request(1000, now)).count();
        assert_eq!(allowed, BURST as usize);
        assert!(limits.take_request(1000, now + Duration::from_millis(100)));
        assert!((0..1000).all(|_| limits.take_request(0, now)));
    }
}
