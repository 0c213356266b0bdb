//! `mfad`: the daemon's command line. Everything else is in the library.

use clap::Parser;
use mfad::args::Args;
use mfad::config::Config;
use mfad::directory::{Directory, Groups};
use mfad::files::Reading;
use mfad::policy::Policy;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = Args::parse();
    // Everything the daemon creates (key, database, WAL) is private.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let config = match Config::load(&args.config) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("mfad: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    // Whoever can write the configuration or the policy decides who needs MFA.
    let trusted = mfad::files::check_trusted(&args.config, Reading::Anyone)
        .and_then(|()| mfad::files::check_trusted_if_present(&config.policy_file, Reading::Anyone));
    if let Err(e) = trusted {
        eprintln!("mfad: configuration error: {e}");
        return ExitCode::from(2);
    }
    if args.check_config {
        return check_config(&config);
    }
    mfad::logging::init(
        config.syslog.then_some(config.syslog_socket.as_path()),
        args.debug,
    );
    if args.migrate {
        return match mfad::backend::migrate(&config) {
            Ok(done) => {
                println!("{done}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                log::error!("cannot migrate: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if args.init {
        return match mfad::init(&config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                log::error!("cannot prepare the key and the database directory: {e}");
                ExitCode::FAILURE
            }
        };
    }
    forbid_core_dumps();
    match mfad::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("cannot start: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--check-config`: the effective settings, and every problem in the policy.
fn check_config(config: &Config) -> ExitCode {
    let path = config.policy_file.display();
    // A policy may name directory groups: check them where mfad would.
    let directory = match config.directory.as_ref().map(Directory::open).transpose() {
        Ok(directory) => directory,
        Err(e) => {
            eprintln!("mfad: [directory] {e}");
            return ExitCode::from(2);
        }
    };
    let policy = if config.policy_file.exists() {
        match Policy::load(
            &config.policy_file,
            &Groups(directory.as_ref(), &config.totp),
        ) {
            Ok((policy, warnings)) => {
                let mut lines: Vec<String> = warnings
                    .iter()
                    .map(|w| format!("policy {path}: {w}"))
                    .collect();
                lines.push(format!(
                    "policy {path}: valid, {} rules (sha256 {})",
                    policy.rules.len(),
                    policy.sha256
                ));
                lines
            }
            Err(e) => {
                eprintln!("mfad: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        vec![format!(
            "policy {path}: absent, the built-in default applies (TOTP for every service, unenrolled users denied)"
        )]
    };
    // The provider secrets must be readable and private, and the country
    // database readable, as at start-up.
    if let Err(e) = mfad::delivery::Delivery::check(config) {
        eprintln!("mfad: configuration error: {e}");
        return ExitCode::from(2);
    }
    if let Some(path) = &config.geoip_database
        && let Err(e) = mfad::geo::Geo::open(path)
    {
        eprintln!("mfad: configuration error: `geoip_database`: {e}");
        return ExitCode::from(2);
    }
    // A lost or wrong key is refused at start; say so now.
    let key = match mfad::keys::describe(config) {
        Ok(line) => line,
        Err(e) => {
            eprintln!("mfad: {e}");
            return ExitCode::from(2);
        }
    };
    // In a fleet, a pushed policy outranks the file: say which is in force.
    let fleet = match mfad::fleet::describe(config) {
        Ok(line) => line,
        Err(e) => {
            eprintln!("mfad: store: {e}");
            return ExitCode::from(2);
        }
    };
    print!("{}", config.describe());
    for line in policy.into_iter().chain(fleet) {
        println!("{line}");
    }
    println!("{key}");
    ExitCode::SUCCESS
}

/// Keys and decrypted secrets live in this process: no core dumps, no ptrace
/// by other users.
fn forbid_core_dumps() {
    let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
    // SAFETY: prctl(PR_SET_DUMPABLE, 0) takes no pointers and only changes
    // this process's dumpable flag.
    let rc = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    if rc != 0 {
        log::warn!(
            "cannot mark the process non-dumpable: {}",
            std::io::Error::last_os_error()
        );
    }
}
