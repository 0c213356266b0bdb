//! Where the time goes, seen from outside the daemon: the same requests
//! over the protocol directly, without libpam or the module.

use crate::measure::Phase;
use crate::users::{self, BenchUser};
use mfad_protocol::{AuthStart, Client, Decision, Request, Response, SecretString};
use mfad_tests::TestDaemon;
use std::time::Instant;

/// The service name of the direct conversations (any name: policy default).
const SERVICE: &str = "bench-direct";

/// `n` pings on one connection: a frame each way, nothing stored.
pub fn ping_one_connection(daemon: &TestDaemon, n: usize) -> Phase {
    let mut client = daemon.client();
    let started = Instant::now();
    let mut out = Phase::default();
    for _ in 0..n {
        let t = Instant::now();
        let reply = client.call(&Request::Ping);
        out.record(t.elapsed(), expect_pong(reply));
    }
    out.finish(started.elapsed())
}

/// `n` times: connect (with the module's peer-uid check), ping, close.
pub fn connect_and_ping(daemon: &TestDaemon, n: usize) -> Phase {
    let opts = daemon.client_options();
    let started = Instant::now();
    let mut out = Phase::default();
    for _ in 0..n {
        let t = Instant::now();
        let reply = Client::connect(&opts)
            .map_err(|e| e.to_string())
            .and_then(|mut c| c.call(&Request::Ping).map_err(|e| e.to_string()));
        out.record(t.elapsed(), reply.map(|_| ()));
    }
    out.finish(started.elapsed())
}

fn expect_pong(reply: Result<Response, mfad_protocol::ClientError>) -> Result<(), String> {
    match reply {
        Ok(Response::Pong { .. }) => Ok(()),
        other => Err(format!("ping: {other:?}")),
    }
}

/// The whole wrong-code conversation the module runs, without libpam:
/// connect, auth_start, prompt, answer, verdict (deny). The users' failure
/// counters go up by one each (the thresholds are 100).
pub fn auth_wrong_direct(daemon: &TestDaemon, users: &[BenchUser]) -> Phase {
    let opts = daemon.client_options();
    let started = Instant::now();
    let mut out = Phase::default();
    for user in users {
        let code = user.wrong_code(users::now().as_secs());
        let t = Instant::now();
        let verdict = conversation(&opts, &user.name, code);
        out.record(t.elapsed(), verdict);
    }
    out.finish(started.elapsed())
}

fn conversation(
    opts: &mfad_protocol::ClientOptions,
    user: &str,
    code: String,
) -> Result<(), String> {
    let fail = |e: mfad_protocol::ClientError| format!("{user}: {e}");
    let mut client = Client::connect(opts).map_err(fail)?;
    client
        .send(&Request::AuthStart(AuthStart {
            user: user.to_owned(),
            service: SERVICE.to_owned(),
            rhost: Some("192.0.2.10".to_owned()),
            ..AuthStart::default()
        }))
        .map_err(fail)?;
    match client.recv().map_err(fail)? {
        Response::Prompt { .. } => {}
        other => return Err(format!("{user}: expected a prompt, got {other:?}")),
    }
    client
        .send(&Request::Answer {
            text: SecretString::new(code),
        })
        .map_err(fail)?;
    match client.recv().map_err(fail)? {
        Response::Verdict {
            decision: Decision::Deny,
            ..
        } => Ok(()),
        other => Err(format!("{user}: expected a deny verdict, got {other:?}")),
    }
}
