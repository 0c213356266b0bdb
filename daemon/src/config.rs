//! The daemon configuration: a strict, versioned TOML file read into a raw
//! form, then checked into [`Config`]. Defaults live here and nowhere else.

pub use crate::factor::totp::TotpAlgorithm;
use crate::store::{LockRule, TotpParams};
use mfad_protocol::paths;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

mod audit;
mod channels;
mod delivery;
mod directory;
mod store;

pub use audit::{AuditConfig, JsonFileConfig, SyslogConfig, Transport};

pub use delivery::{
    CODE_MESSAGE, CodeProfile, EmailConfig, GENERIC_REQUEST, GenericBody, GenericProvider,
    NOTIFICATION, NotificationConfig, Preset, Provider, SecretSource, SendCaps, SmsConfig,
    SmtpSecurity,
};
pub use directory::{ContactTrust, DirectoryBind, DirectoryConfig, GroupSource, LocalContacts};
pub use store::{PostgresConfig, StoreConfig};

pub const CONFIG_VERSION: u32 = 1;
/// NIST SP 800-63B: at most 100 consecutive failures per account.
const MAX_ACCOUNT_THRESHOLD: u32 = 100;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: `{key}` {problem}")]
    Invalid {
        path: PathBuf,
        key: &'static str,
        problem: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    version: u32,
    socket: Option<PathBuf>,
    database: Option<PathBuf>,
    key_file: Option<PathBuf>,
    policy_file: Option<PathBuf>,
    admin_group: Option<String>,
    syslog: Option<bool>,
    syslog_socket: Option<PathBuf>,
    worker_threads: Option<usize>,
    geoip_database: Option<PathBuf>,
    #[serde(default)]
    totp: RawTotp,
    #[serde(default)]
    lockout: RawLockout,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    backup: RawBackup,
    sms: Option<delivery::RawSms>,
    email: Option<delivery::RawEmail>,
    #[serde(default)]
    login_notification: delivery::RawNotification,
    directory: Option<directory::RawDirectory>,
    #[serde(default)]
    audit: audit::RawAudit,
    #[serde(default)]
    self_service: RawSelfService,
    #[serde(default)]
    store: store::RawStore,
    #[serde(default)]
    testing: RawTesting,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSelfService {
    replace_totp: Option<bool>,
    disable: Option<bool>,
}

/// Settings for the end-to-end tests only; never set them in production.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTesting {
    clock_offset_secs: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBackup {
    count: Option<u32>,
    length: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTotp {
    issuer: Option<String>,
    algorithm: Option<TotpAlgorithm>,
    digits: Option<u32>,
    period: Option<u64>,
    window: Option<u32>,
    enroll_timeout_secs: Option<u64>,
    #[serde(default)]
    profiles: std::collections::BTreeMap<String, RawProfile>,
}

/// `[totp.profiles.NAME]`: what it leaves out comes from `[totp]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    algorithm: Option<TotpAlgorithm>,
    digits: Option<u32>,
    period: Option<u64>,
    window: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLockout {
    threshold: Option<u32>,
    account_threshold: Option<u32>,
    duration_secs: Option<u64>,
    failure_delay_ms: Option<u64>,
    failure_delay_max_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_connections: Option<usize>,
    per_uid_connections: Option<usize>,
    idle_timeout_secs: Option<u64>,
    frame_timeout_secs: Option<u64>,
    conversation_timeout_secs: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub socket: PathBuf,
    pub database: PathBuf,
    pub key_file: PathBuf,
    pub policy_file: PathBuf,
    pub admin_group: Option<String>,
    pub syslog: bool,
    pub syslog_socket: PathBuf,
    pub worker_threads: usize,
    /// A MaxMind-format country database, for the `new_country` signal.
    pub geoip_database: Option<PathBuf>,
    pub totp: TotpConfig,
    pub lockout: LockoutConfig,
    pub limits: LimitsConfig,
    pub backup: BackupConfig,
    /// Codes by text message; `None`: the `sms` factor is unavailable.
    pub sms: Option<SmsConfig>,
    /// Codes by email; `None`: the `email` factor is unavailable.
    pub email: Option<EmailConfig>,
    pub login_notification: NotificationConfig,
    /// Contacts and groups from LDAP / Active Directory; `None`: none.
    pub directory: Option<DirectoryConfig>,
    pub audit: AuditConfig,
    pub self_service: SelfServiceConfig,
    /// Where state is kept: SQLite in `database`, or PostgreSQL.
    pub store: StoreConfig,
    /// This server's name in a fleet (audit rows, sessions).
    pub host_name: String,
    /// Seconds added to the wall clock (`[testing] clock_offset_secs`), so
    /// tests can move time without sleeping. Zero in production.
    pub clock_offset: i64,
}

/// What users may change on their own account with a fresh proof
/// (`mfactl replace-totp`, `mfactl disable-mfa`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelfServiceConfig {
    /// Replace one's own TOTP secret (a lost phone).
    pub replace_totp: bool,
    /// Remove one's own factors: off unless the admin allows it.
    pub disable: bool,
}

#[derive(Debug, Clone)]
pub struct BackupConfig {
    /// Codes issued at a time.
    pub count: u32,
    /// Characters per code (5 bits each).
    pub length: usize,
}

#[derive(Debug, Clone)]
pub struct TotpConfig {
    pub issuer: String,
    /// The default profile: `[totp]` itself.
    pub algorithm: TotpAlgorithm,
    pub digits: u32,
    pub period: u64,
    /// Steps accepted on each side of the current one.
    pub window: u32,
    pub enroll_timeout: Duration,
    /// `[totp.profiles.NAME]`, for the enrollments that name one.
    pub profiles: std::collections::BTreeMap<String, TotpProfile>,
}

/// How one kind of TOTP factor computes and checks its codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TotpProfile {
    pub algorithm: TotpAlgorithm,
    pub digits: u32,
    pub period: u64,
    pub window: u32,
}

