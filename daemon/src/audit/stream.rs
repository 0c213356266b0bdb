//! The audit stream between the places that record events and their
//! readers: the configured outputs (a bounded queue drained by the writer
//! thread in [`super::outputs`]) and `mfactl audit --follow` (a broadcast).
//!
//! A login must never wait for a reader: [`publish`] only tries to queue.
//! What does not fit is counted, and the daemon audits the count
//! ([`take_dropped`]).
//!
//! The stream is process-wide, like the logger: events are logged from
//! places that hold no daemon handle.

use super::record::Record;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use tokio::sync::broadcast;

/// How far a `--follow` reader may fall behind before it misses events.
const FOLLOW_BACKLOG: usize = 1024;

struct Stream {
    /// To the writer thread; `None` when no output is configured.
    outputs: Option<SyncSender<Arc<Record>>>,
    followers: broadcast::Sender<Arc<Record>>,
}

static STREAM: OnceLock<Stream> = OnceLock::new();
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Installs the stream; `outputs` is the writer thread's queue. Only the
/// first call takes effect (one daemon per process).
pub(super) fn install(outputs: Option<SyncSender<Arc<Record>>>) {
    let (followers, _) = broadcast::channel(FOLLOW_BACKLOG);
    let _ = STREAM.set(Stream { outputs, followers });
}

/// Hands a record to every reader, without waiting for any.
pub fn publish(record: Arc<Record>) {
    let Some(stream) = STREAM.get() else {
        return;
    };
    if let Some(outputs) = &stream.outputs {
        match outputs.try_send(Arc::clone(&record)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => count_dropped(1),
        }
    }
    // No follower is not an error.
    let _ = stream.followers.send(record);
}

/// A new reader of every record published from now on.
pub fn follow() -> Option<broadcast::Receiver<Arc<Record>>> {
    STREAM.get().map(|s| s.followers.subscribe())
}

pub(super) fn count_dropped(n: u64) {
    DROPPED.fetch_add(n, Ordering::Relaxed);
}

/// Records lost by the outputs since the last call.
pub fn take_dropped() -> u64 {
    DROPPED.swap(0, Ordering::Relaxed)
}
