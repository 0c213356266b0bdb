//! The request each provider documents, and how to read its reply.
//!
//! - Twilio: `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, HTTP
//!   Basic (Account SID, auth token), form `To`, `From`, `Body`; the reply's
//!   `sid` is the message id.
//! - Vonage (SMS API): `POST /sms/json`, form `api_key`, `api_secret`,
//!   `from`, `to` (digits only), `text`; HTTP 200 with `messages[0].status`
//!   "0" on success and `message-id`.
//! - Infobip: `POST /sms/2/text/advanced` on the account's base URL,
//!   `Authorization: App {key}`, JSON `messages[0].destinations[0].to`,
//!   `from`, `text`; `messages[0].messageId`.
//! - MessageBird: `POST /messages`, `Authorization: AccessKey {key}`, form
//!   `originator`, `recipients` (digits only), `body`; the reply's `id`.
//! - Generic: the admin's method, URL, headers and form or JSON template.

use super::template::{self, json_string, verbatim};
use super::{DeliveryError, Receipt, clean};
use crate::config::{GenericBody, Preset, Provider};
use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};
use serde_json::{Value, json};

/// What goes into one request.
pub(super) struct Message<'a> {
    pub to: &'a str,
    pub text: &'a str,
    pub code: &'a str,
    pub from: &'a str,
    pub account: &'a str,
    pub secret: &'a str,
}

impl Message<'_> {
    fn values(&self) -> [(&'static str, &str); 5] {
        [
            ("to", self.to),
            ("message", self.text),
            ("code", self.code),
            ("from", self.from),
            ("secret", self.secret),
        ]
    }
}

/// A header value that holds a secret: hyper never logs or shows it.
fn sensitive(value: &str) -> Result<HeaderValue, DeliveryError> {
    let mut v = HeaderValue::from_str(value).map_err(|_| {
        DeliveryError::Build("a header value holds a character HTTP forbids".into())
    })?;
    v.set_sensitive(true);
    Ok(v)
}

pub(super) fn request(
    client: &reqwest::Client,
    provider: &Provider,
    m: &Message<'_>,
) -> Result<reqwest::RequestBuilder, DeliveryError> {
    let digits = m.to.trim_start_matches('+');
    let (preset, base_url) = match provider {
        Provider::Generic(g) => return generic(client, g, m),
        Provider::Preset { preset, base_url } => (preset, base_url),
    };
    Ok(match preset {
        Preset::Twilio => client
            .post(format!(
                "{base_url}/2010-04-01/Accounts/{}/Messages.json",
                m.account
            ))
            .basic_auth(m.account, Some(m.secret))
            .form(&[("To", m.to), ("From", m.from), ("Body", m.text)]),
        Preset::Vonage => client.post(format!("{base_url}/sms/json")).form(&[
            ("api_key", m.account),
            ("api_secret", m.secret),
            ("from", m.from),
            ("to", digits),
            ("text", m.text),
        ]),
        Preset::Infobip => client
            .post(format!("{base_url}/sms/2/text/advanced"))
            .header(AUTHORIZATION, sensitive(&format!("App {}", m.secret))?)
            .json(&json!({
                "messages": [{
                    "destinations": [{ "to": digits }],
                    "from": m.from,
                    "text": m.text,
                }]
            })),
        Preset::MessageBird => client
            .post(format!("{base_url}/messages"))
            .header(
                AUTHORIZATION,
                sensitive(&format!("AccessKey {}", m.secret))?,
            )
            .form(&[
                ("originator", m.from),
                ("recipients", digits),
                ("body", m.text),
            ]),
    })
}

