//! `mfactl policy ...`: the access policy mfad enforces (which rule asks
//! whom for which factor), its stored versions, and reloading it.

use super::Ctx;
use super::policy_check::{self, CheckArgs};
use super::policy_explain::{self, ExplainArgs};
use crate::error::{CliError, unexpected};
use crate::output::{Format, Table, clean_line, clean_text};
use clap::Subcommand;
use mfad_protocol::time::utc;
use mfad_protocol::{HostPolicy, PolicyVersion, Request, Response, paths};
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
    /// Store a policy file as the fleet's policy: every mfad of the fleet puts it in force within seconds (root and mfad admins)
    #[command(
        after_long_help = "Needs the fleet store ([store] backend = \"postgres\" in \
mfad.toml); a daemon with its own SQLite store refuses it (edit its policy file and reload \
instead). The file is read here and checked by mfad exactly as a reload checks its policy \
file: a file with errors is refused with every problem (line and column), nothing changes, \
and mfactl exits with 1. Otherwise it becomes a new version (pushing the text of the latest \
pushed version again keeps its number), and every host of the fleet is told at once \
(PostgreSQL NOTIFY, with a check every 30 s in case a notice is lost).\n\n\
Once a version has been pushed, the rules of each host's own policy file are no longer used; \
its [host] table still says what that host is (class, tags, device_services), so host_class \
and host_tags in the pushed rules decide where each rule applies. `mfactl policy status` \
shows the version in force on each host."
    )]
    Push {
        /// The policy file to push
        #[arg(value_name = "FILE")]
        file: std::path::PathBuf,
    },
    /// Show the policy version in force on each host of the fleet, and the latest pushed one (root and mfad admins)
    Status,
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
        PolicyCommand::Push { file } => push(ctx, &file),
        PolicyCommand::Status => status(ctx),
        PolicyCommand::History => history(ctx),
        PolicyCommand::Show { number } => show(ctx, number),
        PolicyCommand::Diff { from, to } => diff(ctx, from, to),
    }
}

fn reload(ctx: &mut Ctx) -> Result<(), CliError> {
    let resp = ctx.call(&Request::PolicyReload)?;
    show_loaded(ctx, &resp, "the policy file was not loaded", "reload")
}

fn push(ctx: &mut Ctx, file: &std::path::Path) -> Result<(), CliError> {
    let name = clean_line(&file.display().to_string());
    let text = std::fs::read_to_string(file).map_err(|source| CliError::ReadFile {
        path: name.clone(),
        source,
    })?;
    let resp = ctx.call(&Request::PolicyPush { text })?;
    show_loaded(ctx, &resp, &format!("{name} was not pushed"), "push")
}

/// The outcome of a reload or a push; a rejected file is an error saying
/// that `not_loaded` and how to `again`.
fn show_loaded(
    ctx: &mut Ctx,
    resp: &Response,
    not_loaded: &str,
    again: &str,
) -> Result<(), CliError> {
    let Response::PolicyLoaded {
        version,
        changed,
        rejected,
        diagnostics,
    } = resp
    else {
        return Err(unexpected(resp));
    };
    ctx.show(resp, || render_loaded(*version, *changed, diagnostics))?;
    if *rejected {
        return Err(CliError::Rejected {
            code: "invalid_policy",
            message: format!("{not_loaded}; version {version} stays in force"),
            hint: format!(
                "Fix the file (`mfactl policy check FILE` lists every problem) and {again} again."
            ),
        });
    }
    Ok(())
}

fn status(ctx: &mut Ctx) -> Result<(), CliError> {
    let resp = ctx.call(&Request::PolicyStatus)?;
    match &resp {
        Response::PolicyStatus { hosts, pushed } => {
            ctx.show(&resp, || render_status(hosts, *pushed))
        }
        other => Err(unexpected(other)),
    }
}

pub fn render_status(hosts: &[HostPolicy], pushed: Option<i64>) -> String {
    let mut text = match pushed {
        Some(v) => format!("latest pushed version: {v}\n"),
        None => "no version pushed: each host enforces its own policy file\n".to_owned(),
    };
    let mut table = Table::new(&["HOST", "VERSION", "SINCE", "LATEST"]);
    for h in hosts {
        let latest = match pushed {
            Some(v) if v == h.version => "yes",
            Some(_) => "NO",
            None => "-",
        };
        table.row(vec![
            clean_line(&h.host),
            h.version.to_string(),
            utc(h.since),
            latest.to_owned(),
        ]);
    }
    text.push_str(&table.render());
    text
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
