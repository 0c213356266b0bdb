//! A scripted daemon and terminal, to run whole commands in unit tests.

use super::{Cli, Ctx, run};
use crate::conn::Daemon;
use crate::error::CliError;
use crate::output::Format;
use crate::pam::{Authenticator, PamError};
use clap::Parser;
use mfad_protocol::{Request, Response};
use std::collections::VecDeque;
use std::io::Cursor;

/// Answers each request with the next scripted reply and records requests
/// as their wire JSON.
#[derive(Default)]
pub struct Script {
    pub replies: VecDeque<Response>,
    pub seen: Vec<serde_json::Value>,
}

impl Daemon for Script {
    fn call(&mut self, request: &Request) -> Result<Response, CliError> {
        self.seen.push(serde_json::to_value(request).unwrap());
        Ok(self
            .replies
            .pop_front()
            .unwrap_or_else(|| panic!("no reply scripted for {request:?}")))
    }

    /// Every reply left, then the end of the stream.
    fn stream(
        &mut self,
        request: &Request,
        each: &mut dyn FnMut(Response) -> Result<(), CliError>,
    ) -> Result<(), CliError> {
        self.seen.push(serde_json::to_value(request).unwrap());
        self.replies.drain(..).try_for_each(each)
    }
}

pub struct Outcome {
    pub result: Result<(), CliError>,
    pub stdout: String,
    pub stderr: String,
    pub requests: Vec<serde_json::Value>,
}

/// PAM that answers every conversation the same way.
pub struct ScriptedPam(pub Result<(), &'static str>);

impl Authenticator for ScriptedPam {
    fn authenticate(&mut self, service: &str, _: &str, _: Option<&str>) -> Result<(), PamError> {
        self.0.map_err(|text| PamError::Failed {
            service: service.to_owned(),
            step: "authentication",
            text: text.to_owned(),
        })
    }
}

/// Parses `args` like the real binary and runs the command against
/// `replies`, with `stdin` as standard input.
pub fn mfactl(args: &[&str], replies: Vec<Response>, stdin: &str, tty: bool) -> Outcome {
    run_with(args, replies, stdin, tty, Ok(()))
}

/// As [`mfactl`], with PAM answering `pam` and no terminal.
pub fn mfactl_with_pam(
    args: &[&str],
    replies: Vec<Response>,
    stdin: &str,
    pam: Result<(), &'static str>,
) -> Outcome {
    run_with(args, replies, stdin, false, pam)
}

fn run_with(
    args: &[&str],
    replies: Vec<Response>,
    stdin: &str,
    tty: bool,
    pam: Result<(), &'static str>,
) -> Outcome {
    let cli = Cli::try_parse_from(std::iter::once("mfactl").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    let mut script = Script {
        replies: replies.into(),
        seen: Vec::new(),
    };
    let (mut out, mut prompt) = (Vec::new(), Vec::new());
    let mut input = Cursor::new(stdin.as_bytes().to_vec());
    let mut ctx = Ctx {
        format: if cli.json {
            Format::Json
        } else {
            Format::Human
        },
        daemon: &mut script,
        out: &mut out,
        prompt: &mut prompt,
        input: &mut input,
        stdin_is_tty: tty,
        stdout_is_tty: false,
        pam: &mut ScriptedPam(pam),
    };
    let result = run(cli.command, &mut ctx);
    assert!(
        script.replies.is_empty(),
        "unused replies: {:?}",
        script.replies
    );
    Outcome {
        result,
        stdout: String::from_utf8(out).unwrap(),
        stderr: String::from_utf8(prompt).unwrap(),
        requests: script.seen,
    }
}

/// The reply `Response::Error` with `code`.
pub fn error(code: mfad_protocol::ErrorCode) -> Response {
    Response::Error {
        code,
        message: format!("daemon says {code:?}"),
        supported: Vec::new(),
    }
}

pub const OFFER_URI: &str = "otpauth://totp/mfad:alice?secret=JBSWY3DPEHPK3PXP&issuer=mfad";

/// The reply to `enroll_totp_begin` for alice: the RFC 4648 example secret.
pub fn offer() -> Response {
    Response::EnrollmentOffer(mfad_protocol::EnrollmentOffer {
        user: "alice".into(),
        uri: OFFER_URI.into(),
        secret_base32: "JBSWY3DPEHPK3PXP".into(),
        issuer: "mfad".into(),
        algorithm: "SHA1".into(),
        digits: 6,
        period: 30,
        expires: 1_795_460_645,
    })
}

pub fn done(message: &str) -> Response {
    Response::Done {
        message: message.to_owned(),
    }
}
