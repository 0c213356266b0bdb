//! `mfactl policy check FILE`: the daemon's own validation, run here,
//! before the file is installed or reloaded.

use super::Ctx;
use crate::error::CliError;
use crate::output::{Format, clean_line};
use clap::Args;
use mfad_policy::{Diagnostic, Directory, Nss, Policy, Severity};
use mfad_protocol::{Request, Response};
use serde::Serialize;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::PathBuf;

#[derive(Debug, Args)]
#[command(
    after_long_help = "Each problem is printed as FILE:LINE:COLUMN: error|warning: \
message, followed by a hint. mfad refuses a file with an error (a reload keeps the version \
in force); warnings point at rules that probably do not do what was meant. Groups named as \
%group are looked up through NSS on this machine; those NSS does not know are asked of mfad, \
which also looks in its [directory] (LDAP / AD; an admin's request). Each group's source is \
listed. A rule's totp_profile must name a [totp.profiles.NAME] of mfad.toml, as mfad says; \
without an answer from mfad, profile names are not checked (a note says so).\n\n\
Exit status: 0 when the file is valid (even with warnings), 1 when it has errors or cannot \
be read.\n\n\
With --json: {\"file\",\"valid\",\"rules\",\"sha256\",\"diagnostics\":[{\"severity\",\"line\",\
\"column\",\"message\",\"hint\"}],\"groups\":[{\"name\",\"source\":\"nss|directory|unknown\"}]}; rules and \
sha256 are null for an invalid file."
)]
pub struct CheckArgs {
    /// The policy file to validate (mfad reads /etc/mfad/policy.toml by default)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

/// What `--json` prints.
#[derive(Debug, Serialize)]
pub struct Report {
    pub file: String,
    pub valid: bool,
    pub rules: Option<usize>,
    pub sha256: Option<String>,
    pub diagnostics: Vec<Finding>,
    /// Each `%group` named, and who knows it.
    pub groups: Vec<GroupFinding>,
}

#[derive(Debug, Serialize)]
pub struct GroupFinding {
    pub name: String,
    /// `nss`, `directory` (mfad's), or `unknown`.
    pub source: &'static str,
}

/// Records every `%group` and TOTP profile the parser asks about, and
/// says yes to each.
#[derive(Default)]
struct Named {
    groups: RefCell<BTreeSet<String>>,
    profiles: RefCell<BTreeSet<String>>,
}

impl Directory for Named {
    fn groups_of(&self, _: &str) -> Vec<String> {
        Vec::new()
    }

    fn group_exists(&self, group: &str) -> bool {
        self.groups.borrow_mut().insert(group.to_owned());
        true
    }

    fn totp_profile_exists(&self, name: &str) -> Option<bool> {
        self.profiles.borrow_mut().insert(name.to_owned());
        Some(true)
    }
}

/// What mfad said: the groups its directory has, and the TOTP profiles
/// its mfad.toml defines (`None`: not asked, or not answered).
#[derive(Debug, Default)]
pub struct FromMfad {
    pub groups: BTreeSet<String>,
    pub profiles: Option<BTreeSet<String>>,
}

/// NSS here, and what mfad said.
struct Known<'a>(&'a FromMfad);

impl Directory for Known<'_> {
    fn groups_of(&self, user: &str) -> Vec<String> {
        Nss.groups_of(user)
    }

    fn group_exists(&self, group: &str) -> bool {
        Nss.group_exists(group) || self.0.groups.contains(group)
    }

    fn totp_profile_exists(&self, name: &str) -> Option<bool> {
        self.0.profiles.as_ref().map(|p| p.contains(name))
    }
}

/// Every `%group` and every TOTP profile `text` names, valid or not.
fn named(text: &str) -> Named {
    let named = Named::default();
    let _ = Policy::from_text(text, &named);
    named
}

