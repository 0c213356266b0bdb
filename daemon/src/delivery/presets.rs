//! The SMS providers mfad speaks natively. Everything known about one
//! provider (its API host, what `account` means, how it writes numbers,
//! the request, and how to read its reply) is in its entry of [`SPECS`],
//! taken from the provider's API reference:
//!
//! - Twilio (Programmable Messaging): `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`,
//!   HTTP Basic with an API key (`SK…` key SID and its secret) or the
//!   Account SID and auth token; form `To`, `From` (E.164 with `+`), `Body`.
//!   201 with the message resource: `sid`, `status` (`queued`, `accepted`;
//!   `failed` or an `error_code` is a refusal). Errors: `{code, message,
//!   more_info, status}`, sometimes with `detail`. Non-GSM text goes out as
//!   UCS-2 by itself.
//! - Vonage (SMS API): `POST /sms/json`, form `api_key`, `api_secret`,
//!   `from` and `to` as digits without `+`, `text`, and `type=unicode` when
//!   the text has characters outside the GSM 7-bit alphabet. Always 200: the
//!   send succeeded only if every element of `messages[]` (one per part of
//!   a long text, `message-count` of them) has `status` "0"; otherwise
//!   `error-text` says why.
//! - Infobip: `POST /sms/2/text/advanced` on the account's base URL,
//!   `Authorization: App {key}`, JSON `messages[0].destinations[0].to` and a
//!   numeric `from` as digits without `+`; Unicode is chosen by the
//!   platform. 200 with `messages[].status.groupName`: PENDING (or
//!   DELIVERED) is accepted, REJECTED or UNDELIVERABLE is a refusal inside
//!   the 200. Errors: `requestError.serviceException.{messageId,text}`.
//! - MessageBird: `POST /messages`, `Authorization: AccessKey {key}`, form
//!   `originator`, `recipients` as digits, `body`, `datacoding=auto` (the
//!   platform picks GSM or Unicode). 201 with the message object: `id`, and
//!   `recipients.items[].status` (`delivery_failed` is a refusal). Errors:
//!   `errors[].{code,description,parameter}`.
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
    /// Twilio: the API key SID (`SK…`) that signs instead of the account.
    pub key_sid: Option<&'a str>,
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

