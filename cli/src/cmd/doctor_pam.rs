//! `mfactl doctor`, the PAM part: reads a service's stack as libpam would
//! (`@include`, `include` and `substack` followed), and judges each
//! pam_mfa.so line by what libpam does with the module's failure codes.

use super::doctor::Finding;
use std::path::{Path, PathBuf};

/// One rule of a PAM stack, where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PamLine {
    /// `auth`, `account`, `session` or `password` (a leading `-` dropped).
    pub kind: String,
    pub control: String,
    pub module: String,
    pub args: Vec<String>,
    pub file: PathBuf,
    pub line: usize,
}

/// How deep includes may nest before the stack is called broken (libpam's
/// own limit for substacks is 80; real stacks use two or three).
const MAX_DEPTH: usize = 16;

/// Where libpam looks for a module given by name.
pub const MODULE_DIRS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/security",
    "/lib/x86_64-linux-gnu/security",
    "/usr/lib/aarch64-linux-gnu/security",
    "/lib/aarch64-linux-gnu/security",
    "/usr/lib64/security",
    "/lib64/security",
    "/usr/lib/security",
    "/lib/security",
];

/// The rules of `service` in `dir`, includes expanded. `Ok(None)`: there
/// is no such service file.
pub fn load(dir: &Path, service: &str) -> Result<Option<Vec<PamLine>>, String> {
    let path = dir.join(service);
    if !path.exists() {
        return Ok(None);
    }
    let mut lines = Vec::new();
    read(dir, &path, None, 0, &mut lines)?;
    Ok(Some(lines))
}

/// Appends the rules of `path` (only those of `only` kind, for an
/// `include` inside a typed line).
fn read(
    dir: &Path,
    path: &Path,
    only: Option<&str>,
    depth: usize,
    out: &mut Vec<PamLine>,
) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "includes nest deeper than {MAX_DEPTH} at {}",
            path.display()
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    for (number, line) in logical_lines(&text) {
        let mut words = tokens(&line).into_iter();
        let Some(first) = words.next() else { continue };
        if first == "@include" {
            let name = words
                .next()
                .ok_or_else(|| format!("{}:{number}: @include names no file", path.display()))?;
            read(dir, &dir.join(name), only, depth + 1, out)?;
            continue;
        }
        let kind = first.trim_start_matches('-').to_ascii_lowercase();
        if only.is_some_and(|k| k != kind) {
            continue;
        }
        let (Some(control), Some(module)) = (words.next(), words.next()) else {
            return Err(format!(
                "{}:{number}: a rule needs a type, a control and a module",
                path.display()
            ));
        };
        if matches!(control.as_str(), "include" | "substack") {
            read(dir, &dir.join(&module), Some(&kind), depth + 1, out)?;
            continue;
        }
        out.push(PamLine {
            kind,
            control,
            module,
            args: words.collect(),
            file: path.to_owned(),
            line: number,
        });
    }
    Ok(())
}

/// Lines without comments, joined where one ends in a backslash, with the
/// number of the line each starts on.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim_end();
        let (start, mut joined) = pending.take().unwrap_or((i + 1, String::new()));
        match line.strip_suffix('\\') {
            Some(head) => {
                joined.push_str(head);
                joined.push(' ');
                pending = Some((start, joined));
            }
            None => {
                joined.push_str(line);
                out.push((start, joined));
            }
        }
    }
    out.extend(pending);
    out
}

/// Words split on blanks, a `[...]` control kept whole.
fn tokens(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line.trim_start();
    while !rest.is_empty() {
        let end = if rest.starts_with('[') {
            rest.find(']').map_or(rest.len(), |i| i + 1)
        } else {
            rest.find(char::is_whitespace).unwrap_or(rest.len())
        };
        out.push(rest[..end].to_owned());
        rest = rest[end..].trim_start();
    }
    out
}

/// What libpam does with a module's return code under `control`.
fn action(control: &str, code: &str) -> String {
    let simple = |ok: &str, default: &str| {
        if code == "success" || code == "new_authtok_reqd" {
            ok.to_owned()
        } else if code == "ignore" {
            "ignore".to_owned()
        } else {
            default.to_owned()
        }
    };
    match control {
        "required" => simple("ok", "bad"),
        "requisite" => simple("ok", "die"),
        "optional" => simple("ok", "ignore"),
        "sufficient" => simple("done", "ignore"),
        bracket => {
            let pairs: Vec<(&str, &str)> = bracket
                .trim_start_matches('[')
                .trim_end_matches(']')
                .split_whitespace()
                .filter_map(|kv| kv.split_once('='))
                .collect();
            let find = |key: &str| pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
            // libpam: a code not named takes `default`, and without one, bad.
            find(code)
                .or_else(|| find("default"))
                .unwrap_or("bad")
                .to_owned()
        }
    }
}

