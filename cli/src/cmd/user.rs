//! `mfactl user ...`: administration of other accounts.

use super::status::show_status;
use super::{Ctx, show_done};
use crate::error::{CliError, unexpected};
use crate::output::{Table, clean_line};
use clap::Subcommand;
use mfad_protocol::time::utc;
use mfad_protocol::{Request, Response, UserSummary};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// List the users mfad knows, with their TOTP and lock state
    List,
    /// Show the enrollment, backup codes and lock state of one user
    Show {
        /// The account name
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Remove every factor and failure counter of a user (asks first)
    Reset {
        /// The account name
        #[arg(value_name = "NAME")]
        name: String,
        /// Do not ask for confirmation (needed when stdin is not a terminal)
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Lift every lock on a user and clear the failure counters
    Unlock {
        /// The account name
        #[arg(value_name = "NAME")]
        name: String,
    },
}

/// The request a subcommand sends.
pub fn request(cmd: &UserCommand) -> Request {
    match cmd {
        UserCommand::List => Request::UserList,
        UserCommand::Show { name } => Request::UserShow { user: name.clone() },
        UserCommand::Reset { name, .. } => Request::UserReset { user: name.clone() },
        UserCommand::Unlock { name } => Request::UserUnlock { user: name.clone() },
    }
}

pub fn run(ctx: &mut Ctx, cmd: UserCommand) -> Result<(), CliError> {
    if let UserCommand::Reset { name, yes: false } = &cmd {
        confirm_reset(ctx, name)?;
    }
    let resp = ctx.call(&request(&cmd))?;
    match cmd {
        UserCommand::List => match &resp {
            Response::Users { users } => ctx.show(&resp, || render_list(users)),
            other => Err(unexpected(other)),
        },
        UserCommand::Show { .. } => show_status(ctx, &resp),
        UserCommand::Reset { .. } | UserCommand::Unlock { .. } => show_done(ctx, &resp),
    }
}

fn confirm_reset(ctx: &mut Ctx, name: &str) -> Result<(), CliError> {
    let name = clean_line(name);
    if !ctx.stdin_is_tty {
        return Err(CliError::Usage(format!(
            "refusing to reset {name} without confirmation: standard input is not a terminal; pass --yes"
        )));
    }
    let answer = ctx.ask(&format!("Remove every factor of {name}? [y/N] "))?;
    match answer.as_deref().map(|a| a.trim().to_ascii_lowercase()) {
        Some(a) if a == "y" || a == "yes" => Ok(()),
        _ => Err(CliError::Aborted),
    }
}

pub fn render_list(users: &[UserSummary]) -> String {
    if users.is_empty() {
        return "No users.\n".to_owned();
    }
    let mut table = Table::new(&["USER", "TOTP", "LAST USED", "LOCKED"]);
    for u in users {
        table.row(vec![
            u.user.clone(),
            if u.totp_enrolled { "enrolled" } else { "-" }.to_owned(),
            u.last_used.map_or_else(|| "never".to_owned(), utc),
            if u.locked { "yes" } else { "no" }.to_owned(),
        ]);
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_table() {
        let users = vec![
            UserSummary {
                user: "alice".into(),
                totp_enrolled: true,
                last_used: Some(1_795_460_645),
                locked: false,
            },
            UserSummary {
                user: "bob".into(),
                totp_enrolled: false,
                last_used: None,
                locked: true,
            },
        ];
        assert_eq!(
            render_list(&users),
            "USER   TOTP      LAST USED             LOCKED\n\
             alice  enrolled  2026-11-23 19:04:05Z  no\n\
             bob    -         never                 yes\n"
        );
        assert_eq!(render_list(&[]), "No users.\n");
    }

    #[test]
    fn each_subcommand_sends_its_request() {
        let name = || "carol".to_owned();
        let cases = [
            (UserCommand::List, r#"{"type":"user_list"}"#),
            (
                UserCommand::Show { name: name() },
                r#"{"type":"user_show","user":"carol"}"#,
            ),
            (
                UserCommand::Reset {
                    name: name(),
                    yes: true,
                },
                r#"{"type":"user_reset","user":"carol"}"#,
            ),
            (
                UserCommand::Unlock { name: name() },
                r#"{"type":"user_unlock","user":"carol"}"#,
            ),
        ];
        for (cmd, want) in cases {
            assert_eq!(serde_json::to_string(&request(&cmd)).unwrap(), want);
        }
    }
}
