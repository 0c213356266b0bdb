//! The validated out-of-band settings: each channel, its code profile, and
//! the login notification; and how `--check-config` describes them.

use std::path::PathBuf;
use std::time::Duration;

/// How codes of one channel look and live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeProfile {
    /// Digits per code.
    pub length: usize,
    /// Shown as two groups (`123-456`); typed either way.
    pub grouping: bool,
    pub validity: Duration,
    /// The least time between two sends to the same user.
    pub resend_cooldown: Duration,
    /// Wrong answers before the code is void and the source locked out.
    pub attempts: u32,
    /// Codes sent to one user in any hour, resends and verifications included.
    pub hourly_cap: u32,
}

/// What one channel may send in all, every user together (against SMS
/// pumping: the bill is the attack). Counted over the last 60 minutes (24
/// hours for verifications), every kind of message included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendCaps {
    pub hourly: u32,
    /// To one destination prefix: a number's country calling code (`+44`),
    /// an address's domain.
    pub hourly_per_prefix: u32,
    /// Prefixes with their own hourly cap instead of `hourly_per_prefix`.
    pub prefixes: Vec<(String, u32)>,
    /// Verification messages (to a destination a user typed) one uid may
    /// have sent in any 24 hours.
    pub verify_daily_per_uid: u32,
}

impl SendCaps {
    /// The hourly cap of one prefix.
    pub fn of_prefix(&self, prefix: &str) -> u32 {
        self.prefixes
            .iter()
            .find(|(p, _)| p == prefix)
            .map_or(self.hourly_per_prefix, |(_, cap)| *cap)
    }

    fn describe(&self) -> String {
        let mut special = String::new();
        for (p, cap) in &self.prefixes {
            special.push_str(&format!(", {p} {cap}"));
        }
        format!(
            "at most {} an hour in all, {} per prefix{special}, {} verifications per uid a day",
            self.hourly, self.hourly_per_prefix, self.verify_daily_per_uid
        )
    }
}

/// Where a secret comes from. It is read at start-up, never from argv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    File(PathBuf),
    /// `$CREDENTIALS_DIRECTORY/<name>` (systemd `LoadCredential=`).
    Credential(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    Twilio,
    Vonage,
    Infobip,
    MessageBird,
}

impl Preset {
    pub const ALL: [Preset; 4] = [
        Preset::Twilio,
        Preset::Vonage,
        Preset::Infobip,
        Preset::MessageBird,
    ];

    /// Its value of `sms.provider`; its other facts are in its entry of
    /// `delivery::presets::SPECS`.
    pub fn name(self) -> &'static str {
        crate::delivery::presets::spec(self).name
    }
}

/// A provider described by the admin: method, URL, headers and a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenericProvider {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: GenericBody,
    /// A JSON pointer (`/messages/0/id`) to the message id in the reply.
    pub message_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GenericBody {
    None,
    Form(Vec<(String, String)>),
    Json(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provider {
    Preset { preset: Preset, base_url: String },
    Generic(GenericProvider),
}

#[derive(Debug, Clone)]
pub struct SmsConfig {
    pub provider: Provider,
    /// Twilio's Account SID, Vonage's API key: the public half.
    pub account: Option<String>,
    /// Twilio: the SID of the API key (`SK…`) whose secret is the
    /// credential; unset, the secret is the account's auth token.
    pub api_key_sid: Option<String>,
    /// The sender: a number or an alphanumeric sender id.
    pub from: Option<String>,
    pub secret: Option<SecretSource>,
    pub timeout: Duration,
    pub message: String,
    /// The text that carries a verification code (`mfactl phone set`).
    pub verify_message: String,
    pub proxy: Option<String>,
    pub code: CodeProfile,
    pub caps: SendCaps,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// TLS from the first byte (port 465).
    Tls,
    /// STARTTLS, required (port 587).
    StartTls,
    /// No TLS: only to a relay on this machine.
    Plain,
}

impl SmtpSecurity {
    pub fn name(self) -> &'static str {
        match self {
            SmtpSecurity::Tls => "tls",
            SmtpSecurity::StartTls => "starttls",
            SmtpSecurity::Plain => "plain",
        }
    }
}

#[derive(Debug, Clone)]
pub struct EmailConfig {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<SecretSource>,
    pub from: String,
    pub subject: String,
    pub body: String,
    /// The mail that carries a verification code (`mfactl email set`).
    pub verify_subject: String,
    pub verify_body: String,
    pub timeout: Duration,
    pub code: CodeProfile,
    pub caps: SendCaps,
}

#[derive(Debug, Clone)]
pub struct NotificationConfig {
    /// Email each successful login to the user's verified address.
    pub enabled: bool,
    pub subject: String,
    pub body: String,
}

impl SmsConfig {
    /// One line for `--check-config`.
    pub fn describe(&self) -> String {
        let provider = match &self.provider {
            Provider::Preset { preset, base_url } => format!("{} at {base_url}", preset.name()),
            Provider::Generic(g) => format!("generic {} {}", g.method, g.url),
        };
        format!(
            "sms: {provider}, from {}, timeout {} ms, {}secret {}; {}; {}\n",
            self.from.as_deref().unwrap_or("-"),
            self.timeout.as_millis(),
            self.api_key_sid
                .as_ref()
                .map_or(String::new(), |k| format!("API key {k}, ")),
            describe_secret(self.secret.as_ref()),
            self.code.describe(),
            self.caps.describe()
        )
    }
}

impl EmailConfig {
    pub fn describe(&self) -> String {
        format!(
            "email: {}:{} ({}), from {}, {}timeout {} ms; {}; {}\n",
            self.host,
            self.port,
            self.security.name(),
            self.from,
            self.username.as_ref().map_or(String::new(), |u| format!(
                "login {u} with password {}, ",
                describe_secret(self.password.as_ref())
            )),
            self.timeout.as_millis(),
            self.code.describe(),
            self.caps.describe()
        )
    }
}

impl CodeProfile {
    fn describe(&self) -> String {
        format!(
            "codes of {} digits{}, valid {} s, resend after {} s, {} attempts, at most {} an hour",
            self.length,
            if self.grouping { " (grouped)" } else { "" },
            self.validity.as_secs(),
            self.resend_cooldown.as_secs(),
            self.attempts,
            self.hourly_cap
        )
    }
}

fn describe_secret(s: Option<&SecretSource>) -> String {
    match s {
        None => "none".to_owned(),
        Some(SecretSource::File(p)) => format!("from {}", p.display()),
        Some(SecretSource::Credential(n)) => format!("from systemd credential {n:?}"),
    }
}