/// One provider, as its API reference describes it.
pub struct Spec {
    pub preset: Preset,
    /// The value of `sms.provider`.
    pub name: &'static str,
    /// The documented API host; `None`: each account has its own.
    pub base_url: Option<&'static str>,
    /// What `sms.account` holds, for providers that need it besides the
    /// secret.
    pub account: Option<&'static str>,
    /// Numbers (the destination, a numeric sender) keep their `+`;
    /// otherwise they are sent as digits only.
    plus: bool,
    build: fn(&reqwest::Client, &str, &Message<'_>, &Numbers) -> Result<Builder, DeliveryError>,
    /// Reads a 2xx reply: the message ids, or why the provider refused.
    accepted: fn(&Value) -> Result<Option<String>, String>,
    /// The provider's words in an error reply.
    error: fn(&Value) -> Option<String>,
}

type Builder = reqwest::RequestBuilder;

pub const SPECS: [Spec; 4] = [
    Spec {
        preset: Preset::Twilio,
        name: "twilio",
        base_url: Some("https://api.twilio.com"),
        account: Some("the Account SID (AC…)"),
        plus: true,
        build: |client, base, m, n| {
            Ok(client
                .post(format!(
                    "{base}/2010-04-01/Accounts/{}/Messages.json",
                    m.account
                ))
                .basic_auth(m.key_sid.unwrap_or(m.account), Some(m.secret))
                .form(&[
                    ("To", n.to.as_str()),
                    ("From", n.from.as_str()),
                    ("Body", m.text),
                ]))
        },
        accepted: |v| {
            let status = text(v, "/status");
            let code = text(v, "/error_code");
            if matches!(
                status.as_deref(),
                Some("failed" | "undelivered" | "canceled")
            ) || code.is_some()
            {
                return Err(words(&[
                    status.as_deref(),
                    code.as_deref(),
                    text(v, "/error_message").as_deref(),
                ]));
            }
            Ok(text(v, "/sid"))
        },
        error: |v| {
            let message = text(v, "/message")?;
            let detail = text(v, "/detail").map_or(String::new(), |d| format!(": {d}"));
            let code = text(v, "/code").map_or(String::new(), |c| format!(" (error {c})"));
            Some(format!("{message}{detail}{code}"))
        },
    },
    Spec {
        preset: Preset::Vonage,
        name: "vonage",
        base_url: Some("https://rest.nexmo.com"),
        account: Some("the API key"),
        plus: false,
        build: |client, base, m, n| {
            let mut form = vec![
                ("api_key", m.account),
                ("api_secret", m.secret),
                ("from", n.from.as_str()),
                ("to", n.to.as_str()),
                ("text", m.text),
            ];
            if !gsm7(m.text) {
                form.push(("type", "unicode"));
            }
            Ok(client.post(format!("{base}/sms/json")).form(&form))
        },
        accepted: |v| {
            let parts = v
                .pointer("/messages")
                .and_then(Value::as_array)
                .filter(|p| !p.is_empty())
                .ok_or("the reply lists no messages")?;
            if let Some(count) = text(v, "/message-count")
                && count != parts.len().to_string()
            {
                return Err(format!(
                    "the reply counts {count} parts but lists {}",
                    parts.len()
                ));
            }
            for (i, part) in parts.iter().enumerate() {
                let status = text(part, "/status");
                if status.as_deref() != Some("0") {
                    return Err(format!(
                        "part {} of {}: status {}: {}",
                        i + 1,
                        parts.len(),
                        status.as_deref().unwrap_or("missing"),
                        text(part, "/error-text")
                            .as_deref()
                            .unwrap_or("no reason given")
                    ));
                }
            }
            Ok(ids(parts, "/message-id"))
        },
        error: |v| text(v, "/messages/0/error-text").or_else(|| text(v, "/title")),
    },
    Spec {
        preset: Preset::Infobip,
        name: "infobip",
        base_url: None,
        account: None,
        plus: false,
        build: |client, base, m, n| {
            Ok(client
                .post(format!("{base}/sms/2/text/advanced"))
                .header(AUTHORIZATION, sensitive(&format!("App {}", m.secret))?)
                .json(&json!({
                    "messages": [{
                        "destinations": [{ "to": n.to }],
                        "from": n.from,
                        "text": m.text,
                    }]
                })))
        },
        accepted: |v| {
            let messages = v
                .pointer("/messages")
                .and_then(Value::as_array)
                .filter(|p| !p.is_empty())
                .ok_or("the reply lists no messages")?;
            for m in messages {
                let group = text(m, "/status/groupName");
                if !matches!(group.as_deref(), Some("PENDING" | "DELIVERED")) {
                    return Err(words(&[
                        group.as_deref().or(Some("no status")),
                        text(m, "/status/name").as_deref(),
                        text(m, "/status/description").as_deref(),
                    ]));
                }
            }
            Ok(ids(messages, "/messageId"))
        },
        error: |v| {
            text(v, "/requestError/serviceException/text").or_else(|| text(v, "/description"))
        },
    },
    Spec {
        preset: Preset::MessageBird,
        name: "messagebird",
        base_url: Some("https://rest.messagebird.com"),
        account: None,
        plus: false,
        build: |client, base, m, n| {
            Ok(client
                .post(format!("{base}/messages"))
                .header(
                    AUTHORIZATION,
                    sensitive(&format!("AccessKey {}", m.secret))?,
                )
                .form(&[
                    ("originator", n.from.as_str()),
                    ("recipients", n.to.as_str()),
                    ("body", m.text),
                    ("datacoding", "auto"),
                ]))
        },
        accepted: |v| {
            let recipients = v
                .pointer("/recipients/items")
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice);
            for r in recipients {
                let status = text(r, "/status");
                if matches!(status.as_deref(), Some("delivery_failed" | "expired")) {
                    return Err(format!("recipient status {}", status.unwrap_or_default()));
                }
            }
            if v.pointer("/recipients/totalDeliveryFailedCount")
                .and_then(Value::as_u64)
                .is_some_and(|n| n > 0)
            {
                return Err("the reply counts a failed delivery".to_owned());
            }
            Ok(text(v, "/id"))
        },
        error: |v| {
            let e = v.pointer("/errors/0")?;
            let description = text(e, "/description")?;
            Some(match text(e, "/parameter") {
                Some(p) => format!("{description} ({p})"),
                None => description,
            })
        },
    },
];

