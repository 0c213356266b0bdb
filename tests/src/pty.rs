//! A small terminal driver: runs a program (the real `ssh` client) on a
//! pseudo-terminal of its own, waits for text and types answers, as a
//! person at a terminal would. Waiting has a generous upper bound so a
//! broken login fails the test instead of hanging it; nothing is timed.

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::pty::openpty;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long to wait for expected text before failing.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub struct Pty {
    master: std::fs::File,
    child: Child,
    /// Output not consumed by an `expect` yet.
    pending: String,
    /// Everything the program wrote, for failure messages.
    transcript: String,
    closed: bool,
}

impl Pty {
    /// Starts `cmd` with the terminal as its stdin, stdout, stderr and
    /// controlling terminal (ssh reads keyboard-interactive answers from
    /// /dev/tty).
    pub fn spawn(mut cmd: Command) -> Pty {
        let pty = openpty(None, None).expect("openpty");
        let slave: OwnedFd = pty.slave;
        let stdio = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup the pty"));
        cmd.stdin(stdio(&slave))
            .stdout(stdio(&slave))
            .stderr(stdio(&slave));
        // SAFETY: setsid and ioctl are async-signal-safe; the closure
        // allocates nothing. The child becomes a session leader whose
        // controlling terminal is the pty on its stdin.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        drop(slave);
        Pty {
            master: std::fs::File::from(pty.master),
            child,
            pending: String::new(),
            transcript: String::new(),
            closed: false,
        }
    }

    /// Reads what is there within `wait`; false once the program has
    /// closed the terminal.
    fn fill(&mut self, wait: Duration) -> bool {
        if self.closed {
            return false;
        }
        let ms = u16::try_from(wait.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.master.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(_) => return true,
        }
        let mut buf = [0u8; 4096];
        match self.master.read(&mut buf) {
            Ok(0) | Err(_) => {
                // EIO: every slave end is closed (the program exited).
                self.closed = true;
                false
            }
            Ok(n) => {
                let text = String::from_utf8_lossy(&buf[..n]);
                self.pending.push_str(&text);
                self.transcript.push_str(&text);
                true
            }
        }
    }

    /// Waits for the first of `needles`; returns its index and the output
    /// before it (which is consumed with it). `Err`: the transcript, when
    /// none came.
    pub fn expect_any(&mut self, needles: &[&str]) -> Result<(usize, String), String> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let found = needles
                .iter()
                .enumerate()
                .filter_map(|(i, n)| self.pending.find(n).map(|at| (at, i)))
                .min();
            if let Some((at, i)) = found {
                let before = self.pending[..at].to_owned();
                self.pending.drain(..at + needles[i].len());
                return Ok((i, before));
            }
            let now = Instant::now();
            if self.closed || now >= deadline {
                return Err(format!(
                    "none of {needles:?} appeared; transcript:\n{}",
                    self.transcript
                ));
            }
            self.fill((deadline - now).min(Duration::from_millis(200)));
        }
    }

    /// Waits for `needle` and returns the output before it; panics with the
    /// transcript when it does not come.
    #[track_caller]
    pub fn expect(&mut self, needle: &str) -> String {
        match self.expect_any(&[needle]) {
            Ok((_, before)) => before,
            Err(e) => panic!("{e}"),
        }
    }

    /// Types `text` and Enter.
    pub fn send_line(&mut self, text: &str) {
        self.master
            .write_all(format!("{text}\r").as_bytes())
            .expect("write to the pty");
    }

    /// Everything the program wrote so far.
    pub fn transcript(&self) -> &str {
        &self.transcript
    }

    /// Waits for the program to exit (reading its output meanwhile) and
    /// returns its status; kills it and panics if it does not exit.
    pub fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                while self.fill(Duration::from_millis(50)) {}
                return status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("the program did not exit; transcript:\n{}", self.transcript);
            }
            if !self.fill(Duration::from_millis(100)) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
