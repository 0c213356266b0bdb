//! SMS through the provider's HTTP API: one reqwest client, HTTPS with the
//! system's CA certificates, no redirects, a total timeout per request.

use super::presets;
use super::{DeliveryError, Receipt, chain, clean};
use crate::config::SmsConfig;
use mfad_protocol::SecretString;

/// The most of a provider's reply that is read.
const MAX_REPLY: usize = 64 * 1024;

pub(super) struct Sms {
    pub config: SmsConfig,
    client: reqwest::Client,
    /// The API secret; never logged (its headers are marked sensitive).
    secret: Option<SecretString>,
}

impl Sms {
    pub fn new(config: SmsConfig, secret: Option<SecretString>) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("mfad/", env!("CARGO_PKG_VERSION")));
        builder = match &config.proxy {
            Some(url) => {
                builder.proxy(reqwest::Proxy::all(url.as_str()).map_err(|e| e.to_string())?)
            }
            None => builder.no_proxy(),
        };
        let client = builder.build().map_err(|e| e.to_string())?;
        Ok(Self {
            config,
            client,
            secret,
        })
    }

    pub async fn send(&self, to: &str, text: &str, code: &str) -> Result<Receipt, DeliveryError> {
        let secret = self.secret.as_ref().map_or("", SecretString::expose);
        let message = presets::Message {
            to,
            text,
            code,
            from: self.config.from.as_deref().unwrap_or(""),
            account: self.config.account.as_deref().unwrap_or(""),
            key_sid: self.config.api_key_sid.as_deref(),
            secret,
        };
        let request = presets::request(&self.client, &self.config.provider, &message)?;
        let mut response = request
            .send()
            .await
            .map_err(|e| failed(&e, self.config.timeout))?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| failed(&e, self.config.timeout))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_REPLY {
                body.truncate(MAX_REPLY);
                break;
            }
        }
        presets::reply(&self.config.provider, status, &body)
    }
}

/// A transport failure in words, without the URL (a generic provider may
/// carry its secret there).
fn failed(e: &reqwest::Error, timeout: std::time::Duration) -> DeliveryError {
    if e.is_timeout() {
        return DeliveryError::Timeout(timeout);
    }
    let text = chain(e);
    let text = match e.url() {
        Some(url) => text.replace(url.as_str(), "<url>"),
        None => text,
    };
    DeliveryError::Connect(clean(&text))
}
