//! The daemon config and policy files a [`super::TestDaemon`] writes. Every
//! key is written explicitly, so a test reads as the whole configuration.

use std::fmt::Write;
use std::path::{Path, PathBuf};

/// `[totp]`
#[derive(Debug, Clone)]
pub struct TotpConfig {
    pub issuer: String,
    /// SHA1 | SHA256 | SHA512
    pub algorithm: String,
    /// 6..=8
    pub digits: u32,
    pub period: u64,
    pub window: u32,
    /// Written after `[totp]` as is: `[totp.profiles.NAME]` tables.
    pub profiles: String,
}

/// `[lockout]`
#[derive(Debug, Clone)]
pub struct LockoutConfig {
    /// Consecutive failures per user+channel+source before a lock.
    pub threshold: u32,
    /// Per user+channel across all sources.
    pub account_threshold: u32,
    pub duration_secs: u64,
    pub failure_delay_ms: u64,
    pub failure_delay_max_ms: u64,
}

/// `[limits]`
#[derive(Debug, Clone)]
pub struct LimitsConfig {
    pub max_connections: u32,
    /// For non-root peers.
    pub per_uid_connections: u32,
    pub idle_timeout_secs: u64,
    /// How long a started frame may take.
    pub frame_timeout_secs: u64,
    pub conversation_timeout_secs: u64,
}

/// `[sms.code]` / `[email.code]`: one delivery profile.
#[derive(Debug, Clone)]
pub struct CodeConfig {
    pub length: u32,
    pub grouping: bool,
    pub validity_secs: u64,
    pub resend_cooldown_secs: u64,
    pub attempts: u32,
    pub hourly_cap: u32,
}

impl Default for CodeConfig {
    fn default() -> Self {
        Self {
            length: 6,
            grouping: true,
            validity_secs: 300,
            resend_cooldown_secs: 30,
            attempts: 3,
            hourly_cap: 5,
        }
    }
}

/// `[sms]`: a provider at `base_url` (the test's [`crate::sms::SmsServer`]).
/// The secret is written to `state/sms.secret` and named by
/// `credentials_file`, or, with `systemd_credential`, to
/// `state/credentials/sms` and named by `credential = "sms"`.
#[derive(Debug, Clone)]
pub struct SmsConfig {
    /// twilio | vonage | infobip | messagebird | generic
    pub provider: String,
    pub base_url: String,
    pub account: Option<String>,
    /// Twilio: `api_key_sid`.
    pub api_key_sid: Option<String>,
    pub from: String,
    /// `message`: the text's template (unset: mfad's default).
    pub message: Option<String>,
    pub secret: String,
    /// The mode of the secret's file (0600 unless a test wants it refused).
    pub secret_mode: u32,
    pub systemd_credential: bool,
    pub timeout_ms: u64,
    /// More lines for the `[sms]` table (e.g. `[sms.generic]`, where `BASE`
    /// stands for `base_url`).
    pub extra: String,
    pub code: CodeConfig,
}

impl SmsConfig {
    /// Where the fixture writes the secret, inside the daemon's directory.
    pub fn secret_path(&self) -> &'static str {
        if self.systemd_credential {
            "state/credentials/sms"
        } else {
            "state/sms.secret"
        }
    }
}

/// `[email]`: plain SMTP to the test's [`crate::smtp::SmtpServer`].
#[derive(Debug, Clone)]
pub struct EmailConfig {
    pub port: u16,
    pub from: String,
    pub timeout_ms: u64,
    pub code: CodeConfig,
    /// More lines for the `[email]` table (e.g. `[email.cap]`).
    pub extra: String,
}

impl EmailConfig {
    pub fn on_port(port: u16) -> Self {
        Self {
            port,
            from: "mfad@test.example".into(),
            timeout_ms: 3000,
            code: CodeConfig::default(),
            extra: String::new(),
        }
    }
}

/// The policy file, in its simplest form: per-service rules, then a
/// catch-all with the default requirement; or a whole text of its own.
#[derive(Debug, Clone)]
pub struct TestPolicy {
    /// none | totp | deny | backup, or an inline table such as `{ chain = ["totp", "backup"] }`
    pub default: String,
    /// deny | allow
    pub unenrolled: String,
    /// One rule per entry, e.g. `("cron", "none")`, in order.
    pub services: Vec<(String, String)>,
    /// A complete policy text, used instead of the above.
    pub text: Option<String>,
}

