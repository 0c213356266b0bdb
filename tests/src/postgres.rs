//! [`Postgres`]: a real PostgreSQL server for the fleet tests, a cluster of
//! its own made by `initdb` in a temporary directory and run as the
//! unprivileged `postgres` account (or `nobody`), on a loopback port and a
//! socket in that directory. It can be stopped and started again in the
//! middle of a test. Needs Debian's `postgresql` package; the host's own
//! clusters are never touched.

use crate::smtp::free_port;
use crate::{TestConfig, TestDaemon};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The role and database mfad uses, and the role's password.
pub const ROLE: &str = "mfad";
pub const DATABASE: &str = "mfad";
pub const PASSWORD: &str = "mfad-test-password";
/// The cluster's superuser (trusted on the socket only).
const ADMIN: &str = "admin";

pub struct Postgres {
    dir: TempDir,
    bin: PathBuf,
    uid: u32,
    gid: u32,
    pub port: u16,
    /// `name=value` settings, each passed as `-c` at every start.
    settings: Vec<String>,
    child: Option<Child>,
}

/// The newest server installed under /usr/lib/postgresql.
fn bin_dir() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed (scripts/deps test installs `postgresql`)")
        .filter_map(|e| {
            let e = e.ok()?;
            let v = e.file_name().to_str()?.parse().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("no initdb under /usr/lib/postgresql")
        .1
}

/// The account the server runs as: never root (PostgreSQL refuses).
fn account() -> (u32, u32) {
    for name in ["postgres", "nobody"] {
        if let Ok(Some(u)) = nix::unistd::User::from_name(name) {
            return (u.uid.as_raw(), u.gid.as_raw());
        }
    }
    panic!("neither a postgres nor a nobody account exists");
}

impl Postgres {
    /// A new cluster for the tests, started, with the `mfad` role
    /// (password) and database; fsync off (what is tested is the semantics).
    pub fn start() -> Postgres {
        Self::start_with(&["fsync=off"])
    }

    /// As [`Self::start`], with the server settings `settings` (`name=value`,
    /// each passed as `-c`) instead of the tests' fsync off.
    pub fn start_with(settings: &[&str]) -> Postgres {
        let (uid, gid) = account();
        let dir = tempfile::Builder::new()
            .prefix("mfad-postgres-")
            .tempdir()
            .expect("tempdir");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        nix::unistd::chown(
            dir.path(),
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
        )
        .unwrap();
        let mut pg = Postgres {
            dir,
            bin: bin_dir(),
            uid,
            gid,
            port: free_port(),
            settings: settings.iter().map(|s| (*s).to_owned()).collect(),
            child: None,
        };
        let out = pg
            .command("initdb")
            .arg("-D")
            .arg(pg.data())
            .args([
                "-U",
                ADMIN,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ])
            .args(["--no-sync", "--encoding=UTF8", "--locale=C"])
            .output()
            .expect("run initdb");
        assert!(out.status.success(), "initdb: {}", text(&out));
        pg.start_server();
        pg.admin_sql(&format!("CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'"));
        pg.admin_sql(&format!("CREATE DATABASE {DATABASE} OWNER {ROLE}"));
        pg
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        cmd.uid(self.uid).gid(self.gid).current_dir(self.dir.path());
        cmd
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts the server (again) and waits until it takes connections.
    pub fn start_server(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = fs::File::create(self.dir.path().join("server.log")).unwrap();
        let child = self
            .command("postgres")
            .arg("-D")
            .arg(self.data())
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-k")
            .arg(self.socket_dir())
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "max_connections=200"])
            .args(self.settings.iter().flat_map(|s| ["-c", s.as_str()]))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start postgres");
        self.child = Some(child);
        let started = Instant::now();
        loop {
            let ready = self
                .command("pg_isready")
                .arg("-h")
                .arg(self.socket_dir())
                .arg("-p")
                .arg(self.port.to_string())
                .output()
                .is_ok_and(|o| o.status.success());
            if ready {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "postgres did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server at once, as a crash or a lost network would.
    pub fn stop_server(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGQUIT,
            );
            let _ = child.wait();
        }
    }

    /// The CPU time (user + system) the server has spent: the postmaster,
    /// its live processes, and the ones that have exited (reaped by the
    /// postmaster, so in its children's times). Clock ticks of
    /// /proc/<pid>/stat.
    pub fn cpu(&self) -> Duration {
        let Some(postmaster) = self.child.as_ref().map(Child::id) else {
            return Duration::ZERO;
        };
        // Fields after the command name: 2 is the parent, 12-15 utime,
        // stime, cutime, cstime.
        let stat = |pid: &str| -> Option<Vec<u64>> {
            let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let (_, rest) = text.rsplit_once(") ")?;
            Some(
                rest.split_whitespace()
                    .map(|f| f.parse().unwrap_or(0))
                    .collect(),
            )
        };
        let mut ticks = 0;
        for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
            let name = entry.file_name();
            let Some(fields) = name.to_str().and_then(stat) else {
                continue;
            };
            if name.to_str() == Some(&postmaster.to_string()) {
                ticks += fields[11..15].iter().sum::<u64>();
            } else if fields[1] == u64::from(postmaster) {
                ticks += fields[11] + fields[12];
            }
        }
        // SAFETY: sysconf reads a constant.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        Duration::from_nanos(ticks * 1_000_000_000 / hz)
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Runs SQL as the superuser in `mfad`'s database; returns the rows as
    /// psql prints them unaligned (`a|b` per line).
    pub fn sql(&self, query: &str) -> String {
        self.psql(DATABASE, query)
    }

    fn admin_sql(&self, query: &str) -> String {
        self.psql("postgres", query)
    }

    fn psql(&self, database: &str, query: &str) -> String {
        let out = self
            .command("psql")
            .arg("-h")
            .arg(self.socket_dir())
            .arg("-p")
            .arg(self.port.to_string())
            .args([
                "-U",
                ADMIN,
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-At",
                "-c",
            ])
            .arg(query)
            .output()
            .expect("run psql");
        assert!(out.status.success(), "psql {query}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The `[store]` table for a daemon living in `DIR` (the test config
    /// writes the password to `state/pg.password`).
    pub fn store_table(&self, host_name: &str) -> String {
        format!(
            "[store]\nbackend = \"postgres\"\n\
             url = \"host=127.0.0.1 port={} user={ROLE} dbname={DATABASE} sslmode=disable\"\n\
             password_file = \"DIR/state/pg.password\"\npool_size = 4\n\
             statement_timeout_ms = 2000\nhost_name = \"{host_name}\"\n",
            self.port
        )
    }
}

/// Writes `path` with `contents`, then sets its mode.
pub fn write_private(path: &Path, contents: &[u8], mode: u32) {
    fs::write(path, contents).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

impl Postgres {
    /// A daemon of the fleet named `host`, ready to launch: `config` with
    /// this database as its store, the database password, and (from
    /// `keys_from`) the fleet's key.
    pub fn member(
        &self,
        mut config: TestConfig,
        host: &str,
        keys_from: Option<&TestDaemon>,
    ) -> TestDaemon {
        config.store = Some(self.store_table(host));
        let d = TestDaemon::prepare(config);
        write_private(
            &d.dir().join("state/pg.password"),
            PASSWORD.as_bytes(),
            0o600,
        );
        if let Some(first) = keys_from {
            let key = fs::read(first.dir().join("state/mfad.key")).unwrap();
            write_private(&d.dir().join("state/mfad.key"), &key, 0o400);
        }
        d
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop_server();
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
