//! The two systems under test: the real mfad (release build) in a temporary
//! directory with N users enrolled over the protocol, and Debian's
//! pam_google_authenticator.so with a secret file per user.

use crate::measure::Target;
use crate::users::{self, BenchUser, PERIOD};
use mfad_protocol::{Client, Request, Response, SecretString};
use mfad_tests::pam::write_stack;
use mfad_tests::{TestConfig, TestDaemon};
use std::fs::{OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The PAM service names (files in each system's PAM config directory).
pub const MFAD_SERVICE: &str = "bench-mfad";
pub const GAUTH_SERVICE: &str = "bench-gauth";
pub const PERMIT_SERVICE: &str = "bench-permit";

/// Where every module and the daemon log: the benchmark's own listener,
/// bound in its private mount namespace (see scripts/bench).
pub const DEV_LOG: &str = "/dev/log";

/// The daemon's config: the production defaults (two worker threads,
/// window 1, WAL, syslog to /dev/log), except no deliberate failure delay
/// and lockout thresholds at their maximum, so wrong codes lock nobody.
pub fn bench_config() -> TestConfig {
    let mut config = TestConfig {
        admin_group: None,
        syslog: true,
        syslog_socket: Some(DEV_LOG.into()),
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
/// (`auth required <abs>/libpam_mfa.so socket=<sock>`, then
/// `account required pam_permit.so`) and the same stack with pam_permit.so
/// in place of pam_mfa.so.
pub fn start_mfad() -> TestDaemon {
    let daemon = TestDaemon::with_config(bench_config());
    daemon.write_pam_service(MFAD_SERVICE, &[]);
    daemon.write_pam_stack(
        PERMIT_SERVICE,
        "auth required pam_permit.so\naccount required pam_permit.so\n",
    );
    daemon
}

/// Enrolls `n` users (`<prefix>-00000`...) over the protocol as root.
/// Returns them and the time it took.
pub fn enroll(daemon: &TestDaemon, prefix: &str, n: usize) -> (Vec<BenchUser>, Duration) {
    let mut client = daemon.client();
    let started = Instant::now();
    let users = (0..n)
        .map(|i| enroll_one(daemon, &mut client, format!("{prefix}-{i:05}")))
        .collect();
    (users, started.elapsed())
}

/// Enrolls users `<prefix>-00000`... one after the other, as `mfactl totp
/// enroll` does (the same two requests), until `stop` is set: the write
/// load beside a login run. Returns how many it enrolled.
pub fn enroll_until(daemon: &TestDaemon, prefix: &str, stop: &AtomicBool) -> usize {
    let mut client = daemon.client();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        enroll_one(daemon, &mut client, format!("{prefix}-{n:05}"));
        n += 1;
    }
    n
}

/// Begin, then confirm with the code of the previous step, which the daemon
/// accepts (window 1) and consumes, leaving the current step free for a
/// login.
fn enroll_one(daemon: &TestDaemon, client: &mut Client, name: String) -> BenchUser {
    let mut call = |request: Request| {
        client
            .call(&request)
            .unwrap_or_else(|e| panic!("{request:?}: {e}\n{}", daemon.log_text()))
    };
    let offer = match call(Request::EnrollTotpBegin {
        user: Some(name.clone()),
        replace: false,
        // Bench users are names only, not local accounts.
        force: true,
        profile: None,
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
    user
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

pub fn mfad_target(daemon: &TestDaemon) -> Target {
    Target {
        label: "mfad",
        confdir: daemon.pam_confdir(),
        service: MFAD_SERVICE,
        log: Some(daemon.dir().join("mfad.stderr")),
    }
}

pub fn gauth_target(gauth: &Gauth) -> Target {
    Target {
        label: "google-authenticator",
        confdir: gauth.pam_confdir(),
        service: GAUTH_SERVICE,
        log: None,
    }
}

pub fn permit_target(daemon: &TestDaemon) -> Target {
    Target {
        label: "pam_permit",
        confdir: daemon.pam_confdir(),
        service: PERMIT_SERVICE,
        log: None,
    }
}
