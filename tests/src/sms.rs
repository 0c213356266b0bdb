//! [`SmsServer`]: a local HTTP server that speaks an SMS provider's API, so
//! the daemon's real HTTP client delivers to it. It checks every request
//! against the documented shape of the provider it plays (path, method,
//! authentication, form or JSON fields, how numbers are written), answers
//! as that provider does, and records what it received. Its answers are the
//! bodies of each provider's API reference: success, a refusal of the
//! message (inside a 2xx where the provider does that), and an error. It can
//! also be slow (no answer), take its time to answer, or answer a plain 500.

use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The provider the server plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Twilio,
    Vonage,
    Infobip,
    MessageBird,
    /// The request shape of [`GENERIC_CONFIG`].
    Generic,
}

/// The `[sms.generic]` table (TOML lines) a generic provider test uses:
/// `PUT /v1/send?sender={from}`, `X-Api-Key: {secret}`, JSON
/// `{"phone": "{to}", "text": "{message}"}`, id at `/result/id`.
pub const GENERIC_CONFIG: &str = r#"[sms.generic]
method = "PUT"
url = "BASE/v1/send?sender={from}"
headers = { X-Api-Key = "{secret}" }
json = '{"phone": "{to}", "text": "{message}", "kind": {"otp": true}}'
message_id = "/result/id"
"#;

impl Provider {
    pub fn name(self) -> &'static str {
        match self {
            Provider::Twilio => "twilio",
            Provider::Vonage => "vonage",
            Provider::Infobip => "infobip",
            Provider::MessageBird => "messagebird",
            Provider::Generic => "generic",
        }
    }
}

/// A Twilio Account SID of the documented form (AC and 32 hex digits).
pub const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
/// A Twilio API key SID (SK and 32 hex digits).
pub const API_KEY_SID: &str = "SK0123456789abcdef0123456789abcdef";

/// How the server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// As the provider does on success.
    Normal,
    /// As the provider refuses a message: Twilio 400 (21211, invalid To);
    /// Vonage 200 whose second part has status 1 (Throttled); Infobip 200
    /// with status group REJECTED; MessageBird 201 whose recipient has
    /// status `delivery_failed`.
    Reject,
    /// The provider's answer to bad credentials: Twilio 401 (20003);
    /// Vonage 200 with status 4 (Bad Credentials); Infobip 401
    /// UNAUTHORIZED; MessageBird 401 (code 2).
    Error,
    /// Reads the request and never answers (until the server is dropped).
    Slow,
    /// HTTP 500 with a short text.
    Fail,
}

/// One request as received, with the SMS it carried when its shape was right.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: String,
    /// What was wrong with its shape (empty: it was as documented).
    pub problems: Vec<String>,
    /// The destination and the text of the SMS.
    pub to: String,
    pub text: String,
    /// The form fields, for the providers that take a form.
    pub form: HashMap<String, String>,
}

struct Shared {
    provider: Provider,
    account: String,
    secret: String,
    from: String,
    /// Twilio: the API key SID that signs instead of the account.
    key_sid: Mutex<Option<String>>,
    mode: Mutex<Mode>,
    /// How long each answer waits, as a real provider's round trip does.
    delay: Mutex<Duration>,
    received: Mutex<Vec<Received>>,
    stop: AtomicBool,
    ids: AtomicUsize,
}

pub struct SmsServer {
    port: u16,
    inbox: SmsInbox,
}

/// What an [`SmsServer`] received; cheap to clone into a PAM responder.
#[derive(Clone)]
pub struct SmsInbox {
    shared: Arc<Shared>,
}

impl std::ops::Deref for SmsServer {
    type Target = SmsInbox;
    fn deref(&self) -> &SmsInbox {
        &self.inbox
    }
}

