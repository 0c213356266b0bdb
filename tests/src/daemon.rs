//! [`TestDaemon`]: the real `mfad` binary running in a temporary directory.
//!
//! Layout of the directory (0755, so non-root peers reach the socket):
//! `mfad.toml`, `policy.toml`, `mfad.sock`, `mfad.stderr`, `mfad.stdout`,
//! `pam.d/` (service files for [`crate::PamSession`]) and `state/` (0700:
//! the key and the database).

mod config;
mod login;
mod raw;
mod run;
mod syslog;
mod tools;

pub use config::{
    CodeConfig, EmailConfig, LimitsConfig, LockoutConfig, SmsConfig, TestConfig, TestPolicy,
    TotpConfig,
};
pub use login::TEST_RHOST;
pub use raw::{auth_start_frame, is_permission_denied, ping_frame};
pub use run::{connect_as, output_within, run_as, run_as_with_stdin, run_with_stdin};
pub use syslog::SyslogReceiver;
pub use tools::Enrollment;

use crate::{bins, postgres};
use mfad_protocol::{Client, ClientOptions, Request, Response};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::fs::{File, OpenOptions, Permissions};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long the daemon gets to answer its first ping, and to exit on SIGTERM.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

pub struct TestDaemon {
    dir: tempfile::TempDir,
    config: TestConfig,
    child: Option<Child>,
    /// Set in mfad's environment (what systemd would set).
    env: Vec<(String, String)>,
    /// The database of its own in a shared PostgreSQL cluster
    /// ([`postgres::SHARED_ENV`]), migrated before the first start.
    postgres: Option<(postgres::Shared, String, bool)>,
}

impl TestDaemon {
    /// A daemon with the default [`TestConfig`].
    pub fn start() -> TestDaemon {
        Self::with_config(TestConfig::default())
    }

    /// Writes the config and policy, starts `mfad --config`, and waits until
    /// it answers a ping. Panics (with the daemon's stderr) if it does not.
    pub fn with_config(config: TestConfig) -> TestDaemon {
        let mut daemon = Self::prepare(config);
        daemon.launch();
        daemon
    }

    /// As [`Self::with_config`], with `pam.d/<service>` running pam_mfa.so
    /// against it.
    pub fn serving(service: &str, config: TestConfig) -> TestDaemon {
        let daemon = Self::with_config(config);
        daemon.write_pam_service(service, &[]);
        daemon
    }

    /// Creates the directory and writes the config and policy, but does not
    /// start mfad: for tests that put something in place first (a syslog
    /// receiver, a bad key), then call [`Self::launch`] or
    /// [`Self::start_expecting_failure`].
    pub fn prepare(config: TestConfig) -> TestDaemon {
        crate::require_root();
        let dir = tempfile::Builder::new()
            .prefix("mfad-test-")
            .tempdir()
            .expect("create the daemon's temporary directory");
        std::fs::set_permissions(dir.path(), Permissions::from_mode(0o755)).expect("chmod 0755");
        let state = dir.path().join("state");
        std::fs::create_dir(&state).expect("create state/");
        std::fs::set_permissions(&state, Permissions::from_mode(0o700)).expect("chmod 0700");
        let mut daemon = TestDaemon {
            dir,
            config,
            child: None,
            env: Vec::new(),
            postgres: None,
        };
        if daemon.config.store.is_none()
            && let Some(shared) = postgres::Shared::from_env()
        {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let name = format!(
                "mfad_t{}_{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            );
            shared.create_database(&name);
            daemon.config.store = Some(shared.store_table(&name, "test", None));
            daemon.postgres = Some((shared, name, false));
        }
        daemon.write_config();
        std::fs::write(daemon.policy_path(), daemon.config.policy.render())
            .expect("write policy.toml");
        daemon
    }

    /// Writes the current config and policy and starts mfad (which must not
    /// be running), waiting until it answers a ping.
    pub fn launch(&mut self) {
        if let Err(f) = self.try_launch() {
            panic!(
                "mfad exited during startup ({}); stderr:\n{}",
                f.status, f.stderr
            );
        }
    }

    /// Sets `key` in the environment of mfad's next start.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.push((key.to_owned(), value.to_owned()));
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn config(&self) -> &TestConfig {
        &self.config
    }

    /// Changes to the config take effect at the next [`Self::restart`].
    pub fn config_mut(&mut self) -> &mut TestConfig {
        &mut self.config
    }

    pub fn socket(&self) -> PathBuf {
        self.dir().join("mfad.sock")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir().join("mfad.toml")
    }

    pub fn policy_path(&self) -> PathBuf {
        self.dir().join("policy.toml")
    }

    /// The directory holding PAM service files for this daemon.
    pub fn pam_confdir(&self) -> PathBuf {
        self.dir().join("pam.d")
    }

    fn write_config(&self) {
        std::fs::write(self.config_path(), self.config.render(self.dir()))
            .expect("write mfad.toml");
        let password = self.dir().join("state/pg.password");
        if self
            .config
            .store
            .as_deref()
            .is_some_and(|s| s.contains("DIR/state/pg.password"))
            && !password.exists()
        {
            std::fs::write(&password, postgres::PASSWORD).expect("write the database password");
            std::fs::set_permissions(&password, Permissions::from_mode(0o600))
                .expect("chmod the database password");
        }
        if let Some(sms) = &self.config.sms {
            let path = self.dir().join(sms.secret_path());
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
            std::fs::write(&path, format!("{}\n", sms.secret)).expect("write the SMS secret");
            std::fs::set_permissions(&path, Permissions::from_mode(sms.secret_mode))
                .expect("chmod the SMS secret");
        }
    }

    /// Replaces the policy file; the running daemon sees it after [`Self::restart`].
    pub fn write_policy(&mut self, policy: &TestPolicy) {
        self.config.policy = policy.clone();
        std::fs::write(self.policy_path(), policy.render()).expect("write policy.toml");
    }

    fn log_file(&self, name: &str) -> File {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir().join(name))
            .unwrap_or_else(|e| panic!("open {name}: {e}"))
    }

