//! The validated policy: rules, their conditions and what they require.

use ipnet::IpNet;
use std::collections::HashSet;
use std::time::Duration;

/// A second factor a rule can require. New factors are added here and in
/// `factor/`; the matcher never looks inside them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Factor {
    Totp,
    Backup,
    /// A code sent by text message to the verified phone number.
    Sms,
    /// A code sent to the verified email address.
    Email,
}

impl Factor {
    pub const ALL: [Factor; 4] = [Factor::Totp, Factor::Backup, Factor::Sms, Factor::Email];

    pub fn name(self) -> &'static str {
        match self {
            Factor::Totp => "totp",
            Factor::Backup => "backup",
            Factor::Sms => "sms",
            Factor::Email => "email",
        }
    }

    /// How the factor is named to a person choosing among them.
    pub fn label(self) -> &'static str {
        match self {
            Factor::Totp => "authenticator app code (TOTP)",
            Factor::Backup => "backup code",
            Factor::Sms => "code by text message (SMS)",
            Factor::Email => "code by email",
        }
    }

    /// The channel a sent-code factor delivers through.
    pub fn channel(self) -> Option<mfad_protocol::Channel> {
        match self {
            Factor::Sms => Some(mfad_protocol::Channel::Sms),
            Factor::Email => Some(mfad_protocol::Channel::Email),
            Factor::Totp | Factor::Backup => None,
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    pub fn known() -> String {
        Self::ALL.map(Factor::name).join(", ")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// No second factor.
    None,
    /// Refuse the login.
    Deny,
    /// One of these, chosen by the user among those enrolled (one factor is
    /// `Any` of one).
    Any(Vec<Factor>),
    /// Every one of these, in order.
    Chain(Vec<Factor>),
}

impl Requirement {
    pub fn factors(&self) -> &[Factor] {
        match self {
            Requirement::Any(f) | Requirement::Chain(f) => f,
            Requirement::None | Requirement::Deny => &[],
        }
    }

    pub fn describe(&self) -> String {
        let names = |f: &[Factor]| f.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ");
        match self {
            Requirement::None => "none".to_owned(),
            Requirement::Deny => "deny".to_owned(),
            Requirement::Any(f) if f.len() == 1 => f[0].name().to_owned(),
            Requirement::Any(f) => format!("any of [{}]", names(f)),
            Requirement::Chain(f) => format!("chain [{}]", names(f)),
        }
    }
}

/// What happens to a user who has none of the factors a rule names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unenrolled {
    Deny,
    Allow,
    /// Allowed until this unix time (the end of the given day, UTC), then denied.
    GraceUntil(i64),
    /// Offered TOTP enrollment inside the login (QR code, first code,
    /// backup codes), then let in. Only in rules for chosen services, never
    /// privileged ones.
    Enroll,
}

/// What happens to the live sessions a rule covers when something about
/// them changes for the worse (a login of the same user from a new network
/// or country, a lock on the account, a revoked trusted device, a policy
/// that asks more, an admin's `mfactl sessions stepup`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnRisk {
    /// Nothing: the session keeps what it proved.
    #[default]
    None,
    /// The session's freshness is cleared: its next step-up asks every factor.
    Stepup,
    /// The session is ended.
    End,
}

impl OnRisk {
    pub fn name(self) -> &'static str {
        match self {
            OnRisk::None => "none",
            OnRisk::Stepup => "stepup",
            OnRisk::End => "end",
        }
    }

    /// What it does, for `mfactl policy explain`; `None` for nothing.
    pub fn describe(self) -> Option<&'static str> {
        match self {
            OnRisk::None => None,
            OnRisk::Stepup => Some(
                "stepup: when risk rises (a login of the user from a new network or country, a lock, \
                 a revoked trusted device that opened it, a policy asking more), a live session of \
                 this rule steps up again: its next sudo asks every factor",
            ),
            OnRisk::End => Some(
                "end: when risk rises (a login of the user from a new network or country, a lock, \
                 a revoked trusted device that opened it, a policy asking more), a live session of \
                 this rule is ended",
            ),
        }
    }
}