impl SmsServer {
    /// Listens on a free loopback port, playing `provider` for an account
    /// with this public part, secret and sender.
    pub fn start(provider: Provider, account: &str, secret: &str, from: &str) -> SmsServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the SMS server");
        let port = listener.local_addr().expect("its address").port();
        let shared = Arc::new(Shared {
            provider,
            account: account.to_owned(),
            secret: secret.to_owned(),
            from: from.to_owned(),
            key_sid: Mutex::new(None),
            mode: Mutex::new(Mode::Normal),
            delay: Mutex::new(Duration::ZERO),
            received: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            ids: AtomicUsize::new(0),
        });
        let s = Arc::clone(&shared);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let s = Arc::clone(&s);
                std::thread::spawn(move || serve(&s, stream));
            }
        });
        SmsServer {
            port,
            inbox: SmsInbox { shared },
        }
    }

    /// The `[sms]` settings that send to this server.
    pub fn config(&self) -> crate::daemon::SmsConfig {
        let s = &self.inbox.shared;
        let generic = s.provider == Provider::Generic;
        crate::daemon::SmsConfig {
            provider: s.provider.name().to_owned(),
            base_url: self.base_url(),
            // Only Twilio and Vonage name an account besides the secret.
            account: matches!(s.provider, Provider::Twilio | Provider::Vonage)
                .then(|| s.account.clone()),
            api_key_sid: s.key_sid.lock().unwrap().clone(),
            message: None,
            from: s.from.clone(),
            secret: s.secret.clone(),
            secret_mode: 0o600,
            systemd_credential: false,
            timeout_ms: 3000,
            extra: if generic {
                GENERIC_CONFIG.to_owned()
            } else {
                String::new()
            },
            code: crate::daemon::CodeConfig::default(),
        }
    }

    pub fn inbox(&self) -> SmsInbox {
        self.inbox.clone()
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.inbox.shared.mode.lock().unwrap() = mode;
    }

    /// Answers every request only after `delay`.
    pub fn set_delay(&self, delay: Duration) {
        *self.inbox.shared.delay.lock().unwrap() = delay;
    }

    /// Twilio: expect requests signed with this API key SID (and the
    /// secret as its secret) instead of the Account SID and auth token.
    pub fn use_api_key(&self, sid: &str) {
        *self.inbox.shared.key_sid.lock().unwrap() = Some(sid.to_owned());
    }
}

impl SmsInbox {
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// Waits until `n` requests have arrived; panics after 10 s.
    pub fn wait_for(&self, n: usize) -> Vec<Received> {
        crate::wait_for_count("SMS requests", n, || self.received())
    }

    /// The code in the last SMS, as sent (`123-456`); panics if there is
    /// none or the request's shape was wrong.
    pub fn last_code(&self) -> String {
        let last = self.received().pop().expect("no SMS was received");
        assert!(
            last.problems.is_empty(),
            "the request was malformed: {last:#?}"
        );
        code_in(&last.text).unwrap_or_else(|| panic!("no code in the SMS {:?}", last.text))
    }
}

impl Drop for SmsServer {
    fn drop(&mut self) {
        self.inbox.shared.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// The first run of digits with an optional dash inside (`123-456`, `12345678`).
pub fn code_in(text: &str) -> Option<String> {
    let bytes: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len()
                && (bytes[i].is_ascii_digit()
                    || (bytes[i] == '-' && bytes.get(i + 1).is_some_and(char::is_ascii_digit)))
            {
                i += 1;
            }
            let code: String = bytes[start..i].iter().collect();
            if code.chars().filter(char::is_ascii_digit).count() >= 6 {
                return Some(code);
            }
        }
        i += 1;
    }
    None
}

fn serve(s: &Shared, stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(r) => r,
        Err(_) => return,
    });
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let body = String::from_utf8_lossy(&body).into_owned();
    let mut r = Received {
        method,
        path,
        headers,
        body,
        problems: Vec::new(),
        to: String::new(),
        text: String::new(),
        form: HashMap::new(),
    };
    let id = s.ids.fetch_add(1, Ordering::Relaxed) + 1;
    check(s, &mut r);
    let mode = *s.mode.lock().unwrap();
    s.received.lock().unwrap().push(r.clone());
    let (status, body) = match mode {
        Mode::Slow => {
            while !s.stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
            return;
        }
        Mode::Fail => (500, "internal error, try later".to_owned()),
        _ if !r.problems.is_empty() => (400, r.problems.join("; ")),
        mode => answer(s.provider, mode, &r, id),
    };
    std::thread::sleep(*s.delay.lock().unwrap());
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn form(body: &str) -> HashMap<String, String> {
    body.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| {
            let d = |x: &str| crate::otp::percent_decode(&x.replace('+', " "));
            (d(k), d(v))
        })
        .collect()
}

