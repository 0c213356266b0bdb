//! The out-of-band channels in the daemon configuration: `[sms]`, `[email]`
//! (each with its code profile, `[sms.code]` and `[email.code]`) and
//! `[login_notification]`. Raw forms, their defaults, and their checks.

use super::ConfigError;
pub use super::channels::*;
use crate::delivery::{caps, presets, template};
use mfad_protocol::Channel;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// pam_mfa waits this long for each reply by default; every send must end
/// (in success or failure) before it.
const MAX_SEND_MS: u64 = 4000;
/// DESIGN security rule 6: a sent code expires within 10 minutes.
const MAX_VALIDITY_SECS: u64 = 600;

/// Placeholders of the message that carries a code.
pub const CODE_MESSAGE: &[&str] = &["code", "minutes", "host"];
/// Placeholders of the generic provider's URL, headers and body.
pub const GENERIC_REQUEST: &[&str] = &["to", "code", "message", "secret", "from"];
/// Placeholders of the login notification.
pub const NOTIFICATION: &[&str] = &["user", "time", "rhost", "service", "host", "location"];

const DEFAULT_SMS_MESSAGE: &str =
    "{code} is your {host} login code. It is valid for {minutes} minutes. Do not share it.";
const DEFAULT_SUBJECT: &str = "Your {host} login code";
const DEFAULT_BODY: &str = "Your login code for {host} is: {code}\n\n\
It is valid for {minutes} minutes and works once.\n\n\
If you did not just try to log in, someone may know your password: tell your administrator.\n";
// Verification is not a login: its own text, so that nobody reads a
// verification as someone trying their password.
const DEFAULT_SMS_VERIFY: &str = "{code} is your {host} verification code: it confirms this number for login codes. It is valid for {minutes} minutes.";
const DEFAULT_VERIFY_SUBJECT: &str = "Confirm your address for {host}";
const DEFAULT_VERIFY_BODY: &str = "Your verification code for {host} is: {code}\n\n\
Type it into `mfactl email verify` within {minutes} minutes, and login codes will come to this address.\n\n\
If you did not ask for this, ignore this message: nothing changes without the code.\n";
const DEFAULT_NOTIFY_SUBJECT: &str = "New login to {host}";
// Each field line on one source line: a `\` line continuation would eat
// the indentation of the line after it.
const DEFAULT_NOTIFY_BODY: &str = concat!(
    "{user} logged in to {host}.\n\n",
    "  time:     {time}\n",
    "  from:     {rhost}\n",
    "  service:  {service}\n",
    "  location: {location}\n\n",
    "If this was not you, tell your administrator at once.\n",
);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCode {
    length: Option<usize>,
    grouping: Option<bool>,
    validity_secs: Option<u64>,
    resend_cooldown_secs: Option<u64>,
    attempts: Option<u32>,
    hourly_cap: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCap {
    hourly: Option<u32>,
    hourly_per_prefix: Option<u32>,
    #[serde(default)]
    prefix: BTreeMap<String, u32>,
    verify_daily_per_uid: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSms {
    provider: String,
    base_url: Option<String>,
    account: Option<String>,
    api_key_sid: Option<String>,
    from: Option<String>,
    credentials_file: Option<PathBuf>,
    credential: Option<String>,
    timeout_ms: Option<u64>,
    message: Option<String>,
    verify_message: Option<String>,
    proxy: Option<String>,
    #[serde(default)]
    code: RawCode,
    #[serde(default)]
    cap: RawCap,
    generic: Option<RawGeneric>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGeneric {
    method: Option<String>,
    url: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    form: Option<BTreeMap<String, String>>,
    json: Option<String>,
    message_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEmail {
    host: String,
    port: Option<u16>,
    security: Option<String>,
    username: Option<String>,
    password_file: Option<PathBuf>,
    password_credential: Option<String>,
    from: String,
    subject: Option<String>,
    body: Option<String>,
    verify_subject: Option<String>,
    verify_body: Option<String>,
    timeout_ms: Option<u64>,
    #[serde(default)]
    code: RawCode,
    #[serde(default)]
    cap: RawCap,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotification {
    enabled: Option<bool>,
    subject: Option<String>,
    body: Option<String>,
}

/// Names the offending key in every error.
pub(super) struct Checker<'a> {
    pub path: &'a Path,
}

impl Checker<'_> {
    fn invalid(&self, key: &'static str, problem: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_owned(),
            key,
            problem: problem.into(),
        }
    }

    fn template(
        &self,
        key: &'static str,
        text: &str,
        known: &[&str],
        required: &[&str],
    ) -> Result<(), ConfigError> {
        template::check(text, known, required).map_err(|p| self.invalid(key, p))
    }

    /// A one-line mail subject with the placeholders of a code message.
    fn subject(
        &self,
        key: &'static str,
        raw: Option<&String>,
        default: &str,
    ) -> Result<String, ConfigError> {
        let subject = raw.map_or_else(|| default.to_owned(), String::clone);
        self.template(key, &subject, CODE_MESSAGE, &[])?;
        if subject.contains(['\r', '\n']) {
            return Err(self.invalid(key, "must be one line"));
        }
        Ok(subject)
    }

    pub fn code(&self, raw: &RawCode, keys: CodeKeys) -> Result<CodeProfile, ConfigError> {
        let p = CodeProfile {
            length: raw.length.unwrap_or(6),
            grouping: raw.grouping.unwrap_or(true),
            validity: Duration::from_secs(raw.validity_secs.unwrap_or(300)),
            resend_cooldown: Duration::from_secs(raw.resend_cooldown_secs.unwrap_or(30)),
            attempts: raw.attempts.unwrap_or(3),
            hourly_cap: raw.hourly_cap.unwrap_or(5),
        };
        if !(6..=10).contains(&p.length) {
            return Err(self.invalid(keys.length, "must be 6 to 10 digits"));
        }
        let validity = p.validity.as_secs();
        if !(30..=MAX_VALIDITY_SECS).contains(&validity) {
            return Err(self.invalid(
                keys.validity,
                "must be 30 to 600: a sent code expires within 10 minutes at most",
            ));
        }
        if p.resend_cooldown.as_secs() > validity {
            return Err(self.invalid(
                keys.cooldown,
                format!("must be at most the validity ({validity} s)"),
            ));
        }
        if !(1..=10).contains(&p.attempts) {
            return Err(self.invalid(keys.attempts, "must be 1 to 10"));
        }
        if !(1..=100).contains(&p.hourly_cap) {
            return Err(self.invalid(keys.hourly_cap, "must be 1 to 100"));
        }
        Ok(p)
    }

    fn timeout(&self, key: &'static str, ms: Option<u64>) -> Result<Duration, ConfigError> {
        let ms = ms.unwrap_or(MAX_SEND_MS);
        if !(100..=MAX_SEND_MS).contains(&ms) {
            return Err(self.invalid(
                key,
                format!(
                    "is {ms}; it must be 100 to {MAX_SEND_MS}: pam_mfa waits 5 s for each reply by \
                     default (`timeout=` in the PAM line), and a send must end before that"
                ),
            ));
        }
        Ok(Duration::from_millis(ms))
    }

    fn secret(
        &self,
        key: &'static str,
        file: &Option<PathBuf>,
        credential: &Option<String>,
    ) -> Result<Option<SecretSource>, ConfigError> {
        match (file, credential) {
            (Some(_), Some(_)) => {
                Err(self.invalid(key, "and its credential form are both set; set one"))
            }
            (Some(f), None) => Ok(Some(SecretSource::File(f.clone()))),
            (None, Some(name)) => {
                if name.is_empty() || name.contains('/') {
                    return Err(self.invalid(key, "names a systemd credential: a name without '/'"));
                }
                Ok(Some(SecretSource::Credential(name.clone())))
            }
            (None, None) => Ok(None),
        }
    }

    /// An http(s) URL mfad may send codes to: HTTPS, or plain HTTP to this
    /// machine only (a test server, a local gateway).
    fn url(&self, key: &'static str, text: &str) -> Result<String, ConfigError> {
        let url = reqwest::Url::parse(text)
            .map_err(|e| self.invalid(key, format!("is not a URL ({e})")))?;
        match url.scheme() {
            "https" => Ok(text.trim_end_matches('/').to_owned()),
            "http" if url.host().is_some_and(is_loopback) => {
                Ok(text.trim_end_matches('/').to_owned())
            }
            "http" => Err(self.invalid(
                key,
                format!(
                    "is plain http:// to {}: codes may travel without TLS only to a loopback \
                     address (127.0.0.1, ::1, localhost); use https://",
                    url.host_str().unwrap_or("?")
                ),
            )),
            other => Err(self.invalid(key, format!("has scheme {other:?}; use https://"))),
        }
    }

    pub fn sms(&self, raw: &RawSms) -> Result<SmsConfig, ConfigError> {
        let preset = match raw.provider.as_str() {
            "generic" => None,
            name => Some(
                Preset::ALL
                    .into_iter()
                    .find(|p| p.name() == name)
                    .ok_or_else(|| {
                        self.invalid(
                            "sms.provider",
                            format!(
                                "is {name:?}; it must be twilio, vonage, infobip, messagebird or generic"
                            ),
                        )
                    })?,
            ),
        };
        let secret = self.secret(
            "sms.credentials_file",
            &raw.credentials_file,
            &raw.credential,
        )?;
        if raw.api_key_sid.is_some() && preset != Some(Preset::Twilio) {
            return Err(self.invalid(
                "sms.api_key_sid",
                "is only for provider = \"twilio\"; remove it",
            ));
        }
        let provider = match preset {
            Some(preset) => {
                let spec = presets::spec(preset);
                if raw.generic.is_some() {
                    return Err(self.invalid("sms.generic", "is only for provider = \"generic\""));
                }
                let base = match (&raw.base_url, spec.base_url) {
                    (Some(url), _) => url.as_str(),
                    (None, Some(url)) => url,
                    (None, None) => {
                        return Err(self.invalid(
                            "sms.base_url",
                            format!("is needed for {}: your account's API base URL", spec.name),
                        ));
                    }
                };
                if secret.is_none() {
                    return Err(self.invalid(
                        "sms.credentials_file",
                        format!(
                            "(or sms.credential) is needed for {}: the file holding its API secret",
                            spec.name
                        ),
                    ));
                }
                match (spec.account, raw.account.as_deref()) {
                    (None, Some(_)) => {
                        return Err(self.invalid(
                            "sms.account",
                            format!(
                                "does nothing for {}: its API secret alone identifies the account; remove it",
                                spec.name
                            ),
                        ));
                    }
                    (Some(what), None | Some("")) => {
                        return Err(self.invalid(
                            "sms.account",
                            format!("is needed for {}: {what}", spec.name),
                        ));
                    }
                    _ => {}
                }
                if preset == Preset::Twilio {
                    self.twilio_ids(raw)?;
                }
                if raw.from.as_deref().is_none_or(str::is_empty) {
                    return Err(self.invalid("sms.from", "is needed: the sender number or name"));
                }
                Provider::Preset {
                    preset,
                    base_url: self.url("sms.base_url", base)?,
                }
            }
            None => {
                for (key, set) in [
                    ("sms.base_url", raw.base_url.is_some()),
                    ("sms.account", raw.account.is_some()),
                ] {
                    if set {
                        return Err(self.invalid(
                            key,
                            "does nothing for provider = \"generic\": the request is all in [sms.generic] (url, headers, body); remove it",
                        ));
                    }
                }
                let Some(g) = &raw.generic else {
                    return Err(self.invalid(
                        "sms.generic",
                        "is needed for provider = \"generic\": method, url, headers and a body",
                    ));
                };
                Provider::Generic(self.generic(g)?)
            }
        };
        let message = raw
            .message
            .clone()
            .unwrap_or_else(|| DEFAULT_SMS_MESSAGE.to_owned());
        self.template("sms.message", &message, CODE_MESSAGE, &["code"])?;
        let verify_message = raw
            .verify_message
            .clone()
            .unwrap_or_else(|| DEFAULT_SMS_VERIFY.to_owned());
        self.template(
            "sms.verify_message",
            &verify_message,
            CODE_MESSAGE,
            &["code"],
        )?;
        if let Some(proxy) = &raw.proxy {
            reqwest::Proxy::all(proxy.as_str())
                .map_err(|e| self.invalid("sms.proxy", format!("is not a proxy URL ({e})")))?;
        }
        Ok(SmsConfig {
            provider,
            account: raw.account.clone(),
            from: raw.from.clone(),
            secret,
            timeout: self.timeout("sms.timeout_ms", raw.timeout_ms)?,
            message,
            verify_message,
            proxy: raw.proxy.clone(),
            code: self.code(&raw.code, CodeKeys::SMS)?,
            caps: self.caps(&raw.cap, Channel::Sms)?,
            api_key_sid: raw.api_key_sid.clone(),
        })
    }

    /// Twilio's ids have documented forms: an Account SID starts with
    /// `AC`, an API key SID with `SK`. A mix-up is caught here rather than
    /// as a 401 at the first login.
    fn twilio_ids(&self, raw: &RawSms) -> Result<(), ConfigError> {
        let sid = |s: &str, prefix: &str| {
            s.len() == 34 && s.starts_with(prefix) && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
        };
        if let Some(account) = &raw.account
            && !sid(account, "AC")
        {
            return Err(self.invalid(
                "sms.account",
                format!(
                    "is {account:?}, not an Account SID (AC and 32 hex digits){}",
                    if account.starts_with("SK") {
                        "; an API key SID (SK…) goes in sms.api_key_sid"
                    } else {
                        ""
                    }
                ),
            ));
        }
        if let Some(key) = &raw.api_key_sid
            && !sid(key, "SK")
        {
            return Err(self.invalid(
                "sms.api_key_sid",
                format!("is {key:?}, not an API key SID (SK and 32 hex digits)"),
            ));
        }
        Ok(())
    }

    /// The caps of one channel; a prefix is checked the way sends are
    /// counted (`delivery::caps::prefix`).
    fn caps(&self, raw: &RawCap, channel: Channel) -> Result<SendCaps, ConfigError> {
        let (keys, defaults) = match channel {
            Channel::Sms => (CapKeys::SMS, (100, 50, 3)),
            Channel::Email => (CapKeys::EMAIL, (500, 500, 5)),
        };
        let hourly = raw.hourly.unwrap_or(defaults.0);
        let caps = SendCaps {
            hourly,
            // Unset, a lower hourly cap lowers it too.
            hourly_per_prefix: raw.hourly_per_prefix.unwrap_or(defaults.1.min(hourly)),
            prefixes: raw.prefix.iter().map(|(p, c)| (p.clone(), *c)).collect(),
            verify_daily_per_uid: raw.verify_daily_per_uid.unwrap_or(defaults.2),
        };
        if !(1..=100_000).contains(&caps.hourly) {
            return Err(self.invalid(keys.hourly, "must be 1 to 100000"));
        }
        if !(1..=caps.hourly).contains(&caps.hourly_per_prefix) {
            return Err(self.invalid(
                keys.per_prefix,
                format!("must be 1 to the hourly cap ({})", caps.hourly),
            ));
        }
        for (prefix, cap) in &caps.prefixes {
            if caps::prefix_key(channel, prefix).as_deref() != Some(prefix.as_str()) {
                return Err(self.invalid(
                    keys.prefix,
                    match channel {
                        Channel::Sms => format!(
                            "has {prefix:?}, not a country calling code: + and the code, such as \"+44\" or \"+1\""
                        ),
                        Channel::Email => format!(
                            "has {prefix:?}, not a domain in lower case, such as \"example.com\""
                        ),
                    },
                ));
            }
            if !(1..=caps.hourly).contains(cap) {
                return Err(self.invalid(
                    keys.prefix,
                    format!(
                        "gives {prefix} {cap}; it must be 1 to the hourly cap ({})",
                        caps.hourly
                    ),
                ));
            }
        }
        if !(1..=100).contains(&caps.verify_daily_per_uid) {
            return Err(self.invalid(keys.verify, "must be 1 to 100"));
        }
        Ok(caps)
    }

    fn generic(&self, g: &RawGeneric) -> Result<GenericProvider, ConfigError> {
        let method = g
            .method
            .clone()
            .unwrap_or_else(|| "POST".to_owned())
            .to_ascii_uppercase();
        if !matches!(method.as_str(), "POST" | "PUT" | "GET") {
            return Err(self.invalid("sms.generic.method", "must be POST, PUT or GET"));
        }
        self.template("sms.generic.url", &g.url, GENERIC_REQUEST, &[])?;
        // The URL is checked with sample values in its placeholders.
        let sample = template::render(
            &g.url,
            &[
                ("to", "1"),
                ("code", "1"),
                ("message", "m"),
                ("secret", "s"),
                ("from", "f"),
            ],
            template::verbatim,
        );
        self.url("sms.generic.url", &sample)?;
        for value in g.headers.values() {
            self.template("sms.generic.headers", value, GENERIC_REQUEST, &[])?;
        }
        let body = match (&g.form, &g.json) {
            (Some(_), Some(_)) => {
                return Err(self.invalid(
                    "sms.generic.json",
                    "and sms.generic.form are both set; set one",
                ));
            }
            (Some(form), None) => {
                for value in form.values() {
                    self.template("sms.generic.form", value, GENERIC_REQUEST, &[])?;
                }
                GenericBody::Form(form.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            }
            (None, Some(json)) => {
                self.template("sms.generic.json", json, GENERIC_REQUEST, &[])?;
                let sample = template::render(
                    json,
                    &[
                        ("to", "+1"),
                        ("code", "1"),
                        ("message", "m"),
                        ("secret", "s"),
                        ("from", "f"),
                    ],
                    template::json_string,
                );
                serde_json::from_str::<serde_json::Value>(&sample).map_err(|e| {
                    self.invalid(
                        "sms.generic.json",
                        format!("is not JSON once filled in ({e})"),
                    )
                })?;
                GenericBody::Json(json.clone())
            }
            (None, None) => GenericBody::None,
        };
        let mentions = |name: &str| {
            let needle = format!("{{{name}}}");
            g.url.contains(&needle)
                || g.headers.values().any(|v| v.contains(&needle))
                || g.form.iter().flatten().any(|(_, v)| v.contains(&needle))
                || g.json.as_deref().is_some_and(|j| j.contains(&needle))
        };
        if !mentions("to") || !(mentions("message") || mentions("code")) {
            return Err(self.invalid(
                "sms.generic",
                "must send {to} and {message} (or {code}) somewhere: in the url, a header or the body",
            ));
        }
        if let Some(pointer) = &g.message_id
            && !pointer.starts_with('/')
        {
            return Err(self.invalid(
                "sms.generic.message_id",
                "must be a JSON pointer such as \"/id\"",
            ));
        }
        Ok(GenericProvider {
            method,
            url: g.url.clone(),
            headers: g
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            body,
            message_id: g.message_id.clone(),
        })
    }

    pub fn email(&self, raw: &RawEmail) -> Result<EmailConfig, ConfigError> {
        let security = match raw.security.as_deref().unwrap_or("starttls") {
            "tls" => SmtpSecurity::Tls,
            "starttls" => SmtpSecurity::StartTls,
            "plain" => SmtpSecurity::Plain,
            other => {
                return Err(self.invalid(
                    "email.security",
                    format!("is {other:?}; it must be tls, starttls or plain"),
                ));
            }
        };
        if raw.host.is_empty() {
            return Err(self.invalid("email.host", "is empty"));
        }
        if security == SmtpSecurity::Plain && !host_is_loopback(&raw.host) {
            return Err(self.invalid(
                "email.security",
                format!(
                    "is plain, but email.host {:?} is not this machine: codes may travel without \
                     TLS only to a local relay (127.0.0.1, ::1, localhost); use tls or starttls",
                    raw.host
                ),
            ));
        }
        let port = raw.port.unwrap_or(match security {
            SmtpSecurity::Tls => 465,
            SmtpSecurity::StartTls => 587,
            SmtpSecurity::Plain => 25,
        });
        let password = self.secret(
            "email.password_file",
            &raw.password_file,
            &raw.password_credential,
        )?;
        if password.is_some() != raw.username.is_some() {
            return Err(self.invalid(
                "email.username",
                "and email.password_file (or email.password_credential) go together",
            ));
        }
        if password.is_some() && security == SmtpSecurity::Plain {
            return Err(self.invalid(
                "email.password_file",
                "is set with security = \"plain\": a password never travels without TLS",
            ));
        }
        raw.from
            .parse::<lettre::message::Mailbox>()
            .map_err(|e| self.invalid("email.from", format!("is not an address ({e})")))?;
        let subject = self.subject("email.subject", raw.subject.as_ref(), DEFAULT_SUBJECT)?;
        let body = raw.body.clone().unwrap_or_else(|| DEFAULT_BODY.to_owned());
        self.template("email.body", &body, CODE_MESSAGE, &["code"])?;
        let verify_subject = self.subject(
            "email.verify_subject",
            raw.verify_subject.as_ref(),
            DEFAULT_VERIFY_SUBJECT,
        )?;
        let verify_body = raw
            .verify_body
            .clone()
            .unwrap_or_else(|| DEFAULT_VERIFY_BODY.to_owned());
        self.template("email.verify_body", &verify_body, CODE_MESSAGE, &["code"])?;
        Ok(EmailConfig {
            host: raw.host.clone(),
            port,
            security,
            username: raw.username.clone(),
            password,
            from: raw.from.clone(),
            subject,
            body,
            verify_subject,
            verify_body,
            timeout: self.timeout("email.timeout_ms", raw.timeout_ms)?,
            code: self.code(&raw.code, CodeKeys::EMAIL)?,
            caps: self.caps(&raw.cap, Channel::Email)?,
        })
    }

    pub fn notification(
        &self,
        raw: &RawNotification,
        email: Option<&EmailConfig>,
    ) -> Result<NotificationConfig, ConfigError> {
        let n = NotificationConfig {
            enabled: raw.enabled.unwrap_or(false),
            subject: raw
                .subject
                .clone()
                .unwrap_or_else(|| DEFAULT_NOTIFY_SUBJECT.to_owned()),
            body: raw
                .body
                .clone()
                .unwrap_or_else(|| DEFAULT_NOTIFY_BODY.to_owned()),
        };
        if n.enabled && email.is_none() {
            return Err(self.invalid(
                "login_notification.enabled",
                "is true, but there is no [email] section to send with",
            ));
        }
        self.template("login_notification.subject", &n.subject, NOTIFICATION, &[])?;
        if n.subject.contains(['\r', '\n']) {
            return Err(self.invalid("login_notification.subject", "must be one line"));
        }
        self.template("login_notification.body", &n.body, NOTIFICATION, &[])?;
        Ok(n)
    }
}

/// The keys of one code profile, for error messages.
#[derive(Clone, Copy)]
pub struct CodeKeys {
    length: &'static str,
    validity: &'static str,
    cooldown: &'static str,
    attempts: &'static str,
    hourly_cap: &'static str,
}

impl CodeKeys {
    const SMS: CodeKeys = CodeKeys {
        length: "sms.code.length",
        validity: "sms.code.validity_secs",
        cooldown: "sms.code.resend_cooldown_secs",
        attempts: "sms.code.attempts",
        hourly_cap: "sms.code.hourly_cap",
    };
    const EMAIL: CodeKeys = CodeKeys {
        length: "email.code.length",
        validity: "email.code.validity_secs",
        cooldown: "email.code.resend_cooldown_secs",
        attempts: "email.code.attempts",
        hourly_cap: "email.code.hourly_cap",
    };
}

/// The keys of one channel's caps, for error messages.
struct CapKeys {
    hourly: &'static str,
    per_prefix: &'static str,
    prefix: &'static str,
    verify: &'static str,
}

impl CapKeys {
    const SMS: CapKeys = CapKeys {
        hourly: "sms.cap.hourly",
        per_prefix: "sms.cap.hourly_per_prefix",
        prefix: "sms.cap.prefix",
        verify: "sms.cap.verify_daily_per_uid",
    };
    const EMAIL: CapKeys = CapKeys {
        hourly: "email.cap.hourly",
        per_prefix: "email.cap.hourly_per_prefix",
        prefix: "email.cap.prefix",
        verify: "email.cap.verify_daily_per_uid",
    };
}

fn is_loopback(host: url::Host<&str>) -> bool {
    match host {
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
        url::Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
    }
}

pub(super) fn host_is_loopback(host: &str) -> bool {
    match host.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

#[cfg(test)]
#[path = "delivery_tests.rs"]
mod tests;