/// Which of the groups `named` that NSS here does not know mfad's
/// directory has, and (when `named` names a TOTP profile) which profiles
/// mfad.toml defines. mfad not running, or the caller not an admin,
/// leaves them unknown, with a note on stderr.
fn ask_mfad(ctx: &mut Ctx, named: &Named) -> Result<FromMfad, CliError> {
    let groups: Vec<String> = named
        .groups
        .borrow()
        .iter()
        .filter(|g| !Nss.group_exists(g))
        .cloned()
        .collect();
    let profiles = !named.profiles.borrow().is_empty();
    if groups.is_empty() && !profiles {
        return Ok(FromMfad::default());
    }
    let unchecked = "TOTP profile names are not checked against mfad.toml";
    let asked_groups = !groups.is_empty();
    match ctx.call(&Request::GroupSources { groups }) {
        Ok(Response::GroupSources {
            groups,
            totp_profiles,
        }) => {
            if profiles && totp_profiles.is_none() {
                ctx.note(&format!(
                    "mfad did not say which profiles it has (an older mfad): {unchecked}"
                ));
            }
            Ok(FromMfad {
                groups: groups
                    .into_iter()
                    .filter(|g| g.directory == Some(true))
                    .map(|g| g.name)
                    .collect(),
                profiles: totp_profiles.map(|p| p.into_iter().collect()),
            })
        }
        Ok(other) => Err(crate::error::unexpected(&other)),
        Err(e) => {
            if asked_groups {
                ctx.note(&format!(
                    "groups NSS does not know could not be looked up in mfad's directory: {e}"
                ));
            }
            if profiles {
                ctx.note(&format!("mfad could not be asked: {unchecked}: {e}"));
            }
            Ok(FromMfad::default())
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Finding {
    pub severity: &'static str,
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub hint: Option<String>,
}

pub fn run(ctx: &mut Ctx, args: &CheckArgs) -> Result<(), CliError> {
    let file = args.file.display().to_string();
    let text = std::fs::read_to_string(&args.file).map_err(|source| CliError::ReadFile {
        path: clean_line(&file),
        source,
    })?;
    let from_mfad = ask_mfad(ctx, &named(&text))?;
    let report = check(file, &text, &from_mfad);
    let out = match ctx.format {
        Format::Json => crate::output::json(&report)?,
        Format::Human => render(&report),
    };
    ctx.write(&out)?;
    if report.valid {
        return Ok(());
    }
    Err(CliError::Rejected {
        code: "invalid_policy",
        message: format!(
            "{} is not a valid policy; mfad would keep the version in force",
            clean_line(&report.file)
        ),
        hint: "Fix the errors above, check again, then install the file and run `mfactl policy reload`."
            .to_owned(),
    })
}

/// Validates `text` with mfad's parser, with the groups NSS knows and
/// what mfad said; diagnostics in file order.
pub fn check(file: String, text: &str, from_mfad: &FromMfad) -> Report {
    let groups = named(text)
        .groups
        .into_inner()
        .into_iter()
        .map(|name| {
            let source = match (Nss.group_exists(&name), from_mfad.groups.contains(&name)) {
                (true, _) => "nss",
                (false, true) => "directory",
                (false, false) => "unknown",
            };
            GroupFinding { name, source }
        })
        .collect();
    let (policy, mut diagnostics) = match Policy::from_text(text, &Known(from_mfad)) {
        Ok((policy, warnings)) => (Some(policy), warnings),
        Err(diagnostics) => (None, diagnostics),
    };
    diagnostics.sort_by_key(|d| (d.line, d.column));
    Report {
        file,
        valid: policy.is_some(),
        rules: policy.as_ref().map(|p| p.rules.len()),
        sha256: policy.map(|p| p.sha256),
        diagnostics: diagnostics.iter().map(finding).collect(),
        groups,
    }
}

fn finding(d: &Diagnostic) -> Finding {
    Finding {
        severity: match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        },
        line: d.line,
        column: d.column,
        message: d.message.clone(),
        hint: d.hint.clone(),
    }
}

pub fn render(report: &Report) -> String {
    let file = clean_line(&report.file);
    let mut text = String::new();
    for d in &report.diagnostics {
        text.push_str(&format!(
            "{file}:{}:{}: {}: {}\n",
            d.line,
            d.column,
            d.severity,
            clean_line(&d.message)
        ));
        if let Some(hint) = &d.hint {
            text.push_str(&format!("  hint: {}\n", clean_line(hint)));
        }
    }
    for g in &report.groups {
        let known = match g.source {
            "nss" => "known through NSS",
            "directory" => "known to mfad's directory",
            _ => "unknown",
        };
        text.push_str(&format!("{file}: %{}: {known}\n", clean_line(&g.name)));
    }
    match (report.rules, &report.sha256) {
        (Some(rules), Some(sha)) => text.push_str(&format!(
            "{file}: valid, {} (sha256 {})\n",
            count(rules, "rule"),
            clean_line(sha)
        )),
        _ => {
            let errors = report
                .diagnostics
                .iter()
                .filter(|d| d.severity == "error")
                .count();
            text.push_str(&format!("{file}: {}\n", count(errors, "error")));
        }
    }
    text
}

fn count(n: usize, what: &str) -> String {
    match n {
        1 => format!("1 {what}"),
        n => format!("{n} {what}s"),
    }
}

#[cfg(test)]
#[path = "policy_check_tests.rs"]
mod tests;