    /// `mfad --config <dir>/mfad.toml`, with its output appended to
    /// `mfad.stdout` and `mfad.stderr`, dying with the thread that spawns it.
    fn command(&self) -> Command {
        let mut cmd = Command::new(bins::mfad());
        cmd.arg("--config")
            .arg(self.config_path())
            .current_dir(self.dir())
            .env_remove("NOTIFY_SOCKET")
            // systemd's LoadCredential= directory, for `credential = NAME`.
            .env(
                "CREDENTIALS_DIRECTORY",
                self.dir().join("state/credentials"),
            )
            .env("RUST_BACKTRACE", "1")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(self.log_file("mfad.stdout"))
            .stderr(self.log_file("mfad.stderr"));
        // SAFETY: prctl is async-signal-safe; the closure allocates nothing.
        // The daemon then dies with the thread that spawned it (the test's),
        // even when the test binary is killed before Drop runs.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd
    }

    /// Runs `mfad --migrate` on this daemon's config (its PostgreSQL
    /// store), which must succeed.
    pub fn migrate(&self) {
        let out = Command::new(bins::mfad())
            .arg("--config")
            .arg(self.config_path())
            .arg("--migrate")
            .output()
            .expect("run mfad --migrate");
        assert!(out.status.success(), "mfad --migrate: {}", show(&out));
    }

    /// Starts mfad (which must not be running) on the current config and
    /// policy, and waits until it answers a ping (`Ok`) or exits (`Err`,
    /// with how and what it said). Panics, after killing it, if neither
    /// happens within 10 s.
    pub fn try_launch(&mut self) -> Result<(), StartFailure> {
        assert!(self.child.is_none(), "mfad is already running");
        self.write_config();
        if let Some((_, _, false)) = &self.postgres {
            self.migrate();
            if let Some((_, _, migrated)) = &mut self.postgres {
                *migrated = true;
            }
        }
        self.write_policy(&self.config.policy.clone());
        let before = self.log_text().len();
        let started = Instant::now();
        self.child = Some(self.command().spawn().expect("spawn mfad"));
        loop {
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                self.child = None;
                let stderr = self.log_text().get(before..).unwrap_or_default().to_owned();
                return Err(StartFailure {
                    status,
                    stderr,
                    elapsed: started.elapsed(),
                });
            }
            let last = match self.try_ping() {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if started.elapsed() >= READY_TIMEOUT {
                self.kill();
                panic!(
                    "mfad neither answered a ping nor exited within {READY_TIMEOUT:?} \
                     ({last}); stderr:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// As [`Self::try_launch`], expecting mfad to refuse to start: returns
    /// how it exited. Panics, after killing it, if it starts serving.
    pub fn start_expecting_failure(&mut self) -> StartFailure {
        match self.try_launch() {
            Err(failure) => failure,
            Ok(()) => {
                self.kill();
                panic!(
                    "mfad started and answered a ping instead of refusing to start; stderr:\n{}",
                    self.log_text()
                );
            }
        }
    }

    fn try_ping(&self) -> Result<(), String> {
        let opts = self.client_options();
        let mut client = Client::connect(&opts).map_err(|e| e.to_string())?;
        match client.call(&Request::Ping).map_err(|e| e.to_string())? {
            Response::Pong { .. } => Ok(()),
            other => Err(format!("ping answered with {other:?}")),
        }
    }

    /// Options for a protocol client of this daemon (root-owned socket).
    pub fn client_options(&self) -> ClientOptions {
        ClientOptions {
            socket: self.socket(),
            ..ClientOptions::default()
        }
    }

    /// A connected protocol client.
    pub fn client(&self) -> Client {
        Client::connect(&self.client_options())
            .unwrap_or_else(|e| panic!("connect to mfad: {e}; stderr:\n{}", self.log_text()))
    }

    /// The daemon's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the daemon process is still alive.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Sends SIGTERM and waits for the exit; SIGKILL and panic after 10 s.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid fits i32"));
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "mfad ignored SIGTERM for {READY_TIMEOUT:?}; stderr:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGKILL (no chance to clean up: the socket file and the WAL stay
    /// behind) and reaps the daemon. Returns its exit status.
    pub fn kill(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = child.kill();
        Some(child.wait().expect("reap mfad"))
    }

    /// Stops the daemon and starts it again on the same directory, with the
    /// current config and policy (key and database kept).
    /// Works after [`Self::kill`] too.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// The daemon's stderr so far (across restarts).
    pub fn log_text(&self) -> String {
        std::fs::read(self.dir().join("mfad.stderr"))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some((shared, name, _)) = &self.postgres {
            shared.drop_database(name);
        }
        if std::thread::panicking() {
            eprintln!(
                "--- mfad stderr ({}) ---\n{}",
                self.dir().display(),
                self.log_text()
            );
        }
    }
}

/// How a daemon that was expected to refuse to start ended.
#[derive(Debug)]
pub struct StartFailure {
    pub status: ExitStatus,
    /// What it wrote to stderr during this start.
    pub stderr: String,
    /// From spawn to exit.
    pub elapsed: Duration,
}

/// A command's exit status and output, for assertion messages.
pub fn show(out: &Output) -> String {
    format!(
        "{}\n--- stdout ---\n{}--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
