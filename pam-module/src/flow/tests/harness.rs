//! A scripted daemon on a real Unix socket, a scripted conversation and a
//! log collector, for driving `flow::authenticate` without libpam.

use crate::args::{Args, FailMode};
use crate::conv::{ConvError, Conversation, Env, Level, Log};
use crate::flow::Settings;
use mfad_protocol::{
    AuthStart, LEN_PREFIX, Request, Response, ResponseEnvelope, body_len, parse_request,
    write_frame,
};
use pamsm::PamError;
use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the test daemon waits for the module before the test fails.
const PATIENCE: Duration = Duration::from_secs(10);

pub enum Step {
    /// Read one request and keep it for the test to check.
    Recv,
    Send(Response),
    /// Bytes sent as they are (broken frames).
    Raw(Vec<u8>),
    /// The module must hang up without sending anything more.
    ExpectEof,
    /// Answer nothing and wait for the module to give up and hang up.
    Silence,
}

pub struct Daemon {
    pub dir: PathBuf,
    pub socket: PathBuf,
    handle: Option<JoinHandle<Vec<Request>>>,
}

impl Daemon {
    pub fn start(script: Vec<Step>) -> Self {
        let dir = scratch_dir();
        let socket = dir.join("mfad.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let handle = std::thread::spawn(move || serve(listener, script));
        Self {
            dir,
            socket,
            handle: Some(handle),
        }
    }

    /// Waits for the script to finish and returns what the module sent.
    pub fn requests(mut self) -> Vec<Request> {
        let handle = self.handle.take().unwrap();
        handle.join().expect("the daemon script failed")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh, empty directory per test (tests run in parallel).
pub fn scratch_dir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("pam-mfa-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn serve(listener: UnixListener, script: Vec<Step>) -> Vec<Request> {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + PATIENCE;
    let mut stream = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("the module never connected: {e}"),
        }
    };
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut seen = Vec::new();
    for step in script {
        match step {
            Step::Recv => seen.push(read_request(&mut stream)),
            Step::Send(r) => write_frame(&mut stream, &ResponseEnvelope::new(r)).unwrap(),
            Step::Raw(bytes) => stream.write_all(&bytes).unwrap(),
            Step::ExpectEof | Step::Silence => {
                let mut buf = [0u8; 64];
                match stream.read(&mut buf) {
                    Ok(0) => {}
                    Ok(n) => panic!("the module sent {n} more bytes instead of hanging up"),
                    Err(e) => panic!("the module never hung up: {e}"),
                }
            }
        }
    }
    seen
}

fn read_request(stream: &mut UnixStream) -> Request {
    let mut prefix = [0u8; LEN_PREFIX];
    stream.read_exact(&mut prefix).expect("a request prefix");
    let mut body = vec![0u8; body_len(prefix).unwrap()];
    stream.read_exact(&mut body).expect("a request body");
    parse_request(&body).unwrap()
}

/// A frame with any body, for sending broken JSON.
pub fn raw_frame(body: &[u8]) -> Vec<u8> {
    let mut v = u32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shown {
    Prompt(String, bool),
    Info(String),
    Error(String),
}

/// Answers prompts from a list and records everything shown to the user.
pub struct ScriptedConv {
    answers: VecDeque<Result<&'static str, ConvError>>,
    pub shown: Vec<Shown>,
}

impl ScriptedConv {
    pub fn new(answers: Vec<Result<&'static str, ConvError>>) -> Self {
        Self {
            answers: answers.into(),
            shown: Vec::new(),
        }
    }
}

impl Conversation for ScriptedConv {
    fn prompt(&mut self, text: &str, echo: bool) -> Result<zeroize::Zeroizing<String>, ConvError> {
        self.shown.push(Shown::Prompt(text.to_owned(), echo));
        let answer = self.answers.pop_front().expect("a prompt nobody expected");
        answer.map(|a| zeroize::Zeroizing::new(a.to_owned()))
    }
    fn info(&mut self, text: &str) {
        self.shown.push(Shown::Info(text.to_owned()));
    }
    fn error(&mut self, text: &str) {
        self.shown.push(Shown::Error(text.to_owned()));
    }
}

#[derive(Default)]
pub struct Lines(pub Vec<(Level, String)>);

impl Log for Lines {
    fn log(&mut self, level: Level, msg: &str) {
        self.0.push((level, msg.to_owned()));
    }
}

impl Lines {
    pub fn has(&self, level: Level, needle: &str) -> bool {
        self.0
            .iter()
            .any(|(l, m)| *l == level && m.contains(needle))
    }
}

pub fn alice() -> AuthStart {
    AuthStart {
        user: "alice".into(),
        service: "sshd".into(),
        rhost: Some("192.0.2.7".into()),
        tty: Some("ssh".into()),
        ruser: None,
        ssh_auth_info: None,
        reason: None,
    }
}

impl MapEnv {
    pub fn get_var(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

/// A PAM environment in a map.
#[derive(Default)]
pub struct MapEnv(pub std::collections::BTreeMap<String, String>);

impl Env for MapEnv {
    fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
    fn set(&mut self, name: &str, value: &str) -> Result<(), i32> {
        self.0.insert(name.to_owned(), value.to_owned());
        Ok(())
    }
    fn remove(&mut self, name: &str) {
        self.0.remove(name);
    }
}

/// Settings that trust the test daemon (it runs as us, not necessarily root).
pub fn settings(socket: &Path, failmode: FailMode, timeout_secs: u64) -> Settings {
    let args = Args {
        socket: socket.to_owned(),
        timeout: Duration::from_secs(timeout_secs),
        failmode,
        debug: true,
    };
    let mut s = Settings::new(&args, false);
    s.client.daemon_uid = Some(std::fs::metadata(socket).map_or(0, |m| m.uid()));
    s
}

/// One authentication against `daemon` with the given answers.
pub fn run(
    s: &Settings,
    answers: Vec<Result<&'static str, ConvError>>,
) -> (PamError, ScriptedConv, Lines) {
    let mut conv = ScriptedConv::new(answers);
    let mut log = Lines::default();
    let code = super::super::authenticate(s, alice(), &mut conv, &mut log, &mut MapEnv::default());
    (code, conv, log)
}
