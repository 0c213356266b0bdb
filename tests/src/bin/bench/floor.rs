//! The floor under any daemon on this machine: the conversation of a TOTP
//! login (connect; the request, a prompt, the answer, the verdict: two
//! round trips over a Unix socket, in frames of a real login's sizes) with
//! a server process that does nothing else. No daemon that has to ask for
//! a code can answer faster than this here, nor spend less CPU on a login;
//! mfad's figures are read against it.
//!
//! Two servers, each this binary run as a process of its own
//! (`--floor-server KIND SOCKET`): `bare`, one thread blocking in accept
//! and read; `tokio`, the shape mfad serves in (a multi-thread runtime with
//! its default 2 workers, a task per connection).

use crate::cpu::process_cpu;
use crate::measure::{Phase, together};
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::{Child, Command, ExitCode};
use std::time::{Duration, Instant};

/// The frames of a successful TOTP login as strace shows them, length
/// prefix included: the client's request and answer, the daemon's prompt
/// and verdict.
const REQUEST: usize = 159;
const PROMPT: usize = 88;
const ANSWER: usize = 61;
const VERDICT: usize = 155;

#[derive(Clone, Copy)]
pub enum Kind {
    Bare,
    Tokio,
}

impl Kind {
    pub const ALL: [Kind; 2] = [Kind::Bare, Kind::Tokio];

    fn name(self) -> &'static str {
        match self {
            Kind::Bare => "bare",
            Kind::Tokio => "tokio",
        }
    }
}

/// What one server gave in one run.
pub struct Floor {
    /// Sequential exchanges, each on a new connection.
    pub sequential: Phase,
    /// The server's CPU time per sequential exchange, µs.
    pub cpu_us: f64,
    /// `clients` threads at once, each exchange on a new connection.
    pub concurrent: Phase,
}

/// A frame: a 4-byte big-endian length, then that many bytes.
fn frame(total: usize) -> Vec<u8> {
    let mut f = vec![b'x'; total];
    f[..4].copy_from_slice(&((total - 4) as u32).to_be_bytes());
    f
}

/// Reads one frame; `false` when the peer has gone.
fn read_frame(s: &mut UnixStream, buf: &mut [u8]) -> bool {
    let mut len = [0u8; 4];
    if s.read_exact(&mut len).is_err() {
        return false;
    }
    let n = u32::from_be_bytes(len) as usize;
    n <= buf.len() && s.read_exact(&mut buf[..n]).is_ok()
}

/// One login's conversation, from connect to the verdict.
fn exchange(socket: &Path, frames: &[Vec<u8>; 2], buf: &mut [u8]) -> Result<(), String> {
    let mut s = UnixStream::connect(socket).map_err(|e| format!("connect: {e}"))?;
    for f in frames {
        s.write_all(f).map_err(|e| format!("write: {e}"))?;
        if !read_frame(&mut s, buf) {
            return Err("the floor server closed the connection".into());
        }
    }
    Ok(())
}

/// `--floor-server KIND SOCKET`: serves until killed.
pub fn serve(kind: &str, socket: &Path) -> ExitCode {
    // Gone with the benchmark, even when it is killed.
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    let listener = UnixListener::bind(socket).expect("bind the floor server's socket");
    let replies = [frame(PROMPT), frame(VERDICT)];
    match kind {
        "bare" => {
            let mut buf = [0u8; 1024];
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                for reply in &replies {
                    if !read_frame(&mut conn, &mut buf) || conn.write_all(reply).is_err() {
                        break;
                    }
                }
            }
            ExitCode::SUCCESS
        }
        "tokio" => serve_tokio(listener, replies),
        other => {
            eprintln!("bench: --floor-server: unknown kind {other:?}");
            ExitCode::from(2)
        }
    }
}

fn serve_tokio(listener: UnixListener, replies: [Vec<u8>; 2]) -> ExitCode {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_io()
        .build()
        .expect("a tokio runtime");
    let replies = std::sync::Arc::new(replies);
    runtime.block_on(async move {
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let listener = tokio::net::UnixListener::from_std(listener).expect("a tokio listener");
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                continue;
            };
            let replies = std::sync::Arc::clone(&replies);
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                for reply in replies.iter() {
                    let mut len = [0u8; 4];
                    if conn.read_exact(&mut len).await.is_err() {
                        return;
                    }
                    let n = u32::from_be_bytes(len) as usize;
                    if n > buf.len()
                        || conn.read_exact(&mut buf[..n]).await.is_err()
                        || conn.write_all(reply).await.is_err()
                    {
                        return;
                    }
                }
            });
        }
    })
}

/// The server, started; killed on drop.
struct Server {
    child: Child,
    socket: std::path::PathBuf,
}

impl Server {
    fn start(kind: Kind, dir: &Path) -> Server {
        let socket = dir.join(format!("floor-{}.sock", kind.name()));
        let _ = std::fs::remove_file(&socket);
        let child = Command::new(std::env::current_exe().expect("the benchmark's own path"))
            .arg("--floor-server")
            .arg(kind.name())
            .arg(&socket)
            .spawn()
            .expect("start the floor server");
        // Killed on drop from here on, also when it never listens.
        let mut server = Server { child, socket };
        let deadline = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(&server.socket).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "the {} floor server exited ({status}) before listening on {} (its stderr is above)",
                    kind.name(),
                    server.socket.display()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the {} floor server did not listen on {} within 10 s",
                kind.name(),
                server.socket.display()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        server
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// `n` exchanges one after the other, then `n` from `clients` threads.
pub fn measure(kind: Kind, dir: &Path, n: usize, clients: usize) -> Floor {
    let server = Server::start(kind, dir);
    let frames = [frame(REQUEST), frame(ANSWER)];
    let mut buf = [0u8; 1024];
    let cpu_before = process_cpu(server.child.id());
    let started = Instant::now();
    let mut sequential = Phase::default();
    for _ in 0..n {
        let t = Instant::now();
        let ok = exchange(&server.socket, &frames, &mut buf);
        sequential.record(t.elapsed(), ok);
    }
    let sequential = sequential.finish(started.elapsed());
    let cpu = process_cpu(server.child.id()).saturating_sub(cpu_before);
    let concurrent = together(clients, |i, start| {
        let share = n / clients + usize::from(i < n % clients);
        let mut buf = [0u8; 1024];
        let mut out = Phase::default();
        start();
        for _ in 0..share {
            let t = Instant::now();
            let ok = exchange(&server.socket, &frames, &mut buf);
            out.record(t.elapsed(), ok);
        }
        out
    });
    // A failed exchange is a broken benchmark, not a figure.
    for phase in [&sequential, &concurrent] {
        assert_eq!(
            phase.mismatches,
            0,
            "the {} floor server failed exchanges: {:?}",
            kind.name(),
            phase.examples
        );
    }
    Floor {
        cpu_us: cpu.as_secs_f64() * 1e6 / n.max(1) as f64,
        sequential,
        concurrent,
    }
}
