//! Delivery of codes and notices: SMS through an HTTP provider (reqwest),
//! email over SMTP (lettre). Every send passes the global caps first
//! ([`caps`]) and has a hard deadline below pam_mfa's reply timeout, so a
//! provider that is down or slow costs a clear failure, never a hung login.

pub mod address;
pub mod caps;
mod email;
pub mod presets;
mod sms;
pub mod template;

use crate::config::{CodeProfile, Config, SecretSource, SendCaps};
use crate::files::{self, FileError};
use crate::store::Store;
use caps::{Capped, Caps};
use mfad_protocol::{Channel, SecretString};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum DeliveryError {
    #[error("{0} is not configured")]
    NotConfigured(&'static str),
    #[error("no answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    #[error("cannot reach it: {0}")]
    Connect(String),
    #[error("it answered HTTP {status}: {detail}")]
    Status { status: u16, detail: String },
    #[error("it refused the message: {0}")]
    Rejected(String),
    #[error("cannot build the message: {0}")]
    Build(String),
    /// A global cap held it back: no provider was asked.
    #[error("{0}")]
    Capped(Capped),
    #[error("cannot count it against the caps: {0}")]
    Count(String),
}

impl DeliveryError {
    /// What the person waiting for the code is told, when this failure
    /// has words of its own (a cap); `None` for a provider's failure.
    pub fn tell(&self, masked: &str) -> Option<String> {
        match self {
            DeliveryError::Capped(c) => Some(c.tell(masked)),
            _ => None,
        }
    }

    /// Whether this failure already warned the admin (a cap warns once per
    /// period): callers log only the others.
    pub fn logged(&self) -> bool {
        matches!(self, DeliveryError::Capped(_))
    }
}

/// What a successful send left to audit.
#[derive(Debug, Clone, Default)]
pub struct Receipt {
    /// The provider's message id, or the SMTP server's reply.
    pub id: Option<String>,
}

#[derive(Debug, Error)]
pub enum SetupError {
    #[error("{key}: {source}")]
    Secret {
        key: &'static str,
        source: FileError,
    },
    #[error("{key}: {message}")]
    Client { key: &'static str, message: String },
}

/// The configured channels, ready to send.
pub struct Delivery {
    sms: Option<sms::Sms>,
    email: Option<email::Email>,
    caps: Caps,
    /// This machine's name, for the messages.
    pub host: String,
}

/// What a code is for: the message differs, and a verification a user
/// asked for counts against their uid's daily cap (`None`: an admin's).
#[derive(Debug, Clone, Copy)]
enum Purpose {
    Login,
    Verify(Option<u32>),
}

impl Delivery {
    /// Builds the clients and reads their secrets; the caps count in `store`.
    pub fn new(config: &Config, store: Arc<dyn Store>) -> Result<Self, SetupError> {
        let (sms, email) = clients(config)?;
        let host = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "this server".to_owned());
        Ok(Self {
            sms,
            email,
            caps: Caps::new(store),
            host,
        })
    }

    /// `--check-config`: the clients can be built and their secrets read.
    pub fn check(config: &Config) -> Result<(), SetupError> {
        clients(config).map(drop)
    }

    pub fn configured(&self, channel: Channel) -> bool {
        match channel {
            Channel::Sms => self.sms.is_some(),
            Channel::Email => self.email.is_some(),
        }
    }

    /// Sends `code` to `to`, in the login message the channel's config
    /// describes.
    pub async fn send_code(
        &self,
        channel: Channel,
        to: &str,
        code: &str,
        profile: &CodeProfile,
    ) -> Result<Receipt, DeliveryError> {
        self.code(channel, to, code, profile, Purpose::Login).await
    }

    /// Sends the code that confirms a destination `uid` typed: counted
    /// also against that uid's daily cap of verifications (`None`: an
    /// admin's request, not capped per uid).
    pub async fn send_verification(
        &self,
        channel: Channel,
        to: &str,
        code: &str,
        profile: &CodeProfile,
        uid: Option<u32>,
    ) -> Result<Receipt, DeliveryError> {
        self.code(channel, to, code, profile, Purpose::Verify(uid))
            .await
    }

    async fn code(
        &self,
        channel: Channel,
        to: &str,
        code: &str,
        profile: &CodeProfile,
        purpose: Purpose,
    ) -> Result<Receipt, DeliveryError> {
        let verify_uid = match purpose {
            Purpose::Login => None,
            Purpose::Verify(uid) => uid,
        };
        let minutes = profile.validity.as_secs().div_ceil(60).to_string();
        let values = [
            ("code", code),
            ("minutes", minutes.as_str()),
            ("host", self.host.as_str()),
        ];
        match channel {
            Channel::Sms => {
                let sms = self
                    .sms
                    .as_ref()
                    .ok_or(DeliveryError::NotConfigured("sms"))?;
                let message = match purpose {
                    Purpose::Login => &sms.config.message,
                    Purpose::Verify(_) => &sms.config.verify_message,
                };
                let text = template::render(message, &values, template::verbatim);
                let send = deadline(sms.config.timeout, sms.send(to, &text, code));
                self.counted(channel, &sms.config.caps, to, verify_uid, send)
                    .await
            }
            Channel::Email => {
                let email = self
                    .email
                    .as_ref()
                    .ok_or(DeliveryError::NotConfigured("email"))?;
                let (subject, body) = match purpose {
                    Purpose::Login => (&email.config.subject, &email.config.body),
                    Purpose::Verify(_) => (&email.config.verify_subject, &email.config.verify_body),
                };
                let subject = template::render(subject, &values, template::verbatim);
                let body = template::render(body, &values, template::verbatim);
                let send = deadline(email.config.timeout, email.send(to, &subject, &body));
                self.counted(channel, &email.config.caps, to, verify_uid, send)
                    .await
            }
        }
    }

    /// Sends a notice by email (no code in it).
    pub async fn send_email(
        &self,
        to: &str,
        subject: &str,
        body: &str,
    ) -> Result<Receipt, DeliveryError> {
        let email = self
            .email
            .as_ref()
            .ok_or(DeliveryError::NotConfigured("email"))?;
        let send = deadline(email.config.timeout, email.send(to, subject, body));
        self.counted(Channel::Email, &email.config.caps, to, None, send)
            .await
    }

    /// The one way out: `send` runs only if the caps allow it. A send that
    /// never reached the provider (no connection, no request) is uncounted;
    /// one that timed out may have been taken, so it stays counted.
    async fn counted(
        &self,
        channel: Channel,
        caps: &SendCaps,
        to: &str,
        verify_uid: Option<u32>,
        send: impl Future<Output = Result<Receipt, DeliveryError>>,
    ) -> Result<Receipt, DeliveryError> {
        let slot = self
            .caps
            .reserve(channel, caps, to, verify_uid, crate::clock::now())
            .map_err(|e| DeliveryError::Count(e.to_string()))?
            .map_err(DeliveryError::Capped)?;
        let result = send.await;
        if matches!(
            result,
            Err(DeliveryError::Connect(_) | DeliveryError::Build(_))
        ) {
            self.caps.release(slot);
        }
        result
    }

    /// The cap that would hold back a login code of `channel` to `to` now,
    /// if one would; nothing is counted (a decoy's send, which is refused
    /// where a real one would be, but sends nothing).
    pub fn would_cap(
        &self,
        channel: Channel,
        to: &str,
        now: i64,
    ) -> Result<Option<Capped>, crate::store::StoreError> {
        let caps = match channel {
            Channel::Sms => self.sms.as_ref().map(|s| &s.config.caps),
            Channel::Email => self.email.as_ref().map(|e| &e.config.caps),
        };
        let Some(caps) = caps else { return Ok(None) };
        Ok(match self.caps.reserve(channel, caps, to, None, now)? {
            Ok(slot) => {
                self.caps.release(slot);
                None
            }
            Err(capped) => Some(capped),
        })
    }
}

fn clients(config: &Config) -> Result<(Option<sms::Sms>, Option<email::Email>), SetupError> {
    let sms = match &config.sms {
        Some(c) => {
            let secret = secret(c.secret.as_ref(), "sms.credentials_file")?;
            Some(
                sms::Sms::new(c.clone(), secret).map_err(|message| SetupError::Client {
                    key: "sms",
                    message,
                })?,
            )
        }
        None => None,
    };
    let email = match &config.email {
        Some(c) => {
            let password = secret(c.password.as_ref(), "email.password_file")?;
            Some(
                email::Email::new(c.clone(), password).map_err(|message| SetupError::Client {
                    key: "email",
                    message,
                })?,
            )
        }
        None => None,
    };
    Ok((sms, email))
}

/// Reads a configured secret, naming the key when it cannot be read.
fn secret(
    source: Option<&SecretSource>,
    key: &'static str,
) -> Result<Option<SecretString>, SetupError> {
    source
        .map(files::read_secret)
        .transpose()
        .map_err(|source| SetupError::Secret { key, source })
}

/// The hard deadline around a whole send, whatever the client library's
/// own timeouts do.
async fn deadline(
    limit: Duration,
    send: impl Future<Output = Result<Receipt, DeliveryError>>,
) -> Result<Receipt, DeliveryError> {
    tokio::time::timeout(limit, send)
        .await
        .unwrap_or(Err(DeliveryError::Timeout(limit)))
}

/// Text from a provider or mail server, made safe for a log line and a
/// terminal: no control characters (nor the invisible ones that reorder or
/// hide text), at most 200 characters.
pub fn clean(text: &str) -> String {
    let hidden = |c: char| {
        c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
    };
    let mut out: String = text
        .trim()
        .chars()
        .take(200)
        .map(|c| if hidden(c) { ' ' } else { c })
        .collect();
    if text.trim().chars().count() > 200 {
        out.push('…');
    }
    out
}

/// An error and its causes, one after the other.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// "5 minutes", "1 minute", "90 seconds": how long a code lives.
pub fn lifetime(d: Duration) -> String {
    match d.as_secs() {
        60 => "1 minute".to_owned(),
        s if s % 60 == 0 => format!("{} minutes", s / 60),
        s => format!("{s} seconds"),
    }
}