/// The entry of `preset`.
pub fn spec(preset: Preset) -> &'static Spec {
    // SPECS lists every preset once, in the enum's order.
    &SPECS[preset as usize]
}

/// The destination and the sender as one provider writes them.
struct Numbers {
    to: String,
    from: String,
}

impl Numbers {
    fn new(plus: bool, to: &str, from: &str) -> Self {
        let write = |n: &str| -> String {
            let numeric = n
                .strip_prefix('+')
                .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
            if numeric && !plus {
                n[1..].to_owned()
            } else {
                n.to_owned()
            }
        };
        Self {
            to: write(to),
            from: write(from),
        }
    }
}

/// True if every character of `text` is in the GSM 03.38 default alphabet
/// or its extension table: such a text fits 160 characters a part; any
/// other needs Unicode (UCS-2, 70 a part).
pub fn gsm7(text: &str) -> bool {
    const BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
                         ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
    const EXTENSION: &str = "\u{c}^{}\\[~]|€";
    text.chars()
        .all(|c| BASIC.contains(c) || EXTENSION.contains(c))
}

/// The string at `pointer`, cleaned; numbers and booleans as text; `null`
/// and an empty string as nothing.
fn text(v: &Value, pointer: &str) -> Option<String> {
    match v.pointer(pointer)? {
        Value::Null => None,
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some(clean(s)),
        other => Some(clean(&other.to_string())),
    }
}

/// The ids at `pointer` in each element, comma-separated.
fn ids(items: &[Value], pointer: &str) -> Option<String> {
    let all: Vec<String> = items.iter().filter_map(|i| text(i, pointer)).collect();
    (!all.is_empty()).then(|| all.join(","))
}

fn words(parts: &[Option<&str>]) -> String {
    parts
        .iter()
        .flatten()
        .copied()
        .collect::<Vec<_>>()
        .join(": ")
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
) -> Result<Builder, DeliveryError> {
    match provider {
        Provider::Generic(g) => generic(client, g, m),
        Provider::Preset { preset, base_url } => {
            let spec = spec(*preset);
            (spec.build)(client, base_url, m, &Numbers::new(spec.plus, m.to, m.from))
        }
    }
}

fn generic(
    client: &reqwest::Client,
    g: &crate::config::GenericProvider,
    m: &Message<'_>,
) -> Result<Builder, DeliveryError> {
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

/// Reads the provider's reply: its message ids when it took the message,
/// its own words (cleaned for a log line and a terminal) when it did not,
/// whether it said so with an error status or inside a 2xx.
pub(super) fn reply(
    provider: &Provider,
    status: u16,
    body: &[u8],
) -> Result<Receipt, DeliveryError> {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let raw = || clean(&String::from_utf8_lossy(body));
    let ok = (200..300).contains(&status);
    let id = match provider {
        Provider::Preset { preset, .. } => {
            let spec = spec(*preset);
            if !ok {
                let said = json.as_ref().and_then(spec.error);
                return Err(DeliveryError::Status {
                    status,
                    detail: said.unwrap_or_else(raw),
                });
            }
            let json = json.ok_or_else(|| {
                DeliveryError::Rejected(format!("the reply is not JSON: {}", raw()))
            })?;
            (spec.accepted)(&json).map_err(DeliveryError::Rejected)?
        }
        Provider::Generic(g) => {
            if !ok {
                return Err(DeliveryError::Status {
                    status,
                    detail: raw(),
                });
            }
            g.message_id
                .as_deref()
                .and_then(|p| json.as_ref().and_then(|v| text(v, p)))
        }
    };
    Ok(Receipt { id })
}

#[cfg(test)]
#[path = "presets_tests.rs"]
mod tests;