/// The codes pam_mfa.so returns when a login must not go on.
const FAILURES: &[&str] = &[
    "auth_err",
    "authinfo_unavail",
    "maxtries",
    "perm_denied",
    "conv_err",
    "service_err",
];

/// Findings about `service`'s stack: whether pam_mfa.so is in its auth
/// stack, and whether each of its lines lets a failure through.
pub fn check(
    service: &str,
    lines: &[PamLine],
    module_exists: &dyn Fn(&str) -> bool,
) -> Vec<Finding> {
    let topic = format!("pam {service}");
    let mfa: Vec<&PamLine> = lines
        .iter()
        .filter(|l| l.kind == "auth" && is_pam_mfa(&l.module))
        .collect();
    if mfa.is_empty() {
        return vec![Finding::warn(
            &topic,
            format!("pam_mfa.so is not in the auth stack, so {service} asks for no second factor"),
            format!(
                "add `auth requisite pam_mfa.so` to /etc/pam.d/{service} (see README: Protecting sshd and sudo)"
            ),
        )];
    }
    let mut findings = Vec::new();
    for l in mfa {
        let at = format!("{}:{}", l.file.display(), l.line);
        let let_through: Vec<String> = FAILURES
            .iter()
            .filter_map(|code| {
                let act = action(&l.control, code);
                (act != "bad" && act != "die").then(|| format!("{code}={act}"))
            })
            .collect();
        if !let_through.is_empty() {
            findings.push(Finding::fail(
                &topic,
                format!(
                    "{at}: `auth {}` lets a failed or unavailable second factor through ({})",
                    l.control,
                    let_through.join(" ")
                ),
                "use `requisite` (or `[success=ok default=die]`); never `optional`, `sufficient` or `default=ignore`",
            ));
        } else if action(&l.control, "success") == "done" {
            findings.push(Finding::warn(
                &topic,
                format!(
                    "{at}: `auth {}`: a passed second factor skips every module after it",
                    l.control
                ),
                "use `requisite`, so later modules (a password) still run",
            ));
        }
        if !module_exists(&l.module) {
            findings.push(Finding::fail(
                &topic,
                format!(
                    "{at}: the module {} does not exist, so every {service} login fails",
                    l.module
                ),
                "install the mfad package, or fix the path on that line",
            ));
        }
        if l.args.iter().any(|a| a == "failmode=open") {
            findings.push(Finding::warn(
                &topic,
                format!(
                    "{at}: failmode=open: while mfad is down, {service} asks for no second factor"
                ),
                "remove failmode=open unless losing MFA during an outage is accepted",
            ));
        }
        if findings.is_empty() {
            findings.push(Finding::ok(
                &topic,
                format!("{at}: `auth {} {}` fails closed", l.control, l.module),
            ));
        }
    }
    if LOGINS.contains(&service) {
        findings.extend(session_hook(&topic, lines));
    }
    findings
}

/// Services that start a login session, which step-up builds on.
const LOGINS: &[&str] = &["sshd", "login"];

/// A login's session stack should report it to mfad, after pam_loginuid
/// (which gives it the audit session id mfad knows it by).
fn session_hook(topic: &str, lines: &[PamLine]) -> Option<Finding> {
    let session = |pred: fn(&str) -> bool| {
        lines
            .iter()
            .position(|l| l.kind == "session" && pred(&l.module))
    };
    let loginuid = session(|m| m.ends_with("pam_loginuid.so"));
    let fix = "add `session optional pam_mfa.so` after `session required pam_loginuid.so`";
    match (session(is_pam_mfa), loginuid) {
        (None, _) => Some(Finding::warn(
            topic,
            "no pam_mfa.so in the session stack: the one-time session ticket stays in the PAM environment and reaches the user's shell, sudo in these logins asks for every factor again (no step-up), and `mfactl sessions` does not list them".to_owned(),
            fix,
        )),
        (Some(m), Some(l)) if m > l => None,
        (Some(_), _) => Some(Finding::warn(
            topic,
            "pam_mfa.so comes before pam_loginuid.so in the session stack (or pam_loginuid is missing), so mfad cannot tell which login it reports".to_owned(),
            fix,
        )),
    }
}

/// pam_mfa.so, installed by name, or cargo's `libpam_mfa.so` by path (the
/// name the build and the quick start use).
fn is_pam_mfa(module: &str) -> bool {
    Path::new(module)
        .file_name()
        .is_some_and(|n| n == "pam_mfa.so" || n == "libpam_mfa.so")
}

/// Whether libpam would find `module`: an absolute path as is, a name in
/// the module directories.
pub fn module_exists(module: &str) -> bool {
    let path = Path::new(module);
    if path.is_absolute() {
        return path.is_file();
    }
    MODULE_DIRS
        .iter()
        .any(|dir| Path::new(dir).join(module).is_file())
}

#[cfg(test)]
#[path = "doctor_pam_tests.rs"]
mod tests;
