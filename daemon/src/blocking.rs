//! Blocking work on a worker of the daemon's runtime (an fsync, a wait for
//! another thread): the worker's other tasks, the logins of other
//! connections, move to another thread meanwhile instead of waiting it out.

/// Runs `f`, which blocks; off the worker when called on one.
pub fn wait<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}