/// What a login under a rule does when the shared database (PostgreSQL)
/// cannot be reached. SQLite hosts never meet it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StoreUnreachable {
    /// The login is denied (within the store's statement timeout).
    #[default]
    Deny,
    /// A user who logged in on this host while a "cached" rule was in
    /// force may pass with a TOTP code checked against this host's cache,
    /// each step once on this host.
    Cached,
}

impl StoreUnreachable {
    pub fn name(self) -> &'static str {
        match self {
            StoreUnreachable::Deny => "deny",
            StoreUnreachable::Cached => "cached",
        }
    }

    /// What it does, for `mfactl policy explain`.
    pub fn describe(self) -> &'static str {
        match self {
            StoreUnreachable::Deny => {
                "deny: when the shared database is unreachable, the login is denied"
            }
            StoreUnreachable::Cached => {
                "cached: when the shared database is unreachable, a user who logged in on this host \
                 while a \"cached\" rule was in force may pass with a TOTP code checked against \
                 this host's cache (each code once on this host); everyone else is denied"
            }
        }
    }
}

/// Services where a login must never be the place to set up a factor:
/// whoever reaches them is already someone else's session.
pub const PRIVILEGED_SERVICES: [&str; 7] =
    ["sudo", "sudo-i", "su", "su-l", "pkexec", "doas", "polkit-1"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustedDevices {
    Forbidden,
    Days(u32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserMatch {
    User(String),
    /// `%group`: membership through NSS, supplementary groups included.
    Group(String),
}

/// The conditions of a rule; a `None` list is not checked. All present
/// conditions must hold.
#[derive(Debug, Clone, Default)]
pub struct Conditions {
    /// An explicit catch-all.
    pub all: bool,
    pub host_class: Option<Vec<String>>,
    pub host_tags: Option<Vec<String>>,
    /// Service names with `@groups` expanded, and the list as written.
    pub services: Option<(HashSet<String>, Vec<String>)>,
    pub users: Option<Vec<UserMatch>>,
    pub from: Option<Vec<IpNet>>,
    /// Risk signals: the rule matches when the signal has this value.
    pub new_network: Option<bool>,
    pub new_country: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    /// 1-based line of the rule in the policy file.
    pub line: usize,
    pub when: Conditions,
    pub require: Requirement,
    /// How old a factor passed earlier in the same session may be to count.
    pub fresh: Vec<(Factor, Duration)>,
    pub trusted_devices: TrustedDevices,
    pub unenrolled: Unenrolled,
    /// What happens to its live sessions when risk rises.
    pub on_risk: OnRisk,
    /// What a login does when the shared database is unreachable.
    pub store_unreachable: StoreUnreachable,
    /// `[totp.profiles.NAME]` of mfad.toml for enrollment at login (`None`:
    /// the default profile, `[totp]`).
    pub totp_profile: Option<String>,
}

/// Facts about this host, from the policy's `[host]` table.
#[derive(Debug, Clone)]
pub struct Host {
    pub class: Option<String>,
    pub tags: Vec<String>,
    /// The PAM services that vouch for the SSH key of their first method
    /// (`SSH_AUTH_INFO_0`), so that it may count as a trusted device: sshd
    /// alone by default. A key any other service passes along is ignored.
    pub device_services: Vec<String>,
}

impl Default for Host {
    fn default() -> Self {
        Self {
            class: None,
            tags: Vec::new(),
            device_services: vec!["sshd".to_owned()],
        }
    }
}

impl Host {
    /// Whether `service` may bring a trusted device.
    pub fn vouches_for_devices(&self, service: &str) -> bool {
        self.device_services.iter().any(|s| s == service)
    }
}
