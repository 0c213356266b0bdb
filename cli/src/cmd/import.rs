//! `mfactl import`: TOTP factors moved over from Google Authenticator's PAM
//! module (`~/.google_authenticator`) and from pam_oath (a usersfile), so
//! nobody has to enroll again. The old files are only read; each user's
//! import is one request (and one audit row) in mfad.

use super::Ctx;
use crate::error::CliError;
use crate::output::{Format, clean_line};
use clap::Subcommand;
use mfad_protocol::{ErrorCode, ImportTotp, Request, Response, SecretString};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import Google Authenticator files (pam_google_authenticator)
    #[command(
        after_long_help = "Reads each user's file (by default ~/.google_authenticator; \
--path takes pam_google_authenticator's secret= form, with ${USER}, ${HOME} and ~) and \
imports the TOTP secret, its step size, and the scratch codes as backup codes. \
DISALLOW_REUSE is what mfad always does; RATE_LIMIT and WINDOW_SIZE are not kept (mfad's \
lockout and [totp] window apply) and are reported; counter-based (HOTP) files are skipped. \
Without USER names, every account in /etc/passwd whose file exists. The files are left as \
they are. Root and mfad admins only."
    )]
    GoogleAuthenticator {
        /// The accounts to import (default: every account in /etc/passwd with a file)
        #[arg(value_name = "USER")]
        users: Vec<String>,
        /// Where each file is: ${USER}, ${HOME} and a leading ~ are replaced
        #[arg(
            long,
            value_name = "PATTERN",
            default_value = "~/.google_authenticator"
        )]
        path: String,
        /// Only list what would be imported, skipped or refused
        #[arg(long)]
        dry_run: bool,
    },
    /// Import a pam_oath usersfile (time-based HOTP/T<step>[/<digits>] lines)
    #[command(
        after_long_help = "Each line `HOTP/T30/6 USER PIN HEXSECRET ...` becomes that user's \
TOTP factor (SHA-1, its step and digits). Counter-based lines (HOTP, HOTP/E) are skipped; \
a PIN is not kept (reported). The file is left as it is. Root and mfad admins only."
    )]
    Oath {
        /// The usersfile, e.g. /etc/users.oath
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Only list what would be imported, skipped or refused
        #[arg(long)]
        dry_run: bool,
    },
}

/// A factor read from an old file, with what could not be kept (its
/// Debug hides the secret).
#[derive(Debug, Default)]
pub struct Found {
    pub request: ImportTotp,
    pub notes: Vec<String>,
}

/// A Google Authenticator file: the secret on the first line, then
/// `" OPTION ...` lines, then 8-digit scratch codes.
pub fn google(user: &str, source: &str, text: &str) -> Result<Found, String> {
    let mut lines = text.lines();
    let secret = lines.next().map(str::trim).unwrap_or_default();
    if secret.is_empty() {
        return Err("the file is empty".to_owned());
    }
    let mut found = Found {
        request: ImportTotp {
            user: user.to_owned(),
            secret: SecretString::new(secret),
            digits: 6,
            period: 30,
            scratch: Vec::new(),
            source: format!("google-authenticator {source}"),
        },
        notes: Vec::new(),
    };
    let mut time_based = false;
    for line in lines.map(str::trim).filter(|l| !l.is_empty()) {
        let Some(option) = line.strip_prefix('"') else {
            found.request.scratch.push(SecretString::new(line));
            continue;
        };
        let words: Vec<&str> = option.split_whitespace().collect();
        match words.as_slice() {
            ["TOTP_AUTH"] => time_based = true,
            ["HOTP_COUNTER", ..] => {
                return Err("counter-based (HOTP): mfad supports only TOTP; enroll anew".to_owned());
            }
            ["STEP_SIZE", step] => {
                found.request.period = step
                    .parse()
                    .map_err(|_| format!("STEP_SIZE {step:?} is not a number"))?;
            }
            ["DISALLOW_REUSE", ..] => {}
            ["RATE_LIMIT", ..] => found
                .notes
                .push("RATE_LIMIT not kept: mfad's lockout applies".to_owned()),
            ["WINDOW_SIZE", n] => found.notes.push(format!(
                "WINDOW_SIZE {n} not kept: mfad's [totp] window applies"
            )),
            other => found
                .notes
                .push(format!("option {:?} ignored", other.join(" "))),
        }
    }
    if !time_based {
        return Err("no TOTP_AUTH line: a counter-based (HOTP) file; enroll anew".to_owned());
    }
    Ok(found)
}

