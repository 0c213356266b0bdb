//! Hostile and broken frames against the real daemon over a raw UnixStream.
//! Each gets a clear error; framing errors also close the connection; and
//! the daemon survives: the same process still answers a new client and a
//! bystander connection opened before the abuse.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use mfad_protocol::{
    Client, ErrorCode, FrameError, MAX_FRAME, Request, Response, ResponseEnvelope, read_frame,
};
use mfad_tests::TestDaemon;
use std::io::Write;
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::time::Duration;

fn frame(body: &[u8]) -> Vec<u8> {
    let mut v = u32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

fn connect(d: &TestDaemon) -> UnixStream {
    let s = UnixStream::connect(d.socket()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// The next response, or `None` when the daemon closed the connection
/// (EOF, or ECONNRESET when it closed with our bytes unread).
fn next(d: &TestDaemon, s: &mut UnixStream) -> Option<Response> {
    match read_frame::<_, ResponseEnvelope>(s) {
        Ok(env) => {
            assert_eq!(env.version, 1, "response envelope version");
            Some(env.response)
        }
        Err(FrameError::Closed) => None,
        Err(FrameError::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => None,
        Err(e) => panic!("reading a response: {e}\n{}", d.log_text()),
    }
}

#[track_caller]
fn assert_error(d: &TestDaemon, resp: Option<Response>, codes: &[ErrorCode]) -> Vec<u32> {
    match resp {
        Some(Response::Error {
            code,
            message,
            supported,
        }) if codes.contains(&code) => {
            assert!(
                !message.trim().is_empty(),
                "error {code:?} without a message"
            );
            supported
        }
        other => panic!(
            "wanted an error in {codes:?}, got {other:?}\n{}",
            d.log_text()
        ),
    }
}

#[track_caller]
fn assert_closed(d: &TestDaemon, s: &mut UnixStream) {
    let resp = next(d, s);
    assert!(resp.is_none(), "the connection stayed open: {resp:?}");
}

fn pong(client: &mut Client) {
    let resp = client.call(&Request::Ping).unwrap();
    assert!(
        matches!(resp, Response::Pong { protocol: 1, .. }),
        "{resp:?}"
    );
}

/// Starts a daemon and a bystander connection, runs the abuse, then checks
/// that the same daemon process still serves the bystander and a newcomer.
fn survives(abuse: impl FnOnce(&TestDaemon)) {
    let mut d = TestDaemon::start();
    let pid = d.pid();
    let mut bystander = d.client();
    pong(&mut bystander);
    abuse(&d);
    assert!(d.is_running(), "mfad died:\n{}", d.log_text());
    assert_eq!(d.pid(), pid);
    pong(&mut bystander);
    pong(&mut d.client());
}

#[test]
fn empty_frame() {
    survives(|d| {
        let mut s = connect(d);
        s.write_all(&0u32.to_be_bytes()).unwrap();
        // Not "too large", but not a frame either: either code is clear.
        assert_error(
            d,
            next(d, &mut s),
            &[ErrorCode::BadRequest, ErrorCode::FrameTooLarge],
        );
        assert_closed(d, &mut s);
    });
}

#[test]
fn frame_over_64_kib() {
    survives(|d| {
        // Exactly the limit is a frame like any other: a padded ping.
        let mut body = br#"{"version":1,"request":{"type":"ping"}}"#.to_vec();
        body.resize(MAX_FRAME, b' ');
        let mut s = connect(d);
        s.write_all(&frame(&body)).unwrap();
        assert!(matches!(next(d, &mut s), Some(Response::Pong { .. })));

        // One byte more is refused from the prefix alone, before any body.
        let over = u32::try_from(MAX_FRAME + 1).unwrap();
        s.write_all(&over.to_be_bytes()).unwrap();
        assert_error(d, next(d, &mut s), &[ErrorCode::FrameTooLarge]);
        assert_closed(d, &mut s);

        let mut s = connect(d);
        s.write_all(&u32::MAX.to_be_bytes()).unwrap();
        assert_error(d, next(d, &mut s), &[ErrorCode::FrameTooLarge]);
        assert_closed(d, &mut s);
    });
}

#[test]
fn truncated_frame_then_close() {
    survives(|d| {
        let mut s = connect(d);
        let mut bytes = 100u32.to_be_bytes().to_vec();
        bytes.extend_from_slice(br#"{"version""#);
        s.write_all(&bytes).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        // We only shut down our writing side, so the daemon's word on the
        // truncated frame still reaches us.
        assert_error(d, next(d, &mut s), &[ErrorCode::BadRequest]);
        assert_closed(d, &mut s);

        // A prefix cut short, too.
        let mut s = connect(d);
        s.write_all(&[0, 0]).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        assert_error(d, next(d, &mut s), &[ErrorCode::BadRequest]);
        assert_closed(d, &mut s);
    });
}

#[test]
fn garbage_json() {
    survives(|d| {
        for body in [
            &b"this is not json"[..],
            b"\xff\xfe\x00",
            b"[]",
            b"{\"version\":1}",
        ] {
            let mut s = connect(d);
            s.write_all(&frame(body)).unwrap();
            assert_error(d, next(d, &mut s), &[ErrorCode::BadRequest]);
        }
    });
}

#[test]
fn unknown_request_type() {
    survives(|d| {
        let mut s = connect(d);
        s.write_all(&frame(
            br#"{"version":1,"request":{"type":"fly_to_the_moon"}}"#,
        ))
        .unwrap();
        assert_error(d, next(d, &mut s), &[ErrorCode::UnsupportedRequest]);
    });
}

#[test]
fn unsupported_version() {
    survives(|d| {
        let mut s = connect(d);
        s.write_all(&frame(br#"{"version":99,"request":{"type":"ping"}}"#))
            .unwrap();
        let supported = assert_error(d, next(d, &mut s), &[ErrorCode::UnsupportedVersion]);
        assert_eq!(supported, vec![1]);
    });
}

/// One meaning per frame: a request naming `type` twice (the first a
/// harmless ping, the last a reset) is refused as a whole, and the user it
/// names keeps their enrollment. Root sends it, who may reset.
#[test]
fn a_frame_with_a_repeated_key_is_refused_and_changes_nothing() {
    survives(|d| {
        let user = mfad_tests::users::unique_name("dup");
        d.enroll_totp(&user);
        let enrolled = |d: &TestDaemon| match d.client().call(&Request::Status {
            user: Some(user.clone()),
        }) {
            Ok(Response::Status(s)) => s.totp.is_some(),
            other => panic!("status: {other:?}"),
        };
        assert!(enrolled(d));
        let body = format!(
            r#"{{"version":1,"request":{{"type":"ping","user":"{user}","type":"user_reset"}}}}"#
        );
        let mut s = connect(d);
        s.write_all(&frame(body.as_bytes())).unwrap();
        assert_error(d, next(d, &mut s), &[ErrorCode::BadRequest]);
        // A field the request does not have is refused the same way.
        let body = format!(
            r#"{{"version":1,"request":{{"type":"user_show","user":"{user}","all":true}}}}"#
        );
        s.write_all(&frame(body.as_bytes())).unwrap();
        assert_error(d, next(d, &mut s), &[ErrorCode::BadRequest]);
        assert!(enrolled(d), "the repeated-key frame reset the user");
    });
}

/// A started frame must complete within `frame_timeout_secs`: a client
/// trickling one byte a second is dropped then, not after the (much longer)
/// idle timeout.
#[test]
fn a_client_trickling_a_frame_is_dropped_at_the_frame_deadline() {
    let mut config = mfad_tests::TestConfig::default();
    config.limits.frame_timeout_secs = 2;
    let d = TestDaemon::with_config(config);
    let mut s = connect(&d);
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut writer = s.try_clone().unwrap();
    let trickle = std::thread::spawn(move || {
        for byte in frame(br#"{"version":1,"request":{"type":"ping"}}"#) {
            if writer.write_all(&[byte]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    let started = std::time::Instant::now();
    assert_error(&d, next(&d, &mut s), &[ErrorCode::Timeout]);
    assert_closed(&d, &mut s);
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(2), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    let _ = s.shutdown(Shutdown::Both);
    trickle.join().unwrap();
}

/// A client may send its next frame before the answer to the last one, and
/// a frame may arrive in pieces: each request is answered, in order, and
/// no byte of one frame is taken for another's.
#[test]
fn frames_sent_back_to_back_or_in_pieces_are_each_answered() {
    survives(|d| {
        let mut s = connect(d);
        let ping = frame(br#"{"version":1,"request":{"type":"ping"}}"#);
        let mut bytes = ping.repeat(2);
        bytes.extend_from_slice(&ping[..3]);
        s.write_all(&bytes).unwrap();
        for _ in 0..2 {
            assert!(matches!(next(d, &mut s), Some(Response::Pong { .. })));
        }
        std::thread::sleep(Duration::from_millis(50));
        s.write_all(&ping[3..]).unwrap();
        assert!(matches!(next(d, &mut s), Some(Response::Pong { .. })));
    });
}
