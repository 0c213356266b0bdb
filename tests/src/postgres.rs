//! [`Postgres`]: a real PostgreSQL server for the fleet tests, a cluster of
//! its own made by `initdb` in a temporary directory and run as the
//! unprivileged `postgres` account (or `nobody`), on a loopback port and a
//! socket in that directory. It can be stopped and started again in the
//! middle of a test. Needs Debian's `postgresql` package; the host's own
//! clusters are never touched.

use crate::certs::make_certs;
use crate::smtp::free_port;
use crate::{TestConfig, TestDaemon};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// What is tested is the semantics: no disk flushes.
const TEST_SETTINGS: &[&str] = &["fsync=off"];
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
    /// Serving TLS with a certificate from `ca.pem` in its directory.
    tls: bool,
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
    /// A new cluster, started, with the `mfad` role (password) and database.
    pub fn start() -> Postgres {
        Self::start_with(false, TEST_SETTINGS)
    }

    /// A cluster as [`Self::start`] makes, with the server settings
    /// `settings` (`name=value`, each passed as `-c`) in place of the tests'
    /// fsync off: the benchmark's, with the production default fsync on.
    pub fn start_configured(settings: &[&str]) -> Postgres {
        Self::start_with(false, settings)
    }

    /// As [`Self::start`], serving TLS only, with a certificate for
    /// 127.0.0.1 from a test CA ([`Self::ca_file`]); a second CA that signed
    /// nothing of it is at [`Self::other_ca_file`].
    pub fn start_tls() -> Postgres {
        Self::start_with(true, TEST_SETTINGS)
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn other_ca_file(&self) -> PathBuf {
        self.dir.path().join("other-ca.pem")
    }

    fn start_with(tls: bool, settings: &[&str]) -> Postgres {
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
            tls,
        };
        if tls {
            make_certs(pg.dir.path(), "");
            make_certs(pg.dir.path(), "other-");
            // The server reads its key as its own account, private.
            for name in ["server.pem", "server.key"] {
                let path = pg.dir.path().join(name);
                nix::unistd::chown(
                    &path,
                    Some(nix::unistd::Uid::from_raw(uid)),
                    Some(nix::unistd::Gid::from_raw(gid)),
                )
                .unwrap();
                fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
            }
        }
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
        let mut cmd = self.command("postgres");
        if self.tls {
            let path = |name: &str| self.dir.path().join(name).display().to_string();
            cmd.args(["-c", "ssl=on"])
                .args(["-c", &format!("ssl_cert_file={}", path("server.pem"))])
                .args(["-c", &format!("ssl_key_file={}", path("server.key"))]);
        }
        let child = cmd
            .arg("-D")
            .arg(self.data())
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-k")
            .arg(self.socket_dir())
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(self.settings.iter().flat_map(|s| ["-c", s.as_str()]))
            .args(["-c", "max_connections=200"])
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

    /// Runs `lock` (statements that take a lock, in a transaction) in a
    /// session of its own that keeps the lock `secs` seconds, and returns
    /// once `held` (a count over pg_locks) is not 0. Join the handle to wait
    /// for the session's end.
    pub fn hold(&self, lock: &str, secs: u32, held: &str) -> std::thread::JoinHandle<String> {
        let shared = self.shared();
        let script = format!("BEGIN; {lock}; SELECT pg_sleep({secs}); COMMIT;");
        let session = std::thread::spawn(move || shared.psql(DATABASE, &script));
        let started = Instant::now();
        while self.sql(held).trim() == "0" {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the lock was never taken: {lock}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        session
    }

    /// Freezes the server and every backend (SIGSTOP): connections stay
    /// open and nothing answers, as with a hung host. [`Self::thaw`] undoes it.
    pub fn freeze(&self) {
        self.signal_all(nix::sys::signal::Signal::SIGSTOP);
    }

    pub fn thaw(&self) {
        self.signal_all(nix::sys::signal::Signal::SIGCONT);
    }

    fn signal_all(&self, signal: nix::sys::signal::Signal) {
        for (pid, _) in self.processes() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
        }
    }

    /// The postmaster (first) and its children (the backends), found by
    /// parent pid, each with the fields of /proc/<pid>/stat after the
    /// command name (0 is the state, 1 the parent, 11-14 utime, stime,
    /// cutime, cstime in clock ticks).
    fn processes(&self) -> Vec<(i32, Vec<u64>)> {
        let Some(child) = &self.child else {
            return Vec::new();
        };
        let main = child.id() as i32;
        let stat = |pid: i32| -> Option<Vec<u64>> {
            let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let (_, rest) = text.rsplit_once(')')?;
            Some(
                rest.split_whitespace()
                    .map(|f| f.parse().unwrap_or(0))
                    .collect(),
            )
        };
        let mut found: Vec<(i32, Vec<u64>)> = stat(main).map(|f| (main, f)).into_iter().collect();
        for entry in fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if let Some(fields) = stat(pid).filter(|f| f.get(1) == Some(&(main as u64))) {
                found.push((pid, fields));
            }
        }
        found
    }

    /// The CPU time (user + system) the server has spent: the postmaster,
    /// its live backends, and the ones that have exited (reaped by the
    /// postmaster, so in its children's times).
    pub fn cpu(&self) -> Duration {
        let ticks: u64 = self
            .processes()
            .iter()
            .enumerate()
            .map(|(i, (_, f))| {
                let own = f.get(11).unwrap_or(&0) + f.get(12).unwrap_or(&0);
                let reaped = f.get(13).unwrap_or(&0) + f.get(14).unwrap_or(&0);
                if i == 0 { own + reaped } else { own }
            })
            .sum();
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
        self.shared().psql(database, query)
    }

    /// Where this cluster is, for [`Shared`].
    pub fn shared(&self) -> Shared {
        Shared {
            bin: self.bin.clone(),
            socket_dir: self.socket_dir().to_owned(),
            port: self.port,
        }
    }

    /// The `[store]` table for a daemon living in `DIR` (the test config
    /// writes the password to `state/pg.password`).
    pub fn store_table(&self, host_name: &str) -> String {
        self.store_table_trusting(host_name, self.tls.then(|| self.ca_file()).as_deref())
    }

    /// As [`Self::store_table`], verifying the server against `ca_file`
    /// (`None`: no TLS at all).
    pub fn store_table_trusting(&self, host_name: &str, ca_file: Option<&Path>) -> String {
        self.shared().store_table(DATABASE, host_name, ca_file)
    }
}

