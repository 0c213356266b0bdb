//! What every event of one client connection shares: a request id and the
//! peer's audit session id. The server opens a scope per connection, so the
//! places that build events need not pass them along.

use std::cell::Cell;
use std::future::Future;
use std::num::NonZeroU64;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Clone, Copy, Default)]
struct Context {
    request: Option<NonZeroU64>,
    session: Option<u32>,
    /// The real uid of the peer process: who ran su or sudo.
    caller: Option<u32>,
}

tokio::task_local! {
    static CONTEXT: Cell<Context>;
}

static NEXT: AtomicU64 = AtomicU64::new(1);

/// Random per daemon run, so request ids from two runs never collide.
fn run_id() -> &'static str {
    static RUN: OnceLock<String> = OnceLock::new();
    RUN.get_or_init(|| {
        let mut bytes = [0u8; 4];
        // Without randomness the ids still differ within this run.
        let _ = getrandom::fill(&mut bytes);
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    })
}

/// Runs one connection with a new request id.
pub async fn in_request<F: Future>(connection: F) -> F::Output {
    let request = NonZeroU64::new(NEXT.fetch_add(1, Ordering::Relaxed));
    CONTEXT
        .scope(
            Cell::new(Context {
                request,
                session: None,
                caller: None,
            }),
            connection,
        )
        .await
}

/// Notes the peer's audit session id and real uid once SO_PEERCRED is read.
pub fn note_peer(session: Option<u32>, caller: Option<u32>) {
    let _ = CONTEXT.try_with(|c| {
        c.set(Context {
            session,
            caller,
            ..c.get()
        })
    });
}

/// The request number and session id of the current connection, if any.
pub fn current() -> (Option<NonZeroU64>, Option<u32>) {
    CONTEXT
        .try_with(|c| {
            let c = c.get();
            (c.request, c.session)
        })
        .unwrap_or((None, None))
}

/// The real uid of the current connection's peer, if known.
pub fn caller() -> Option<u32> {
    CONTEXT.try_with(|c| c.get().caller).ok().flatten()
}

/// The request id of request number `n`, as records carry it.
pub fn request_id(n: NonZeroU64) -> String {
    format!("{}-{n}", run_id())
}
