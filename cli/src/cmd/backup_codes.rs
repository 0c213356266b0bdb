//! `mfactl backup-codes`, and how backup codes are shown wherever mfad
//! issues them (also at the end of `mfactl enroll totp`).

use super::Ctx;
use crate::error::{CliError, unexpected};
use crate::output::{Format, clean_line, clean_text};
use clap::Subcommand;
use mfad_protocol::{Request, Response, SecretString};
use zeroize::Zeroizing;

pub const WARNING: &str =
    "Store these somewhere safe; each works once; they replace any earlier codes.";

#[derive(Debug, Subcommand)]
pub enum BackupCodesCommand {
    /// Issue a new set of one-time backup codes, voiding the earlier ones
    #[command(
        after_long_help = "A backup code lets you log in when your authenticator app is not at hand, \
wherever the policy accepts the `backup` factor. Each code works once. The codes are shown \
only now: mfad keeps nothing it could show again, and issuing a new set voids every code of \
the old one.\n\n\
With --json the reply is {\"type\":\"backup_codes\",\"user\":...,\"codes\":[...],\"message\":...}."
    )]
    Regenerate {
        /// Issue codes for this account instead of your own (root and mfad admins only)
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
    },
}

pub fn run(ctx: &mut Ctx, cmd: BackupCodesCommand) -> Result<(), CliError> {
    let BackupCodesCommand::Regenerate { user } = cmd;
    let resp = ctx.call(&Request::BackupCodesRegenerate { user })?;
    show_codes(ctx, &resp)
}

/// Prints a `backup_codes` reply: mfad's message, the warning and the
/// codes; anything else is unexpected.
pub fn show_codes(ctx: &mut Ctx, resp: &Response) -> Result<(), CliError> {
    let Response::BackupCodes { message, codes, .. } = resp else {
        return Err(unexpected(resp));
    };
    let text = match ctx.format {
        Format::Json => Zeroizing::new(crate::output::json(resp)?),
        Format::Human => {
            let mut text = Zeroizing::new(clean_text(message.trim()));
            text.push('\n');
            text.push_str(&render_codes(codes));
            text
        }
    };
    ctx.write(&text)
}

/// The warning and then the codes, one per line, in memory that is wiped
/// afterwards. Nothing when mfad issued no codes.
pub fn render_codes(codes: &[SecretString]) -> Zeroizing<String> {
    let mut text = Zeroizing::new(String::with_capacity(100 + codes.len() * 40));
    if codes.is_empty() {
        return text;
    }
    text.push_str(WARNING);
    text.push('\n');
    for code in codes {
        text.push_str("  ");
        text.push_str(&clean_line(code.expose()));
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::testing::{done, error, mfactl};
    use mfad_protocol::ErrorCode;
    use serde_json::{Value, json};

    fn codes(message: &str) -> Response {
        Response::BackupCodes {
            user: "alice".into(),
            codes: vec!["1111-2222".into(), "3333-4444".into()],
            message: message.into(),
        }
    }

    #[test]
    fn regenerate_prints_the_message_warning_and_codes() {
        let out = mfactl(
            &["backup-codes", "regenerate"],
            vec![codes("New backup codes issued.")],
            "",
            false,
        );
        assert!(out.result.is_ok());
        assert_eq!(
            out.requests,
            vec![json!({"type": "backup_codes_regenerate", "user": null})]
        );
        assert_eq!(
            out.stdout,
            format!("New backup codes issued.\n{WARNING}\n  1111-2222\n  3333-4444\n")
        );
    }

    #[test]
    fn regenerate_for_another_user_as_json() {
        let args = ["--json", "backup-codes", "regenerate", "--user", "alice"];
        let out = mfactl(&args, vec![codes("ok")], "", false);
        assert_eq!(out.requests[0]["user"], "alice");
        let v: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(
            v,
            json!({"type": "backup_codes", "user": "alice",
                   "codes": ["1111-2222", "3333-4444"], "message": "ok"})
        );
    }

    #[test]
    fn regenerate_refusals_and_wrong_replies_fail() {
        let args = ["backup-codes", "regenerate", "--user", "bob"];
        let out = mfactl(&args, vec![error(ErrorCode::PermissionDenied)], "", false);
        assert!(out.result.unwrap_err().hint().unwrap().contains("admin"));
        assert_eq!(out.stdout, "");
        let out = mfactl(&args, vec![done("x")], "", false);
        assert!(matches!(out.result, Err(CliError::Unexpected("done"))));
    }

    #[test]
    fn codes_are_defused_and_an_empty_set_prints_nothing() {
        let text = render_codes(&["12\u{1b}[2J34".into()]);
        assert_eq!(text.as_str(), format!("{WARNING}\n  12?[2J34\n"));
        assert!(render_codes(&[]).is_empty());
    }

    fn confirm_with_codes() -> Response {
        codes("TOTP is now active for alice.")
    }

    #[test]
    fn interactive_enrollment_ends_with_the_backup_codes() {
        let offer = Response::EnrollmentOffer(mfad_protocol::EnrollmentOffer {
            user: "alice".into(),
            uri: "otpauth://totp/mfad:alice?secret=JBSWY3DPEHPK3PXP".into(),
            secret_base32: "JBSWY3DPEHPK3PXP".into(),
            issuer: "mfad".into(),
            algorithm: "SHA1".into(),
            digits: 6,
            period: 30,
            expires: 0,
        });
        let replies = vec![offer, confirm_with_codes()];
        let out = mfactl(&["enroll", "totp", "--no-qr"], replies, "123456\n", true);
        assert!(out.result.is_ok());
        assert!(
            out.stdout.ends_with(&format!(
                "discarded at 1970-01-01 00:00:00Z.\n\
                 TOTP is now active for alice.\n{WARNING}\n  1111-2222\n  3333-4444\n"
            )),
            "{}",
            out.stdout
        );
    }

    #[test]
    fn confirm_code_shows_the_codes_mfad_issues_with_it() {
        let args = ["enroll", "totp", "--confirm-code", "123456"];
        let out = mfactl(&args, vec![confirm_with_codes()], "", false);
        assert!(out.result.is_ok());
        assert_eq!(
            out.stdout,
            format!("TOTP is now active for alice.\n{WARNING}\n  1111-2222\n  3333-4444\n")
        );
        let json_args = ["--json", "enroll", "totp", "--confirm-code", "1"];
        let out = mfactl(&json_args, vec![confirm_with_codes()], "", false);
        let v: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(v["type"], "backup_codes");
        assert_eq!(v["codes"][1], "3333-4444");
    }
}
