//! The socket: accept, identify the peer, admit it, and run its connection.

use crate::io::{FrameIo, ReadError};
use crate::limits::Busy;
use crate::peer::Peer;
use crate::router::{self, Next};
use crate::{Daemon, audit};
use mfad_protocol::{ErrorCode, Request};
use std::sync::Arc;
use std::time::Instant;
use tokio::net::{UnixListener, UnixStream};

pub async fn serve(listener: UnixListener, daemon: Arc<Daemon>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let daemon = Arc::clone(&daemon);
                tokio::spawn(audit::context::in_request(connection(daemon, stream)));
            }
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                log::error!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn connection(d: Arc<Daemon>, stream: UnixStream) {
    let peer = match stream.peer_cred() {
        Ok(c) => Peer::from_cred(c.uid(), c.gid(), c.pid()),
        Err(e) => {
            log::warn!("cannot read the credentials of a client, dropping it: {e}");
            return;
        }
    };
    audit::context::note_peer(peer.audit_session, peer.real_uid);
    let mut io = FrameIo::new(stream, &d.config.limits);
    let _slot = match d.limits.admit(peer.uid, Instant::now()) {
        Ok(slot) => slot,
        Err(busy) => {
            let why = match busy {
                Busy::PerUid => "too many connections from your uid",
                Busy::Total => "too many connections from unprivileged users",
            };
            d.limits.refusals.refused(peer.uid, peer.pid, why);
            io.send_error(
                ErrorCode::Busy,
                format!("mfad is busy: {why}; try again shortly"),
            )
            .await;
            return;
        }
    };
    loop {
        let request = match io.read().await {
            Ok(request) => request,
            Err(ReadError::Closed) => return,
            Err(err @ ReadError::Request(_)) => {
                io.report(&err).await;
                continue;
            }
            Err(err) => {
                log::debug!("closing the connection of uid {}: {err:?}", peer.uid);
                io.report(&err).await;
                return;
            }
        };
        if !d.limits.take_request(peer.uid, Instant::now()) {
            io.send_error(
                ErrorCode::Busy,
                "too many requests from your uid; slow down",
            )
            .await;
            return;
        }
        let user = match router::admit(&d, &peer, &request) {
            Ok(user) => user,
            Err(refusal) => {
                let _ = io.send(refusal.into_response()).await;
                // A refused login ends its conversation like any other.
                match request {
                    Request::AuthStart(_) => return,
                    _ => continue,
                }
            }
        };
        if let Next::Close = router::dispatch(&d, &peer, &mut io, request, user).await {
            return;
        }
    }
}
