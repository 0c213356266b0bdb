//! A fleet of hosts on one PostgreSQL store: what one host does for
//! another. A session on another host is ended by that host (only it can
//! signal its processes): the asking host records a request, the holding
//! host is told at once and ends it as a local kill does. A policy pushed
//! on any host is put in force on every host, each with its own `[host]`
//! table (class, tags) from its own policy file, which is otherwise not
//! used once a version has been pushed.
//!
//! A key rotation on any host makes every host seal with the new key as
//! soon as it hears of it (`keyring::follow`).
//!
//! Hosts are told through `LISTEN`/`NOTIFY` (`store/postgres/listen.rs`);
//! a notice lost while the listening connection was down is made up for
//! after it reconnects, and by periodic checks.
pub mod cache;
mod policy;
mod sessions;

pub use policy::describe;
pub(crate) use policy::{in_force, push, reload, startup_policy, status};
pub(crate) use sessions::{end_remote, stepup_remote};

use crate::config::StoreConfig;
use crate::store::postgres::listen::{self, Notice};
use crate::{Daemon, keyring};
use policy::pick_up;
use sessions::end_requested;
use std::sync::Arc;
use std::time::Duration;

/// How often pending requests to end this host's sessions, and the pushed
/// policy, are looked at in case a notice was missed (notices are lost
/// only while the listening connection is down, and it looks on every
/// reconnection): rare enough that a fleet of thousands of hosts costs the
/// database little.
const CHECK: Duration = Duration::from_secs(30);

/// Starts acting on what other hosts tell this one (a fleet store only).
pub(crate) fn start(d: &Arc<Daemon>) -> Option<tokio::task::JoinHandle<()>> {
    let StoreConfig::Postgres(p) = &d.config.store else {
        return None;
    };
    let notices = listen::spawn(p, &d.config.host_name)
        .inspect_err(|e| {
            log::error!(
                "fleet: cannot listen for other hosts' notices ({e}); checking every 30 s instead"
            );
        })
        .ok();
    Some(tokio::spawn(serve(Arc::clone(d), notices)))
}

async fn serve(d: Arc<Daemon>, mut notices: Option<tokio::sync::mpsc::UnboundedReceiver<Notice>>) {
    let mut tick = tokio::time::interval(CHECK);
    loop {
        tokio::select! {
            notice = async { match notices.as_mut() {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            } } => match notice {
                Some(Notice::Sessions) => end_requested(&d),
                Some(Notice::Policy) => {
                    pick_up(&d, "a push", false);
                }
                Some(Notice::Keys) => keyring::follow(&d),
                Some(Notice::Connected) => {
                    cache::ship(&d);
                    end_requested(&d);
                    pick_up(&d, "a reconnection", false);
                    keyring::follow(&d);
                }
                None => notices = None,
            },
            _ = tick.tick() => {
                cache::ship(&d);
                end_requested(&d);
                pick_up(&d, "a periodic check", false);
                keyring::follow(&d);
            }
        }
    }
}
