//! The two systems under test: the real mfad (release build) in a temporary
//! directory with N users enrolled over the protocol, and Debian's
//! pam_google_authenticator.so with a secret file per user.

use crate::users::{self, BenchUser, PERIOD};
use mfad_protocol::{Request, Response, SecretString};
use mfad_tests::pam::write_stack;
use mfad_tests::{TestConfig, TestDaemon};
use std::fs::{OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The PAM service names (files in each system's PAM config directory).
pub const MFAD_SERVICE: &str = "bench-mfad";
pub const GAUTH_SERVICE: &str = "bench-gauth";

/// mfad's default deliberate pause before a failure verdict.
pub const DEFAULT_FAILURE_DELAY_MS: u64 = 250;
pub const DEFAULT_FAILURE_DELAY_MAX_MS: u64 = 2000;

/// The daemon's config for the main runs: the production defaults (two
/// worker threads, window 1, WAL), except no deliberate failure delay and
/// lockout thresholds at their maximum, so that N wrong codes lock nobody.
pub fn bench_config() -> TestConfig {
    let mut config = TestConfig {
        admin_group: None,
        syslog: false,
        ..TestConfig::default()
    };
    config.totp.issuer = "mfad-bench".into();
    config.lockout.threshold = 100;
    config.lockout.account_threshold = 100;
    config.lockout.failure_delay_ms = 0;
    config.lockout.failure_delay_max_ms = 0;
    config
}

/// Starts the daemon and writes its PAM service
/// (`auth required <abs>/libpam_mfa.so socket=<sock>`).
pub fn start_mfad() -> TestDaemon {
    let daemon = TestDaemon::with_config(bench_config());
    daemon.write_pam_service(MFAD_SERVICE, &[]);
    daemon
}

/// Switches the daemon to mfad's default failure delay (restart; the
/// database is kept).
pub fn restart_with_default_delay(daemon: &mut TestDaemon) {
    let lockout = &mut daemon.config_mut().lockout;
    lockout.failure_delay_ms = DEFAULT_FAILURE_DELAY_MS;
    lockout.failure_delay_max_ms = DEFAULT_FAILURE_DELAY_MAX_MS;
    daemon.restart();
}

/// Enrolls `n` users (`bench-00000`...) over the protocol as root: begin,
/// then confirm with the code of the previous step, which the daemon accepts
/// (window 1) and consumes, leaving the current step free for a login.
/// Returns them and the time it took.
pub fn enroll(daemon: &TestDaemon, n: usize) -> (Vec<BenchUser>, Duration) {
    let mut client = daemon.client();
    let mut call = |request: Request| {
        client
            .call(&request)
            .unwrap_or_else(|e| panic!("{request:?}: {e}\n{}", daemon.log_text()))
    };
    let started = Instant::now();
    let mut enrolled = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("bench-{i:05}");
        let offer = match call(Request::EnrollTotpBegin {
            user: Some(name.clone()),
            replace: false,
            // Bench users are names only, not local accounts.
            force: true,
        }) {
            Response::EnrollmentOffer(offer) => offer,
            other => panic!("enroll begin for {name}: {other:?}"),
        };
        let user = BenchUser::new(name, offer.secret_base32.expose());
        // The previous step must still be the previous step when it arrives.
        users::avoid_step_end(Duration::from_millis(300));
        let code = user.code_at(users::now().as_secs() - PERIOD);
        match call(Request::EnrollTotpConfirm {
            user: Some(user.name.clone()),
            code: SecretString::new(code),
        }) {
            // The confirmation issues the user's backup codes.
            Response::BackupCodes { .. } => {}
            other => panic!("enroll confirm for {}: {other:?}", user.name),
        }
        enrolled.push(user);
    }
    (enrolled, started.elapsed())
}

/// Where Debian (and others) install PAM modules.
const MODULE_DIRS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/security",
    "/lib/x86_64-linux-gnu/security",
    "/usr/lib/aarch64-linux-gnu/security",
    "/lib/aarch64-linux-gnu/security",
    "/usr/lib64/security",
    "/usr/lib/security",
    "/lib/security",
];

/// The installed pam_google_authenticator.so.
pub fn gauth_module() -> PathBuf {
    MODULE_DIRS
        .iter()
        .map(|dir| Path::new(dir).join("pam_google_authenticator.so"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "pam_google_authenticator.so not found; install libpam-google-authenticator \
                 (scripts/deps bench)"
            )
        })
}

/// google-authenticator's side: `secrets/<user>` (0600, root) and
/// `pam.d/bench-gauth`, in a temporary directory removed on drop.
pub struct Gauth {
    dir: tempfile::TempDir,
}

impl Gauth {
    /// The module's options: `secret=<dir>/${USER}` names a file per user,
    /// and `user=root` makes the module read it as root without looking the
    /// login user up in passwd, so the users need no accounts (the module's
    /// README: "useful if you want to authenticate users who do not have
    /// traditional UNIX accounts"). The file must then be owned by root and
    /// mode 0600 (no `no_strict_owner` or `allowed_perm` needed).
    pub fn create(users: &[BenchUser]) -> Gauth {
        let module = gauth_module();
        let dir = tempfile::Builder::new()
            .prefix("mfad-bench-gauth-")
            .tempdir()
            .expect("create the google-authenticator directory");
        std::fs::set_permissions(dir.path(), Permissions::from_mode(0o700)).expect("chmod 0700");
        let secrets = dir.path().join("secrets");
        std::fs::create_dir(&secrets).expect("create secrets/");
        for user in users {
            let path = secrets.join(&user.name);
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
            // The format of ~/.google_authenticator (FILEFORMAT in the
            // package docs); no RATE_LIMIT, like mfad's main runs.
            write!(
                file,
                "{}\n\" TOTP_AUTH\n\" DISALLOW_REUSE\n\" WINDOW_SIZE 3\n",
                user.secret_base32
            )
            .expect("write a secret file");
        }
        let stack = format!(
            "auth required {} secret={}/${{USER}} user=root\naccount required pam_permit.so\n",
            module.display(),
            secrets.display()
        );
        write_stack(&dir.path().join("pam.d"), GAUTH_SERVICE, &stack)
            .expect("write the google-authenticator PAM service");
        Gauth { dir }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn pam_confdir(&self) -> PathBuf {
        self.dir().join("pam.d")
    }

    /// The inode of each user's secret file (0 if missing): the module
    /// replaces the file (temporary file, fsync, rename) whenever it
    /// updates its state.
    pub fn inodes(&self, users: &[BenchUser]) -> Vec<u64> {
        use std::os::unix::fs::MetadataExt;
        let secrets = self.dir().join("secrets");
        users
            .iter()
            .map(|u| std::fs::metadata(secrets.join(&u.name)).map_or(0, |m| m.ino()))
            .collect()
    }

    /// The service file's auth line, for the report.
    pub fn auth_line(&self) -> String {
        std::fs::read_to_string(self.pam_confdir().join(GAUTH_SERVICE))
            .unwrap_or_default()
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned()
    }
}
