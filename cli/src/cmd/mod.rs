//! The command line: options, subcommands, and what they share.

pub mod audit;
pub mod backup_codes;
pub mod confirm;
pub mod contact;
pub mod devices;
pub mod doctor;
mod doctor_pam;
mod doctor_sshd;
pub mod enroll;
pub mod history;
pub mod import;
pub mod key;
pub mod policy;
pub mod policy_check;
pub mod policy_explain;
pub mod selfchange;
pub mod sessions;
pub mod status;
pub mod user;

use crate::conn::Daemon;
use crate::error::{CliError, unexpected};
use crate::output::{Format, clean_line, clean_text};
use clap::{Parser, Subcommand};
use mfad_protocol::{PROTOCOL_VERSION, Request, Response, paths};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use zeroize::Zeroizing;

const GLOBAL: &str = "Global options";

/// Enrollment, self-service and administration for mfad, the multi-factor
/// authentication daemon.
#[derive(Debug, Parser)]
#[command(name = "mfactl", version, propagate_version = true)]
#[command(
    after_long_help = "Permissions: Users act on their own account (`sessions` shows and ends \
only their own sessions); root and members of the mfad admin group may name another account \
with --user, see and end every session, and use the `user`, `audit`, `import` and `policy` commands \
(`policy check` works without mfad); only root may use the `key` commands.\n\n\
Exit status: 0 on success, 1 when mfad refused the request or could not be reached or a \
policy is not valid, 2 when the command line is wrong. `confirm` exits with its COMMAND's status \
once PAM succeeded (126 or 127 when COMMAND cannot be run), and with 1 when PAM failed."
)]
pub struct Cli {
    /// Path of the mfad socket
    #[arg(long, global = true, help_heading = GLOBAL, value_name = "PATH", env = "MFAD_SOCKET", default_value = paths::SOCKET)]
    pub socket: PathBuf,

    /// Print one JSON document on stdout instead of text
    ///
    /// The document is mfad's reply as sent on the wire (with its "type");
    /// `policy check` and `policy diff` print their own, described in their
    /// help. On failure it is {"type":"error","code":...,"message":...,"hint":...}
    /// and the explanation also goes to stderr; a policy that is not valid
    /// keeps its one document (with the problems) and exits with 1.
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub json: bool,

    /// Seconds to wait for each reply from mfad
    #[arg(long, global = true, help_heading = GLOBAL, value_name = "SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Enroll a second factor for your account (or, as an admin, another one)
    #[command(subcommand)]
    Enroll(enroll::EnrollCommand),
    /// Show the enrollment, backup codes, phone, email and lock state of your account
    Status(status::StatusArgs),
    /// Set, verify or clear the phone number that receives codes by SMS
    #[command(subcommand)]
    Phone(contact::ContactCommand),
    /// Set, verify or clear the email address that receives codes and login notices
    #[command(subcommand)]
    Email(contact::ContactCommand),
    /// List, show, reset and unlock users (root and mfad admins)
    #[command(subcommand)]
    User(user::UserCommand),
    /// Issue one-time backup codes for your account (or, as an admin, another one)
    #[command(subcommand)]
    BackupCodes(backup_codes::BackupCodesCommand),
    /// Import TOTP factors from Google Authenticator or pam_oath files (root and mfad admins)
    #[command(subcommand)]
    Import(import::ImportCommand),
    /// Replace your authenticator (a lost phone) after proving your password and a code
    #[command(after_long_help = selfchange::REPLACE_HELP)]
    ReplaceTotp(selfchange::ReplaceArgs),
    /// Turn multi-factor authentication off for your account, where mfad.toml allows it
    #[command(after_long_help = selfchange::DISABLE_HELP)]
    DisableMfa,
    /// Authenticate through a PAM service, then run a command (a step-up at an operation)
    #[command(after_long_help = confirm::HELP)]
    Confirm(confirm::ConfirmArgs),
    /// Show your own recent logins (or, as an admin, another account's), newest first
    History(history::HistoryArgs),
    /// Show recent authentication attempts from the audit log
    Audit(audit::AuditArgs),
    /// Add, rotate and show the keys that seal stored secrets (root only)
    #[command(subcommand, after_long_help = key::HELP)]
    Key(key::KeyCommand),
    /// Check, explain, reload and compare the access policy
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// List and end your own login sessions (root and mfad admins: everyone's)
    #[command(subcommand)]
    Sessions(sessions::SessionsCommand),
    /// List and revoke trusted devices of your account (or, as an admin, another one)
    #[command(subcommand)]
    Devices(devices::DevicesCommand),
    /// Check that mfad answers, and show its version
    Ping,
    /// Check mfad, sshd, the PAM stacks and time sync, and say what to change
    Doctor(doctor::DoctorArgs),
}

