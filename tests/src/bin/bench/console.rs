//! The same logging sink for every module: a `/dev/log` listener of the
//! benchmark's own, and a check under `strace -f -T` that no module (nor the
//! daemon) writes to the console instead. Without a `/dev/log`,
//! pam_google_authenticator's syslog() falls back to /dev/console, which
//! costs 0.6-2 ms of kernel time per call and would be measured as its
//! authentication time.

use crate::measure::{Expect, fresh_handles};
use crate::setup;
use mfad_tests::daemon::SyslogReceiver;
use std::path::Path;
use std::process::{Command, ExitCode};

/// Logins per module in the traced run.
const TRACED_LOGINS: usize = 20;

/// Binds the listener at /dev/log. Refuses outside a private mount
/// namespace (scripts/bench makes one, with a /dev of its own), so the
/// host's /dev/log is never replaced.
pub fn listen() -> SyslogReceiver {
    let ns = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok();
    if ns("self").is_none() || ns("self") == ns("1") {
        eprintln!(
            "bench: not in a private mount namespace; run it through scripts/bench, which \
             gives it a /dev/log of its own"
        );
        std::process::exit(2);
    }
    if Path::new(setup::DEV_LOG).exists() {
        eprintln!(
            "bench: {} exists in this namespace; scripts/bench mounts a /dev without it",
            setup::DEV_LOG
        );
        std::process::exit(2);
    }
    SyslogReceiver::bind(Path::new(setup::DEV_LOG))
}

/// What strace saw.
pub struct Trace {
    pub logins: usize,
    /// System calls naming /dev/console, verbatim.
    pub console: Vec<String>,
    /// connect() calls to /dev/log.
    pub log_connects: usize,
}

/// Runs this binary with `--console-check` under `strace -f -T` and reads
/// the trace.
pub fn check(tmp: &Path) -> Trace {
    let out = tmp.join("strace.txt");
    let exe = std::env::current_exe().expect("the benchmark's own path");
    let status = Command::new("strace")
        .args(["-f", "-T", "-qq", "-e", "trace=open,openat,connect", "-o"])
        .arg(&out)
        .arg(exe)
        .arg("--console-check")
        .status()
        .expect("run strace (scripts/deps bench installs it)");
    assert!(status.success(), "the traced run failed: {status}");
    let text = std::fs::read_to_string(&out).expect("read the strace output");
    Trace {
        logins: TRACED_LOGINS,
        console: text
            .lines()
            .filter(|l| l.contains("/dev/console"))
            .map(str::to_owned)
            .collect(),
        log_connects: text
            .lines()
            .filter(|l| l.contains("connect(") && l.contains("\"/dev/log\""))
            .count(),
    }
}

/// `--console-check`, the traced child: a daemon of its own, and successful
/// and wrong logins through each module, each on a new handle.
pub fn traced_run() -> ExitCode {
    let daemon = setup::start_mfad();
    let (users, _) = setup::enroll(&daemon, "trace", TRACED_LOGINS);
    let gauth = setup::Gauth::create(&users);
    let targets = [
        setup::mfad_target(&daemon),
        setup::gauth_target(&gauth),
        setup::permit_target(&daemon),
    ];
    let mut ok = true;
    for target in &targets {
        for expect in [Expect::Success, Expect::Wrong] {
            if expect == Expect::Wrong && target.service == setup::PERMIT_SERVICE {
                continue;
            }
            let run = fresh_handles(target, &users, expect);
            ok &= run.auth.mismatches == 0;
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
