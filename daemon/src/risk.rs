//! Risk signals, computed before the policy is matched (the matcher stays
//! pure): a source network this user has never logged in from, and a
//! country other than that of the user's last successful login. After a
//! successful login, [`visit`] says what to record of where it came from.

use crate::Daemon;
use crate::policy::{Signals, canonical};
use crate::store::Visit;
use ipnet::IpNet;
use mfad_protocol::RiskSignal;
use std::net::IpAddr;

/// Where a login comes from, as the signals see it.
#[derive(Debug, Clone, Default)]
pub struct Place {
    /// The remote address, when PAM_RHOST is one.
    pub ip: Option<IpAddr>,
    /// Its /24 (IPv4) or /64 (IPv6).
    pub network: Option<IpNet>,
    pub country: Option<String>,
}

/// The network a login from `ip` counts as: /24 for IPv4, /64 for IPv6.
pub fn network_of(ip: IpAddr) -> Option<IpNet> {
    let prefix = if ip.is_ipv4() { 24 } else { 64 };
    IpNet::new(ip, prefix).ok().map(|n| n.trunc())
}

pub fn place(d: &Daemon, rhost: Option<&str>) -> Place {
    let ip = rhost.and_then(|r| r.parse::<IpAddr>().ok()).map(canonical);
    Place {
        ip,
        network: ip.and_then(network_of),
        country: ip.and_then(|ip| d.country(ip)),
    }
}

/// The signals for `user` logging in from `place`, and their explanation.
/// A store error reads as "new": the stricter rule applies.
pub fn signals(d: &Daemon, user: &str, place: &Place) -> (Signals, Vec<RiskSignal>) {
    let (new_network, network_detail) = match place.network {
        None => (false, "the login has no remote address".to_owned()),
        Some(net) => match d.store.network_known(user, &net.to_string()) {
            Ok(true) => (false, format!("{user} has logged in from {net} before")),
            Ok(false) => (
                true,
                format!("no successful login of {user} from {net} yet"),
            ),
            Err(e) => {
                log::error!("cannot read the login history: {e}");
                (true, "the login history cannot be read".to_owned())
            }
        },
    };
    let last = d.store.last_login(user).unwrap_or_else(|e| {
        log::error!("cannot read the last login: {e}");
        None
    });
    let (new_country, country_detail) = match (&place.country, last) {
        _ if !d.has_geo() => (false, "no geoip_database is configured".to_owned()),
        (None, _) => (false, "the source's country is unknown".to_owned()),
        (Some(c), Some((_, Some(l)))) if *c != l => (
            true,
            format!("from {c}; the last successful login was from {l}"),
        ),
        (Some(c), Some((_, Some(_)))) => (false, format!("from {c}, like the last login")),
        (Some(c), _) => (
            false,
            format!("from {c}; no earlier login with a known country"),
        ),
    };
    let explained = vec![
        RiskSignal {
            name: "new_network".to_owned(),
            value: new_network,
            detail: network_detail,
        },
        RiskSignal {
            name: "new_country".to_owned(),
            value: new_country,
            detail: country_detail,
        },
    ];
    (
        Signals {
            new_network,
            new_country,
        },
        explained,
    )
}

/// Where a successful remote login came from, for the history the
/// signals read; `None` for a local login or a host name.
pub fn visit(place: &Place) -> Option<Visit> {
    let (ip, network) = (place.ip?, place.network?);
    Some(Visit {
        rhost: ip.to_string(),
        network: network.to_string(),
        country: place.country.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_are_slash_24_and_slash_64() {
        let net = |s: &str| {
            network_of(canonical(s.parse().unwrap()))
                .unwrap()
                .to_string()
        };
        assert_eq!(net("203.0.113.77"), "203.0.113.0/24");
        assert_eq!(net("::ffff:203.0.113.77"), "203.0.113.0/24");
        assert_eq!(net("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
    }
}
