//! First match wins: which rule decides a login, and, for `explain`, why
//! every earlier rule did not. Pure apart from the group lookup, which goes
//! through [`Directory`] so tests can supply their own.

use super::Policy;
use super::rule::{Conditions, Host, Rule, UserMatch};
use nix::unistd::{Gid, Group, User, getgrouplist};
use std::cell::OnceCell;
use std::ffi::CString;
use std::fmt;
use std::net::IpAddr;

/// Group membership, from NSS in the daemon (so LDAP and SSSD groups count).
pub trait Directory {
    /// Every group `user` belongs to, primary and supplementary.
    fn groups_of(&self, user: &str) -> Vec<String>;
    fn group_exists(&self, group: &str) -> bool;
    /// Whether mfad.toml defines `[totp.profiles.NAME]`; `None` where that
    /// cannot be known (a check away from the daemon's configuration).
    fn totp_profile_exists(&self, _name: &str) -> Option<bool> {
        None
    }
}

pub struct Nss;

impl Directory for Nss {
    fn groups_of(&self, user: &str) -> Vec<String> {
        let Ok(Some(u)) = User::from_name(user) else {
            return Vec::new();
        };
        let Ok(name) = CString::new(user) else {
            return Vec::new();
        };
        getgrouplist(&name, u.gid)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|gid: Gid| Group::from_gid(gid).ok().flatten().map(|g| g.name))
            .collect()
    }

    fn group_exists(&self, group: &str) -> bool {
        Group::from_name(group).ok().flatten().is_some()
    }
}

/// What is known about a login when the policy is consulted.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub user: &'a str,
    pub service: &'a str,
    /// PAM_RHOST: an address, a host name (which never matches a network),
    /// or nothing for a local login.
    pub rhost: Option<&'a str>,
    /// Computed before matching, so the matcher stays pure.
    pub signals: Signals,
}

/// Risk signals about this login (the daemon computes them from the login history).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Signals {
    /// The source's /24 (IPv4) or /64 (IPv6) has never seen a successful
    /// login of this user. False for local logins and host names.
    pub new_network: bool,
    /// The source's country differs from that of the user's last
    /// successful login (both known; needs `geoip_database`).
    pub new_country: bool,
}

/// The first condition of a rule that did not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Miss {
    HostClass,
    HostTags,
    Service,
    User,
    Network,
    NewNetwork,
    NewCountry,
}

struct Eval<'a> {
    facts: Facts<'a>,
    ip: Option<IpAddr>,
    groups: OnceCell<Vec<String>>,
    dir: &'a dyn Directory,
}

impl Eval<'_> {
    /// Looked up at most once per decision, and only if a rule asks.
    fn groups(&self) -> &[String] {
        self.groups
            .get_or_init(|| self.dir.groups_of(self.facts.user))
    }
}

impl Policy {
    /// The rule that decides this login; `None` when no rule matches (the
    /// login is then denied).
    pub fn decide(&self, facts: Facts<'_>, dir: &dyn Directory) -> Option<&Rule> {
        self.first_match(facts, dir, |_, _| {})
    }

    /// Every rule consulted, in order, with the condition that failed; the
    /// last entry is the matching rule, if any.
    pub fn explain(&self, facts: Facts<'_>, dir: &dyn Directory) -> Vec<(&Rule, Option<Miss>)> {
        let mut seen = Vec::new();
        self.first_match(facts, dir, |rule, miss| seen.push((rule, miss)));
        seen
    }

    fn first_match<'p>(
        &'p self,
        facts: Facts<'_>,
        dir: &dyn Directory,
        mut visit: impl FnMut(&'p Rule, Option<Miss>),
    ) -> Option<&'p Rule> {
        let ev = Eval {
            facts,
            ip: facts
                .rhost
                .and_then(|r| r.parse::<IpAddr>().ok())
                .map(canonical),
            groups: OnceCell::new(),
            dir,
        };
        for rule in &self.rules {
            let miss = check(rule, &self.host, &ev);
            visit(rule, miss);
            if miss.is_none() {
                return Some(rule);
            }
        }
        None
    }
}