/// A pam_oath usersfile: `TYPE USER PIN HEXSECRET [COUNTER [LASTOTP TIME]]`
/// per line. Each line's user and what it holds, or why it is skipped.
pub fn oath(source: &str, text: &str) -> Vec<(String, Result<Found, String>)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(n, line)| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let user = words.get(1).map_or_else(String::new, |u| (*u).to_owned());
            let found = oath_line(&words, &format!("oath {source}:{}", n + 1));
            (user, found)
        })
        .collect()
}

fn oath_line(words: &[&str], source: &str) -> Result<Found, String> {
    let [kind, user, pin, secret, ..] = words else {
        return Err("not TYPE USER PIN SECRET".to_owned());
    };
    let mut parts = kind.split('/');
    let (Some("HOTP"), Some(step)) = (parts.next(), parts.next()) else {
        return Err(format!(
            "{kind}: counter-based (HOTP); mfad supports only TOTP"
        ));
    };
    let period = step
        .strip_prefix('T')
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            format!("{kind}: counter-based or unknown; mfad supports only HOTP/T<step>")
        })?;
    let digits = match parts.next() {
        None => 6,
        Some(d) => d.parse().map_err(|_| format!("{kind}: digits {d:?}"))?,
    };
    let bytes = hex(secret).ok_or("the secret is not hexadecimal")?;
    let mut notes = Vec::new();
    if !matches!(*pin, "-" | "+") {
        notes.push("its PIN is not kept: mfad has no PIN".to_owned());
    }
    Ok(Found {
        request: ImportTotp {
            user: (*user).to_owned(),
            secret: SecretString::new(base32(&bytes).as_str()),
            digits,
            period,
            scratch: Vec::new(),
            source: source.to_owned(),
        },
        notes,
    })
}

fn hex(text: &str) -> Option<Zeroizing<Vec<u8>>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let mut out = Zeroizing::new(Vec::with_capacity(text.len() / 2));
    for pair in text.as_bytes().chunks(2) {
        let pair = std::str::from_utf8(pair).ok()?;
        out.push(u8::from_str_radix(pair, 16).ok()?);
    }
    Some(out)
}

/// RFC 4648 base32, without padding (as authenticator URIs carry it).
fn base32(bytes: &[u8]) -> Zeroizing<String> {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = Zeroizing::new(String::with_capacity(bytes.len() * 8 / 5 + 1));
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// `(name, home)` of each account in `passwd` text.
fn accounts(passwd: &str) -> Vec<(String, String)> {
    passwd
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 7).then(|| (f[0].to_owned(), f[5].to_owned()))
        })
        .collect()
}

/// pam_google_authenticator's `secret=` expansion.
pub fn expand(pattern: &str, user: &str, home: &str) -> PathBuf {
    let path = match pattern.strip_prefix('~') {
        Some(rest) => format!("{home}{rest}"),
        None => pattern.to_owned(),
    };
    PathBuf::from(path.replace("${USER}", user).replace("${HOME}", home))
}

fn read(path: &Path) -> Result<Zeroizing<String>, CliError> {
    std::fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(|source| CliError::ReadFile {
            path: path.display().to_string(),
            source,
        })
}

