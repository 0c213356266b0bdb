//! [`SmtpServer`]: a real SMTP server on loopback, Debian's python3-aiosmtpd
//! with its Maildir handler, started and killed by the test. Tests read the
//! delivered messages (and the codes in them) from the Maildir.

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's interpreter, where python3-aiosmtpd is installed (a `python3`
/// earlier on PATH may be another one).
const PYTHON: &str = "/usr/bin/python3";

pub struct SmtpServer {
    child: Child,
    port: u16,
    inbox: Mailbox,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for SmtpServer {
    type Target = Mailbox;
    fn deref(&self) -> &Mailbox {
        &self.inbox
    }
}

impl SmtpServer {
    /// Starts `python3 -m aiosmtpd` on a free loopback port and waits until
    /// it accepts connections.
    pub fn start() -> SmtpServer {
        let dir = tempfile::Builder::new()
            .prefix("mfad-smtp-")
            .tempdir()
            .expect("create the maildir's directory");
        let port = free_port();
        let mut cmd = Command::new(PYTHON);
        cmd.args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir.path().join("mail"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // SAFETY: prctl is async-signal-safe; the server dies with the test.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| {
            panic!("cannot run {PYTHON} -m aiosmtpd (apt-get install python3-aiosmtpd): {e}")
        });
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("aiosmtpd exited at start ({status}); is python3-aiosmtpd installed?");
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "aiosmtpd did not listen on port {port} within 15 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let inbox = Mailbox {
            new: dir.path().join("mail").join("new"),
        };
        SmtpServer {
            child,
            port,
            inbox,
            _dir: dir,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle on the delivered messages, cheap to clone into a responder.
    pub fn inbox(&self) -> Mailbox {
        self.inbox.clone()
    }
}

/// The Maildir an [`SmtpServer`] delivers to.
#[derive(Debug, Clone)]
pub struct Mailbox {
    new: PathBuf,
}

impl Mailbox {
    /// Every message delivered so far, as received (headers and body),
    /// oldest first.
    pub fn messages(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.new) else {
            return Vec::new();
        };
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        files.sort();
        files
            .into_iter()
            .filter_map(|(_, p)| std::fs::read_to_string(p).ok())
            .collect()
    }

    /// Waits until `n` messages have arrived; panics after 10 s.
    pub fn wait_for(&self, n: usize) -> Vec<String> {
        crate::wait_for_count("messages", n, || self.messages())
    }

    /// The code in the newest message; panics if there is none.
    pub fn last_code(&self) -> String {
        let last = self.messages().pop().expect("no email was delivered");
        crate::sms::code_in(&body(&last)).unwrap_or_else(|| panic!("no code in {last}"))
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nothing listens on at the moment of the call.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a free loopback port")
}

/// The message body with quoted-printable soft line breaks undone, so a
/// code split across lines reads whole.
pub fn body(message: &str) -> String {
    let body = message
        .split_once("\n\n")
        .or_else(|| message.split_once("\r\n\r\n"))
        .map_or(message, |(_, b)| b);
    body.replace("=\r\n", "").replace("=\n", "")
}
