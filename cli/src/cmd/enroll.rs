//! `mfactl enroll totp`: start a TOTP enrollment, show it, confirm it.

use super::backup_codes::{render_codes, show_codes};
use super::{Ctx, show_done};
use crate::error::{CliError, unexpected};
use crate::output::{Format, clean_line, clean_text};
use clap::{Args, Subcommand};
use mfad_protocol::time::utc;
use mfad_protocol::{EnrollmentOffer, ErrorCode, Request, Response, SecretString};
use qrcode::QrCode;
use qrcode::render::unicode::Dense1x2;

/// How many codes the interactive enrollment accepts before giving up.
pub const TRIES: u32 = 3;

const PROMPT: &str = "Enter the current code from your authenticator app to confirm: ";

#[derive(Debug, Subcommand)]
pub enum EnrollCommand {
    /// Enroll an authenticator app (TOTP, RFC 6238)
    #[command(
        after_long_help = "Without --print-uri or --confirm-code, mfactl shows a QR code, \
the otpauth:// URI and the secret, then asks for a current code (3 tries). \
A new factor becomes active only once a code confirms it; until then it stays pending and \
is discarded when the offer expires. With the confirmation mfad issues one-time backup \
codes, shown only then (`mfactl backup-codes regenerate` replaces them).\n\n\
For scripts: `mfactl enroll totp --print-uri` starts the enrollment and prints the URI, \
then `mfactl enroll totp --confirm-code -` reads a code from stdin and activates it."
    )]
    Totp(TotpArgs),
}

#[derive(Debug, Args)]
pub struct TotpArgs {
    /// Enroll this account instead of your own (root and mfad admins only)
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// Replace an active TOTP factor (root and mfad admins only)
    #[arg(long, conflicts_with = "confirm_code")]
    pub replace: bool,

    /// Go on although no local account has the --user name (a warning, audited)
    #[arg(long, requires = "user", conflicts_with = "confirm_code")]
    pub force: bool,

    /// Only start the enrollment and print the otpauth:// URI (with --json: the whole offer)
    #[arg(long, conflicts_with = "confirm_code")]
    pub print_uri: bool,

    /// Only confirm a pending enrollment with CODE; "-" reads the code from stdin
    ///
    /// A code given on the command line is visible in the process list (ps,
    /// /proc) for as long as mfactl runs; "-" avoids that.
    #[arg(long, value_name = "CODE", value_parser = parse_code)]
    pub confirm_code: Option<SecretString>,

    /// Do not draw the QR code; print the URI and secret only
    #[arg(long, conflicts_with_all = ["print_uri", "confirm_code"])]
    pub no_qr: bool,

    /// Compute codes as [totp.profiles.NAME] of mfad.toml says (algorithm,
    /// digits, period, window) instead of [totp]
    #[arg(long, value_name = "NAME", conflicts_with = "confirm_code")]
    pub profile: Option<String>,
}

fn parse_code(text: &str) -> Result<SecretString, String> {
    if text.trim().is_empty() {
        return Err("the code is empty".to_owned());
    }
    Ok(SecretString::new(text))
}

pub fn totp(ctx: &mut Ctx, args: TotpArgs) -> Result<(), CliError> {
    let flag = user_flag(args.user.as_deref());
    if let Some(code) = args.confirm_code {
        let code = if code.expose() == "-" {
            let question = if ctx.stdin_is_tty { PROMPT } else { "" };
            read_code(ctx, question, &flag)?
        } else {
            normalize(&code)
        };
        let resp = ctx.call(&Request::EnrollTotpConfirm {
            user: args.user,
            code,
        })?;
        return show_confirmation(ctx, &resp);
    }
    if !args.print_uri && ctx.format == Format::Json {
        return Err(CliError::Usage(
            "--json needs --print-uri or --confirm-code: the interactive enrollment is for people"
                .to_owned(),
        ));
    }
    let resp = ctx.call(&Request::EnrollTotpBegin {
        user: args.user.clone(),
        replace: args.replace,
        force: args.force,
        profile: args.profile.clone(),
    })?;
    let Response::EnrollmentOffer(offer) = &resp else {
        return Err(unexpected(&resp));
    };
    if args.print_uri {
        return ctx.show(&resp, || format!("{}\n", clean_line(offer.uri.expose())));
    }
    let qr = if args.no_qr {
        None
    } else {
        Some(qr_code(offer.uri.expose(), ctx.stdout_is_tty))
    };
    ctx.write(&render_offer(offer, qr.as_deref()))?;
    confirm_interactively(ctx, offer, args.user, &flag)
}

fn confirm_interactively(
    ctx: &mut Ctx,
    offer: &EnrollmentOffer,
    user: Option<String>,
    flag: &str,
) -> Result<(), CliError> {
    match confirm_loop(ctx, offer, user, flag)? {
        Response::BackupCodes { message, codes, .. } => {
            let mut text = zeroize::Zeroizing::new(activated(&offer.user, &message));
            text.push_str(&render_codes(&codes));
            ctx.write(&text)
        }
        Response::Done { message } => ctx.write(&activated(&offer.user, &message)),
        other => Err(unexpected(&other)),
    }
}

