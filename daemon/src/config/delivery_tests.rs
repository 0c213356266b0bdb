//! The checks of `[sms]`, `[email]` and `[login_notification]`.

use crate::config::{Config, GenericBody, Preset, Provider, SmtpSecurity};
use std::path::Path;

fn parse(text: &str) -> Result<Config, String> {
    Config::parse(Path::new("mfad.toml"), &format!("version = 1\n{text}"))
        .map_err(|e| e.to_string())
}

const TWILIO: &str = "[sms]\nprovider = \"twilio\"\naccount = \"AC0123456789abcdef0123456789abcdef\"\nfrom = \"+15550001111\"\n\
                      credentials_file = \"/etc/mfad/sms.secret\"\n";
const EMAIL: &str = "[email]\nhost = \"smtp.example.com\"\nfrom = \"mfad@example.com\"\n";

#[test]
fn presets_take_their_documented_defaults() {
    let c = parse(TWILIO).unwrap();
    let sms = c.sms.unwrap();
    assert_eq!(
        sms.provider,
        Provider::Preset {
            preset: Preset::Twilio,
            base_url: "https://api.twilio.com".into()
        }
    );
    assert_eq!(sms.timeout.as_millis(), 4000);
    assert_eq!((sms.code.length, sms.code.grouping), (6, true));
    assert_eq!(sms.code.validity.as_secs(), 300);
    let c = parse(EMAIL).unwrap();
    let email = c.email.unwrap();
    assert_eq!((email.security, email.port), (SmtpSecurity::StartTls, 587));
    assert!(!c.login_notification.enabled);
    assert!(parse("").unwrap().sms.is_none());
}

#[test]
fn bad_values_name_their_key() {
    for (text, key, words) in [
        (
            format!("{TWILIO}base_url = \"http://sms.example.com\"\n"),
            "sms.base_url",
            "loopback",
        ),
        (
            TWILIO.replace("twilio", "infobip") + "base_url = \"https://x.api.infobip.com\"\n",
            "sms.account",
            "does nothing for infobip",
        ),
        (
            TWILIO.replace("twilio", "generic")
                + "[sms.generic]\nurl = \"https://sms.example.com/send\"\n",
            "sms.account",
            "does nothing for provider = \"generic\"",
        ),
        (
            format!("{TWILIO}timeout_ms = 5000\n"),
            "sms.timeout_ms",
            "pam_mfa waits 5 s",
        ),
        (
            format!("{TWILIO}[sms.code]\nvalidity_secs = 900\n"),
            "sms.code.validity_secs",
            "10 minutes",
        ),
        (
            format!("{TWILIO}[sms.code]\nlength = 4\n"),
            "sms.code.length",
            "6 to 10",
        ),
        (
            format!("{TWILIO}[sms.code]\nresend_cooldown_secs = 400\n"),
            "sms.code.resend_cooldown_secs",
            "validity",
        ),
        (
            format!("{TWILIO}message = \"Use {{cod}}\"\n"),
            "sms.message",
            "{cod}",
        ),
        (
            format!("{TWILIO}message = \"no code here\"\n"),
            "sms.message",
            "{code}",
        ),
        (
            TWILIO.replace("account = \"AC0123456789abcdef0123456789abcdef\"\n", ""),
            "sms.account",
            "Account SID",
        ),
        (
            TWILIO.replace("credentials_file = \"/etc/mfad/sms.secret\"\n", ""),
            "sms.credentials_file",
            "API secret",
        ),
        (
            TWILIO
                .replace("twilio", "infobip")
                .replace("account = \"AC0123456789abcdef0123456789abcdef\"\n", ""),
            "sms.base_url",
            "infobip",
        ),
        (TWILIO.replace("twilio", "sinch"), "sms.provider", "generic"),
        (
            format!("{TWILIO}credential = \"sms\"\n"),
            "sms.credentials_file",
            "both set",
        ),
        (
            format!("{EMAIL}security = \"plain\"\n"),
            "email.security",
            "local relay",
        ),
        (
            format!("{EMAIL}username = \"u\"\n"),
            "email.username",
            "go together",
        ),
        (
            EMAIL.replace("mfad@example.com", "not an address"),
            "email.from",
            "not an address",
        ),
        (
            "[login_notification]\nenabled = true\n".to_owned(),
            "login_notification.enabled",
            "[email]",
        ),
    ] {
        let err = parse(&text).unwrap_err();
        assert!(
            err.contains(&format!("`{key}`")) && err.contains(words),
            "{text}\n=> {err}"
        );
    }
}

