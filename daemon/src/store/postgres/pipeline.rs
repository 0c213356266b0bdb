//! A transaction in as few round trips as its statements allow, for the
//! statements of every login: its BEGIN goes out in the same write as its
//! first statements and its COMMIT with its last ones. PostgreSQL answers
//! them in order, and a statement that fails aborts the transaction, so the
//! COMMIT that follows it ends in a rollback: nothing of a failed pipeline
//! is kept.
//!
//! A statement joins a write only if it is sent when its future is first
//! polled: an `execute` or `query` of a statement prepared beforehand
//! (`prepare_cached` of one prepared already costs nothing), or a
//! `batch_execute`. The futures are polled in the order given (`biased`).
//! A body awaits all of its statements (`join!`, not `try_join!`) and
//! returns the first error in send order: which failed answer a poll sees
//! first is not the order PostgreSQL sent them in.

use crate::store::StoreError;
use deadpool_postgres::{Client, GenericClient};
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Waker};

/// A transaction on `c` in flight. Dropped before it ended (an error, or the
/// store call's deadline), it queues a ROLLBACK that goes out before
/// anything else on the connection, as tokio-postgres's own transactions
/// do: the pool never hands out a connection inside someone's transaction.
struct Open<'c> {
    c: &'c Client,
    ended: bool,
}

async fn simple(c: &Client, sql: &str) -> Result<(), StoreError> {
    Ok(c.batch_execute(sql).await?)
}

/// BEGIN, `body`'s statements and COMMIT, in one write: one round trip.
/// Of several errors, the one sent first is returned.
pub(super) async fn whole<T>(
    c: &Client,
    body: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let mut open = Open { c, ended: false };
    // All three are awaited even after an error: the COMMIT went out with
    // the body, so its answer (a rollback after a failed statement) ends
    // the transaction, and a ROLLBACK of our own would only draw the
    // server's warning that none is in progress.
    let (begun, value, committed) =
        tokio::join!(biased; simple(c, "BEGIN"), body, simple(c, "COMMIT"));
    open.ended = true;
    begun?;
    let value = value?;
    committed?;
    Ok(value)
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        if !self.ended {
            // Polled once: queued on the connection, its answer ignored.
            let mut rollback = pin!(self.c.batch_execute("ROLLBACK"));
            let _ = rollback
                .as_mut()
                .poll(&mut Context::from_waker(Waker::noop()));
        }
    }
}