/// What a command needs from the outside world, so that tests can script
/// the daemon and the terminal.
pub struct Ctx<'a> {
    pub format: Format,
    pub daemon: &'a mut dyn Daemon,
    /// Results (stdout).
    pub out: &'a mut dyn Write,
    /// Prompts and notes for the person at the terminal (stderr).
    pub prompt: &'a mut dyn Write,
    pub input: &'a mut dyn BufRead,
    /// Whether standard input is a terminal.
    pub stdin_is_tty: bool,
    /// Whether standard output is a terminal.
    pub stdout_is_tty: bool,
    /// PAM, for the password of `replace-totp` and `disable-mfa`.
    pub pam: &'a mut dyn crate::pam::Authenticator,
}

impl Ctx<'_> {
    /// One request; an `error` reply becomes [`CliError::Daemon`].
    pub fn call(&mut self, request: &Request) -> Result<Response, CliError> {
        match self.daemon.call(request)? {
            Response::Error { code, message, .. } => Err(CliError::Daemon { code, message }),
            other => Ok(other),
        }
    }

    /// Writes `resp` as JSON, or the text `human` makes of it.
    pub fn show(
        &mut self,
        resp: &Response,
        human: impl FnOnce() -> String,
    ) -> Result<(), CliError> {
        let text = match self.format {
            Format::Json => crate::output::json(resp)?,
            Format::Human => human(),
        };
        self.write(&text)
    }

    pub fn write(&mut self, text: &str) -> Result<(), CliError> {
        self.out
            .write_all(text.as_bytes())
            .map_err(CliError::Output)?;
        self.out.flush().map_err(CliError::Output)
    }

    /// Asks on the terminal and reads one line, into memory that is wiped
    /// afterwards. `None` at the end of input.
    pub fn ask(&mut self, question: &str) -> Result<Option<Zeroizing<String>>, CliError> {
        // A prompt that cannot be shown still lets a piped answer through.
        let _ = write!(self.prompt, "{question}");
        let _ = self.prompt.flush();
        // Room for any sensible answer, so that the line is not reallocated
        // (which would leave an unwiped copy behind).
        let mut line = Zeroizing::new(String::with_capacity(256));
        let read = self.input.read_line(&mut line).map_err(CliError::Input)?;
        // A piped answer is not echoed: end the prompt's line ourselves.
        if !self.stdin_is_tty && !question.is_empty() {
            let _ = writeln!(self.prompt);
        }
        Ok((read > 0).then_some(line))
    }

    /// A note for the person at the terminal, on stderr.
    pub fn note(&mut self, text: &str) {
        let _ = writeln!(self.prompt, "{text}");
    }
}

pub fn run(command: Command, ctx: &mut Ctx) -> Result<(), CliError> {
    match command {
        Command::Enroll(enroll::EnrollCommand::Totp(args)) => enroll::totp(ctx, args),
        Command::Status(args) => status::run(ctx, &args),
        Command::Phone(cmd) => contact::run(ctx, mfad_protocol::Channel::Sms, cmd),
        Command::Email(cmd) => contact::run(ctx, mfad_protocol::Channel::Email, cmd),
        Command::User(cmd) => user::run(ctx, cmd),
        Command::BackupCodes(cmd) => backup_codes::run(ctx, cmd),
        Command::History(args) => history::run(ctx, &args),
        Command::ReplaceTotp(args) => selfchange::replace(ctx, args),
        Command::DisableMfa => selfchange::disable(ctx),
        Command::Confirm(args) => confirm::run(ctx, args),
        Command::Import(cmd) => import::run(ctx, cmd),
        Command::Audit(args) => audit::run(ctx, &args),
        Command::Key(cmd) => key::run(ctx, cmd),
        Command::Policy(cmd) => policy::run(ctx, cmd),
        Command::Sessions(cmd) => sessions::run(ctx, cmd),
        Command::Devices(cmd) => devices::run(ctx, cmd),
        Command::Ping => ping(ctx),
        Command::Doctor(args) => doctor::run(ctx, &args),
    }
}

/// The wall clock, for ages shown to people (mfad's own clock decides).
#[allow(clippy::disallowed_methods)]
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn ping(ctx: &mut Ctx) -> Result<(), CliError> {
    let resp = ctx.call(&Request::Ping)?;
    match &resp {
        Response::Pong { .. } => ctx.show(&resp, || render_pong(&resp)),
        other => Err(unexpected(other)),
    }
}

pub fn render_pong(resp: &Response) -> String {
    match resp {
        Response::Pong {
            daemon_version,
            protocol,
        } => format!(
            "mfad {}, protocol {protocol}\nmfactl {}, protocol {PROTOCOL_VERSION}\n",
            clean_line(daemon_version),
            env!("CARGO_PKG_VERSION"),
        ),
        _ => String::new(),
    }
}

/// Prints the message of a `done` reply; anything else is unexpected.
pub fn show_done(ctx: &mut Ctx, resp: &Response) -> Result<(), CliError> {
    match resp {
        Response::Done { message } => ctx.show(resp, || {
            let mut text = clean_text(message.trim_end());
            text.push('\n');
            text
        }),
        other => Err(unexpected(other)),
    }
}

#[cfg(test)]
pub mod testing;

#[cfg(test)]
mod tests;