impl Default for TestPolicy {
    fn default() -> Self {
        Self {
            default: "totp".into(),
            unenrolled: "deny".into(),
            services: Vec::new(),
            text: None,
        }
    }
}

impl TestPolicy {
    /// Adds a rule for one service (builder style).
    pub fn service(mut self, service: &str, require: &str) -> Self {
        self.services.push((service.into(), require.into()));
        self
    }

    /// A policy given as its whole text.
    pub fn text(text: &str) -> Self {
        Self {
            text: Some(text.to_owned()),
            ..Self::default()
        }
    }

    pub fn render(&self) -> String {
        if let Some(text) = &self.text {
            return text.clone();
        }
        let mut s = String::new();
        let unenrolled = quote(&self.unenrolled);
        for (service, require) in &self.services {
            let _ = writeln!(
                s,
                "[[rule]]\nname = {}\nservices = [{}]\nrequire = {}\nunenrolled = {unenrolled}\n",
                quote(&format!("service-{service}")),
                quote(service),
                requirement(require)
            );
        }
        let _ = writeln!(
            s,
            "[[rule]]\nname = \"default\"\nall = true\nrequire = {}\nunenrolled = {unenrolled}",
            requirement(&self.default)
        );
        s
    }
}

/// A requirement as TOML: a bare name is quoted, an inline table kept.
fn requirement(r: &str) -> String {
    if r.starts_with('{') {
        r.to_owned()
    } else {
        quote(r)
    }
}

/// Everything in the daemon config except the paths, which the fixture
/// chooses inside its temporary directory.
#[derive(Debug, Clone)]
pub struct TestConfig {
    /// Written only when `Some`.
    pub admin_group: Option<String>,
    /// Tests never write to the host's syslog: with `syslog = true`, point
    /// `syslog_socket` at a receiver of their own ([`super::SyslogReceiver`]).
    pub syslog: bool,
    /// Written only when `Some`; a relative path is inside the daemon's directory.
    pub syslog_socket: Option<PathBuf>,
    pub totp: TotpConfig,
    pub lockout: LockoutConfig,
    pub limits: LimitsConfig,
    pub policy: TestPolicy,
    /// `[testing] clock_offset_secs`: the daemon's clock runs this far
    /// ahead (or behind); written only when non-zero. Keep it a multiple of
    /// the TOTP period, so step boundaries stay where the helpers wait for
    /// them; `TestDaemon::totp_code` follows the shifted clock.
    pub clock_offset_secs: i64,
    pub sms: Option<SmsConfig>,
    pub email: Option<EmailConfig>,
    /// `[login_notification] enabled`
    pub login_notification: bool,
    /// `geoip_database`, written only when `Some` (relative: inside the
    /// daemon's directory).
    pub geoip_database: Option<PathBuf>,
    /// A whole `[directory]` table ([`crate::ldap::Slapd::mfad_config`]).
    pub directory: Option<String>,
    /// `[audit]` tables, written as given, with `DIR` standing for the
    /// daemon's directory.
    pub audit: String,
    /// The body of `[self_service]` (written only when non-empty).
    pub self_service: String,
    /// A whole `[store]` table, written as given, with `DIR` standing for
    /// the daemon's directory ([`crate::postgres::Postgres::store_table`]).
    pub store: Option<String>,
}

impl Default for TestConfig {
    fn default() -> Self {
        Self {
            admin_group: Some("mfa-admins-test".into()),
            syslog: false,
            syslog_socket: None,
            audit: String::new(),
            self_service: String::new(),
            store: None,
            totp: TotpConfig {
                issuer: "mfad-test".into(),
                algorithm: "SHA1".into(),
                digits: 6,
                period: 30,
                window: 1,
                profiles: String::new(),
            },
            lockout: LockoutConfig {
                threshold: 5,
                account_threshold: 20,
                duration_secs: 900,
                failure_delay_ms: 0,
                failure_delay_max_ms: 0,
            },
            limits: LimitsConfig {
                max_connections: 256,
                per_uid_connections: 8,
                idle_timeout_secs: 60,
                frame_timeout_secs: 5,
                conversation_timeout_secs: 120,
            },
            policy: TestPolicy::default(),
            clock_offset_secs: 0,
            sms: None,
            email: None,
            login_notification: false,
            geoip_database: None,
            directory: None,
        }
    }
}

