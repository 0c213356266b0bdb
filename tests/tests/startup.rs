//! Start-up of the real mfad: the files it creates are private, it refuses
//! to run on a key or database others can read (security rule 1: such errors
//! never fail open), and a second daemon never displaces a running one.
//! `--check-config` is in `check_config.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use mfad_protocol::{Request, Response};
use mfad_tests::daemon::{StartFailure, output_within, show};
use mfad_tests::users::unique_name;
use mfad_tests::{TestConfig, TestDaemon, bins};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn key(d: &TestDaemon) -> PathBuf {
    d.dir().join("state/mfad.key")
}

fn db(d: &TestDaemon) -> PathBuf {
    d.dir().join("state/mfad.db")
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .mode()
        & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn ping(d: &TestDaemon) {
    let resp = d.client().call(&Request::Ping).unwrap();
    assert!(matches!(resp, Response::Pong { .. }), "{resp:?}");
}

/// The refusal is a failure exit (not a crash), and no socket was left to
/// connect to.
#[track_caller]
fn assert_refused(d: &TestDaemon, f: &StartFailure) {
    assert!(
        !f.status.success() && f.status.code().is_some(),
        "mfad should exit with a failure status, got {} after {:?}\n{}",
        f.status,
        f.elapsed,
        f.stderr
    );
    assert!(
        !d.socket().exists(),
        "a refused start left the socket {}",
        d.socket().display()
    );
}

/// A daemon that started once (key and database created) and was stopped.
fn stopped_daemon() -> TestDaemon {
    let mut d = TestDaemon::start();
    let status = d.stop().unwrap();
    assert!(status.success(), "{status}\n{}", d.log_text());
    assert!(!d.socket().exists(), "SIGTERM left the socket behind");
    d
}

#[test]
fn first_start_creates_a_private_key_and_database() {
    let d = TestDaemon::start();
    // One durable write, so that the WAL files exist if the build uses them.
    d.enroll_totp("startup-files");
    let state = d.dir().join("state");
    assert_eq!(mode(&state), 0o700, "the state directory");
    assert_eq!(mode(&key(&d)), 0o400, "the key");
    assert_eq!(std::fs::metadata(key(&d)).unwrap().len(), 32, "key length");
    assert_eq!(mode(&db(&d)), 0o600, "the database");
    for path in [key(&d), db(&d)] {
        assert_eq!(std::fs::metadata(&path).unwrap().uid(), 0, "{path:?}");
    }
    let mut seen = Vec::new();
    for suffix in ["-wal", "-shm"] {
        let path = d.dir().join(format!("state/mfad.db{suffix}"));
        if path.exists() {
            let m = mode(&path);
            assert_eq!(m & 0o077, 0, "{} has mode {m:04o}", path.display());
            seen.push(suffix);
        }
    }
    eprintln!("WAL files present: {seen:?}");
}

#[test]
fn a_key_readable_by_others_is_refused() {
    let mut d = stopped_daemon();
    chmod(&key(&d), 0o644);
    let f = d.start_expecting_failure();
    assert_refused(&d, &f);
    let path = key(&d).display().to_string();
    assert!(
        f.stderr.contains(&path) && f.stderr.contains(&format!("chmod 0400 {path}")),
        "stderr should name {path} and the fix `chmod 0400`:\n{}",
        f.stderr
    );
    // The fix works: same key, same database.
    chmod(&key(&d), 0o400);
    d.launch();
    ping(&d);
}

#[test]
fn a_database_readable_by_others_is_refused() {
    let mut d = stopped_daemon();
    chmod(&db(&d), 0o644);
    let f = d.start_expecting_failure();
    assert_refused(&d, &f);
    let path = db(&d).display().to_string();
    assert!(
        f.stderr.contains(&path) && f.stderr.contains(&format!("chmod 0600 {path}")),
        "stderr should name {path} and the fix `chmod 0600`:\n{}",
        f.stderr
    );
    chmod(&db(&d), 0o600);
    d.launch();
    ping(&d);
}

#[test]
fn a_key_of_the_wrong_length_is_refused() {
    let mut d = TestDaemon::prepare(TestConfig::default());
    // 64 bytes is a key ring of two keys (`mfactl key rotate`), not wrong.
    for len in [0usize, 16, 31, 33, 65] {
        let path = key(&d);
        let _ = std::fs::remove_file(&path);
        std::fs::write(&path, vec![0x5a; len]).unwrap();
        chmod(&path, 0o400);
        let f = d.start_expecting_failure();
        assert_refused(&d, &f);
        let text = f.stderr.to_lowercase();
        assert!(
            f.stderr.contains(&path.display().to_string())
                && text.contains(&format!("{len} bytes"))
                && text.contains("32"),
            "a {len}-byte key: stderr should name the path, the length and the 32 bytes expected:\n{}",
            f.stderr
        );
        // Never "repaired" by writing a new key over it, and no database was
        // opened with a key that cannot be the right one.
        assert_eq!(std::fs::read(&path).unwrap(), vec![0x5a; len]);
        assert!(!db(&d).exists(), "a database was created with a bad key");
    }
}

#[test]
fn a_leftover_wal_readable_by_others_is_refused_or_made_private() {
    let mut d = TestDaemon::start();
    d.enroll_totp(&unique_name("wal"));
    // A crash leaves the WAL behind (a clean stop checkpoints and removes
    // it); then it is found readable by others (a restore, a stray chmod).
    d.kill();
    let state = d.dir().join("state");
    let wal = state.join("mfad.db-wal");
    assert!(wal.exists(), "no WAL after SIGKILL");
    let leftovers: Vec<PathBuf> = [wal.clone(), state.join("mfad.db-shm")]
        .into_iter()
        .filter(|p| p.exists())
        .collect();
    for path in &leftovers {
        chmod(path, 0o644);
    }
    // The WAL holds the latest rows (audit, sealed secrets): as private as
    // the database, which mfad refuses to use when others can read it. So:
    // refuse with the fix, or serve only once the files are private.
    match d.try_launch() {
        Err(f) => {
            let path = wal.display().to_string();
            assert!(
                !f.status.success()
                    && f.stderr.contains(&path)
                    && f.stderr.contains(&format!("chmod 0600 {path}")),
                "{}\n{}",
                f.status,
                f.stderr
            );
        }
        Ok(()) => {
            for path in leftovers.iter().filter(|p| p.exists()) {
                let m = mode(path);
                assert!(
                    m & 0o077 == 0,
                    "mfad serves with {} at mode {m:04o} (readable by others)",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn a_second_daemon_on_the_same_socket_refuses_and_the_first_keeps_serving() {
    let mut d = TestDaemon::start();
    let pid = d.pid();
    let mut bystander = d.client();
    // The same config file: the mistake people make (a second unit, or a
    // manual start while systemd runs one).
    let out = output_within(
        Command::new(bins::mfad())
            .arg("--config")
            .arg(d.config_path()),
        Duration::from_secs(10),
    );
    assert!(
        !out.status.success() && out.status.code().is_some(),
        "{}",
        show(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&d.socket().display().to_string()) && stderr.contains("already"),
        "stderr should name the socket and say a daemon already listens there: {}",
        show(&out)
    );
    assert!(d.is_running());
    assert_eq!(d.pid(), pid);
    assert!(d.socket().exists(), "the first daemon's socket was removed");
    let resp = bystander.call(&Request::Ping).unwrap();
    assert!(matches!(resp, Response::Pong { .. }), "{resp:?}");
    ping(&d);
    assert_eq!(
        d.mfactl(["ping"]).status.code(),
        Some(0),
        "mfactl ping after the second start"
    );
}

/// `mfad --init`, which the package scripts and the systemd unit run before
/// a start: it creates the key (0400) but leaves the database to the daemon,
/// changes nothing on a second run (even while a daemon holds the database),
/// and refuses a key others can read, naming the fix.
#[test]
fn init_creates_the_key_once_and_refuses_an_open_one() {
    let mut d = TestDaemon::prepare(TestConfig::default());
    let init = |d: &TestDaemon| {
        let mut cmd = Command::new(bins::mfad());
        cmd.arg("--config").arg(d.config_path()).arg("--init");
        output_within(&mut cmd, Duration::from_secs(10))
    };
    let out = init(&d);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(mode(&key(&d)), 0o400, "the key");
    assert!(!db(&d).exists(), "--init must not create the database");
    let created = std::fs::read(key(&d)).unwrap();

    d.launch();
    let out = init(&d);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(std::fs::read(key(&d)).unwrap(), created, "the key changed");
    ping(&d);
    assert!(d.stop().unwrap().success(), "{}", d.log_text());

    chmod(&key(&d), 0o440);
    let out = init(&d);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(show(&out).contains("chmod 0400"), "{}", show(&out));
}

/// Whoever can write the configuration, the policy or a directory above
/// them decides who needs MFA: mfad refuses to start on any such file,
/// naming it, the problem and the fix; with the fix it starts.
#[test]
fn files_others_could_change_are_refused_with_the_fix() {
    let mut d = stopped_daemon();
    let config = d.config_path();
    let policy = d.policy_path();
    let elsewhere = d.dir().join("state/real-policy.toml");
    type Edit = Box<dyn Fn(&TestDaemon)>;
    let cases: Vec<(&str, Edit, Edit, PathBuf, String)> = vec![
        (
            "config writable by others",
            Box::new(|d| chmod(&d.config_path(), 0o666)),
            Box::new(|d| chmod(&d.config_path(), 0o644)),
            config.clone(),
            "chmod go-w".to_owned(),
        ),
        (
            "policy writable by its group",
            Box::new(|d| chmod(&d.policy_path(), 0o664)),
            Box::new(|d| chmod(&d.policy_path(), 0o644)),
            policy.clone(),
            "chmod go-w".to_owned(),
        ),
        (
            "config owned by an ordinary user",
            Box::new(|d| chown(&d.config_path(), 4242)),
            Box::new(|d| chown(&d.config_path(), 0)),
            config.clone(),
            "chown 0".to_owned(),
        ),
        (
            "directory writable by others",
            Box::new(|d| chmod(d.dir(), 0o777)),
            Box::new(|d| chmod(d.dir(), 0o755)),
            d.dir().to_owned(),
            "chmod go-w".to_owned(),
        ),
        (
            "policy as a symlink",
            Box::new(move |d| {
                std::fs::rename(d.policy_path(), d.dir().join("state/real-policy.toml")).unwrap();
                std::os::unix::fs::symlink(d.dir().join("state/real-policy.toml"), d.policy_path())
                    .unwrap();
            }),
            Box::new(|d| {
                std::fs::remove_file(d.policy_path()).unwrap();
                std::fs::rename(d.dir().join("state/real-policy.toml"), d.policy_path()).unwrap();
            }),
            policy.clone(),
            format!("name {} in the configuration", elsewhere.display()),
        ),
        (
            "socket directory sticky but writable by all",
            Box::new(|d| chmod(d.dir(), 0o1777)),
            Box::new(|d| chmod(d.dir(), 0o755)),
            d.dir().to_owned(),
            "chmod go-w".to_owned(),
        ),
    ];
    for (name, spoil, fix, path, fix_text) in cases {
        spoil(&d);
        let f = d.start_expecting_failure();
        assert_refused(&d, &f);
        let path = path.display().to_string();
        assert!(
            f.stderr.contains(&format!("{path} is")) && f.stderr.contains(&fix_text),
            "{name}: stderr should name {path} and the fix {fix_text:?}:\n{}",
            f.stderr
        );
        fix(&d);
        d.launch();
        ping(&d);
        d.stop();
    }
}

/// A file at the socket path that is not a socket is never removed: mfad
/// refuses to start and says so. Its own stale socket it does replace, and
/// the socket is created world-connectable (access is decided per request).
#[test]
fn a_non_socket_at_the_socket_path_is_never_removed() {
    let mut d = stopped_daemon();
    std::fs::write(d.socket(), "precious").unwrap();
    let f = d.start_expecting_failure();
    assert!(!f.status.success(), "{f:?}");
    let path = d.socket().display().to_string();
    assert!(
        f.stderr.contains(&format!("{path} is not a socket")) && f.stderr.contains("move it away"),
        "{}",
        f.stderr
    );
    assert_eq!(std::fs::read_to_string(d.socket()).unwrap(), "precious");
    std::fs::remove_file(d.socket()).unwrap();

    d.launch();
    assert_eq!(mode(&d.socket()), 0o666, "the socket's mode");
    d.kill();
    assert!(d.socket().exists(), "SIGKILL leaves the socket behind");
    d.launch();
    ping(&d);
}

fn chown(path: &Path, uid: u32) {
    nix::unistd::chown(path, Some(nix::unistd::Uid::from_raw(uid)), None).unwrap();
}

/// `mfad --config <dir>/mfad.toml` with one more argument.
fn mfad_with(d: &TestDaemon, arg: &str) -> std::process::Output {
    let mut cmd = Command::new(bins::mfad());
    cmd.arg("--config").arg(d.config_path()).arg(arg);
    output_within(&mut cmd, Duration::from_secs(10))
}

/// A daemon with one enrolled user (secrets sealed under its key), stopped,
/// and the key it used.
fn enrolled_and_stopped() -> (TestDaemon, Vec<u8>) {
    let mut d = TestDaemon::start();
    d.enroll_totp(&unique_name("kay"));
    assert!(d.stop().unwrap().success(), "{}", d.log_text());
    let key = std::fs::read(key(&d)).unwrap();
    (d, key)
}

fn put_key(d: &TestDaemon, bytes: &[u8]) {
    let _ = std::fs::remove_file(key(d));
    std::fs::write(key(d), bytes).unwrap();
    chmod(&key(d), 0o400);
}

/// With the key gone and secrets sealed under it in the database, neither
/// the daemon nor `--init` creates a new key (which would make every
/// enrolled user fail); both say what to restore, and so does
/// `--check-config`. With the key back, mfad serves again.
#[test]
fn a_lost_key_is_never_replaced_while_the_database_needs_it() {
    let (mut d, saved) = enrolled_and_stopped();
    std::fs::remove_file(key(&d)).unwrap();
    let path = key(&d).display().to_string();
    let says_restore = |text: &str| {
        text.contains(&format!("the key {path} is missing"))
            && text.contains(&format!("Restore the key from your backup to {path}"))
    };

    let f = d.start_expecting_failure();
    assert_refused(&d, &f);
    assert!(says_restore(&f.stderr), "{}", f.stderr);
    assert!(
        !key(&d).exists(),
        "mfad created a new key over sealed secrets"
    );

    let out = mfad_with(&d, "--init");
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(says_restore(&show(&out)), "{}", show(&out));
    assert!(
        !key(&d).exists(),
        "--init created a new key over sealed secrets"
    );

    let out = mfad_with(&d, "--check-config");
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(says_restore(&show(&out)), "{}", show(&out));

    put_key(&d, &saved);
    let out = mfad_with(&d, "--check-config");
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("key {path}: matches the database")),
        "{}",
        show(&out)
    );
    d.launch();
    ping(&d);
}

/// A key that is not the one the database's secrets were sealed with is
/// refused at start and by `--check-config`, naming what to restore.
#[test]
fn a_wrong_key_is_refused() {
    let (mut d, saved) = enrolled_and_stopped();
    let mut wrong = saved.clone();
    wrong[0] ^= 1;
    put_key(&d, &wrong);
    let path = key(&d).display().to_string();
    let says_wrong = |text: &str| {
        text.contains(&format!("the key {path} is not the key the database"))
            && text.contains("Restore the right key")
    };
    let f = d.start_expecting_failure();
    assert_refused(&d, &f);
    assert!(says_wrong(&f.stderr), "{}", f.stderr);
    let out = mfad_with(&d, "--check-config");
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(says_wrong(&show(&out)), "{}", show(&out));
    assert_eq!(
        std::fs::read(key(&d)).unwrap(),
        wrong,
        "the key file was changed"
    );

    put_key(&d, &saved);
    d.launch();
    ping(&d);
}

/// A fresh install still gets its key at the first start, and a key deleted
/// before anyone enrolled is simply replaced: nothing needed the old one.
#[test]
fn a_key_is_created_when_nothing_needs_the_old_one() {
    let mut d = TestDaemon::prepare(TestConfig::default());
    let out = mfad_with(&d, "--check-config");
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        show(&out).contains("absent, created at the first start"),
        "{}",
        show(&out)
    );
    d.launch();
    assert_eq!(mode(&key(&d)), 0o400);
    assert!(d.stop().unwrap().success());
    let first = std::fs::read(key(&d)).unwrap();
    std::fs::remove_file(key(&d)).unwrap();
    d.launch();
    ping(&d);
    assert_ne!(std::fs::read(key(&d)).unwrap(), first);
    d.enroll_totp(&unique_name("new"));
}

/// Ends the traced mfad (and so its strace) however the test ends.
struct Traced(std::process::Child);

impl Drop for Traced {
    fn drop(&mut self) {
        // strace's child is mfad: SIGTERM stops it cleanly, then strace ends.
        let strace = self.0.id();
        let children = format!("/proc/{strace}/task/{strace}/children");
        for pid in std::fs::read_to_string(children)
            .unwrap_or_default()
            .split_whitespace()
        {
            if let Ok(pid) = pid.parse() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
        }
        if exit_within(&mut self.0).is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Waits up to 10 s for `child` to exit.
fn exit_within(child: &mut std::process::Child) -> Option<std::process::ExitStatus> {
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// The socket is born with its mode (bound under a umask): nothing changes
/// the mode of its path after bind, where a path swapped in meanwhile (a
/// symlink to /etc/shadow) would be changed instead. Seen under strace.
#[test]
fn the_socket_is_born_with_its_mode_and_never_chmoded_by_path() {
    let d = stopped_daemon();
    let trace = d.dir().join("strace.out");
    let traced = Traced(
        Command::new("strace")
            .args(["-f", "-qq", "-s", "512"])
            .args(["-e", "trace=bind,chmod,/^fchmodat"])
            .arg("-o")
            .arg(&trace)
            .arg(bins::mfad())
            .arg("--config")
            .arg(d.config_path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("run strace (scripts/deps test installs it)"),
    );
    let started = std::time::Instant::now();
    while std::os::unix::net::UnixStream::connect(d.socket()).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "mfad under strace did not answer:\n{}",
            std::fs::read_to_string(&trace).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    ping(&d);
    assert_eq!(mode(&d.socket()), 0o666, "the socket's mode");
    drop(traced);
    let text = std::fs::read_to_string(&trace).unwrap();
    let socket = d.socket().display().to_string();
    let on_socket: Vec<&str> = text.lines().filter(|l| l.contains(&socket)).collect();
    assert!(
        on_socket
            .iter()
            .any(|l| l.contains("bind(") && l.ends_with("= 0")),
        "no bind of {socket} in the trace:\n{text}"
    );
    assert!(
        on_socket.iter().all(|l| l.contains("bind(")),
        "the socket's path was changed after bind:\n{}",
        on_socket.join("\n")
    );
}
