//! Security properties of the real daemon against real peers: private
//! files, starvation by a non-root uid, and a daemon killed in the middle
//! of a conversation (fail closed, state kept). What non-root peers and
//! admin-group members may do is in `permissions.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use mfad_protocol::{
    AuthStart, ErrorCode, Request, RequestEnvelope, Response, ResponseEnvelope, SecretString,
    encode, read_frame,
};
use mfad_tests::daemon::{TEST_RHOST, connect_as, ping_frame, run_as, show};
use mfad_tests::pam::*;
use mfad_tests::users::{NOBODY_UID, NOGROUP_GID, unique_name};
use mfad_tests::{TestConfig, TestDaemon};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::{Duration, Instant};

const SVC: &str = "mfa-test";

fn daemon_with(config: TestConfig) -> TestDaemon {
    let d = TestDaemon::with_config(config);
    d.write_pam_service(SVC, &[]);
    d
}

#[test]
fn an_unprivileged_user_cannot_read_the_key_or_the_database() {
    let d = daemon_with(TestConfig::default());
    d.enroll_totp(&unique_name("ivy"));
    let state = d.dir().join("state");
    let mut files = vec![state.join("mfad.key"), state.join("mfad.db")];
    files.extend(
        ["mfad.db-wal", "mfad.db-shm"]
            .iter()
            .map(|f| state.join(f))
            .filter(|p| p.exists()),
    );
    assert_eq!(
        std::fs::read(&files[0]).unwrap().len(),
        32,
        "root reads the key"
    );
    let cat_as_nobody = |why: &str| {
        for path in &files {
            let out = run_as(NOBODY_UID, NOGROUP_GID, Path::new("/bin/cat"), [path]);
            assert!(
                !out.status.success() && out.stdout.is_empty(),
                "nobody read {} ({why}): {}",
                path.display(),
                show(&out)
            );
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains("Permission denied"), "{}", show(&out));
        }
    };
    cat_as_nobody("state directory 0700");
    // The files are private by their own modes too, not only by the
    // directory: open the directory for traversal and try again.
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o711)).unwrap();
    cat_as_nobody("state directory 0711");
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    // Yet the socket is open to it: access is decided per request.
    let resps = d.raw_as(NOBODY_UID, NOGROUP_GID, &[ping_frame()]);
    assert!(
        matches!(resps.first(), Some(Response::Pong { .. })),
        "{resps:?}"
    );
}

fn send(s: &mut UnixStream, req: &Request) -> std::io::Result<()> {
    s.write_all(&encode(&RequestEnvelope::new(req)).unwrap())
}

fn recv(s: &mut UnixStream) -> Response {
    read_frame::<_, ResponseEnvelope>(s).unwrap().response
}

