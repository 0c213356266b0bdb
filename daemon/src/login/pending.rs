//! Tickets handed out whose rows are still being written. A login sends its
//! verdict, ticket included, before it records the ticket's row: the client
//! does not wait on a write that nothing in its login reads. The session
//! hook that redeems a ticket waits here until its row is written (or its
//! write failed) instead.

use std::collections::HashSet;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// Longer than any store call may take (each has its own deadline): a
/// redemption never waits on a write forever.
const LIMIT: Duration = Duration::from_secs(10);

#[derive(Default)]
pub struct Pending {
    hashes: Mutex<HashSet<[u8; 32]>>,
    written: Condvar,
}

/// A ticket's row being written: the write has ended, either way, once
/// this is dropped.
pub struct Writing<'a> {
    pending: &'a Pending,
    hash: [u8; 32],
}

impl Pending {
    /// Marks the row of the ticket hashed `hash` as being written.
    pub fn hold(&self, hash: [u8; 32]) -> Writing<'_> {
        self.hashes().insert(hash);
        Writing {
            pending: self,
            hash,
        }
    }

    /// Returns once the row of the ticket hashed `hash` is not being
    /// written (at once for any ticket not being written).
    pub fn wait(&self, hash: &[u8; 32]) {
        let hashes = self.hashes();
        if hashes.contains(hash) {
            crate::blocking::wait(|| {
                let _ = self
                    .written
                    .wait_timeout_while(hashes, LIMIT, |h| h.contains(hash));
            });
        }
    }

    fn hashes(&self) -> MutexGuard<'_, HashSet<[u8; 32]>> {
        self.hashes.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.pending.hashes().remove(&self.hash);
        self.pending.written.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Instant;

    #[test]
    fn a_wait_ends_when_the_write_ends_and_not_before() {
        let pending = Pending::default();
        let written = AtomicBool::new(false);
        let started = Instant::now();
        std::thread::scope(|s| {
            let writing = pending.hold([1; 32]);
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(200));
                written.store(true, Ordering::SeqCst);
                drop(writing);
            });
            pending.wait(&[1; 32]);
            assert!(
                written.load(Ordering::SeqCst),
                "returned before the write ended"
            );
        });
        assert!(started.elapsed() < LIMIT);
    }

    #[test]
    fn a_ticket_not_being_written_is_not_waited_for() {
        let pending = Pending::default();
        let _other = pending.hold([2; 32]);
        let started = Instant::now();
        pending.wait(&[3; 32]);
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(pending.hashes().contains(&[2; 32]));
    }
}