/// An IPv4 address seen as IPv6 (`::ffff:10.0.0.1`) is the IPv4 address,
/// and matches IPv4 networks.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The first host condition of `w` that this host does not meet.
pub(super) fn host_miss(w: &Conditions, host: &Host) -> Option<Miss> {
    if let Some(classes) = &w.host_class
        && !host.class.as_ref().is_some_and(|c| classes.contains(c))
    {
        return Some(Miss::HostClass);
    }
    if let Some(tags) = &w.host_tags
        && !tags.iter().any(|t| host.tags.contains(t))
    {
        return Some(Miss::HostTags);
    }
    None
}

fn check(rule: &Rule, host: &Host, ev: &Eval<'_>) -> Option<Miss> {
    let w = &rule.when;
    if w.all {
        return None;
    }
    if let Some(miss) = host_miss(w, host) {
        return Some(miss);
    }
    if let Some((services, _)) = &w.services
        && !services.contains(ev.facts.service)
    {
        return Some(Miss::Service);
    }
    if let Some(users) = &w.users
        && !users.iter().any(|u| match u {
            UserMatch::User(name) => name == ev.facts.user,
            UserMatch::Group(group) => ev.groups().iter().any(|g| g == group),
        })
    {
        return Some(Miss::User);
    }
    if let Some(nets) = &w.from
        && !ev.ip.is_some_and(|ip| nets.iter().any(|n| n.contains(&ip)))
    {
        return Some(Miss::Network);
    }
    if w.new_network
        .is_some_and(|want| want != ev.facts.signals.new_network)
    {
        return Some(Miss::NewNetwork);
    }
    if w.new_country
        .is_some_and(|want| want != ev.facts.signals.new_country)
    {
        return Some(Miss::NewCountry);
    }
    None
}

/// Why `rule` did not match `facts`, in words.
pub struct Why<'a> {
    pub rule: &'a Rule,
    pub host: &'a Host,
    pub facts: Facts<'a>,
    pub miss: Miss,
}

impl fmt::Display for Why<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = &self.rule.when;
        match self.miss {
            Miss::HostClass => write!(
                f,
                "host class {} is not in {:?}",
                self.host
                    .class
                    .as_deref()
                    .map_or("(none)".to_owned(), |c| format!("{c:?}")),
                w.host_class.as_deref().unwrap_or_default()
            ),
            Miss::HostTags => write!(
                f,
                "host tags {:?} share none of {:?}",
                self.host.tags,
                w.host_tags.as_deref().unwrap_or_default()
            ),
            Miss::Service => write!(
                f,
                "service {:?} is not in {:?}",
                self.facts.service,
                w.services
                    .as_ref()
                    .map(|(_, listed)| listed.as_slice())
                    .unwrap_or_default()
            ),
            Miss::User => {
                let listed: Vec<String> = w
                    .users
                    .iter()
                    .flatten()
                    .map(|u| match u {
                        UserMatch::User(n) => n.clone(),
                        UserMatch::Group(g) => format!("%{g}"),
                    })
                    .collect();
                write!(
                    f,
                    "user {:?} is neither listed nor in a listed group of {listed:?}",
                    self.facts.user
                )
            }
            Miss::Network => {
                let nets: Vec<String> = w.from.iter().flatten().map(ToString::to_string).collect();
                match self.facts.rhost {
                    Some(r) if r.parse::<IpAddr>().is_ok() => {
                        write!(f, "source {r} is not in {nets:?}")
                    }
                    Some(r) => write!(
                        f,
                        "source {r:?} is a host name, which never matches a network"
                    ),
                    None => write!(
                        f,
                        "the login is local (no remote host), which matches no network"
                    ),
                }
            }
            Miss::NewNetwork => write!(
                f,
                "new_network is {}, the rule wants {}",
                self.facts.signals.new_network, !self.facts.signals.new_network
            ),
            Miss::NewCountry => write!(
                f,
                "new_country is {}, the rule wants {}",
                self.facts.signals.new_country, !self.facts.signals.new_country
            ),
        }
    }
}
