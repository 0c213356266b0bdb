//! How the relay fails: unreachable, slow, broken or refusing daemons.
//! Only "no daemon there" (the socket missing, or nothing listening) may fail
//! open.

use super::harness::{Daemon, Shown, Step, raw_frame, run, scratch_dir, settings};
use super::{info, prompt, verdict};
use crate::args::FailMode::{Closed, Open};
use crate::conv::Level;
use crate::flow::{MAX_FRAMES, MAX_LOG_TEXT, UNAVAILABLE_MSG, clean};
use mfad_protocol::{Decision, ErrorCode, Response};
use pamsm::PamError;
use std::time::{Duration, Instant};

#[test]
fn daemon_not_listening_honours_failmode() {
    let dir = scratch_dir();
    let socket = dir.join("absent.sock");

    let (code, conv, log) = run(&settings(&socket, Closed, 5), vec![]);
    assert_eq!(code, PamError::AUTHINFO_UNAVAIL);
    assert_eq!(conv.shown, vec![Shown::Error(UNAVAILABLE_MSG.into())]);
    assert!(log.has(Level::Err, "cannot connect"), "{:?}", log.0);

    let (code, conv, log) = run(&settings(&socket, Open, 5), vec![]);
    assert_eq!(code, PamError::IGNORE);
    assert!(conv.shown.is_empty());
    assert!(log.has(Level::Warning, "failing open"), "{:?}", log.0);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A connect error other than "missing" or "refused" is not an absent
/// daemon (here ENOTDIR: the path runs through a regular file).
#[test]
fn other_connect_errors_never_fail_open() {
    let dir = scratch_dir();
    let file = dir.join("file");
    std::fs::write(&file, "").unwrap();
    let (code, _, log) = run(&settings(&file.join("mfad.sock"), Open, 5), vec![]);
    assert_eq!(code, PamError::AUTHINFO_UNAVAIL);
    assert!(!log.has(Level::Warning, "failing open"), "{:?}", log.0);
    assert!(log.has(Level::Err, "cannot connect"), "{:?}", log.0);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn broken_daemon_replies_never_fail_open() {
    let oversized = (u32::MAX).to_be_bytes().to_vec();
    let cases: Vec<(&str, Vec<Step>)> = vec![
        ("garbage", vec![Step::Raw(raw_frame(b"\xff not json"))]),
        ("oversized prefix", vec![Step::Raw(oversized)]),
        ("empty frame", vec![Step::Raw(raw_frame(b""))]),
        (
            "truncated",
            vec![Step::Raw(raw_frame(b"{\"version\":1}")[..8].to_vec())],
        ),
        (
            "unknown response type",
            vec![Step::Raw(raw_frame(
                br#"{"version":1,"response":{"type":"teleport","text":"hi"}}"#,
            ))],
        ),
        (
            "other version",
            vec![Step::Raw(raw_frame(
                br#"{"version":2,"response":{"type":"verdict","decision":"allow","message":""}}"#,
            ))],
        ),
        (
            "not a conversation frame",
            vec![Step::Send(Response::Done {
                message: "ok".into(),
            })],
        ),
        ("closed at once", vec![]),
        (
            "closed mid-conversation",
            vec![prompt(false, "Code: "), Step::Recv],
        ),
    ];
    for (name, steps) in cases {
        let mut script = vec![Step::Recv];
        script.extend(steps);
        let d = Daemon::start(script);
        let (code, conv, log) = run(&settings(&d.socket, Open, 5), vec![Ok("1")]);
        assert_eq!(code, PamError::AUTHINFO_UNAVAIL, "{name}");
        assert_eq!(
            conv.shown.last(),
            Some(&Shown::Error(UNAVAILABLE_MSG.into())),
            "{name}"
        );
        assert!(
            log.has(Level::Err, "MFA unavailable"),
            "{name}: {:?}",
            log.0
        );
        assert!(!log.has(Level::Warning, "failing open"), "{name}");
        d.requests();
    }
}

#[test]
fn daemon_errors_are_failures_and_permission_denied_is_perm_denied() {
    let cases = [
        (ErrorCode::PermissionDenied, PamError::PERM_DENIED),
        (ErrorCode::Busy, PamError::AUTHINFO_UNAVAIL),
        (ErrorCode::Internal, PamError::AUTHINFO_UNAVAIL),
        (ErrorCode::UnsupportedVersion, PamError::AUTHINFO_UNAVAIL),
        (ErrorCode::Unknown, PamError::AUTHINFO_UNAVAIL),
    ];
    for (error, expected) in cases {
        let d = Daemon::start(vec![
            Step::Recv,
            Step::Send(Response::Error {
                code: error,
                message: "no\nway".into(),
                supported: vec![],
            }),
        ]);
        let (code, _, log) = run(&settings(&d.socket, Open, 5), vec![]);
        assert_eq!(code, expected, "{error:?}");
        assert!(log.has(Level::Err, "no?way"), "{error:?}: {:?}", log.0);
        d.requests();
    }
}

#[test]
fn a_socket_squatted_by_another_uid_is_refused_even_with_failmode_open() {
    let d = Daemon::start(vec![Step::ExpectEof]);
    let mut s = settings(&d.socket, Open, 5);
    s.client.daemon_uid = s.client.daemon_uid.map(|uid| uid.wrapping_add(1));
    let (code, _, log) = run(&s, vec![]);
    assert_eq!(code, PamError::AUTHINFO_UNAVAIL);
    assert!(log.has(Level::Err, "not by the mfad daemon"), "{:?}", log.0);
    assert!(d.requests().is_empty());
}

/// A daemon that accepted the connection and then says nothing (stopped,
/// wedged) is there: the timeout denies, whatever the failmode.
#[test]
fn the_read_timeout_is_honoured_and_never_fails_open() {
    for failmode in [Closed, Open] {
        let d = Daemon::start(vec![Step::Recv, Step::Silence]);
        let s = settings(&d.socket, failmode, 1);
        let started = Instant::now();
        let (code, _, log) = run(&s, vec![]);
        let took = started.elapsed();
        assert_eq!(code, PamError::AUTHINFO_UNAVAIL, "{failmode:?}");
        assert!(!log.has(Level::Warning, "failing open"), "{failmode:?}");
        assert!(took >= Duration::from_millis(900), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
        assert!(log.0.iter().any(|(_, m)| m.contains("timed out")));
        d.requests();
    }
}

#[test]
fn a_timeout_after_the_user_answered_never_fails_open() {
    let d = Daemon::start(vec![
        Step::Recv,
        prompt(false, "Code: "),
        Step::Recv,
        Step::Silence,
    ]);
    let (code, _, log) = run(&settings(&d.socket, Open, 1), vec![Ok("000000")]);
    assert_eq!(code, PamError::AUTHINFO_UNAVAIL);
    assert!(
        log.has(Level::Err, "accepted the connection"),
        "{:?}",
        log.0
    );
    d.requests();
}

/// A slow SMS provider: mfad says it is sending, then takes longer than
/// `timeout=`. It was plainly reachable, so failmode=open does not apply.
#[test]
fn a_timeout_after_an_info_never_fails_open() {
    let d = Daemon::start(vec![Step::Recv, info("Sending a code..."), Step::Silence]);
    let (code, conv, log) = run(&settings(&d.socket, Open, 1), vec![]);
    assert_eq!(code, PamError::AUTHINFO_UNAVAIL);
    assert!(
        conv.shown
            .contains(&Shown::Info("Sending a code...".into()))
    );
    assert!(
        log.has(Level::Err, "accepted the connection"),
        "{:?}",
        log.0
    );
    d.requests();
}

#[test]
fn the_conversation_is_capped() {
    // MAX_FRAMES responses are allowed, the verdict included.
    for (infos, expected) in [
        (MAX_FRAMES - 1, PamError::SUCCESS),
        (MAX_FRAMES, PamError::AUTHINFO_UNAVAIL),
    ] {
        let mut script = vec![Step::Recv];
        script.extend((0..infos).map(|_| info("again")));
        // Past the cap the module hangs up without reading on: a verdict
        // written then could meet a closed socket.
        script.push(match infos < MAX_FRAMES {
            true => verdict(Decision::Allow, ""),
            false => Step::ExpectEof,
        });
        let d = Daemon::start(script);
        let (code, conv, _) = run(&settings(&d.socket, Open, 5), vec![]);
        assert_eq!(code, expected, "{infos} infos");
        let shown = conv
            .shown
            .iter()
            .filter(|s| **s == Shown::Info("again".into()));
        assert_eq!(shown.count(), infos);
        d.requests();
    }
}

#[test]
fn log_text_from_the_daemon_is_cleaned() {
    assert_eq!(clean("a\nb\x1b[31mc"), "a?b?[31mc");
    assert_eq!(clean(&"x".repeat(1000)).len(), MAX_LOG_TEXT);
}
