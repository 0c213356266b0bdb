//! mfactl, the command line of mfad, as a library: `main.rs` calls
//! [`main`], and the packaging generator renders the man pages and shell
//! completions from [`command`], the same definition the program parses.

mod cmd;
mod conn;
mod error;
mod output;
mod pam;

use clap::{CommandFactory, Parser};
use cmd::{Cli, Ctx};
use error::CliError;
use mfad_protocol::ClientOptions;
use output::{Format, clean_line, clean_text};
use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

/// The command line's definition (for man pages and completions).
pub fn command() -> clap::Command {
    Cli::command()
}

/// Runs mfactl with the process's arguments.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let format = if cli.json {
        Format::Json
    } else {
        Format::Human
    };
    let mut session = conn::Session::new(client_options(&cli));
    let (stdin, stdout, mut stderr) = (io::stdin(), io::stdout(), io::stderr());
    let mut ctx = Ctx {
        format,
        daemon: &mut session,
        out: &mut stdout.lock(),
        prompt: &mut stderr,
        input: &mut stdin.lock(),
        stdin_is_tty: io::stdin().is_terminal(),
        stdout_is_tty: io::stdout().is_terminal(),
        pam: &mut pam::SystemPam,
    };
    match cmd::run(cli.command, &mut ctx) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            report(&err, format);
            ExitCode::from(err.exit_code())
        }
    }
}

/// Options for the one connection each command opens.
fn client_options(cli: &Cli) -> ClientOptions {
    let timeout = Duration::from_secs(cli.timeout);
    ClientOptions {
        socket: cli.socket.clone(),
        read_timeout: timeout,
        write_timeout: timeout,
        daemon_uid: Some(0),
    }
}

/// The explanation on stderr and, with `--json`, an error document on stdout.
fn report(err: &CliError, format: Format) {
    if err.is_broken_pipe() {
        return;
    }
    let hint = err.hint();
    let mut stderr = io::stderr().lock();
    let _ = writeln!(stderr, "mfactl: {}", clean_line(&err.to_string()));
    if let Some(hint) = &hint {
        let _ = writeln!(stderr, "{}", clean_text(hint));
    }
    if format == Format::Json && !err.result_printed() {
        let doc = serde_json::json!({
            "type": "error",
            "code": err.code(),
            "message": err.to_string(),
            "hint": hint,
        });
        if let Ok(text) = output::json(&doc) {
            let _ = io::stdout().lock().write_all(text.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_definition_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn global_options_become_client_options() {
        let cli = Cli::try_parse_from(["mfactl", "ping", "--socket", "/tmp/s", "--timeout", "3"])
            .unwrap();
        let opts = client_options(&cli);
        assert_eq!(opts.socket, std::path::PathBuf::from("/tmp/s"));
        assert_eq!(opts.read_timeout, Duration::from_secs(3));
        assert_eq!(opts.write_timeout, Duration::from_secs(3));
        assert_eq!(opts.daemon_uid, Some(0));
    }
}
