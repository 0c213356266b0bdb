//! Each preset's reply, as its API reference shows it: success, a refusal
//! inside a 2xx, and an error status.

use super::*;

fn preset(p: Preset) -> Provider {
    Provider::Preset {
        preset: p,
        base_url: "http://127.0.0.1:1".into(),
    }
}

#[test]
fn the_table_lists_every_preset_in_order() {
    for p in Preset::ALL {
        assert_eq!(spec(p).preset, p);
    }
}

#[test]
fn numbers_are_written_as_each_provider_documents() {
    let twilio = Numbers::new(true, "+447700900123", "+15550001111");
    assert_eq!(
        (twilio.to.as_str(), twilio.from.as_str()),
        ("+447700900123", "+15550001111")
    );
    let vonage = Numbers::new(false, "+447700900123", "+15550001111");
    assert_eq!(
        (vonage.to.as_str(), vonage.from.as_str()),
        ("447700900123", "15550001111")
    );
    // An alphanumeric sender is left alone.
    assert_eq!(Numbers::new(false, "+1", "+Acme").from, "+Acme");
    assert_eq!(Numbers::new(false, "+1", "Acme").from, "Acme");
}

#[test]
fn gsm_text_stays_gsm_and_other_text_needs_unicode() {
    assert!(gsm7(
        "123-456 is your host login code. Valid 5 minutes; {x} ~ €"
    ));
    assert!(gsm7("Ihr Code: 123-456. Gültig für 5 Minuten."));
    assert!(!gsm7("Ваш код: 123-456"));
    assert!(!gsm7("123-456 是您的验证码"));
    assert!(!gsm7("Code 123-456 ✓"));
}

fn err(p: Preset, status: u16, body: &str) -> String {
    reply(&preset(p), status, body.as_bytes())
        .unwrap_err()
        .to_string()
}

fn id(p: Preset, status: u16, body: &str) -> Option<String> {
    reply(&preset(p), status, body.as_bytes()).unwrap().id
}

#[test]
fn twilio_replies() {
    assert_eq!(
        id(
            Preset::Twilio,
            201,
            r#"{"sid":"SM1\n","status":"queued","error_code":null}"#
        )
        .as_deref(),
        Some("SM1")
    );
    assert_eq!(
        err(
            Preset::Twilio,
            400,
            r#"{"code":21211,"message":"The 'To' number is not valid.","more_info":"https://www.twilio.com/docs/errors/21211","status":400}"#
        ),
        "it answered HTTP 400: The 'To' number is not valid. (error 21211)"
    );
    assert_eq!(
        err(
            Preset::Twilio,
            201,
            r#"{"sid":"SM2","status":"failed","error_code":30007,"error_message":"Message filtered"}"#
        ),
        "it refused the message: failed: 30007: Message filtered"
    );
}

#[test]
fn vonage_replies_succeed_only_when_every_part_does() {
    assert_eq!(
        id(
            Preset::Vonage,
            200,
            r#"{"message-count":"2","messages":[{"status":"0","message-id":"0A01"},{"status":"0","message-id":"0A02"}]}"#
        )
        .as_deref(),
        Some("0A01,0A02")
    );
    let second = err(
        Preset::Vonage,
        200,
        r#"{"message-count":"2","messages":[{"status":"0","message-id":"0A01"},{"status":"1","error-text":"Throttled"}]}"#,
    );
    assert_eq!(
        second,
        "it refused the message: part 2 of 2: status 1: Throttled"
    );
    assert!(
        err(
            Preset::Vonage,
            200,
            r#"{"message-count":"2","messages":[{"status":"0"}]}"#
        )
        .contains("counts 2 parts but lists 1")
    );
    assert!(err(Preset::Vonage, 200, r#"{"messages":[]}"#).contains("no messages"));
}

#[test]
fn infobip_rejections_inside_a_200_are_refusals() {
    assert_eq!(
        id(
            Preset::Infobip,
            200,
            r#"{"bulkId":"b","messages":[{"messageId":"IB1","status":{"groupId":1,"groupName":"PENDING","id":26,"name":"PENDING_ACCEPTED","description":"Message sent to next instance"},"to":"447700900123"}]}"#
        )
        .as_deref(),
        Some("IB1")
    );
    for (group, name) in [
        ("REJECTED", "REJECTED_NOT_ENOUGH_CREDITS"),
        ("UNDELIVERABLE", "UNDELIVERABLE_REJECTED_OPERATOR"),
    ] {
        let body = format!(
            r#"{{"messages":[{{"messageId":"IB2","status":{{"groupName":"{group}","name":"{name}","description":"No"}}}}]}}"#
        );
        assert_eq!(
            err(Preset::Infobip, 200, &body),
            format!("it refused the message: {group}: {name}: No")
        );
    }
    assert_eq!(
        err(
            Preset::Infobip,
            401,
            r#"{"requestError":{"serviceException":{"messageId":"UNAUTHORIZED","text":"Invalid login details"}}}"#
        ),
        "it answered HTTP 401: Invalid login details"
    );
}

#[test]
fn messagebird_replies() {
    assert_eq!(
        id(
            Preset::MessageBird,
            201,
            r#"{"id":"mb1","recipients":{"totalCount":1,"totalDeliveryFailedCount":0,"items":[{"recipient":447700900123,"status":"sent"}]}}"#
        )
        .as_deref(),
        Some("mb1")
    );
    assert!(err(
        Preset::MessageBird,
        201,
        r#"{"id":"mb2","recipients":{"items":[{"recipient":447700900123,"status":"delivery_failed"}]}}"#
    )
    .contains("delivery_failed"));
    assert_eq!(
        err(
            Preset::MessageBird,
            401,
            r#"{"errors":[{"code":2,"description":"Request not allowed (incorrect access_key)","parameter":"access_key"}]}"#
        ),
        "it answered HTTP 401: Request not allowed (incorrect access_key) (access_key)"
    );
    // Control characters from a provider never reach a log or a terminal.
    assert_eq!(
        err(Preset::MessageBird, 500, "\x1b[2Jboom\u{202e}"),
        "it answered HTTP 500:  [2Jboom "
    );
}