fn generic(
    client: &reqwest::Client,
    g: &crate::config::GenericProvider,
    m: &Message<'_>,
) -> Result<reqwest::RequestBuilder, DeliveryError> {
    let values = m.values();
    // Values in the URL are percent-encoded, as a form would be.
    let url = template::render(&g.url, &values, |v| {
        url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
    });
    let method = reqwest::Method::from_bytes(g.method.as_bytes())
        .map_err(|_| DeliveryError::Build(format!("method {}", g.method)))?;
    let mut request = client.request(method, url);
    for (name, value) in &g.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| DeliveryError::Build(format!("header name {name:?}")))?;
        request = request.header(
            name,
            sensitive(&template::render(value, &values, verbatim))?,
        );
    }
    Ok(match &g.body {
        GenericBody::None => request,
        GenericBody::Form(fields) => {
            let filled: Vec<(&str, String)> = fields
                .iter()
                .map(|(k, v)| (k.as_str(), template::render(v, &values, verbatim)))
                .collect();
            request.form(&filled)
        }
        GenericBody::Json(text) => {
            let body = template::render(text, &values, json_string);
            let value: Value = serde_json::from_str(&body)
                .map_err(|e| DeliveryError::Build(format!("the JSON body: {e}")))?;
            request.json(&value)
        }
    })
}

/// Reads the provider's reply: its message id on success, its own words
/// on failure.
pub(super) fn reply(
    provider: &Provider,
    status: u16,
    body: &[u8],
) -> Result<Receipt, DeliveryError> {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let at = |pointer: &str| -> Option<String> {
        json.as_ref()?.pointer(pointer).map(|v| match v {
            Value::String(s) => clean(s),
            other => clean(&other.to_string()),
        })
    };
    if !(200..300).contains(&status) {
        let said = match provider {
            Provider::Preset {
                preset: Preset::Twilio,
                ..
            } => at("/message"),
            Provider::Preset {
                preset: Preset::Infobip,
                ..
            } => at("/requestError/serviceException/text"),
            Provider::Preset {
                preset: Preset::MessageBird,
                ..
            } => at("/errors/0/description"),
            _ => None,
        };
        let detail = said.unwrap_or_else(|| clean(&String::from_utf8_lossy(body)));
        return Err(DeliveryError::Status { status, detail });
    }
    let id = match provider {
        Provider::Preset { preset, .. } => match preset {
            Preset::Twilio => at("/sid"),
            Preset::Vonage => {
                // Vonage answers 200 even when it refuses: status "0" is success.
                match at("/messages/0/status").as_deref() {
                    Some("0") => at("/messages/0/message-id"),
                    _ => {
                        let said = at("/messages/0/error-text")
                            .unwrap_or_else(|| clean(&String::from_utf8_lossy(body)));
                        return Err(DeliveryError::Rejected(said));
                    }
                }
            }
            Preset::Infobip => at("/messages/0/messageId"),
            Preset::MessageBird => at("/id"),
        },
        Provider::Generic(g) => g.message_id.as_deref().and_then(at),
    };
    Ok(Receipt { id })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preset(p: Preset) -> Provider {
        Provider::Preset {
            preset: p,
            base_url: "http://127.0.0.1:1".into(),
        }
    }

    #[test]
    fn replies_give_ids_or_the_providers_words() {
        let ok = reply(&preset(Preset::Twilio), 201, br#"{"sid":"SM1\n"}"#).unwrap();
        assert_eq!(ok.id.as_deref(), Some("SM1"));
        let err = reply(
            &preset(Preset::Twilio),
            400,
            br#"{"code":21211,"message":"The 'To' number is not valid."}"#,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(err, "it answered HTTP 400: The 'To' number is not valid.");
        let refused = reply(
            &preset(Preset::Vonage),
            200,
            br#"{"messages":[{"status":"4","error-text":"Bad Credentials"}]}"#,
        )
        .unwrap_err();
        assert!(refused.to_string().contains("Bad Credentials"));
        let ok = reply(
            &preset(Preset::Vonage),
            200,
            br#"{"messages":[{"status":"0","message-id":"0A01"}]}"#,
        )
        .unwrap();
        assert_eq!(ok.id.as_deref(), Some("0A01"));
        let err = reply(&preset(Preset::MessageBird), 500, b"\x1b[2Jboom").unwrap_err();
        assert_eq!(err.to_string(), "it answered HTTP 500:  [2Jboom");
    }
}