fn render_code(s: &mut String, table: &str, c: &CodeConfig) {
    let _ = writeln!(s, "\n[{table}.code]");
    let _ = writeln!(s, "length = {}", c.length);
    let _ = writeln!(s, "grouping = {}", c.grouping);
    let _ = writeln!(s, "validity_secs = {}", c.validity_secs);
    let _ = writeln!(s, "resend_cooldown_secs = {}", c.resend_cooldown_secs);
    let _ = writeln!(s, "attempts = {}", c.attempts);
    let _ = writeln!(s, "hourly_cap = {}", c.hourly_cap);
}

impl TestConfig {
    /// The default config with a policy whose catch-all requires `require`.
    pub fn requiring(require: &str) -> Self {
        Self {
            policy: TestPolicy {
                default: require.into(),
                ..TestPolicy::default()
            },
            ..Self::default()
        }
    }

    /// The config file text for a daemon living in `dir`.
    pub fn render(&self, dir: &Path) -> String {
        let path = |p: &str| quote(&dir.join(p).to_string_lossy());
        let mut s = String::new();
        let _ = writeln!(s, "version = 1");
        let _ = writeln!(s, "socket = {}", path("mfad.sock"));
        let _ = writeln!(s, "database = {}", path("state/mfad.db"));
        let _ = writeln!(s, "key_file = {}", path("state/mfad.key"));
        let _ = writeln!(s, "policy_file = {}", path("policy.toml"));
        if let Some(group) = &self.admin_group {
            let _ = writeln!(s, "admin_group = {}", quote(group));
        }
        let _ = writeln!(s, "syslog = {}", self.syslog);
        if let Some(socket) = &self.syslog_socket {
            let _ = writeln!(
                s,
                "syslog_socket = {}",
                quote(&dir.join(socket).to_string_lossy())
            );
        }
        if let Some(db) = &self.geoip_database {
            let _ = writeln!(
                s,
                "geoip_database = {}",
                quote(&dir.join(db).to_string_lossy())
            );
        }
        let t = &self.totp;
        let _ = writeln!(s, "\n[totp]");
        let _ = writeln!(s, "issuer = {}", quote(&t.issuer));
        let _ = writeln!(s, "algorithm = {}", quote(&t.algorithm));
        let _ = writeln!(s, "digits = {}", t.digits);
        let _ = writeln!(s, "period = {}", t.period);
        let _ = writeln!(s, "window = {}", t.window);
        s.push_str(&t.profiles);
        let l = &self.lockout;
        let _ = writeln!(s, "\n[lockout]");
        let _ = writeln!(s, "threshold = {}", l.threshold);
        let _ = writeln!(s, "account_threshold = {}", l.account_threshold);
        let _ = writeln!(s, "duration_secs = {}", l.duration_secs);
        let _ = writeln!(s, "failure_delay_ms = {}", l.failure_delay_ms);
        let _ = writeln!(s, "failure_delay_max_ms = {}", l.failure_delay_max_ms);
        let m = &self.limits;
        let _ = writeln!(s, "\n[limits]");
        let _ = writeln!(s, "max_connections = {}", m.max_connections);
        let _ = writeln!(s, "per_uid_connections = {}", m.per_uid_connections);
        let _ = writeln!(s, "idle_timeout_secs = {}", m.idle_timeout_secs);
        let _ = writeln!(s, "frame_timeout_secs = {}", m.frame_timeout_secs);
        let _ = writeln!(
            s,
            "conversation_timeout_secs = {}",
            m.conversation_timeout_secs
        );
        if let Some(sms) = &self.sms {
            let _ = writeln!(s, "\n[sms]");
            let _ = writeln!(s, "provider = {}", quote(&sms.provider));
            if sms.provider != "generic" {
                let _ = writeln!(s, "base_url = {}", quote(&sms.base_url));
            }
            if let Some(account) = &sms.account {
                let _ = writeln!(s, "account = {}", quote(account));
            }
            if let Some(key) = &sms.api_key_sid {
                let _ = writeln!(s, "api_key_sid = {}", quote(key));
            }
            let _ = writeln!(s, "from = {}", quote(&sms.from));
            if let Some(message) = &sms.message {
                let _ = writeln!(s, "message = {}", quote(message));
            }
            if sms.systemd_credential {
                let _ = writeln!(s, "credential = \"sms\"");
            } else {
                let _ = writeln!(s, "credentials_file = {}", path(sms.secret_path()));
            }
            let _ = writeln!(s, "timeout_ms = {}", sms.timeout_ms);
            render_code(&mut s, "sms", &sms.code);
            let _ = writeln!(s, "{}", sms.extra.replace("BASE", &sms.base_url));
        }
        if let Some(email) = &self.email {
            let _ = writeln!(s, "\n[email]");
            let _ = writeln!(s, "host = \"127.0.0.1\"");
            let _ = writeln!(s, "port = {}", email.port);
            let _ = writeln!(s, "security = \"plain\"");
            let _ = writeln!(s, "from = {}", quote(&email.from));
            let _ = writeln!(s, "timeout_ms = {}", email.timeout_ms);
            render_code(&mut s, "email", &email.code);
            let _ = writeln!(s, "{}", email.extra);
        }
        if self.login_notification {
            let _ = writeln!(s, "\n[login_notification]\nenabled = true");
        }
        if let Some(directory) = &self.directory {
            let _ = writeln!(s, "\n{directory}");
        }
        if !self.audit.is_empty() {
            let _ = writeln!(s, "\n{}", self.audit.replace("DIR", &dir.to_string_lossy()));
        }
        if !self.self_service.is_empty() {
            let _ = writeln!(s, "\n[self_service]\n{}", self.self_service);
        }
        if let Some(store) = &self.store {
            let _ = writeln!(s, "\n{}", store.replace("DIR", &dir.to_string_lossy()));
        }
        if self.clock_offset_secs != 0 {
            let _ = writeln!(s, "\n[testing]");
            let _ = writeln!(s, "clock_offset_secs = {}", self.clock_offset_secs);
        }
        s
    }
}

