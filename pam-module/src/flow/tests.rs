//! The relay against a scripted daemon on a real socket: the normal paths.

mod failures;
mod harness;

use crate::args::FailMode::{Closed, Open};
use crate::conv::{ConvError, Level};
use harness::{Daemon, Lines, MapEnv, ScriptedConv, Shown, Step, alice, run, settings};
use mfad_protocol::SecretString;
use mfad_protocol::{Decision, Request, Response};
use pamsm::PamError;

fn prompt(echo: bool, text: &str) -> Step {
    Step::Send(Response::Prompt {
        echo,
        text: text.into(),
    })
}

fn verdict(decision: Decision, message: &str) -> Step {
    Step::Send(Response::Verdict {
        decision,
        message: message.into(),
        ticket: None,
    })
}

fn info(text: &str) -> Step {
    Step::Send(Response::Info { text: text.into() })
}

fn answer_of(r: &Request) -> &str {
    match r {
        Request::Answer { text } => text.expose(),
        other => panic!("expected an answer, got {other:?}"),
    }
}

#[test]
fn allow_after_relaying_prompts_with_their_echo_flags() {
    let d = Daemon::start(vec![
        Step::Recv,
        prompt(false, "Code sent to y***@example.com. Code: "),
        Step::Recv,
        prompt(true, "Trust this device for 30 days? [y/N] "),
        Step::Recv,
        verdict(Decision::Allow, "Welcome."),
    ]);
    let s = settings(&d.socket, Closed, 5);
    let (code, conv, log) = run(&s, vec![Ok("123456"), Ok("y")]);
    assert_eq!(code, PamError::SUCCESS);
    assert_eq!(
        conv.shown,
        vec![
            Shown::Prompt("Code sent to y***@example.com. Code: ".into(), false),
            Shown::Prompt("Trust this device for 30 days? [y/N] ".into(), true),
            Shown::Info("Welcome.".into()),
        ]
    );
    let reqs = d.requests();
    assert_eq!(reqs.len(), 3, "{reqs:?}");
    match &reqs[0] {
        Request::AuthStart(a) => {
            assert_eq!((a.user.as_str(), a.service.as_str()), ("alice", "sshd"));
            assert_eq!(a.rhost.as_deref(), Some("192.0.2.7"));
            assert_eq!(a.tty.as_deref(), Some("ssh"));
            assert_eq!(a.ruser, None);
        }
        other => panic!("first request was {other:?}"),
    }
    assert_eq!(answer_of(&reqs[1]), "123456");
    assert_eq!(answer_of(&reqs[2]), "y");
    // debug logs each step, never an answer.
    assert!(log.has(Level::Debug, "received prompt (echo off)"));
    assert!(log.has(Level::Debug, "received prompt (echo on)"));
    assert!(log.has(Level::Debug, "sent answer"));
    assert!(log.0.iter().all(|(_, m)| !m.contains("123456")));
}

#[test]
fn deny_locked_and_their_messages() {
    let cases = [
        (Decision::Deny, "Wrong code.", PamError::AUTH_ERR),
        (
            Decision::Locked,
            "Too many failures; try again in 5 minutes.",
            PamError::MAXTRIES,
        ),
    ];
    for (decision, message, expected) in cases {
        let d = Daemon::start(vec![Step::Recv, verdict(decision, message)]);
        let (code, conv, _) = run(&settings(&d.socket, Open, 5), vec![]);
        assert_eq!(code, expected, "{decision:?}");
        assert_eq!(conv.shown, vec![Shown::Error(message.into())]);
        d.requests();
    }
}

#[test]
fn empty_verdict_messages_are_not_shown() {
    for (decision, expected) in [
        (Decision::Allow, PamError::SUCCESS),
        (Decision::Pass, PamError::IGNORE),
        (Decision::Deny, PamError::AUTH_ERR),
    ] {
        let d = Daemon::start(vec![Step::Recv, verdict(decision, "")]);
        let (code, conv, _) = run(&settings(&d.socket, Closed, 5), vec![]);
        assert_eq!(code, expected);
        assert!(conv.shown.is_empty(), "{:?}", conv.shown);
        d.requests();
    }
}

