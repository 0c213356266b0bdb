//! [`Collector`]: a real rsyslogd receiving the audit stream on a loopback
//! port, over TLS (GnuTLS driver, a test CA made here with openssl), plain
//! TCP or UDP, writing each message's structured data and text to a file. It runs
//! with its own config in a temporary directory: no system config, no
//! system service, no /dev/log.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Collector {
    dir: tempfile::TempDir,
    pub port: u16,
    listener: Listener,
    child: Option<Child>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Tls,
    Tcp,
    Udp,
}

/// One message as received: the structured data and the JSON text.
pub struct Received {
    pub sd: String,
    pub record: serde_json::Value,
}

impl Collector {
    /// Starts rsyslogd with a TLS listener and waits until it listens.
    pub fn start_tls() -> Collector {
        Self::start(Listener::Tls)
    }

    /// Starts rsyslogd with a listener of the given kind.
    pub fn start(listener: Listener) -> Collector {
        let dir = tempfile::Builder::new()
            .prefix("mfad-rsyslog-")
            .tempdir()
            .expect("create the collector's directory");
        let port = free_port();
        let d = dir.path().display();
        let input = match listener {
            Listener::Tls => {
                make_ca(dir.path());
                format!(
                    r#"global(defaultNetstreamDriverCAFile="{d}/ca.pem"
       defaultNetstreamDriverCertFile="{d}/server.pem"
       defaultNetstreamDriverKeyFile="{d}/server.key")
module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
input(type="imtcp" port="{port}" address="127.0.0.1")"#
                )
            }
            Listener::Tcp => {
                format!(
                    "module(load=\"imtcp\")\ninput(type=\"imtcp\" port=\"{port}\" address=\"127.0.0.1\")"
                )
            }
            Listener::Udp => {
                format!(
                    "module(load=\"imudp\")\ninput(type=\"imudp\" port=\"{port}\" address=\"127.0.0.1\")"
                )
            }
        };
        let conf = format!(
            r#"global(workDirectory="{d}/work" maxMessageSize="64k")
{input}
template(name="sd_msg" type="string" string="%structured-data%\t%msg%\n")
action(type="omfile" file="{d}/received.log" template="sd_msg")
"#
        );
        std::fs::create_dir(dir.path().join("work")).expect("mkdir work");
        std::fs::write(dir.path().join("rsyslog.conf"), conf).expect("write rsyslog.conf");
        let mut c = Collector {
            dir,
            port,
            listener,
            child: None,
        };
        c.launch();
        c
    }

    /// The CA that signed the collector's certificate (for 127.0.0.1).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// (Re)starts rsyslogd on the same port and waits until it accepts.
    pub fn launch(&mut self) {
        let d = self.dir.path();
        let child = Command::new("rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(d.join("rsyslog.conf"))
            .arg("-i")
            .arg(d.join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("rsyslogd.stderr")).expect("stderr file"))
            .spawn()
            .expect(
                "start rsyslogd (Debian packages rsyslog and rsyslog-gnutls; scripts/deps test)",
            );
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(10);
        // rsyslogd writes its pid file once its inputs are set up; a TCP
        // listener is also checked by connecting.
        let ready = |c: &Self| {
            d.join("rsyslogd.pid").exists()
                && (c.listener == Listener::Udp
                    || TcpStream::connect(("127.0.0.1", c.port)).is_ok())
        };
        while !ready(self) {
            assert!(
                Instant::now() < until,
                "rsyslogd does not listen on port {}: {}",
                self.port,
                std::fs::read_to_string(d.join("rsyslogd.stderr")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills rsyslogd outright, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(self.dir.path().join("rsyslogd.pid"));
    }

    /// Every message received so far.
    pub fn received(&self) -> Vec<Received> {
        let text =
            std::fs::read_to_string(self.dir.path().join("received.log")).unwrap_or_default();
        text.lines()
            .map(|line| {
                let (sd, msg) = line.split_once('\t').unwrap_or(("", line));
                Received {
                    sd: sd.to_owned(),
                    record: serde_json::from_str(msg.trim())
                        .unwrap_or_else(|e| panic!("not a JSON record ({e}): {line}")),
                }
            })
            .collect()
    }

    /// Waits until `done` holds for what was received; panics after `limit`.
    pub fn wait_until(&self, limit: Duration, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let until = Instant::now() + limit;
        loop {
            let got = self.received();
            if done(&got) {
                return got;
            }
            assert!(
                Instant::now() < until,
                "the collector did not get what was expected within {limit:?}; it has {} records",
                got.len()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("find a free loopback port")
}

/// A test CA and a server certificate for 127.0.0.1 signed by it.
fn make_ca(dir: &Path) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509", "-days", "2", "-subj", "/CN=mfad test CA"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &[
                "req",
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
            ][..],
            &ec,
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
    )
    .expect("write server.ext");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "server.ext",
        "-out",
        "server.pem",
    ]);
}