/// A key of a TOTP profile, for errors.
#[derive(Debug, Clone, Copy)]
enum ProfileKey {
    Digits,
    Period,
    Window,
}

impl ProfileKey {
    fn name(self) -> &'static str {
        match self {
            ProfileKey::Digits => "digits",
            ProfileKey::Period => "period",
            ProfileKey::Window => "window",
        }
    }

    /// The key in `[totp]` itself.
    fn totp(self) -> &'static str {
        match self {
            ProfileKey::Digits => "totp.digits",
            ProfileKey::Period => "totp.period",
            ProfileKey::Window => "totp.window",
        }
    }
}

impl TotpProfile {
    fn check(&self) -> Result<(), (ProfileKey, String)> {
        if !(6..=8).contains(&self.digits) {
            return Err((
                ProfileKey::Digits,
                format!("is {}, it must be 6, 7 or 8", self.digits),
            ));
        }
        if !(15..=300).contains(&self.period) {
            return Err((
                ProfileKey::Period,
                format!("is {}, it must be 15 to 300 seconds", self.period),
            ));
        }
        if self.window > 10 {
            return Err((
                ProfileKey::Window,
                format!(
                    "is {}, at most 10 steps are allowed (1 is the safe default)",
                    self.window
                ),
            ));
        }
        Ok(())
    }

    pub fn params(&self) -> TotpParams {
        TotpParams {
            algorithm: self.algorithm,
            digits: self.digits,
            period: self.period,
        }
    }
}

fn valid_profile_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl TotpConfig {
    /// The profile named `name`, or the default (`[totp]`) for `None`.
    pub fn profile(&self, name: Option<&str>) -> Option<TotpProfile> {
        match name {
            None => Some(TotpProfile {
                algorithm: self.algorithm,
                digits: self.digits,
                period: self.period,
                window: self.window,
            }),
            Some(name) => self.profiles.get(name).copied(),
        }
    }

    /// The window for a factor with these parameters: a stored factor
    /// records its algorithm, digits and period, not its profile, so the
    /// widest window among the profiles that compute codes this way (the
    /// default's when none does).
    pub fn window_for(&self, params: TotpParams) -> u32 {
        self.all()
            .filter(|p| p.params() == params)
            .map(|p| p.window)
            .max()
            .unwrap_or(self.window)
    }

    /// The widest window of any profile: what an unclean stop fences.
    pub fn widest_window(&self) -> u32 {
        self.all().map(|p| p.window).max().unwrap_or(self.window)
    }

    /// The longest a code of any profile stays good, in seconds.
    pub fn longest_validity(&self) -> u64 {
        self.all()
            .map(|p| (u64::from(p.window) + 1) * p.period)
            .max()
            .unwrap_or(0)
    }

    /// The default profile, then the named ones.
    fn all(&self) -> impl Iterator<Item = TotpProfile> + '_ {
        self.profile(None)
            .into_iter()
            .chain(self.profiles.values().copied())
    }
}