/// Asks for a code from the new authenticator until mfad takes one (3
/// tries); mfad's reply: the backup codes it issues with the factor.
pub fn confirm_loop(
    ctx: &mut Ctx,
    offer: &EnrollmentOffer,
    user: Option<String>,
    flag: &str,
) -> Result<Response, CliError> {
    let mut tries = 0;
    loop {
        let code = read_code(ctx, PROMPT, flag)?;
        tries += 1;
        let request = Request::EnrollTotpConfirm {
            user: user.clone(),
            code,
        };
        match ctx.call(&request) {
            Ok(resp @ (Response::Done { .. } | Response::BackupCodes { .. })) => return Ok(resp),
            Ok(other) => return Err(unexpected(&other)),
            Err(CliError::Daemon {
                code: ErrorCode::WrongCode,
                ..
            }) if tries < TRIES => {
                ctx.note(&format!(
                    "That code was wrong ({} of {TRIES} tries left); wait for the next code and enter it.",
                    TRIES - tries
                ));
            }
            Err(CliError::Daemon {
                code: ErrorCode::WrongCode,
                ..
            }) => {
                return Err(CliError::WrongCodes {
                    user: clean_line(&offer.user),
                    tries,
                    expires: utc(offer.expires),
                    user_flag: flag.to_owned(),
                });
            }
            Err(other) => return Err(other),
        }
    }
}

/// The reply to a confirmation: `backup_codes` (the codes mfad issues with
/// a first factor), or `done` from an older mfad.
fn show_confirmation(ctx: &mut Ctx, resp: &Response) -> Result<(), CliError> {
    match resp {
        Response::Done { .. } => show_done(ctx, resp),
        _ => show_codes(ctx, resp),
    }
}

/// "TOTP is now active", and mfad's message when it says more.
pub fn activated(user: &str, message: &str) -> String {
    let mut text = format!("TOTP is now active for {}.\n", clean_line(user));
    let message = message.trim();
    if !message.is_empty() && !text.contains(message) {
        text.push_str(&clean_text(message));
        text.push('\n');
    }
    text
}

/// Asks until a non-empty line comes; the end of input is an error.
pub fn read_code(ctx: &mut Ctx, question: &str, flag: &str) -> Result<SecretString, CliError> {
    loop {
        let Some(line) = ctx.ask(question)? else {
            return Err(CliError::NoCode {
                user_flag: flag.to_owned(),
            });
        };
        let code = normalize(&SecretString::new(line.as_str()));
        if !code.expose().is_empty() {
            return Ok(code);
        }
    }
}

/// Apps show codes as "123 456": drop every blank.
fn normalize(code: &SecretString) -> SecretString {
    let mut clean = zeroize::Zeroizing::new(String::with_capacity(code.expose().len()));
    clean.extend(code.expose().chars().filter(|c| !c.is_whitespace()));
    SecretString::new(std::mem::take(&mut *clean))
}

/// ` --user NAME` for the commands suggested in messages, or nothing.
fn user_flag(user: Option<&str>) -> String {
    user.map(|u| format!(" --user {}", clean_line(u)))
        .unwrap_or_default()
}

/// The QR code of `text` with its quiet zone, two modules per character
/// cell. On a terminal it is drawn black on white whatever the colour
/// scheme, since scanners expect dark modules on a light background.
pub fn qr_code(text: &str, ansi: bool) -> String {
    let Ok(code) = QrCode::new(text.as_bytes()) else {
        return "(the URI is too long for a QR code; enter the secret by hand)\n".to_owned();
    };
    let image = code.render::<Dense1x2>().quiet_zone(true).build();
    let mut out = String::with_capacity(image.len() * 2);
    for line in image.lines() {
        if ansi {
            out.push_str(&format!("\x1b[30;47m{line}\x1b[0m\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Everything a person needs to add the account to an app.
pub fn render_offer(offer: &EnrollmentOffer, qr: Option<&str>) -> String {
    let mut text = String::new();
    if let Some(qr) = qr {
        text.push_str(qr);
        text.push('\n');
        text.push_str(
            "Scan the QR code with your authenticator app, or add the account by hand:\n",
        );
    } else {
        text.push_str("Add this account to your authenticator app:\n");
    }
    text.push_str(&format!(
        "  URI:       {}\n  secret:    {}\n  account:   {}\n  issuer:    {}\n  algorithm: {}, {} digits, {} s period\n",
        clean_line(offer.uri.expose()),
        clean_line(offer.secret_base32.expose()),
        clean_line(&offer.user),
        clean_line(&offer.issuer),
        clean_line(&offer.algorithm),
        offer.digits,
        offer.period,
    ));
    text.push_str(&format!(
        "Until a code confirms it, this enrollment is pending; it is discarded at {}.\n",
        utc(offer.expires)
    ));
    text
}

#[cfg(test)]
#[path = "enroll_tests.rs"]
mod tests;
