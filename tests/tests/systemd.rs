//! The real daemon as systemd runs it (the unit is `Type=notify`): READY=1
//! on $NOTIFY_SOCKET once the socket answers, RELOADING=1 then READY=1 on
//! SIGHUP; and with stderr the journal ($JOURNAL_STREAM), each line goes to
//! syslog only, so the journal, which gets both, holds it once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use mfad_protocol::{Request, Response};
use mfad_tests::daemon::SyslogReceiver;
use mfad_tests::{TestConfig, TestDaemon};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

fn ping(d: &TestDaemon) {
    let reply = d.client().call(&Request::Ping).unwrap();
    assert!(matches!(reply, Response::Pong { .. }), "{reply:?}");
}

/// The next datagram on `socket`, as text; panics after 10 s.
fn next(socket: &UnixDatagram) -> String {
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = socket
        .recv(&mut buf)
        .unwrap_or_else(|e| panic!("no notification within 10 s: {e}"));
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn readiness_is_sent_once_the_socket_answers_and_around_each_reload() {
    let mut d = TestDaemon::prepare(TestConfig::default());
    let path = d.dir().join("notify.sock");
    let notify = UnixDatagram::bind(&path).unwrap();
    d.set_env("NOTIFY_SOCKET", path.to_str().unwrap());
    d.launch();
    let ready = next(&notify);
    assert_eq!(ready.lines().collect::<Vec<_>>(), ["READY=1"], "{ready:?}");
    // Sent after the bind: a client connecting on READY=1 is served.
    ping(&d);

    kill(Pid::from_raw(d.pid().unwrap() as i32), Signal::SIGHUP).unwrap();
    let reloading = next(&notify);
    let lines: Vec<&str> = reloading.lines().collect();
    assert_eq!(lines.len(), 2, "{reloading:?}");
    assert_eq!(lines[0], "RELOADING=1");
    let usec: u64 = lines[1]
        .strip_prefix("MONOTONIC_USEC=")
        .unwrap_or_else(|| panic!("{reloading:?}"))
        .parse()
        .unwrap();
    assert!(usec > 0);
    assert_eq!(next(&notify), "READY=1\n");
    ping(&d);
}

#[test]
fn under_the_journal_each_line_goes_to_syslog_only() {
    let mut d = TestDaemon::prepare(TestConfig {
        syslog: true,
        syslog_socket: Some("syslog.sock".into()),
        ..TestConfig::default()
    });
    let rx = SyslogReceiver::bind(&d.dir().join("syslog.sock"));
    // mfad's stderr is this file: name it as systemd names the journal's stream.
    let stderr = d.dir().join("mfad.stderr");
    std::fs::write(&stderr, "").unwrap();
    let meta = std::fs::metadata(&stderr).unwrap();
    d.set_env("JOURNAL_STREAM", &format!("{}:{}", meta.dev(), meta.ino()));
    d.launch();
    assert!(
        rx.wait_for(Duration::from_secs(5), |m| m.contains("listening on")),
        "the start-up line did not reach syslog: {:?}",
        rx.messages()
    );
    d.stop();
    assert!(
        rx.wait_for(Duration::from_secs(5), |m| m.contains("mfad stopped")),
        "{:?}",
        rx.messages()
    );
    assert_eq!(d.log_text(), "", "a line reached stderr too");

    // A stream that is not stderr (inherited from a parent under systemd):
    // both sinks, as outside systemd.
    d.set_env(
        "JOURNAL_STREAM",
        &format!("{}:{}", meta.dev(), meta.ino() + 1),
    );
    d.launch();
    assert!(d.log_text().contains("listening on"), "{}", d.log_text());
}
