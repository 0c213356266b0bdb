//! The one place that reads the wall clock; everything else takes the time
//! as a parameter so tests can choose it.
//!
//! `[testing] clock_offset_secs` in the config shifts this clock, so the
//! end-to-end tests can move time (lockouts expiring, step-up freshness,
//! trusted devices ageing) without sleeping. The daemon warns loudly at
//! start-up when it is set.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static OFFSET: AtomicI64 = AtomicI64::new(0);

/// Shifts [`now`] by `secs` for the life of the process.
pub fn set_offset(secs: i64) {
    OFFSET.store(secs, Ordering::Relaxed);
}

/// Seconds since the Unix epoch, plus the configured test offset.
#[allow(clippy::disallowed_methods)]
pub fn now() -> i64 {
    let wall = match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        // A clock before 1970 is broken; 0 makes every code fail closed.
        Err(_) => return 0,
    };
    wall.saturating_add(OFFSET.load(Ordering::Relaxed))
}