/// Checks the request against the provider's documented shape; fills in
/// `to`, `text` and `form`.
fn check(s: &Shared, r: &mut Received) {
    let mut problems = Vec::new();
    let mut want = |what: &str, ok: bool| {
        if !ok {
            problems.push(what.to_owned());
        }
    };
    let header = |name: &str| r.headers.get(name).cloned().unwrap_or_default();
    let is_form = header("content-type").starts_with("application/x-www-form-urlencoded");
    let is_json = header("content-type").starts_with("application/json");
    let digits = |to: &str| !to.is_empty() && to.bytes().all(|b| b.is_ascii_digit());
    // Vonage, Infobip and MessageBird write a numeric sender without its +.
    let bare_from = s.from.trim_start_matches('+');
    let f = form(&r.body);
    match s.provider {
        Provider::Twilio => {
            want("POST", r.method == "POST");
            want(
                "path /2010-04-01/Accounts/{AccountSid}/Messages.json",
                r.path == format!("/2010-04-01/Accounts/{}/Messages.json", s.account),
            );
            let user = s.key_sid.lock().unwrap().clone();
            let user = user.as_deref().unwrap_or(&s.account);
            want(
                "Authorization: Basic base64(ApiKeySid or AccountSid:secret)",
                header("authorization")
                    == format!("Basic {}", base64(&format!("{user}:{}", s.secret))),
            );
            want("a form body", is_form);
            want("From in E.164", f.get("From") == Some(&s.from));
            want(
                "To in E.164",
                f.get("To").is_some_and(|t| t.starts_with('+')),
            );
            r.to = f.get("To").cloned().unwrap_or_default();
            r.text = f.get("Body").cloned().unwrap_or_default();
        }
        Provider::Vonage => {
            want("POST", r.method == "POST");
            want("path /sms/json", r.path == "/sms/json");
            want("a form body", is_form);
            want("api_key", f.get("api_key") == Some(&s.account));
            want("api_secret", f.get("api_secret") == Some(&s.secret));
            want(
                "from without +",
                f.get("from").map(String::as_str) == Some(bare_from),
            );
            want("to as digits", f.get("to").is_some_and(|t| digits(t)));
            r.to = f.get("to").cloned().unwrap_or_default();
            r.text = f.get("text").cloned().unwrap_or_default();
        }
        Provider::Infobip => {
            want("POST", r.method == "POST");
            want(
                "path /sms/2/text/advanced",
                r.path == "/sms/2/text/advanced",
            );
            want(
                "Authorization: App {key}",
                header("authorization") == format!("App {}", s.secret),
            );
            want("a JSON body", is_json);
            let v: Value = serde_json::from_str(&r.body).unwrap_or_default();
            let m = &v["messages"][0];
            want("messages[0].from without +", m["from"] == bare_from);
            let to = m["destinations"][0]["to"].as_str().unwrap_or_default();
            want("messages[0].destinations[0].to as digits", digits(to));
            r.to = to.to_owned();
            r.text = m["text"].as_str().unwrap_or_default().to_owned();
        }
        Provider::MessageBird => {
            want("POST", r.method == "POST");
            want("path /messages", r.path == "/messages");
            want(
                "Authorization: AccessKey {key}",
                header("authorization") == format!("AccessKey {}", s.secret),
            );
            want("a form body", is_form);
            want(
                "originator without +",
                f.get("originator").map(String::as_str) == Some(bare_from),
            );
            want(
                "recipients as digits",
                f.get("recipients").is_some_and(|t| digits(t)),
            );
            want(
                "datacoding=auto",
                f.get("datacoding").map(String::as_str) == Some("auto"),
            );
            r.to = f.get("recipients").cloned().unwrap_or_default();
            r.text = f.get("body").cloned().unwrap_or_default();
        }
        Provider::Generic => {
            want("PUT", r.method == "PUT");
            want(
                "path /v1/send?sender={from}",
                r.path == format!("/v1/send?sender={}", s.from.replace('+', "%2B")),
            );
            want("X-Api-Key", header("x-api-key") == s.secret);
            want("a JSON body", is_json);
            let v: Value = serde_json::from_str(&r.body).unwrap_or_default();
            want("kind.otp kept from the template", v["kind"]["otp"] == true);
            r.to = v["phone"].as_str().unwrap_or_default().to_owned();
            r.text = v["text"].as_str().unwrap_or_default().to_owned();
        }
    }
    want("a text", !r.text.is_empty());
    if is_form {
        r.form = f;
    }
    r.problems = problems;
}

