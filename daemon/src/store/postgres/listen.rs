//! The one connection on which a host listens (`LISTEN`) for what other
//! hosts of the fleet tell it: a request to end one of its sessions, a
//! pushed policy. It lives outside the pool (a pooled connection is handed
//! to others and would lose its `LISTEN`), reconnects by itself with
//! backoff, and checks that the server still answers, since a notice sent
//! while it was away is lost: after every (re)connection it reports
//! [`Notice::Connected`], so the daemon looks for what it missed. The
//! daemon also checks periodically, in case a notice never came.

use super::connect::settings;
use super::fleet::{POLICY_CHANNEL, SESSIONS_CHANNEL};
use super::keys::KEYS_CHANNEL;
use crate::config::PostgresConfig;
use crate::store::StoreError;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_postgres::AsyncMessage;

/// What the listener reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// Another host asked this one to end sessions.
    Sessions,
    /// A policy version was pushed.
    Policy,
    /// A key rotation recorded a new key.
    Keys,
    /// The connection is (again) up: notices may have been missed.
    Connected,
}

/// The first wait before reconnecting, and the longest.
const BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(30));
/// How often an idle connection is checked.
const PING: Duration = Duration::from_secs(30);

/// Starts listening, in a task on the current runtime, for as long as the
/// receiver lives.
pub fn spawn(
    config: &PostgresConfig,
    host: &str,
) -> Result<mpsc::UnboundedReceiver<Notice>, StoreError> {
    let (pg, tls) = settings(config)?;
    let (tx, rx) = mpsc::unbounded_channel();
    let host = host.to_owned();
    let deadline = config.statement_timeout;
    tokio::spawn(async move {
        let mut wait = BACKOFF.0;
        loop {
            match listen(&pg, tls.clone(), &host, deadline, &tx).await {
                // The daemon stopped listening.
                Ok(()) => return,
                Err(Lost::Before(e)) => {
                    log::warn!(
                        "fleet: cannot listen for other hosts' notices: {e}; trying again in {wait:?}"
                    );
                }
                Err(Lost::After(e)) => {
                    log::warn!(
                        "fleet: lost the connection that listens for other hosts' notices: {e}; reconnecting"
                    );
                    wait = BACKOFF.0;
                }
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(BACKOFF.1);
        }
    });
    Ok(rx)
}

/// Why listening stopped: before or after it was set up.
enum Lost {
    Before(String),
    After(String),
}

async fn listen(
    pg: &tokio_postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    host: &str,
    deadline: Duration,
    tx: &mpsc::UnboundedSender<Notice>,
) -> Result<(), Lost> {
    let before = |e: tokio_postgres::Error| Lost::Before(super::describe(&e));
    let (client, mut connection) = pg.connect(tls).await.map_err(before)?;
    // The connection delivers notices only while it is polled: a task of
    // its own forwards them.
    let (msg_tx, mut messages) = mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        while let Some(m) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            if msg_tx.send(m).is_err() {
                return;
            }
        }
    });
    let result = async {
        tokio::time::timeout(
            deadline,
            client.batch_execute(&format!(
                "LISTEN {SESSIONS_CHANNEL}; LISTEN {POLICY_CHANNEL}; LISTEN {KEYS_CHANNEL}"
            )),
        )
        .await
        .map_err(|_| Lost::Before(format!("no answer within {deadline:?}")))?
        .map_err(before)?;
        log::info!("fleet: listening for other hosts' notices");
        if tx.send(Notice::Connected).is_err() {
            return Ok(());
        }
        let mut ping = tokio::time::interval(PING);
        ping.tick().await;
        loop {
            tokio::select! {
                m = messages.recv() => match m {
                    Some(Ok(AsyncMessage::Notification(n))) => {
                        let notice = match n.channel() {
                            SESSIONS_CHANNEL if n.payload() == host => Notice::Sessions,
                            POLICY_CHANNEL => Notice::Policy,
                            KEYS_CHANNEL => Notice::Keys,
                            _ => continue,
                        };
                        if tx.send(notice).is_err() {
                            return Ok(());
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(Lost::After(super::describe(&e))),
                    None => return Err(Lost::After("the server closed it".to_owned())),
                },
                _ = ping.tick() => {
                    match tokio::time::timeout(deadline, client.simple_query("")).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => return Err(Lost::After(super::describe(&e))),
                        Err(_) => return Err(Lost::After(format!("no answer within {deadline:?}"))),
                    }
                }
                () = tx.closed() => return Ok(()),
            }
        }
    }
    .await;
    driver.abort();
    result
}