#[derive(Debug, Clone)]
pub struct LockoutConfig {
    /// Consecutive failures per user, channel and source before that source
    /// is locked out of the channel.
    pub threshold: u32,
    /// Consecutive failures per user and channel, from all sources together,
    /// before the channel is locked for everyone.
    pub account_threshold: u32,
    pub duration: Duration,
    /// The deliberate pause before a failure verdict grows by this much per
    /// consecutive failure, up to `failure_delay_max`.
    pub failure_delay: Duration,
    pub failure_delay_max: Duration,
}

impl LockoutConfig {
    /// The part of the lockout the store enforces.
    pub fn rule(&self) -> LockRule {
        LockRule {
            threshold: self.threshold,
            account_threshold: self.account_threshold,
            duration_secs: i64::try_from(self.duration.as_secs()).unwrap_or(i64::MAX),
        }
    }
}

#[derive(Debug, Clone)]
pub struct LimitsConfig {
    pub max_connections: usize,
    pub per_uid_connections: usize,
    /// How long the daemon waits for the next frame (the user typing a code).
    pub idle_timeout: Duration,
    /// How long a frame may take once its first byte has arrived: a client
    /// trickling bytes must not hold a connection for the idle timeout.
    pub frame_timeout: Duration,
    /// The longest a whole conversation may last.
    pub conversation_timeout: Duration,
}

