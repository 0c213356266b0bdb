//! `mfactl policy check FILE`: the daemon's own validation, run here,
//! before the file is installed or reloaded.

use super::Ctx;
use crate::error::CliError;
use crate::output::{Format, clean_line};
use clap::Args;
use mfad_policy::{Diagnostic, Nss, Policy, Severity};
use serde::Serialize;
use std::path::PathBuf;

#[derive(Debug, Args)]
#[command(
    after_long_help = "Each problem is printed as FILE:LINE:COLUMN: error|warning: \
message, followed by a hint. mfad refuses a file with an error (a reload keeps the version \
in force); warnings point at rules that probably do not do what was meant. Groups named as \
%group are looked up through NSS on this machine, as mfad does.\n\n\
Exit status: 0 when the file is valid (even with warnings), 1 when it has errors or cannot \
be read.\n\n\
With --json: {\"file\",\"valid\",\"rules\",\"sha256\",\"diagnostics\":[{\"severity\",\"line\",\
\"column\",\"message\",\"hint\"}]}; rules and sha256 are null for an invalid file."
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
    let report = check(file, &text);
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

/// Validates `text` with mfad's parser; diagnostics in file order.
pub fn check(file: String, text: &str) -> Report {
    let (policy, mut diagnostics) = match Policy::from_text(text, &Nss) {
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
