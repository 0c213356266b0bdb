//! `mfactl backup-codes`, and how backup codes are shown wherever mfad
//! issues them (also at the end of `mfactl enroll totp`).

use super::Ctx;
use crate::error::{CliError, unexpected};
use crate::output::{Format, clean_line, clean_text};
use clap::Subcommand;
use mfad_protocol::time::utc;
use mfad_protocol::{Request, Response, SecretString};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
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
With --output FILE the codes go to a new file (mode 0600; an existing file is never \
overwritten) laid out for printing: the user, the host, the date and the codes numbered; \
nothing secret reaches the terminal. `mfactl status` shows how many codes are left.\n\n\
With --json the reply is {\"type\":\"backup_codes\",\"user\":...,\"codes\":[...],\"message\":...}; \
with --output it is {\"type\":\"backup_codes_written\",\"user\":...,\"path\":...,\"count\":...}."
    )]
    Regenerate {
        /// Issue codes for this account instead of your own (root and mfad admins only)
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
        /// Write the codes to this new file (0600), ready to print, instead of the terminal
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

pub fn run(ctx: &mut Ctx, cmd: BackupCodesCommand) -> Result<(), CliError> {
    let BackupCodesCommand::Regenerate { user, output } = cmd;
    let request = Request::BackupCodesRegenerate { user };
    match output {
        Some(path) => to_file(ctx, &path, |ctx| ctx.call(&request)),
        None => {
            let resp = ctx.call(&request)?;
            show_codes(ctx, &resp)
        }
    }
}

/// Writes the backup codes `issue` obtains to the new file `path` as a
/// printable page and says so. The file is created before `issue` runs, so
/// that a file that exists (or a directory that cannot be written) costs
/// no codes; it is removed again if `issue` fails.
pub fn to_file(
    ctx: &mut Ctx,
    path: &Path,
    issue: impl FnOnce(&mut Ctx) -> Result<Response, CliError>,
) -> Result<(), CliError> {
    let file = create_private(path)?;
    let written = issue(ctx).and_then(|resp| write_page(file, path, &resp));
    let (user, count) = match written {
        Ok(done) => done,
        Err(e) => {
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
    };
    let doc = serde_json::json!({
        "type": "backup_codes_written",
        "user": user,
        "path": path.display().to_string(),
        "count": count,
    });
    let text = match ctx.format {
        Format::Json => crate::output::json(&doc)?,
        Format::Human => format!(
            "{count} new backup codes for {} written to {} (mode 0600); the old ones no longer work.\n\
             Print it, keep it somewhere safe, then delete the file.\n",
            clean_line(&user),
            clean_line(&path.display().to_string()),
        ),
    };
    ctx.write(&text)
}

/// A new file only the caller can read; never an existing one (O_EXCL,
/// which also refuses a symlink planted at the path).
fn create_private(path: &Path) -> Result<File, CliError> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| CliError::CreateFile {
            path: path.display().to_string(),
            source,
        })
}

/// Writes the page for a `backup_codes` reply; the user and the count.
fn write_page(mut file: File, path: &Path, resp: &Response) -> Result<(String, usize), CliError> {
    let Response::BackupCodes { user, codes, .. } = resp else {
        return Err(unexpected(resp));
    };
    let text = page(user, &hostname(), &utc(super::now()), codes);
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|source| CliError::CreateFile {
            path: path.display().to_string(),
            source,
        })?;
    Ok((user.clone(), codes.len()))
}

/// This machine's name, for the page.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "this machine".to_owned())
}

/// The printable page: who, where, when, then the codes numbered with a
/// box to tick off each one used.
pub fn page(user: &str, host: &str, issued: &str, codes: &[SecretString]) -> Zeroizing<String> {
    let mut text = Zeroizing::new(String::with_capacity(600 + codes.len() * 48));
    text.push_str(&format!(
        "Backup codes for {user} on {host}\n\
         Issued {issued} by mfad\n\n\
         Each code works once, wherever a login accepts a backup code (when your\n\
         authenticator is not at hand). Tick off each code you use. Keep this page\n\
         somewhere safe; a new set (`mfactl backup-codes regenerate`) voids it.\n\n",
        user = clean_line(user),
        host = clean_line(host),
    ));
    for (n, code) in codes.iter().enumerate() {
        text.push_str(&format!(
            "  {:>2}.  {:<24}  [ ]\n",
            n + 1,
            clean_line(code.expose())
        ));
    }
    text
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
    fn output_writes_a_private_page_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("codes.txt");
        let file = path.to_str().unwrap();
        let args = ["backup-codes", "regenerate", "--output", file];
        let out = mfactl(&args, vec![codes("ok")], "", false);
        assert!(out.result.is_ok(), "{:?}", out.result.err());
        assert!(!out.stdout.contains("1111-2222"), "{}", out.stdout);
        assert!(
            out.stdout
                .starts_with("2 new backup codes for alice written to ")
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("Backup codes for alice on "), "{text}");
        assert!(text.contains("\n   1.  1111-2222"), "{text}");
        assert!(text.contains("\n   2.  3333-4444"), "{text}");
        // An existing file: refused before mfad is asked (no codes voided).
        let out = mfactl(&args, vec![], "", false);
        let err = out.result.unwrap_err();
        assert!(err.to_string().contains("exists"), "{err}");
        assert!(out.requests.is_empty());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        // A refusal leaves no file behind.
        let other = dir.path().join("other.txt");
        let args = [
            "backup-codes",
            "regenerate",
            "--output",
            other.to_str().unwrap(),
        ];
        let out = mfactl(&args, vec![error(ErrorCode::PermissionDenied)], "", false);
        assert!(out.result.is_err());
        assert!(!other.exists());
    }

    #[test]
    fn the_page_numbers_the_codes() {
        let text = page(
            "bob",
            "web1",
            "2026-01-01 00:00:00Z",
            &["ab-cd".into(), "ef".into()],
        );
        assert!(
            text.starts_with(
                "Backup codes for bob on web1\nIssued 2026-01-01 00:00:00Z by mfad\n\n"
            )
        );
        assert!(
            text.ends_with(
                "\n   1.  ab-cd                     [ ]\n   2.  ef                        [ ]\n"
            ),
            "{}",
            text.as_str()
        );
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
        let replies = vec![crate::cmd::testing::offer(), confirm_with_codes()];
        let out = mfactl(&["enroll", "totp", "--no-qr"], replies, "123456\n", true);
        assert!(out.result.is_ok());
        assert!(
            out.stdout.ends_with(&format!(
                "discarded at 2026-11-23 19:04:05Z.\n\
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