#[test]
fn loopback_http_and_the_generic_provider_are_accepted() {
    let c = parse(&format!("{TWILIO}base_url = \"http://127.0.0.1:8080/\"\n")).unwrap();
    assert!(
        matches!(c.sms.unwrap().provider, Provider::Preset { base_url, .. } if base_url == "http://127.0.0.1:8080")
    );
    let generic = "[sms]\nprovider = \"generic\"\nfrom = \"mfad\"\n\
                   [sms.generic]\nurl = \"https://sms.example.com/send?to={to}\"\n\
                   json = '{\"text\": \"{message}\", \"n\": {\"x\": 1}}'\n";
    let c = parse(generic).unwrap();
    let Provider::Generic(g) = c.sms.unwrap().provider else {
        panic!()
    };
    assert_eq!(g.method, "POST");
    assert!(matches!(g.body, GenericBody::Json(_)));
    let err = parse(&generic.replace("{\"x\": 1}", "{")).unwrap_err();
    assert!(
        err.contains("sms.generic.json") && err.contains("not JSON"),
        "{err}"
    );
    let err = parse(&generic.replace("?to={to}", "")).unwrap_err();
    assert!(err.contains("{to}"), "{err}");
}

#[test]
fn caps_have_defaults_and_checked_prefixes() {
    let sms = parse(TWILIO).unwrap().sms.unwrap();
    assert_eq!(
        (
            sms.caps.hourly,
            sms.caps.hourly_per_prefix,
            sms.caps.verify_daily_per_uid
        ),
        (100, 50, 3)
    );
    let text = format!(
        "{TWILIO}[sms.cap]\nhourly = 20\nhourly_per_prefix = 5\nprefix = {{ \"+44\" = 15 }}\nverify_daily_per_uid = 2\n"
    );
    let caps = parse(&text).unwrap().sms.unwrap().caps;
    assert_eq!((caps.of_prefix("+44"), caps.of_prefix("+1")), (15, 5));
    let email = parse(&format!(
        "{EMAIL}[email.cap]\nprefix = {{ \"example.com\" = 9 }}\n"
    ))
    .unwrap()
    .email
    .unwrap();
    assert_eq!(email.caps.of_prefix("example.com"), 9);
    for (text, key, words) in [
        (
            format!("{TWILIO}[sms.cap]\nhourly = 0\n"),
            "sms.cap.hourly",
            "1 to",
        ),
        (
            format!("{TWILIO}[sms.cap]\nhourly = 10\nhourly_per_prefix = 11\n"),
            "sms.cap.hourly_per_prefix",
            "hourly cap (10)",
        ),
        (
            format!("{TWILIO}[sms.cap]\nprefix = {{ \"+447\" = 3 }}\n"),
            "sms.cap.prefix",
            "country calling code",
        ),
        (
            format!("{EMAIL}[email.cap]\nprefix = {{ \"Example.com\" = 3 }}\n"),
            "email.cap.prefix",
            "lower case",
        ),
        (
            format!("{TWILIO}[sms.cap]\nverify_daily_per_uid = 0\n"),
            "sms.cap.verify_daily_per_uid",
            "1 to 100",
        ),
    ] {
        let err = parse(&text).unwrap_err();
        assert!(
            err.contains(&format!("`{key}`")) && err.contains(words),
            "{text}\n=> {err}"
        );
    }
}

#[test]
fn twilio_api_keys_are_checked_and_only_for_twilio() {
    let key = "SK0123456789abcdef0123456789abcdef";
    let sms = parse(&format!("{TWILIO}api_key_sid = \"{key}\"\n"))
        .unwrap()
        .sms
        .unwrap();
    assert_eq!(sms.api_key_sid.as_deref(), Some(key));
    for (text, key_name, words) in [
        (
            format!("{TWILIO}api_key_sid = \"AC0123456789abcdef0123456789abcdef\"\n"),
            "sms.api_key_sid",
            "SK and 32 hex",
        ),
        (
            TWILIO.replace("AC0123456789", "SK0123456789"),
            "sms.account",
            "goes in sms.api_key_sid",
        ),
        (
            TWILIO.replace("twilio", "vonage") + &format!("api_key_sid = \"{key}\"\n"),
            "sms.api_key_sid",
            "only for provider = \"twilio\"",
        ),
    ] {
        let err = parse(&text).unwrap_err();
        assert!(
            err.contains(&format!("`{key_name}`")) && err.contains(words),
            "{text}\n=> {err}"
        );
    }
}

#[test]
fn verification_has_its_own_text_and_the_notice_keeps_its_indentation() {
    let c = parse(&format!("{TWILIO}{EMAIL}")).unwrap();
    let (sms, email) = (c.sms.unwrap(), c.email.unwrap());
    for text in [
        &sms.verify_message,
        &email.verify_subject,
        &email.verify_body,
    ] {
        assert!(
            !text.contains("try to log in") && !text.contains("your {host} login code"),
            "{text}"
        );
        assert!(
            !text.contains("Your login code") && !text.contains("login code for"),
            "{text}"
        );
    }
    assert!(email.verify_body.contains("{code}"));
    let body = &c.login_notification.body;
    assert!(
        body.contains(".\n\n  time:     {time}\n  from:"),
        "{body:?}"
    );
    let err = parse(&format!("{EMAIL}verify_subject = \"a\\nb\"\n")).unwrap_err();
    assert!(err.contains("email.verify_subject"), "{err}");
    let err = parse(&format!("{TWILIO}verify_message = \"no code\"\n")).unwrap_err();
    assert!(err.contains("sms.verify_message"), "{err}");
}