/// A connection as nobody, admitted: it answered a ping.
fn admitted_nobody(d: &TestDaemon) -> UnixStream {
    let mut s = connect_as(NOBODY_UID, NOGROUP_GID, &d.socket()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    send(&mut s, &Request::Ping).unwrap();
    let resp = recv(&mut s);
    assert!(matches!(resp, Response::Pong { .. }), "{resp:?}");
    s
}

#[test]
fn a_flood_of_connections_from_nobody_does_not_starve_root() {
    // The stalled frames below must outlive the whole test; their drop at
    // the frame deadline is tested in wire.rs.
    let mut config = TestConfig::default();
    config.limits.frame_timeout_secs = 60;
    let d = daemon_with(config);
    let per_uid = d.config().limits.per_uid_connections as usize;
    assert_eq!(per_uid, 8);
    let user = unique_name("ray");
    let secret = d.enroll_totp(&user);

    // Fill nobody's quota: slow-loris connections that sent 2 bytes of a
    // length prefix and stall, and idle ones.
    let lorises: Vec<UnixStream> = (0..3)
        .map(|_| {
            let mut s = admitted_nobody(&d);
            s.write_all(&[0, 0]).unwrap();
            s
        })
        .collect();
    let mut idle: Vec<UnixStream> = (3..per_uid).map(|_| admitted_nobody(&d)).collect();

    // Every connection beyond the quota, idle or slow, is told "busy".
    for (extra, slow) in [false, false, false, true, true].into_iter().enumerate() {
        let mut s = connect_as(NOBODY_UID, NOGROUP_GID, &d.socket()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        if slow {
            // The daemon may already have answered and closed.
            let _ = s.write_all(&[0, 0]);
        }
        let resp = read_frame::<_, ResponseEnvelope>(&mut s).map(|e| e.response);
        assert!(
            matches!(&resp, Ok(Response::Error { code: ErrorCode::Busy, message, .. }) if !message.is_empty()),
            "connection {} of nobody (slow: {slow}): {resp:?}\n{}",
            per_uid + 1 + extra,
            d.log_text()
        );
    }

    // Meanwhile root's PAM traffic goes through libpam at once.
    let started = Instant::now();
    let code = d.totp_code(&secret, 0);
    d.expect_rc(d.login(SVC, &user, TEST_RHOST, &[&code]), PAM_SUCCESS);
    assert!(started.elapsed() < Duration::from_secs(10));
    let resp = d.client().call(&Request::Ping).unwrap();
    assert!(matches!(resp, Response::Pong { .. }), "{resp:?}");

    // nobody's connections were held open all along.
    send(&mut idle[0], &Request::Ping).unwrap();
    assert!(matches!(recv(&mut idle[0]), Response::Pong { .. }));
    for mut s in lorises.iter() {
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let got = s.read(&mut [0u8; 16]);
        assert!(
            matches!(&got, Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
            "a stalled connection was answered or closed early: {got:?}"
        );
    }

    // Once they close, nobody is admitted again. The daemon frees the slots
    // as it sees each close, so allow it a moment.
    drop(lorises);
    drop(idle);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut s = connect_as(NOBODY_UID, NOGROUP_GID, &d.socket()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        // A refused connection may be closed before the ping is written.
        let _ = send(&mut s, &Request::Ping);
        let resp = read_frame::<_, ResponseEnvelope>(&mut s).map(|e| e.response);
        match resp {
            Ok(Response::Pong { .. }) => break,
            Ok(Response::Error {
                code: ErrorCode::Busy,
                ..
            }) if Instant::now() < deadline => {}
            other => panic!(
                "nobody after closing its connections: {other:?}\n{}",
                d.log_text()
            ),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // And as a real process of that uid.
    let resps = d.raw_as(NOBODY_UID, NOGROUP_GID, &[ping_frame()]);
    assert!(
        matches!(resps.first(), Some(Response::Pong { .. })),
        "{resps:?}"
    );
}

/// A login of `user`'s over ssh, started on the wire and waiting for the
/// code.
fn waiting_for_code(d: &TestDaemon, user: &str) -> mfad_protocol::Client {
    let mut client = d.client();
    let start = AuthStart {
        user: user.to_owned(),
        service: SVC.into(),
        rhost: Some(TEST_RHOST.into()),
        tty: Some("ssh".into()),
        ..AuthStart::default()
    };
    let resp = client.call(&Request::AuthStart(start)).unwrap();
    assert!(matches!(resp, Response::Prompt { .. }), "{resp:?}");
    client
}

#[test]
fn a_daemon_killed_mid_conversation_fails_closed_and_keeps_its_state() {
    let mut d = daemon_with(TestConfig::default());
    let user = unique_name("kai");
    let secret = d.enroll_totp(&user);
    let code = d.totp_code(&secret, 0);
    d.expect_rc(d.login(SVC, &user, TEST_RHOST, &[&code]), PAM_SUCCESS);

    // A conversation waits for the code; the daemon dies before it comes.
    let mut client = waiting_for_code(&d, &user);
    let status = d.kill().expect("the daemon was running");
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
    let next = d.totp_code(&secret, 1);
    let answer = Request::Answer {
        text: SecretString::new(next.clone()),
    };
    let got = client.send(&answer).and_then(|()| client.recv());
    assert!(got.is_err(), "a dead daemon gave a response: {got:?}");

    // With the daemon dead (its stale socket still there), PAM fails closed.
    assert!(d.socket().exists());
    let t = d.expect_rc(
        d.login(SVC, &user, TEST_RHOST, &[&next]),
        PAM_AUTHINFO_UNAVAIL,
    );
    assert!(t.prompts().is_empty(), "{t}");

    d.restart();
    let status = d.mfactl_json(&["user", "show", &user]);
    assert!(status["totp"].is_object(), "enrollment lost: {status}");
    // After the unclean stop, the codes the old process could have taken
    // are fenced (restart.rs); a clean restart lifts the fence.
    d.expect_rc(d.login(SVC, &user, TEST_RHOST, &[&next]), PAM_AUTH_ERR);
    d.restart();
    d.expect_rc(d.login(SVC, &user, TEST_RHOST, &[&next]), PAM_SUCCESS);

    let rows: Vec<_> = d
        .audit_rows()
        .into_iter()
        .filter(|r| r["user"] == user.as_str())
        .collect();
    let count = |decision: &str, reason: &str| {
        rows.iter()
            .filter(|r| r["decision"] == decision && r["reason"].as_str().unwrap().contains(reason))
            .count()
    };
    assert_eq!(count("allow", ""), 2, "{rows:#?}");
    assert_eq!(count("done", "totp enrolled"), 1, "{rows:#?}");
}

/// Quiet under floods: a thousand refused connections write a handful of
/// log lines (the first in full, then a summary per interval with counts per
/// uid), and the lines still account for every refusal.
#[test]
fn a_thousand_refused_connections_write_a_few_log_lines() {
    let mut config = TestConfig::default();
    config.limits.per_uid_connections = 1;
    let d = daemon_with(config);
    let _held = admitted_nobody(&d);
    for i in 0..1000 {
        let mut s = connect_as(NOBODY_UID, NOGROUP_GID, &d.socket()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let resp = read_frame::<_, ResponseEnvelope>(&mut s).map(|e| e.response);
        assert!(
            matches!(
                &resp,
                Ok(Response::Error {
                    code: ErrorCode::Busy,
                    ..
                })
            ),
            "connection {i}: {resp:?}"
        );
    }
    let full = format!("refused a connection from uid {NOBODY_UID} ");
    let per_uid = format!("uid {NOBODY_UID}: ");
    let accounted = |log: &str| -> (usize, u64) {
        let lines: Vec<&str> = log.lines().filter(|l| l.contains("refused")).collect();
        let summed = lines
            .iter()
            .filter(|l| l.contains("more connections within"))
            .filter_map(|l| l.split(&per_uid).nth(1))
            .filter_map(|rest| rest.split([',', ')']).next()?.parse::<u64>().ok())
            .sum::<u64>();
        let logged = lines.iter().filter(|l| l.contains(&full)).count() as u64;
        (lines.len(), logged + summed)
    };
    // The summary comes at the end of the interval (10 s).
    let deadline = Instant::now() + Duration::from_secs(20);
    let (lines, total) = loop {
        let (lines, total) = accounted(&d.log_text());
        if total >= 1000 || Instant::now() >= deadline {
            break (lines, total);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(total, 1000, "{}", d.log_text());
    assert!(
        lines <= 6,
        "{lines} lines for 1000 refusals:\n{}",
        d.log_text()
    );
}

/// An admin replaces a user's authenticator (a lost phone) while a login
/// waits for its code: a code of the old secret takes nothing, and the user
/// is told why rather than that the code was used.
#[test]
fn a_code_of_a_secret_replaced_during_the_login_is_refused_as_such() {
    let d = daemon_with(TestConfig::default());
    let user = unique_name("liv");
    let secret = d.enroll_totp(&user);
    let mut client = waiting_for_code(&d, &user);
    // As after a lost phone: the factors reset, a new authenticator set up.
    let out = d.mfactl(["user", "reset", &user, "--yes"]);
    assert!(out.status.success(), "user reset: {}", show(&out));
    let new = d.enroll_totp(&user);
    assert_ne!(new, secret);
    let answer = Request::Answer {
        text: SecretString::new(d.totp_code(&secret, 0)),
    };
    let resp = client.call(&answer).unwrap();
    let said = format!("{resp:?}");
    assert!(
        said.contains("replaced or removed during this login"),
        "{said}"
    );
    // The new secret's code for the same step still logs in.
    let code = d.totp_code(&new, 0);
    d.expect_rc(d.login(SVC, &user, TEST_RHOST, &[&code]), PAM_SUCCESS);
}