#[test]
fn info_and_error_messages_are_relayed_in_order() {
    let d = Daemon::start(vec![
        Step::Recv,
        info("A code was sent."),
        Step::Send(Response::ErrorMsg {
            text: "That code was already used; wait for the next one.".into(),
        }),
        prompt(false, "Code: "),
        Step::Recv,
        verdict(Decision::Allow, ""),
    ]);
    let (code, conv, _) = run(&settings(&d.socket, Closed, 5), vec![Ok("654321")]);
    assert_eq!(code, PamError::SUCCESS);
    assert_eq!(
        conv.shown,
        vec![
            Shown::Info("A code was sent.".into()),
            Shown::Error("That code was already used; wait for the next one.".into()),
            Shown::Prompt("Code: ".into(), false),
        ]
    );
    assert_eq!(answer_of(&d.requests()[1]), "654321");
}

#[test]
fn pam_silent_shows_prompts_only() {
    let d = Daemon::start(vec![
        Step::Recv,
        info("hello"),
        Step::Send(Response::ErrorMsg {
            text: "oops".into(),
        }),
        prompt(false, "Code: "),
        Step::Recv,
        verdict(Decision::Deny, "Wrong code."),
    ]);
    let mut s = settings(&d.socket, Closed, 5);
    s.silent = true;
    let (code, conv, _) = run(&s, vec![Ok("1")]);
    assert_eq!(code, PamError::AUTH_ERR);
    assert_eq!(conv.shown, vec![Shown::Prompt("Code: ".into(), false)]);
    d.requests();
}

#[test]
fn a_failed_conversation_hangs_up_without_answering() {
    for failure in [ConvError::NoResponse, ConvError::Failed(19)] {
        let d = Daemon::start(vec![Step::Recv, prompt(false, "Code: "), Step::ExpectEof]);
        let (code, _, log) = run(&settings(&d.socket, Open, 5), vec![Err(failure)]);
        assert_eq!(code, PamError::CONV_ERR);
        assert!(log.has(Level::Notice, "conversation"));
        let reqs = d.requests();
        assert_eq!(reqs.len(), 1);
        assert!(matches!(reqs[0], Request::AuthStart(_)));
    }
}

#[test]
fn an_allow_ticket_goes_to_the_pam_environment_and_only_to_the_session_hook() {
    let d = Daemon::start(vec![
        Step::Recv,
        Step::Send(Response::Verdict {
            decision: Decision::Allow,
            message: String::new(),
            ticket: Some(SecretString::new("t0ken")),
        }),
    ]);
    let s = settings(&d.socket, Closed, 5);
    let mut env = MapEnv::default();
    let (mut conv, mut log) = (ScriptedConv::new(vec![]), Lines::default());
    let code = crate::flow::authenticate(&s, alice(), &mut conv, &mut log, &mut env);
    assert_eq!(code, PamError::SUCCESS);
    assert_eq!(env.get_var("MFAD_TICKET"), Some("t0ken"));
    d.requests();

    // open_session takes it out of the environment before anything else,
    // and sends it; close_session never sends one.
    let d = Daemon::start(vec![
        Step::Recv,
        Step::Send(Response::Done {
            message: String::new(),
        }),
    ]);
    let s = settings(&d.socket, Closed, 5);
    let code = crate::session::report(&s, crate::session::Hook::Open, alice(), &mut env, &mut log);
    assert_eq!(code, PamError::SUCCESS);
    assert_eq!(env.get_var("MFAD_TICKET"), None);
    match &d.requests()[0] {
        Request::SessionOpen(r) => {
            assert_eq!(r.ticket.as_ref().map(SecretString::expose), Some("t0ken"));
            assert_eq!((r.user.as_str(), r.service.as_str()), ("alice", "sshd"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_session_hook_succeeds_and_logs_when_the_daemon_is_down() {
    let dir = harness::scratch_dir();
    let s = settings(&dir.join("none.sock"), Closed, 1);
    let mut env = MapEnv::default();
    env.0.insert("MFAD_TICKET".into(), "t".into());
    let mut log = Lines::default();
    let code = crate::session::report(&s, crate::session::Hook::Open, alice(), &mut env, &mut log);
    assert_eq!(code, PamError::SUCCESS);
    assert!(env.0.is_empty(), "the ticket must be removed");
    assert!(
        log.has(Level::Err, "cannot report the session open"),
        "{:?}",
        log.0
    );
    std::fs::remove_dir_all(dir).unwrap();
}