/// The provider's answer in `mode`: the bodies of its API reference, with
/// this request's number and id filled in.
fn answer(provider: Provider, mode: Mode, r: &Received, id: usize) -> (u16, String) {
    let to = r.to.as_str();
    match (provider, mode) {
        (Provider::Twilio, Mode::Normal) => (
            201,
            json!({
                "account_sid": ACCOUNT_SID, "api_version": "2010-04-01", "body": r.text,
                "direction": "outbound-api", "error_code": null, "error_message": null,
                "from": "+15550001111", "num_segments": "1", "price": null,
                "sid": format!("SM{id:032}"), "status": "queued", "to": to,
                "uri": format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/SM{id:032}.json"),
            })
            .to_string(),
        ),
        (Provider::Twilio, Mode::Reject) => (
            400,
            json!({
                "code": 21211, "message": format!("The 'To' number {to} is not a valid phone number."),
                "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400,
            })
            .to_string(),
        ),
        (Provider::Twilio, _) => (
            401,
            json!({
                "code": 20003, "detail": "Your AccountSid or AuthToken was incorrect.",
                "message": "Authenticate", "more_info": "https://www.twilio.com/docs/errors/20003",
                "status": 401,
            })
            .to_string(),
        ),
        (Provider::Vonage, Mode::Normal) => (
            200,
            json!({"message-count": "1", "messages": [{
                "to": to, "message-id": format!("VON{id}"), "status": "0",
                "remaining-balance": "3.14159265", "message-price": "0.03330000", "network": "12345",
            }]})
            .to_string(),
        ),
        (Provider::Vonage, Mode::Reject) => (
            200,
            json!({"message-count": "2", "messages": [
                {"to": to, "message-id": format!("VON{id}"), "status": "0",
                 "remaining-balance": "3.14159265", "message-price": "0.03330000", "network": "12345"},
                {"status": "1", "error-text": "Throttled"},
            ]})
            .to_string(),
        ),
        (Provider::Vonage, _) => (
            200,
            json!({"message-count": "1", "messages": [{"status": "4", "error-text": "Bad Credentials"}]})
                .to_string(),
        ),
        (Provider::Infobip, Mode::Normal) => (
            200,
            json!({"bulkId": format!("bulk{id}"), "messages": [{
                "messageId": format!("IB{id}"), "to": to,
                "status": {"groupId": 1, "groupName": "PENDING", "id": 26,
                           "name": "PENDING_ACCEPTED", "description": "Message sent to next instance"},
            }]})
            .to_string(),
        ),
        (Provider::Infobip, Mode::Reject) => (
            200,
            json!({"bulkId": format!("bulk{id}"), "messages": [{
                "messageId": format!("IB{id}"), "to": to,
                "status": {"groupId": 5, "groupName": "REJECTED", "id": 12,
                           "name": "REJECTED_NOT_ENOUGH_CREDITS", "description": "Not enough credits"},
            }]})
            .to_string(),
        ),
        (Provider::Infobip, _) => (
            401,
            json!({"requestError": {"serviceException": {
                "messageId": "UNAUTHORIZED", "text": "Invalid login details",
            }}})
            .to_string(),
        ),
        (Provider::MessageBird, Mode::Normal | Mode::Reject) => {
            let status = if mode == Mode::Normal { "sent" } else { "delivery_failed" };
            let failed = u32::from(mode == Mode::Reject);
            (
                201,
                json!({
                    "id": format!("MB{id}"), "href": format!("https://rest.messagebird.com/messages/MB{id}"),
                    "direction": "mt", "type": "sms", "originator": "15550001111", "body": r.text,
                    "datacoding": "auto", "mclass": 1, "createdDatetime": "2016-05-03T14:26:57+00:00",
                    "recipients": {"totalCount": 1, "totalSentCount": 1, "totalDeliveredCount": 0,
                                   "totalDeliveryFailedCount": failed,
                                   "items": [{"recipient": to.parse::<u64>().unwrap_or(0), "status": status,
                                              "statusDatetime": "2016-05-03T14:26:57+00:00",
                                              "messagePartCount": 1}]},
                })
                .to_string(),
            )
        }
        (Provider::MessageBird, _) => (
            401,
            json!({"errors": [{"code": 2, "description": "Request not allowed (incorrect access_key)",
                               "parameter": "access_key"}]})
            .to_string(),
        ),
        (Provider::Generic, _) => (
            200,
            json!({"result": {"id": format!("GEN{id}")}}).to_string(),
        ),
    }
}

fn base64(s: &str) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in s.as_bytes().chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_and_codes() {
        assert_eq!(base64("AC1:tok"), "QUMxOnRvaw==");
        assert_eq!(base64("ab"), "YWI=");
        assert_eq!(base64("abc"), "YWJj");
        assert_eq!(code_in("123-456 is your code"), Some("123-456".into()));
        assert_eq!(code_in("Code 12345678."), Some("12345678".into()));
        assert_eq!(code_in("valid 5 minutes"), None);
    }
}