impl Config {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let invalid = |key: &'static str, problem: String| ConfigError::Invalid {
            path: path.to_owned(),
            key,
            problem,
        };
        if raw.version != CONFIG_VERSION {
            return Err(invalid(
                "version",
                format!(
                    "is {}, this mfad reads version {CONFIG_VERSION}",
                    raw.version
                ),
            ));
        }
        let default = TotpProfile {
            algorithm: raw.totp.algorithm.unwrap_or(TotpAlgorithm::SHA1),
            digits: raw.totp.digits.unwrap_or(6),
            period: raw.totp.period.unwrap_or(30),
            window: raw.totp.window.unwrap_or(1),
        };
        default
            .check()
            .map_err(|(key, problem)| invalid(key.totp(), problem))?;
        let mut profiles = std::collections::BTreeMap::new();
        for (name, p) in raw.totp.profiles {
            if !valid_profile_name(&name) {
                return Err(invalid(
                    "totp.profiles",
                    format!("{name:?}: a profile name is 1 to 32 letters, digits, '-' or '_'"),
                ));
            }
            let profile = TotpProfile {
                algorithm: p.algorithm.unwrap_or(default.algorithm),
                digits: p.digits.unwrap_or(default.digits),
                period: p.period.unwrap_or(default.period),
                window: p.window.unwrap_or(default.window),
            };
            profile.check().map_err(|(key, problem)| {
                invalid(
                    "totp.profiles",
                    format!("[totp.profiles.{name}] `{}` {problem}", key.name()),
                )
            })?;
            profiles.insert(name, profile);
        }
        let totp = TotpConfig {
            issuer: raw.totp.issuer.unwrap_or_else(|| "mfad".to_owned()),
            algorithm: default.algorithm,
            digits: default.digits,
            period: default.period,
            window: default.window,
            enroll_timeout: Duration::from_secs(raw.totp.enroll_timeout_secs.unwrap_or(600)),
            profiles,
        };
        if totp.issuer.is_empty() || totp.issuer.contains(':') {
            return Err(invalid(
                "totp.issuer",
                "must be non-empty and without ':'".to_owned(),
            ));
        }
        let lockout = LockoutConfig {
            threshold: raw.lockout.threshold.unwrap_or(5),
            account_threshold: raw.lockout.account_threshold.unwrap_or(20),
            duration: Duration::from_secs(raw.lockout.duration_secs.unwrap_or(900)),
            failure_delay: Duration::from_millis(raw.lockout.failure_delay_ms.unwrap_or(250)),
            failure_delay_max: Duration::from_millis(
                raw.lockout.failure_delay_max_ms.unwrap_or(2000),
            ),
        };
        if lockout.threshold == 0 || lockout.threshold > MAX_ACCOUNT_THRESHOLD {
            return Err(invalid("lockout.threshold", "must be 1 to 100".to_owned()));
        }
        if lockout.account_threshold < lockout.threshold
            || lockout.account_threshold > MAX_ACCOUNT_THRESHOLD
        {
            return Err(invalid(
                "lockout.account_threshold",
                format!(
                    "must be between lockout.threshold ({}) and 100",
                    lockout.threshold
                ),
            ));
        }
        if lockout.duration.is_zero() {
            return Err(invalid(
                "lockout.duration_secs",
                "must be at least 1".to_owned(),
            ));
        }
        let limits = LimitsConfig {
            max_connections: raw.limits.max_connections.unwrap_or(1024),
            per_uid_connections: raw.limits.per_uid_connections.unwrap_or(8),
            idle_timeout: Duration::from_secs(raw.limits.idle_timeout_secs.unwrap_or(120)),
            frame_timeout: Duration::from_secs(raw.limits.frame_timeout_secs.unwrap_or(5)),
            conversation_timeout: Duration::from_secs(
                raw.limits.conversation_timeout_secs.unwrap_or(300),
            ),
        };
        // The module waits at most its own timeout (default 5 s) for a verdict;
        // a longer deliberate delay would turn every failure into "unavailable".
        if lockout.failure_delay_max > Duration::from_secs(4) {
            return Err(invalid(
                "lockout.failure_delay_max_ms",
                "must be at most 4000, below pam_mfa's default 5 s reply timeout".to_owned(),
            ));
        }
        if limits.max_connections == 0 || limits.per_uid_connections == 0 {
            return Err(invalid(
                "limits.per_uid_connections",
                "and limits.max_connections must be at least 1".to_owned(),
            ));
        }
        if limits.idle_timeout.is_zero() || limits.conversation_timeout < limits.idle_timeout {
            return Err(invalid(
                "limits.conversation_timeout_secs",
                "must be at least limits.idle_timeout_secs, which must be at least 1".to_owned(),
            ));
        }
        if limits.frame_timeout.is_zero() || limits.frame_timeout > Duration::from_secs(60) {
            return Err(invalid(
                "limits.frame_timeout_secs",
                "must be 1 to 60 (a frame arrives in one write; 5 is the default)".to_owned(),
            ));
        }
        let backup = BackupConfig {
            count: raw.backup.count.unwrap_or(10),
            length: raw.backup.length.unwrap_or(10),
        };
        if !(1..=50).contains(&backup.count) {
            return Err(invalid("backup.count", "must be 1 to 50".to_owned()));
        }
        if !(8..=32).contains(&backup.length) {
            return Err(invalid(
                "backup.length",
                "must be 8 to 32 characters".to_owned(),
            ));
        }
        let checker = delivery::Checker { path };
        let sms = raw.sms.as_ref().map(|s| checker.sms(s)).transpose()?;
        let email = raw.email.as_ref().map(|e| checker.email(e)).transpose()?;
        let login_notification = checker.notification(&raw.login_notification, email.as_ref())?;
        let directory = raw
            .directory
            .as_ref()
            .map(|r| directory::check(path, r))
            .transpose()?;
        // Ten years either way is far beyond any test and keeps the sum safe.
        let clock_offset = raw.testing.clock_offset_secs.unwrap_or(0);
        if clock_offset.unsigned_abs() > 10 * 365 * 86_400 {
            return Err(invalid(
                "testing.clock_offset_secs",
                "must be within ten years of zero (and zero outside tests)".to_owned(),
            ));
        }
        let worker_threads = raw.worker_threads.unwrap_or(2);
        if !(1..=64).contains(&worker_threads) {
            return Err(invalid("worker_threads", "must be 1 to 64".to_owned()));
        }
        let database = raw.database.unwrap_or_else(|| paths::DATABASE.into());
        let audit = audit::check(raw.audit, path, &database)?;
        let (store, host_name) = store::check(path, raw.store)?;
        Ok(Config {
            socket: raw.socket.unwrap_or_else(|| paths::SOCKET.into()),
            database,
            key_file: raw.key_file.unwrap_or_else(|| paths::KEY.into()),
            policy_file: raw.policy_file.unwrap_or_else(|| paths::POLICY.into()),
            admin_group: raw.admin_group.filter(|g| !g.is_empty()),
            syslog: raw.syslog.unwrap_or(true),
            syslog_socket: raw.syslog_socket.unwrap_or_else(|| "/dev/log".into()),
            worker_threads,
            geoip_database: raw.geoip_database.filter(|p| !p.as_os_str().is_empty()),
            totp,
            lockout,
            limits,
            backup,
            sms,
            email,
            login_notification,
            directory,
            audit,
            self_service: SelfServiceConfig {
                replace_totp: raw.self_service.replace_totp.unwrap_or(true),
                disable: raw.self_service.disable.unwrap_or(false),
            },
            store,
            host_name,
            clock_offset,
        })
    }

    /// The effective configuration, as `--check-config` prints it.
    pub fn describe(&self) -> String {
        let t = &self.totp;
        let l = &self.lockout;
        let m = &self.limits;
        format!(
            "socket = {:?}\n{}\nhost_name = {:?}\ndatabase = {:?}\nkey_file = {:?}\npolicy_file = {:?}\n\
             admin_group = {}\nsyslog = {} ({:?})\nworker_threads = {}\ngeoip_database = {}\n\
             totp: issuer {:?}, {} {} digits, period {} s, window ±{}, enrollment expires after {} s\n{}\
             lockout: {} failures per source, {} per account, for {} s; failure delay {} ms growing to {} ms\n\
             limits: {} connections, {} per non-root uid, idle {} s, frame {} s, conversation {} s\n\
             backup codes: {} of {} characters\n{}{}login notification: {}\n{}{}\
             self service: replace_totp {}, disable {}\n{}",
            self.socket,
            self.store.describe(),
            self.host_name,
            self.database,
            self.key_file,
            self.policy_file,
            self.admin_group.as_deref().unwrap_or("(none: root only)"),
            self.syslog,
            self.syslog_socket,
            self.worker_threads,
            self.geoip_database
                .as_ref()
                .map_or("(none: new_country is never true)".to_owned(), |p| format!(
                    "{p:?}"
                )),
            t.issuer,
            t.algorithm.as_str(),
            t.digits,
            t.period,
            t.window,
            t.enroll_timeout.as_secs(),
            t.profiles
                .iter()
                .map(|(name, p)| format!(
                    "totp profile {name}: {} {} digits, period {} s, window ±{}\n",
                    p.algorithm.as_str(),
                    p.digits,
                    p.period,
                    p.window
                ))
                .collect::<String>(),
            l.threshold,
            l.account_threshold,
            l.duration.as_secs(),
            l.failure_delay.as_millis(),
            l.failure_delay_max.as_millis(),
            m.max_connections,
            m.per_uid_connections,
            m.idle_timeout.as_secs(),
            m.frame_timeout.as_secs(),
            m.conversation_timeout.as_secs(),
            self.backup.count,
            self.backup.length,
            self.sms
                .as_ref()
                .map_or_else(|| "sms: not configured\n".to_owned(), SmsConfig::describe),
            self.email.as_ref().map_or_else(
                || "email: not configured\n".to_owned(),
                EmailConfig::describe
            ),
            if self.login_notification.enabled {
                "on (email to the verified address)"
            } else {
                "off"
            },
            self.directory.as_ref().map_or_else(
                || "directory: not configured\n".to_owned(),
                DirectoryConfig::describe
            ),
            self.audit.describe(),
            self.self_service.replace_totp,
            self.self_service.disable,
            match self.clock_offset {
                0 => String::new(),
                n => format!(
                    "testing: the clock is shifted by {n} s (never do this in production)\n"
                ),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("mfad.toml"), text)
    }

    #[test]
    fn minimal_file_takes_the_defaults() {
        let c = parse("version = 1").unwrap();
        assert_eq!(c.socket, PathBuf::from(paths::SOCKET));
        assert_eq!(c.totp.digits, 6);
        assert_eq!(c.totp.window, 1);
        assert_eq!(c.lockout.threshold, 5);
        assert!(c.syslog);
        assert_eq!(c.audit.retention, Some(Duration::from_secs(365 * 86_400)));
        assert_eq!(
            c.self_service,
            SelfServiceConfig {
                replace_totp: true,
                disable: false
            }
        );
        assert!(
            c.describe()
                .contains("self service: replace_totp true, disable false")
        );
    }

    #[test]
    fn totp_profiles_take_what_they_leave_out_from_totp() {
        let c = parse(
            "version = 1\n[totp]\nperiod = 60\n\
             [totp.profiles.strict]\nalgorithm = \"SHA256\"\ndigits = 8\nwindow = 0\n\
             [totp.profiles.slow]\nperiod = 60\nwindow = 2\n",
        )
        .unwrap();
        let strict = c.totp.profile(Some("strict")).unwrap();
        assert_eq!(
            (
                strict.algorithm,
                strict.digits,
                strict.period,
                strict.window
            ),
            (TotpAlgorithm::SHA256, 8, 60, 0)
        );
        assert!(c.totp.profile(Some("nope")).is_none());
        assert_eq!(c.totp.profile(None).unwrap().period, 60);
        // "slow" computes codes as the default does: its wider window counts.
        assert_eq!(c.totp.window_for(c.totp.profile(None).unwrap().params()), 2);
        assert_eq!(c.totp.window_for(strict.params()), 0);
        assert_eq!(c.totp.widest_window(), 2);
        assert_eq!(c.totp.longest_validity(), 180);
        assert!(
            c.describe()
                .contains("totp profile strict: SHA256 8 digits, period 60 s, window ±0"),
            "{}",
            c.describe()
        );
        for (text, problem) in [
            (
                "[totp.profiles.a]\ndigits = 9\n",
                "[totp.profiles.a] `digits` is 9",
            ),
            (
                "[totp.profiles.a]\nperiod = 5\n",
                "[totp.profiles.a] `period` is 5",
            ),
            (
                "[totp.profiles.a]\nwindow = 11\n",
                "[totp.profiles.a] `window` is 11",
            ),
            ("[totp.profiles.\"a b\"]\n", "a profile name is 1 to 32"),
            ("[totp.profiles.a]\nissuer = \"x\"\n", "issuer"),
        ] {
            let err = parse(&format!("version = 1\n{text}"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(problem), "{text}: {err}");
        }
    }

    #[test]
    fn audit_retention_is_in_days_and_zero_keeps_for_ever() {
        let c = parse("version = 1\n[audit]\nretention_days = 30\n").unwrap();
        assert_eq!(c.audit.retention, Some(Duration::from_secs(30 * 86_400)));
        assert!(c.describe().contains("audit: rows kept 30 days"));
        let c = parse("version = 1\n[audit]\nretention_days = 0\n").unwrap();
        assert_eq!(c.audit.retention, None);
        assert!(c.describe().contains("audit: rows kept for ever"));
        let err = parse("version = 1\n[audit]\nretention_days = 36501\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("audit.retention_days"), "{err}");
    }

    #[test]
    fn unknown_keys_are_named_with_their_line() {
        let err = parse("version = 1\n[totp]\ndigit = 6\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("digit"), "{err}");
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn bad_values_name_the_key() {
        for (text, key) in [
            ("version = 2", "version"),
            ("version = 1\n[totp]\ndigits = 9", "totp.digits"),
            ("version = 1\n[totp]\nperiod = 0", "totp.period"),
            ("version = 1\n[totp]\nwindow = 50", "totp.window"),
            ("version = 1\n[lockout]\nthreshold = 0", "lockout.threshold"),
            (
                "version = 1\n[lockout]\naccount_threshold = 101",
                "lockout.account_threshold",
            ),
            (
                "version = 1\n[lockout]\nfailure_delay_max_ms = 9000",
                "failure_delay_max_ms",
            ),
            (
                "version = 1\n[limits]\nframe_timeout_secs = 0",
                "limits.frame_timeout_secs",
            ),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
        let err = parse("version = 1\n[totp]\nalgorithm = \"MD5\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("MD5") && err.contains("line 3"), "{err}");
    }
}
