//! Readiness for systemd (`Type=notify`): READY=1 once the socket is bound
//! and the store open, so `systemctl start mfad` returns only when logins
//! can be served; RELOADING=1 then READY=1 around a policy reload. Outside
//! systemd ($NOTIFY_SOCKET unset) nothing is sent.

use sd_notify::NotifyState;

/// mfad accepts connections.
pub fn ready() {
    send(&[NotifyState::Ready]);
}

/// A reload starts; [`ready`] ends it. systemd wants the time it started.
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(e) => log::warn!("cannot tell systemd about the reload: no monotonic clock: {e}"),
    }
}

fn send(state: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(state) {
        log::warn!("cannot notify systemd ($NOTIFY_SOCKET): {e}");
    }
}
