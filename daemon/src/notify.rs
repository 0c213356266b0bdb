//! The login notification (opt-in: `[login_notification] enabled`): after a
//! login that passed a second factor, an email to the user's verified
//! address with the time, source, service and host. It is sent after the
//! verdict, so it never delays the login; its outcome is audited.

use crate::audit::{Decision, Event};
use crate::delivery::template::{self, verbatim};
use crate::{Daemon, clock, login};
use mfad_protocol::{AuthStart, Channel};

/// Sends the notification for the login `start`, if it is enabled and the
/// user has a verified address. With a `geoip_database`, it names the
/// country of the source.
pub async fn login(d: &Daemon, start: &AuthStart, peer_uid: u32) {
    let n = &d.config.login_notification;
    if !n.enabled {
        return;
    }
    let user = start.user.as_str();
    let to = match login::destination(d, user, Channel::Email) {
        Ok(Some(to)) => to,
        Ok(None) => return,
        Err(_) => {
            log::error!("cannot open the email address of {user:?} for a login notification");
            return;
        }
    };
    let now = clock::now();
    let time = mfad_protocol::time::utc(now);
    let rhost = start
        .rhost
        .as_deref()
        .filter(|r| !r.is_empty())
        .unwrap_or("this machine");
    let location = start
        .rhost
        .as_deref()
        .and_then(|r| r.parse::<std::net::IpAddr>().ok())
        .and_then(|ip| d.country(ip));
    let values = [
        ("user", user),
        ("time", time.as_str()),
        ("rhost", rhost),
        ("service", start.service.as_str()),
        ("host", d.delivery.host.as_str()),
        ("location", location.as_deref().unwrap_or("unknown")),
    ];
    let subject = template::render(&n.subject, &values, verbatim);
    let body = template::render(&n.body, &values, verbatim);
    let masked = crate::delivery::address::mask(Channel::Email, &to);
    let (decision, reason) = match d.delivery.send_email(&to, &subject, &body).await {
        Ok(receipt) => (
            Decision::Sent,
            format!(
                "login notification sent to {masked}{}",
                receipt.id.map_or(String::new(), |id| format!(" ({id})"))
            ),
        ),
        Err(e) => (
            Decision::Failed,
            format!("login notification to {masked} not sent: {e}"),
        ),
    };
    d.record(&Event::auth(
        start, "email", decision, &reason, peer_uid, now,
    ));
}
