//! `mfactl confirm --service NAME [--reason TEXT] -- COMMAND [ARGS...]`:
//! a step-up at an operation. The PAM stack of NAME runs for the caller on
//! their terminal (a rule of the policy for that service decides what it
//! asks); COMMAND runs, in mfactl's place, only after it succeeded.

use super::Ctx;
use crate::error::CliError;
use clap::Args;
use std::ffi::OsString;
use std::os::unix::process::CommandExt;

/// The longest reason mfad takes (as any PAM item).
const MAX_REASON: usize = 256;

pub const HELP: &str = "The stack in /etc/pam.d/NAME decides: with `auth requisite pam_mfa.so`, \
mfad asks what the policy's rule for service NAME requires (a fresh code by SMS for `db-drop`, \
say), as for any login; its failure counters and lockouts apply. The reason is shown before \
every prompt and reaches mfad's audit log with each row of this authentication (pam_mfa.so \
passes on the PAM environment variable MFAD_REASON). On success COMMAND replaces mfactl, so its \
exit status is the command's; on failure COMMAND does not run and mfactl exits with 1.\n\n\
An application can do the same itself: pam_start(\"NAME\", user, ...), \
pam_putenv(pamh, \"MFAD_REASON=...\"), pam_authenticate, pam_acct_mgmt (see README.md).";

#[derive(Debug, Args)]
pub struct ConfirmArgs {
    /// The PAM service whose stack runs (a file in /etc/pam.d)
    #[arg(long, value_name = "NAME", value_parser = parse_service)]
    pub service: String,

    /// Why: shown in the prompts and written to the audit log
    #[arg(long, value_name = "TEXT", value_parser = parse_reason)]
    pub reason: Option<String>,

    /// The command to run after a successful authentication, and its arguments
    #[arg(required = true, last = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

fn parse_service(text: &str) -> Result<String, String> {
    let ok = !text.is_empty()
        && text.len() <= MAX_REASON
        && !text.contains('/')
        && !text.starts_with('.')
        && !text.chars().any(char::is_control);
    match ok {
        true => Ok(text.to_owned()),
        false => Err("a PAM service is a file name in /etc/pam.d".to_owned()),
    }
}

fn parse_reason(text: &str) -> Result<String, String> {
    if text.len() > MAX_REASON || text.chars().any(char::is_control) {
        return Err(format!(
            "at most {MAX_REASON} bytes on one line, without control characters"
        ));
    }
    Ok(text.to_owned())
}

/// Authenticates, then becomes COMMAND; returns only on failure.
pub fn run(ctx: &mut Ctx, args: ConfirmArgs) -> Result<(), CliError> {
    let user = super::selfchange::own_name()?;
    let reason = args.reason.as_deref().filter(|r| !r.trim().is_empty());
    ctx.pam.authenticate(&args.service, &user, reason)?;
    let Some((program, rest)) = args.command.split_first() else {
        return Err(CliError::Usage("no COMMAND after --".to_owned()));
    };
    let err = std::process::Command::new(program).args(rest).exec();
    Err(CliError::Exec {
        program: program.to_string_lossy().into_owned(),
        source: err,
    })
}

#[cfg(test)]
mod tests {
    use crate::cmd::testing::mfactl_with_pam;

    #[test]
    fn a_failed_authentication_runs_nothing() {
        let dir = std::env::temp_dir().join(format!("mfactl-confirm-{}", std::process::id()));
        let marker = dir.to_string_lossy().into_owned();
        let out = mfactl_with_pam(
            &["confirm", "--service", "db-drop", "--", "mkdir", &marker],
            vec![],
            "",
            Err("Authentication failure"),
        );
        let err = out.result.unwrap_err();
        assert_eq!(err.code(), "pam");
        assert!(err.to_string().contains("db-drop"), "{err}");
        assert!(!dir.exists());
    }

    #[test]
    fn service_and_reason_are_checked() {
        for bad in [
            &["confirm", "--service", "../shadow", "--", "true"][..],
            &[
                "confirm",
                "--service",
                "s",
                "--reason",
                "a\nb",
                "--",
                "true",
            ],
            &["confirm", "--service", "s"],
            &["confirm", "--service", "s", "true"],
        ] {
            let parsed = <crate::cmd::Cli as clap::Parser>::try_parse_from(
                std::iter::once("mfactl").chain(bad.iter().copied()),
            );
            assert!(parsed.is_err(), "{bad:?}");
        }
    }
}
