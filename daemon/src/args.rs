//! The daemon's command line, in the library so the packaging generator
//! renders mfad(8) and the shell completions from this one definition.

use clap::{CommandFactory, Parser};
use std::path::PathBuf;

/// Multi-factor authentication daemon
///
/// mfad decides what each login must prove, checks the codes and audits every attempt.
/// It runs in the foreground as root; pam_mfa.so and mfactl talk to it over a Unix socket.
#[derive(Debug, Parser)]
#[command(name = "mfad", version)]
#[command(after_long_help = "\
Files:
  /etc/mfad/mfad.toml     configuration (mfad.toml(5))
  /etc/mfad/policy.toml   what each login must prove (mfad.toml(5))
  /etc/mfad/mfad.key      32-byte key that encrypts the stored secrets, mode 0400; back it up
                          (a ring of such keys after `mfactl key rotate`)
  /var/lib/mfad/mfad.db   SQLite database (enrollments, locks, policy versions, audit), mode 0600
  /run/mfad/mfad.sock     socket for pam_mfa.so and mfactl

The key and the database are created on first start. A missing key is never replaced while \
the database holds secrets sealed with it, and a key the database was not written with is \
refused, as is a key file that lacks a key the database records (copy the key file from the \
host that ran `mfactl key rotate`): restore the key from backup. mfad refuses to run, naming the file \
and the chmod that fixes it, when either can be read by anyone but root, and when the \
configuration, the policy, the key, a secret or a directory above them is a symbolic link, \
belongs to anyone but root or is writable by others (see mfad.toml(5)).

Signals: SIGHUP reloads the policy (an invalid file keeps the policy in force); SIGTERM and \
SIGINT stop the daemon.

Logging: mfad logs to stderr and to syslog (facility authpriv); under systemd, whose journal \
gets both, to syslog only, so each line is in the journal once. Under systemd (Type=notify) \
it reports READY=1 once its socket is bound, and RELOADING=1 then READY=1 around a reload.

Exit status: 0 after a clean stop or a successful --check-config or --init, 1 when mfad \
cannot start, 2 for a configuration error.")]
pub struct Args {
    /// Configuration file.
    #[arg(long, short, value_name = "PATH", default_value = mfad_protocol::paths::CONFIG)]
    pub config: PathBuf,
    /// Validate the configuration and the policy, print the effective settings, and exit.
    #[arg(long, conflicts_with = "init")]
    pub check_config: bool,
    /// Create the key if it is absent and the database's directory, check that both are private, and exit (the package scripts and the systemd unit run this before a start).
    #[arg(long)]
    pub init: bool,
    /// Bring the PostgreSQL schema (`[store] backend = "postgres"`) to this version's, and exit. Run it once for the fleet, before the daemons of the new version start; they refuse to start on an older schema.
    #[arg(long, conflicts_with_all = ["init", "check_config"])]
    pub migrate: bool,
    /// Log debug messages.
    #[arg(long)]
    pub debug: bool,
}

/// The command line's definition (for man pages and completions).
pub fn command() -> clap::Command {
    Args::command()
}

#[cfg(test)]
mod tests {
    #[test]
    fn clap_definition_is_consistent() {
        super::command().debug_assert();
    }
}
