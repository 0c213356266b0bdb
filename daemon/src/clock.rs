//! The one place that reads the wall clock; everything else takes the time
//! as a parameter so tests can choose it.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch.
#[allow(clippy::disallowed_methods)]
pub fn now() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        // A clock before 1970 is broken; 0 makes every code fail closed.
        Err(_) => 0,
    }
}
