//! [`SyslogReceiver`]: a syslog socket of the test's own (a Unix datagram
//! socket in the daemon's directory), so tests can assert what mfad sends to
//! syslog without touching the host's /dev/log.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Collects every datagram sent to its socket, from a thread of its own,
/// until dropped.
pub struct SyslogReceiver {
    path: PathBuf,
    datagrams: Arc<Mutex<Vec<Vec<u8>>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SyslogReceiver {
    /// Binds `path` (which must not exist) and starts reading.
    pub fn bind(path: &Path) -> SyslogReceiver {
        let socket = UnixDatagram::bind(path)
            .unwrap_or_else(|e| panic!("bind the syslog receiver {}: {e}", path.display()));
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("set the receiver's read timeout");
        let datagrams = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (datagrams, stop) = (Arc::clone(&datagrams), Arc::clone(&stop));
            std::thread::spawn(move || {
                // Syslog datagrams are small; 64 KiB holds any of them whole.
                let mut buf = vec![0u8; 65536];
                while !stop.load(Ordering::Relaxed) {
                    match socket.recv(&mut buf) {
                        Ok(n) => datagrams.lock().unwrap().push(buf[..n].to_vec()),
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock
                                    | std::io::ErrorKind::TimedOut
                                    | std::io::ErrorKind::Interrupted
                            ) => {}
                        Err(e) => panic!("syslog receiver: {e}"),
                    }
                }
            })
        };
        SyslogReceiver {
            path: path.to_owned(),
            datagrams,
            stop,
            thread: Some(thread),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every datagram received so far, raw.
    pub fn datagrams(&self) -> Vec<Vec<u8>> {
        self.datagrams.lock().unwrap().clone()
    }

    /// How many datagrams arrived so far.
    pub fn count(&self) -> usize {
        self.datagrams.lock().unwrap().len()
    }

    /// The datagrams so far, as text (lossy).
    pub fn messages(&self) -> Vec<String> {
        self.datagrams()
            .iter()
            .map(|d| String::from_utf8_lossy(d).into_owned())
            .collect()
    }

    /// Waits up to `timeout` until some message satisfies `pred`; returns
    /// whether one did. Messages arrive asynchronously, so tests wait for a
    /// known last message before asserting on all of them.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.messages().iter().any(|m| pred(m)) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for SyslogReceiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}
