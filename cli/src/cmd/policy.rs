//! `mfactl policy ...`: the access policy mfad enforces (which rule asks
//! whom for which factor), its stored versions, and reloading it.

use super::Ctx;
use super::policy_check::{self, CheckArgs};
use super::policy_explain::{self, ExplainArgs};
use crate::error::{CliError, unexpected};
use crate::output::{Format, Table, clean_line, clean_text};
use clap::Subcommand;
use mfad_protocol::time::utc;
use mfad_protocol::{PolicyVersion, Request, Response, paths};
use serde::Serialize;
use similar::TextDiff;

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy file on this machine, without asking mfad
    Check(CheckArgs),
    /// Show which rule would decide a login, and why (root and mfad admins)
    Explain(ExplainArgs),
    /// Make mfad read its policy file again, as SIGHUP does (root and mfad admins)
    #[command(after_long_help = format!(
        "mfad reads {} (or the policy_file of its configuration). A file with errors is \
not loaded: the version in force stays, the errors are listed and mfactl exits with 1. \
Loading the same text again keeps the version number.", paths::POLICY
    ))]
    Reload,
    /// List every policy version mfad has loaded; `*` marks the one in force (root and mfad admins)
    History,
    /// Print a stored policy version, as loaded (root and mfad admins)
    #[command(
        after_long_help = "The text goes to stdout exactly as it was loaded, so that \
`mfactl policy show 3 > policy.toml` restores version 3; a line naming the version, its \
SHA-256 and when it was loaded goes to stderr."
    )]
    Show {
        /// The version number, as `mfactl policy history` lists it (default: the one in force)
        #[arg(value_name = "VERSION", value_parser = clap::value_parser!(i64).range(1..))]
        number: Option<i64>,
    },
    /// Show what changed between two stored policy versions, as a unified diff (root and mfad admins)
    #[command(
        after_long_help = "Lines only in A start with -, lines only in B with +; the exit \
status is 0 whether or not they differ.\n\n\
With --json: {\"from\":{version of A},\"to\":{version of B},\"identical\":bool,\"diff\":\"...\"}, \
the versions as `policy history --json` lists them."
    )]
    Diff {
        /// The older version
        #[arg(value_name = "A", value_parser = clap::value_parser!(i64).range(1..))]
        from: i64,
        /// The newer version (default: the one in force)
        #[arg(value_name = "B", value_parser = clap::value_parser!(i64).range(1..))]
        to: Option<i64>,
    },
}

pub fn run(ctx: &mut Ctx, cmd: PolicyCommand) -> Result<(), CliError> {
    match cmd {
        PolicyCommand::Check(args) => policy_check::run(ctx, &args),
        PolicyCommand::Explain(args) => policy_explain::run(ctx, args),
        PolicyCommand::Reload => reload(ctx),
        PolicyCommand::History => history(ctx),
        PolicyCommand::Show { number } => show(ctx, number),
        PolicyCommand::Diff { from, to } => diff(ctx, from, to),
    }
}

fn reload(ctx: &mut Ctx) -> Result<(), CliError> {
    let resp = ctx.call(&Request::PolicyReload)?;
    let Response::PolicyLoaded {
        version,
        changed,
        rejected,
        diagnostics,
    } = &resp
    else {
        return Err(unexpected(&resp));
    };
    ctx.show(&resp, || render_loaded(*version, *changed, diagnostics))?;
    if *rejected {
        return Err(CliError::Rejected {
            code: "invalid_policy",
            message: format!("the policy file was not loaded; version {version} stays in force"),
            hint: "Fix the file (`mfactl policy check FILE` lists every problem) and reload again."
                .to_owned(),
        });
    }
    Ok(())
}

pub fn render_loaded(version: i64, changed: bool, diagnostics: &[String]) -> String {
    let state = if changed { "changed" } else { "unchanged" };
    let mut text = format!("policy version {version} in force ({state})\n");
    for d in diagnostics {
        for line in clean_text(d.trim_end()).lines() {
            text.push_str(&format!("  {line}\n"));
        }
    }
    text
}

fn history(ctx: &mut Ctx) -> Result<(), CliError> {
    let resp = ctx.call(&Request::PolicyHistory)?;
    match &resp {
        Response::PolicyVersions { versions } => ctx.show(&resp, || render_history(versions)),
        other => Err(unexpected(other)),
    }
}

pub fn render_history(versions: &[PolicyVersion]) -> String {
    if versions.is_empty() {
        return "No policy versions recorded.\n".to_owned();
    }
    let mut table = Table::new(&["VERSION", "LOADED", "BY", "SHA256"]);
    for v in versions {
        let mark = if v.in_force { '*' } else { ' ' };
        table.row(vec![
            format!("{mark} {}", v.version),
            utc(v.loaded_at),
            v.loaded_by.clone(),
            v.sha256.chars().take(12).collect(),
        ]);
    }
    table.render()
}

/// One `policy_show` exchange; anything but `policy_text` is unexpected.
fn fetch(ctx: &mut Ctx, version: Option<i64>) -> Result<(PolicyVersion, String), CliError> {
    match ctx.call(&Request::PolicyShow { version })? {
        Response::PolicyText { version, text } => Ok((version, text)),
        other => Err(unexpected(&other)),
    }
}

fn show(ctx: &mut Ctx, version: Option<i64>) -> Result<(), CliError> {
    let (version, text) = fetch(ctx, version)?;
    if ctx.format == Format::Json {
        let resp = Response::PolicyText { version, text };
        return ctx.write(&crate::output::json(&resp)?);
    }
    ctx.note(&describe(&version));
    ctx.write(&text)
}

/// "policy version 4 (in force), sha256 …, loaded … by …"
pub fn describe(v: &PolicyVersion) -> String {
    format!(
        "policy version {}{}, sha256 {}, loaded {} by {}",
        v.version,
        if v.in_force { " (in force)" } else { "" },
        clean_line(&v.sha256),
        utc(v.loaded_at),
        clean_line(&v.loaded_by),
    )
}

/// `policy diff --json`: both versions and the unified diff.
#[derive(Serialize)]
struct DiffDoc<'a> {
    from: &'a PolicyVersion,
    to: &'a PolicyVersion,
    identical: bool,
    diff: String,
}

fn diff(ctx: &mut Ctx, from: i64, to: Option<i64>) -> Result<(), CliError> {
    let (a, a_text) = fetch(ctx, Some(from))?;
    let (b, b_text) = fetch(ctx, to)?;
    let diff = unified(&a, &a_text, &b, &b_text);
    let identical = diff.is_empty();
    if ctx.format == Format::Json {
        let doc = DiffDoc {
            from: &a,
            to: &b,
            identical,
            diff,
        };
        return ctx.write(&crate::output::json(&doc)?);
    }
    if identical {
        return ctx.write(&format!(
            "versions {} and {} are identical\n",
            a.version, b.version
        ));
    }
    ctx.write(&diff)
}

/// The unified diff from `a` to `b`; empty when the texts are the same.
pub fn unified(a: &PolicyVersion, a_text: &str, b: &PolicyVersion, b_text: &str) -> String {
    if a_text == b_text {
        return String::new();
    }
    TextDiff::from_lines(a_text, b_text)
        .unified_diff()
        .header(
            &format!("version {}", a.version),
            &format!("version {}", b.version),
        )
        .to_string()
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "policy_text_tests.rs"]
mod text_tests;
