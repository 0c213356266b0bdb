//! `mfactl replace-totp` and `mfactl disable-mfa`: changes to one's own
//! factors after a fresh proof. The password goes through PAM (service
//! `mfactl`, the admin's stack) here, on the terminal; the code of a factor
//! still held, or a backup code, goes to mfad, which checks it like a login.

use super::backup_codes::{render_codes, to_file};
use super::enroll::{activated, confirm_loop, qr_code, read_code, render_offer};
use super::{Ctx, show_done};
use crate::error::{CliError, unexpected};
use crate::output::Format;
use clap::Args;
use mfad_protocol::{Request, Response, SelfChange};
use std::path::PathBuf;

/// The PAM service whose stack checks the password.
pub const PAM_SERVICE: &str = "mfactl";

const PROOF: &str = "Current code from your authenticator app, or one of your backup codes: ";

/// How the proofs work, and what each is worth.
macro_rules! proofs {
    () => {
        "Both ask first for your password (PAM service `mfactl`: the stack in /etc/pam.d/mfactl), \
then for a code from your authenticator app or one of your backup codes, which mfad checks, \
consumes and counts like a login's (the same lockouts). mfactl runs as you, so mfad cannot \
verify the password step: it guards a terminal left unlocked; the code is what mfad relies on. \
Both are audited as your own action."
    };
}

pub const REPLACE_HELP: &str = concat!(
    "For your own account, where `[self_service] replace_totp` in mfad.toml allows it (the \
default). After the proofs mfactl shows the new QR code and secret and asks for a code from the \
new authenticator; only that code makes the new secret active (the old one works until then), \
and with it mfad issues new backup codes, voiding the old ones (with --output FILE they go to a \
new 0600 file laid out for printing).\n\n",
    proofs!()
);

pub const DISABLE_HELP: &str = concat!(
    "For your own account, only where `[self_service] disable = true` in mfad.toml (off by \
default: mfad refuses, and an administrator can run `mfactl user reset`). Removes your TOTP \
factor, backup codes, phone, email and trusted devices; what a login asks of you afterwards is \
up to the policy (`unenrolled`).\n\n",
    proofs!()
);

#[derive(Debug, Args)]
pub struct ReplaceArgs {
    /// Write the new backup codes to this new file (0600), ready to print, instead of the terminal
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Do not draw the QR code; print the URI and secret only
    #[arg(long)]
    pub no_qr: bool,
}

/// `mfactl replace-totp`: password, proof, the new secret, a code from the
/// new authenticator, then new backup codes. Nothing changes until that
/// code confirms the new secret.
pub fn replace(ctx: &mut Ctx, args: ReplaceArgs) -> Result<(), CliError> {
    if ctx.format == Format::Json {
        return Err(CliError::Usage(
            "--json does not go with replace-totp: it is a conversation for people".to_owned(),
        ));
    }
    let run = |ctx: &mut Ctx| -> Result<Response, CliError> {
        let proof = prove(ctx)?;
        let resp = ctx.call(&Request::SelfChange {
            change: SelfChange::ReplaceTotp,
            proof,
        })?;
        let Response::EnrollmentOffer(offer) = &resp else {
            return Err(unexpected(&resp));
        };
        let qr = (!args.no_qr).then(|| qr_code(offer.uri.expose(), ctx.stdout_is_tty));
        ctx.write(&render_offer(offer, qr.as_deref()))?;
        ctx.write(
            "Your old authenticator keeps working until a code from the new one confirms it.\n",
        )?;
        let confirmed = confirm_loop(ctx, offer, None, "")?;
        if let Response::BackupCodes { message, .. } | Response::Done { message } = &confirmed {
            ctx.write(&activated(&offer.user, message))?;
        }
        Ok(confirmed)
    };
    match &args.output {
        Some(path) => to_file(ctx, path, run),
        None => match run(ctx)? {
            Response::BackupCodes { codes, .. } => ctx.write(&render_codes(&codes)),
            _ => Ok(()),
        },
    }
}

/// `mfactl disable-mfa`: password and proof, then every factor removed.
pub fn disable(ctx: &mut Ctx) -> Result<(), CliError> {
    let proof = prove(ctx)?;
    let resp = ctx.call(&Request::SelfChange {
        change: SelfChange::Disable,
        proof,
    })?;
    show_done(ctx, &resp)
}

/// The password through PAM, then the code for mfad.
fn prove(ctx: &mut Ctx) -> Result<mfad_protocol::SecretString, CliError> {
    let user = own_name()?;
    ctx.pam.authenticate(PAM_SERVICE, &user, None)?;
    read_code(ctx, PROOF, "")
}

/// The caller's account name (mfad takes the account from the socket peer;
/// PAM needs the name).
pub(crate) fn own_name() -> Result<String, CliError> {
    let uid = nix::unistd::getuid();
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(user)) => Ok(user.name),
        _ => Err(CliError::Usage(format!("uid {uid} has no account name"))),
    }
}

#[cfg(test)]
mod tests {
    use crate::cmd::testing::{done, error, mfactl_with_pam, offer};
    use mfad_protocol::{ErrorCode, Response};
    use serde_json::json;

    #[test]
    fn replace_proves_then_confirms_and_shows_the_new_codes() {
        let codes = Response::BackupCodes {
            user: "alice".into(),
            codes: vec!["aaaa-bbbb".into()],
            message: "TOTP is now active for alice.".into(),
        };
        let out = mfactl_with_pam(
            &["replace-totp", "--no-qr"],
            vec![offer(), codes],
            "abcde-fghij\n123456\n",
            Ok(()),
        );
        assert!(out.result.is_ok(), "{:?}", out.result.err());
        assert_eq!(
            out.requests,
            vec![
                json!({"type": "self_change", "change": "replace_totp", "proof": "abcde-fghij"}),
                json!({"type": "enroll_totp_confirm", "user": null, "code": "123456"}),
            ]
        );
        assert!(out.stdout.contains("JBSWY3DPEHPK3PXP"), "{}", out.stdout);
        assert!(out.stdout.contains("aaaa-bbbb"), "{}", out.stdout);
    }

    #[test]
    fn a_failed_password_asks_mfad_nothing() {
        let out = mfactl_with_pam(&["disable-mfa"], vec![], "123456\n", Err("wrong password"));
        let err = out.result.unwrap_err();
        assert_eq!(err.code(), "pam");
        assert!(out.requests.is_empty());
    }

    #[test]
    fn disable_sends_the_proof_and_shows_the_refusal() {
        let out = mfactl_with_pam(
            &["disable-mfa"],
            vec![error(ErrorCode::PermissionDenied)],
            "123456\n",
            Ok(()),
        );
        assert!(out.result.is_err());
        assert_eq!(
            out.requests,
            vec![json!({"type": "self_change", "change": "disable", "proof": "123456"})]
        );
        let out = mfactl_with_pam(&["disable-mfa"], vec![done("off")], "123456\n", Ok(()));
        assert!(out.result.is_ok());
        assert_eq!(out.stdout, "off\n");
    }
}
