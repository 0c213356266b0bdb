//! `mfactl phone ...` and `mfactl email ...`: the destinations mfad sends
//! login codes to, set, verified with the code sent there, and cleared.

use super::{Ctx, show_done};
use crate::error::CliError;
use clap::Subcommand;
use mfad_protocol::{Channel, Request, SecretString};

#[derive(Debug, Subcommand)]
pub enum ContactCommand {
    /// Set the destination; mfad sends a code there to confirm it
    #[command(
        after_long_help = "A phone number is written in international form: + and \
the country code, then the number (+447700900123; spaces and dashes are dropped). Until the \
code sent to it comes back with `verify`, the new destination waits beside the old one, and \
login codes keep going to the old one. Sends obey the channel's resend cooldown and hourly cap."
    )]
    Set {
        /// The phone number (for `phone`) or email address (for `email`)
        #[arg(value_name = "DESTINATION")]
        destination: String,
        /// Act on this account instead of your own (root and mfad admins only)
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
        /// Mark it verified without sending a code (root and mfad admins only; audited)
        #[arg(long)]
        verified: bool,
        /// Go on although no local account has the --user name (a warning, audited)
        #[arg(long, requires = "user")]
        force: bool,
    },
    /// Confirm the pending destination with the code sent to it
    Verify {
        /// The code as received, with or without its dash; "-" reads it from stdin
        ///
        /// A code given on the command line is visible in the process list
        /// for as long as mfactl runs; "-" avoids that.
        #[arg(value_name = "CODE")]
        code: String,
        /// Act on this account instead of your own (root and mfad admins only)
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
    },
    /// Remove the destination (verified and pending); its channel then stops working for the account
    Clear {
        /// Act on this account instead of your own (root and mfad admins only)
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
    },
}

pub fn run(ctx: &mut Ctx, channel: Channel, cmd: ContactCommand) -> Result<(), CliError> {
    let request = match cmd {
        ContactCommand::Set {
            destination,
            user,
            verified,
            force,
        } => Request::ContactSet {
            user,
            channel,
            address: SecretString::new(destination),
            verified,
            force,
        },
        ContactCommand::Verify { code, user } => Request::ContactVerify {
            user,
            channel,
            code: read_code(ctx, &code)?,
        },
        ContactCommand::Clear { user } => Request::ContactClear { user, channel },
    };
    let resp = ctx.call(&request)?;
    show_done(ctx, &resp)
}

/// The code from the argument, or from stdin for "-".
fn read_code(ctx: &mut Ctx, arg: &str) -> Result<SecretString, CliError> {
    let line = if arg == "-" {
        let question = if ctx.stdin_is_tty { "Code: " } else { "" };
        ctx.ask(question)?
            .map(|l| SecretString::new(l.trim()))
            .unwrap_or_default()
    } else {
        SecretString::new(arg.trim())
    };
    if line.expose().is_empty() {
        return Err(CliError::Usage("no code given".to_owned()));
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    use crate::cmd::testing::{done, error, mfactl};
    use mfad_protocol::ErrorCode;
    use serde_json::json;

    #[test]
    fn each_subcommand_sends_its_request_and_prints_the_reply() {
        let cases: [(&[&str], serde_json::Value); 4] = [
            (
                &["phone", "set", "+44 7700 900123"],
                json!({"type": "contact_set", "user": null, "channel": "sms",
                       "address": "+44 7700 900123", "verified": false}),
            ),
            (
                &[
                    "email",
                    "set",
                    "y@example.com",
                    "--user",
                    "yv",
                    "--verified",
                ],
                json!({"type": "contact_set", "user": "yv", "channel": "email",
                       "address": "y@example.com", "verified": true}),
            ),
            (
                &["phone", "verify", "123-456"],
                json!({"type": "contact_verify", "user": null, "channel": "sms", "code": "123-456"}),
            ),
            (
                &["email", "clear", "--user", "yv"],
                json!({"type": "contact_clear", "user": "yv", "channel": "email"}),
            ),
        ];
        for (args, want) in cases {
            let out = mfactl(args, vec![done("A code was sent.")], "", false);
            assert!(out.result.is_ok(), "{args:?}: {:?}", out.result);
            assert_eq!(out.requests, vec![want], "{args:?}");
            assert_eq!(out.stdout, "A code was sent.\n");
        }
    }

    #[test]
    fn a_code_can_come_from_stdin_and_refusals_fail() {
        let out = mfactl(
            &["phone", "verify", "-"],
            vec![done("ok")],
            " 123456\n",
            false,
        );
        assert_eq!(out.requests[0]["code"], "123456");
        let out = mfactl(&["phone", "verify", "-"], vec![], "", false);
        assert!(out.result.is_err());
        assert!(out.requests.is_empty());
        let out = mfactl(
            &["phone", "set", "+1"],
            vec![error(ErrorCode::BadRequest)],
            "",
            false,
        );
        assert!(out.result.is_err());
        assert_eq!(out.stdout, "");
    }
}