/// A TOML basic string: JSON string escapes are valid TOML escapes.
fn quote(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_every_key() {
        let text = TestConfig::default().render(Path::new("/tmp/x"));
        for key in [
            "version = 1",
            "socket = \"/tmp/x/mfad.sock\"",
            "database = \"/tmp/x/state/mfad.db\"",
            "key_file = \"/tmp/x/state/mfad.key\"",
            "policy_file = \"/tmp/x/policy.toml\"",
            "admin_group = \"mfa-admins-test\"",
            "syslog = false",
            "[totp]\nissuer = \"mfad-test\"\nalgorithm = \"SHA1\"\ndigits = 6\nperiod = 30\nwindow = 1",
            "[lockout]\nthreshold = 5\naccount_threshold = 20\nduration_secs = 900",
            "failure_delay_ms = 0\nfailure_delay_max_ms = 0",
            "[limits]\nmax_connections = 256\nper_uid_connections = 8",
            "idle_timeout_secs = 60\nframe_timeout_secs = 5\nconversation_timeout_secs = 120",
        ] {
            assert!(text.contains(key), "{key:?} missing from\n{text}");
        }
        let text = TestConfig {
            admin_group: None,
            ..TestConfig::default()
        }
        .render(Path::new("/tmp/x"));
        assert!(!text.contains("admin_group"));
        assert!(!text.contains("syslog_socket"));
        let text = TestConfig {
            syslog: true,
            syslog_socket: Some("syslog.sock".into()),
            ..TestConfig::default()
        }
        .render(Path::new("/tmp/x"));
        assert!(
            text.contains("syslog = true\nsyslog_socket = \"/tmp/x/syslog.sock\"\n"),
            "{text}"
        );
    }

    #[test]
    fn policy_lists_services() {
        let text = TestPolicy::default()
            .service("cron", "none")
            .service("su-l", "deny")
            .render();
        assert_eq!(
            text,
            "[[rule]]\nname = \"service-cron\"\nservices = [\"cron\"]\nrequire = \"none\"\nunenrolled = \"deny\"\n\n\
             [[rule]]\nname = \"service-su-l\"\nservices = [\"su-l\"]\nrequire = \"deny\"\nunenrolled = \"deny\"\n\n\
             [[rule]]\nname = \"default\"\nall = true\nrequire = \"totp\"\nunenrolled = \"deny\"\n"
        );
    }
}