pub fn run(ctx: &mut Ctx, cmd: ImportCommand) -> Result<(), CliError> {
    let (entries, dry_run) = match cmd {
        ImportCommand::GoogleAuthenticator {
            users,
            path,
            dry_run,
        } => {
            let all = accounts(&read(Path::new("/etc/passwd"))?);
            let named = !users.is_empty();
            let wanted: Vec<(String, String)> = if named {
                users
                    .iter()
                    .map(|u| {
                        let home = all.iter().find(|(n, _)| n == u).map(|(_, h)| h.clone());
                        (u.clone(), home.unwrap_or_default())
                    })
                    .collect()
            } else {
                all
            };
            let mut entries = Vec::new();
            for (user, home) in wanted {
                let file = expand(&path, &user, &home);
                let found = match std::fs::read_to_string(&file) {
                    Ok(text) => {
                        let text = Zeroizing::new(text);
                        google(&user, &file.display().to_string(), &text)
                    }
                    // Without names, accounts without a file are not users of it.
                    Err(_) if !named => continue,
                    Err(e) => Err(format!("cannot read {}: {e}", file.display())),
                };
                entries.push((user, found));
            }
            (entries, dry_run)
        }
        ImportCommand::Oath { file, dry_run } => {
            let text = read(&file)?;
            (oath(&file.display().to_string(), &text), dry_run)
        }
    };
    let mut results = Vec::new();
    let mut failed = 0;
    for (user, found) in entries {
        let (outcome, message, notes) = match found {
            Err(why) => ("skipped", why, Vec::new()),
            Ok(found) => {
                let (outcome, message) = import_one(ctx, &found.request, dry_run)?;
                (outcome, message, found.notes)
            }
        };
        if outcome != "imported" && outcome != "would import" {
            failed += 1;
        }
        results.push((user, outcome, message, notes));
    }
    let text = match ctx.format {
        Format::Json => crate::output::json(&serde_json::json!({
            "type": "import",
            "dry_run": dry_run,
            "results": results.iter().map(|(user, outcome, message, notes)| serde_json::json!({
                "user": user, "outcome": outcome, "message": message, "notes": notes,
            })).collect::<Vec<_>>(),
        }))?,
        Format::Human => render(&results),
    };
    ctx.write(&text)?;
    match failed {
        0 => Ok(()),
        n => Err(CliError::Usage(format!(
            "{n} of {} accounts were not imported (see above)",
            results.len()
        ))),
    }
}

/// One account: imported (or, dry, whether it would be), or why not.
fn import_one(
    ctx: &mut Ctx,
    request: &ImportTotp,
    dry_run: bool,
) -> Result<(&'static str, String), CliError> {
    if dry_run {
        let status = ctx.call(&Request::Status {
            user: Some(request.user.clone()),
        })?;
        return Ok(match status {
            Response::Status(s) if s.totp.is_some() => (
                "would be refused",
                "already has an active TOTP factor".to_owned(),
            ),
            _ => (
                "would import",
                format!(
                    "{} digits, {} s, {} scratch codes as backup codes, from {}",
                    request.digits,
                    request.period,
                    request.scratch.len(),
                    request.source
                ),
            ),
        });
    }
    match ctx.call(&Request::ImportTotp(request.clone())) {
        Ok(Response::Done { message }) => Ok(("imported", message)),
        Ok(other) => Err(crate::error::unexpected(&other)),
        Err(CliError::Daemon { code, message }) if code != ErrorCode::PermissionDenied => {
            Ok(("refused", message))
        }
        Err(e) => Err(e),
    }
}

type Row = (String, &'static str, String, Vec<String>);

fn render(results: &[Row]) -> String {
    if results.is_empty() {
        return "Nothing to import.\n".to_owned();
    }
    let mut text = String::new();
    for (user, outcome, message, notes) in results {
        text.push_str(&format!(
            "{}: {outcome}: {}\n",
            clean_line(user),
            clean_line(message)
        ));
        for note in notes {
            text.push_str(&format!("  note: {}\n", clean_line(note)));
        }
    }
    text
}

#[cfg(test)]
#[path = "import_tests.rs"]
mod tests;