/// The variable that hands a running cluster ([`Postgres::shared`]) to the
/// test daemons of another process: `SOCKET_DIR PORT`. With it set (by
/// `with_postgres`, under which scripts/test runs end-to-end tests a second
/// time), every [`crate::TestDaemon`] without a `[store]` of its own gets a
/// database of its own in that cluster instead of a SQLite file.
pub const SHARED_ENV: &str = "MFAD_TEST_POSTGRES";

/// A running cluster: how to reach it.
#[derive(Debug, Clone)]
pub struct Shared {
    bin: PathBuf,
    socket_dir: PathBuf,
    pub port: u16,
}

impl Shared {
    /// The cluster named by [`SHARED_ENV`], if it is set.
    pub fn from_env() -> Option<Shared> {
        let value = std::env::var(SHARED_ENV).ok()?;
        let (dir, port) = value.split_once(' ')?;
        Some(Shared {
            bin: bin_dir(),
            socket_dir: dir.into(),
            port: port.parse().ok()?,
        })
    }

    pub fn to_env(&self) -> String {
        format!("{} {}", self.socket_dir.display(), self.port)
    }

    /// Runs SQL as the superuser (trusted on the cluster's socket); returns
    /// the rows as psql prints them unaligned (`a|b` per line).
    pub fn psql(&self, database: &str, query: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .arg("-h")
            .arg(&self.socket_dir)
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-U", ADMIN, "-d", database])
            .args(["-v", "ON_ERROR_STOP=1", "-At", "-c"])
            .arg(query)
            .output()
            .expect("run psql");
        assert!(out.status.success(), "psql {query}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// A new database owned by the `mfad` role.
    pub fn create_database(&self, name: &str) {
        self.psql("postgres", &format!("CREATE DATABASE {name} OWNER {ROLE}"));
    }

    /// Drops database `name`; quietly, since it runs in `Drop` (a cluster
    /// that is gone takes its databases with it).
    pub fn drop_database(&self, name: &str) {
        let _ = Command::new(self.bin.join("psql"))
            .arg("-h")
            .arg(&self.socket_dir)
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-U", ADMIN, "-d", "postgres", "-c"])
            .arg(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .output();
    }

    /// The `[store]` table for a daemon in `DIR` on database `name` (the
    /// password goes to `state/pg.password`), verifying the server against
    /// `ca_file` (`None`: no TLS at all).
    pub fn store_table(&self, name: &str, host_name: &str, ca_file: Option<&Path>) -> String {
        let tls = match ca_file {
            Some(ca) => format!("ca_file = \"{}\"\n", ca.display()),
            None => String::new(),
        };
        let sslmode = if ca_file.is_some() {
            ""
        } else {
            " sslmode=disable"
        };
        format!(
            "[store]\nbackend = \"postgres\"\n\
             url = \"host=127.0.0.1 port={} user={ROLE} dbname={name}{sslmode}\"\n\
             password_file = \"DIR/state/pg.password\"\n{tls}pool_size = 4\n\
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
    /// this database as its store, and (from `keys_from`) the fleet's key.
    pub fn member(
        &self,
        mut config: TestConfig,
        host: &str,
        keys_from: Option<&TestDaemon>,
    ) -> TestDaemon {
        config.store = Some(self.store_table(host));
        let d = TestDaemon::prepare(config);
        if let Some(first) = keys_from {
            let key = fs::read(first.dir().join("state/mfad.key")).unwrap();
            write_private(&d.dir().join("state/mfad.key"), &key, 0o400);
        }
        d
    }

    /// A migrated database and two daemons, "web-1" and "web-2", each
    /// with its config changed by `adjust`, serving `service`.
    pub fn pair(
        &self,
        service: &str,
        adjust: impl Fn(&mut TestConfig),
    ) -> (TestDaemon, TestDaemon) {
        let mut a = self.member(TestConfig::default(), "web-1", None);
        adjust(a.config_mut());
        a.migrate();
        a.launch();
        a.write_pam_service(service, &[]);
        let mut b = self.member(TestConfig::default(), "web-2", Some(&a));
        adjust(b.config_mut());
        b.launch();
        b.write_pam_service(service, &[]);
        (a, b)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.thaw();
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
