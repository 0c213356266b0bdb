//! `mfactl doctor`: checks what stands between a working mfad and a second
//! factor that is really asked for: the daemon, sshd's effective
//! configuration, the PAM stacks and time sync, each with what to change.

use super::{Ctx, doctor_pam, doctor_sshd};
use crate::error::CliError;
use crate::output::{Format, clean_line, clean_text};
use clap::Args;
use mfad_protocol::{ErrorCode, Request, Response};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, Args)]
#[command(
    after_long_help = "Checks, in order: mfad answers on its socket; with a [directory] in \
mfad.toml, mfad connects to it (TLS), binds, and looks up --directory-user with the user filter; sshd's effective \
configuration (`sshd -T`, run as root) has UsePAM, KbdInteractiveAuthentication and an \
AuthenticationMethods that cannot skip the second factor; the auth stack of each service \
includes pam_mfa.so with a control that fails closed, and the module exists; for sshd and \
login, the session stack runs pam_mfa.so after pam_loginuid.so (step-up and `mfactl sessions` \
need it); the clock is synchronized (TOTP codes depend on it). Match blocks of sshd_config \
are not evaluated.\n\n\
Exit status: 0 when nothing failed (warnings allowed), 1 when a check failed.\n\n\
With --json: {\"findings\":[{\"check\",\"status\":\"ok|warn|fail|skip\",\"message\",\"fix\"}]}."
)]
pub struct DoctorArgs {
    /// The directory of PAM service files to read
    #[arg(long, value_name = "DIR", default_value = "/etc/pam.d")]
    pub pam_dir: PathBuf,
    /// A PAM service to check (repeatable)
    #[arg(long = "service", value_name = "NAME", default_values = ["sshd", "sudo"])]
    pub services: Vec<String>,
    /// The sshd_config to evaluate (`sshd -T -f FILE`); default: sshd's own
    #[arg(long, value_name = "FILE")]
    pub sshd_config: Option<PathBuf>,
    /// The user to look up in mfad's [directory] (LDAP / AD); default: the
    /// user running mfactl
    #[arg(long, value_name = "USER")]
    pub directory_user: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Warn,
    Fail,
    /// Could not be checked here (a missing program, no permission).
    Skip,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub check: String,
    pub status: Status,
    pub message: String,
    pub fix: Option<String>,
}

impl Finding {
    fn new(check: &str, status: Status, message: String, fix: Option<&str>) -> Self {
        Self {
            check: check.to_owned(),
            status,
            message,
            fix: fix.map(str::to_owned),
        }
    }

    pub fn ok(check: &str, message: String) -> Self {
        Self::new(check, Status::Ok, message, None)
    }

    pub fn skip(check: &str, message: String) -> Self {
        Self::new(check, Status::Skip, message, None)
    }

    pub fn warn(check: &str, message: String, fix: impl AsRef<str>) -> Self {
        Self::new(check, Status::Warn, message, Some(fix.as_ref()))
    }

    pub fn fail(check: &str, message: String, fix: impl AsRef<str>) -> Self {
        Self::new(check, Status::Fail, message, Some(fix.as_ref()))
    }
}

#[derive(Serialize)]
struct Report<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    findings: &'a [Finding],
}

pub fn run(ctx: &mut Ctx, args: &DoctorArgs) -> Result<(), CliError> {
    let mut findings = vec![daemon(ctx)];
    findings.extend(store(ctx));
    findings.extend(directory(ctx, args.directory_user.as_deref()));
    findings.extend(sshd(args.sshd_config.as_deref()));
    for service in &args.services {
        findings.extend(pam(&args.pam_dir, service));
    }
    findings.push(time_sync());
    let text = match ctx.format {
        Format::Json => crate::output::json(&Report {
            kind: "doctor",
            findings: &findings,
        })?,
        Format::Human => render(&findings),
    };
    ctx.write(&text)?;
    let failed = findings.iter().filter(|f| f.status == Status::Fail).count();
    if failed == 0 {
        return Ok(());
    }
    Err(CliError::Rejected {
        code: "doctor",
        message: format!("{failed} check(s) failed"),
        hint: "Make the changes under `fix:` above, then run `mfactl doctor` again.".to_owned(),
    })
}

fn daemon(ctx: &mut Ctx) -> Finding {
    const TOPIC: &str = "mfad";
    match ctx.call(&Request::Ping) {
        Ok(Response::Pong { daemon_version, .. }) => Finding::ok(
            TOPIC,
            format!("mfad {} answers", clean_line(&daemon_version)),
        ),
        Ok(other) => Finding::fail(
            TOPIC,
            crate::error::unexpected(&other).to_string(),
            "install matching versions of mfad and mfactl",
        ),
        Err(e) => Finding::fail(
            TOPIC,
            format!("{e}: every login through pam_mfa.so is refused"),
            e.hint()
                .unwrap_or_else(|| "start mfad: systemctl start mfad".to_owned()),
        ),
    }
}

/// mfad's checks of its store: for a fleet, the connection to PostgreSQL,
/// TLS and the schema.
fn store(ctx: &mut Ctx) -> Vec<Finding> {
    match ctx.call(&Request::StoreCheck) {
        Ok(Response::StoreChecked { steps }) => steps
            .iter()
            .map(|s| {
                let message = clean_line(&s.message);
                let fix = "check [store] in mfad.toml (mfad.toml(5)) and the database server";
                match s.status.as_str() {
                    "ok" => Finding::ok(&s.check, message),
                    "warn" => Finding::warn(&s.check, message, fix),
                    _ => Finding::fail(&s.check, message, fix),
                }
            })
            .collect(),
        Ok(other) => vec![Finding::skip(
            "store",
            crate::error::unexpected(&other).to_string(),
        )],
        // mfad cannot be asked: the daemon finding already says why.
        Err(_) => Vec::new(),
    }
}

/// mfad's own checks of its `[directory]`: TLS and the bind, the user
/// filter and a sample lookup. mfad asks, since only it has the password.
fn directory(ctx: &mut Ctx, user: Option<&str>) -> Vec<Finding> {
    const TOPIC: &str = "directory";
    match ctx.call(&Request::DirectoryCheck {
        user: user.map(str::to_owned),
    }) {
        Ok(Response::DirectoryChecked { steps }) => steps
            .iter()
            .map(|s| {
                let message = clean_line(&s.message);
                let fix = "check [directory] in mfad.toml (mfad.toml(5)) against the directory";
                match s.status.as_str() {
                    "ok" => Finding::ok(&s.check, message),
                    "warn" => Finding::warn(&s.check, message, fix),
                    _ => Finding::fail(&s.check, message, fix),
                }
            })
            .collect(),
        Err(CliError::Daemon {
            code: ErrorCode::NotConfigured,
            ..
        }) => vec![Finding::skip(
            TOPIC,
            "no [directory] in mfad.toml: contacts and groups come from mfactl and NSS".to_owned(),
        )],
        Err(CliError::Daemon { message, .. }) => vec![Finding::skip(TOPIC, clean_line(&message))],
        Ok(other) => vec![Finding::skip(
            TOPIC,
            crate::error::unexpected(&other).to_string(),
        )],
        // mfad cannot be asked: the daemon finding already says why.
        Err(_) => Vec::new(),
    }
}

/// Where sshd usually is, when it is not on PATH (root's PATH has sbin).
const SSHD: &[&str] = &["/usr/sbin/sshd", "/usr/local/sbin/sshd"];

fn sshd(config: Option<&Path>) -> Vec<Finding> {
    let Some(program) = SSHD.iter().map(Path::new).find(|p| p.is_file()) else {
        return vec![Finding::skip("sshd", "sshd is not installed".to_owned())];
    };
    let mut cmd = Command::new(program);
    cmd.arg("-T");
    if let Some(file) = config {
        cmd.arg("-f").arg(file);
    }
    match cmd.output() {
        Ok(out) if out.status.success() => {
            doctor_sshd::check(&String::from_utf8_lossy(&out.stdout))
        }
        Ok(out) => vec![doctor_sshd::failed(
            &String::from_utf8_lossy(&out.stderr),
            nix::unistd::geteuid().is_root(),
        )],
        Err(e) => vec![Finding::skip(
            "sshd",
            format!("cannot run {}: {e}", program.display()),
        )],
    }
}

fn pam(dir: &Path, service: &str) -> Vec<Finding> {
    let topic = format!("pam {service}");
    match doctor_pam::load(dir, service) {
        Ok(Some(lines)) => doctor_pam::check(service, &lines, &doctor_pam::module_exists),
        Ok(None) => vec![Finding::skip(
            &topic,
            format!("no {}", dir.join(service).display()),
        )],
        Err(e) => vec![Finding::fail(
            &topic,
            e,
            "fix the PAM file: libpam refuses every login of a service whose stack it cannot read",
        )],
    }
}

fn time_sync() -> Finding {
    const TOPIC: &str = "time";
    let out = Command::new("timedatectl")
        .args(["show", "--property=NTPSynchronized", "--value"])
        .output();
    let fix = "enable time sync (systemd-timesyncd, chrony or ntpd): TOTP codes fail when the clock drifts";
    match out {
        Ok(out) if out.status.success() => match String::from_utf8_lossy(&out.stdout).trim() {
            "yes" => Finding::ok(TOPIC, "the clock is synchronized (NTP)".to_owned()),
            _ => Finding::warn(TOPIC, "the clock is not synchronized".to_owned(), fix),
        },
        _ => Finding::skip(
            TOPIC,
            "cannot tell whether the clock is synchronized (timedatectl gave no answer)".to_owned(),
        ),
    }
}

pub fn render(findings: &[Finding]) -> String {
    let mut text = String::new();
    let width = findings.iter().map(|f| f.check.len()).max().unwrap_or(0);
    for f in findings {
        let status = match f.status {
            Status::Ok => "ok",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
        };
        text.push_str(&format!(
            "{status:<4}  {:<width$}  {}\n",
            clean_line(&f.check),
            clean_line(&f.message)
        ));
        if let Some(fix) = &f.fix {
            text.push_str(&format!("      {:<width$}  fix: {}\n", "", clean_text(fix)));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use crate::cmd::testing::mfactl;
    use mfad_protocol::{CheckStep, ErrorCode, Response};
    use serde_json::{Value, json};

    fn store() -> Response {
        Response::StoreChecked {
            steps: vec![CheckStep {
                check: "store".into(),
                status: "ok".into(),
                message: "SQLite, schema version 9".into(),
            }],
        }
    }

    fn doctor(reply: Response) -> (Vec<Value>, Vec<Value>) {
        let pam = tempfile::tempdir().unwrap();
        let pong = Response::Pong {
            daemon_version: "0.1.0".into(),
            protocol: 1,
        };
        let out = mfactl(
            &[
                "--json",
                "doctor",
                "--pam-dir",
                pam.path().to_str().unwrap(),
                "--service",
                "none",
                "--directory-user",
                "alice",
            ],
            vec![pong, store(), reply],
            "",
            false,
        );
        let doc: Value = serde_json::from_str(&out.stdout).unwrap();
        let found = doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["check"].as_str().unwrap().starts_with("directory"))
            .cloned()
            .collect();
        (out.requests, found)
    }

    #[test]
    fn directory_steps_from_mfad_become_findings() {
        let step = |check: &str, status: &str, message: &str| CheckStep {
            check: check.into(),
            status: status.into(),
            message: message.into(),
        };
        let (requests, found) = doctor(Response::DirectoryChecked {
            steps: vec![
                step("directory bind", "ok", "ldaps://h: bound"),
                step("directory lookup", "warn", "(uid=alice) matched no entry"),
            ],
        });
        assert_eq!(requests[1], json!({"type": "store_check"}));
        assert_eq!(
            requests[2],
            json!({"type": "directory_check", "user": "alice"})
        );
        let got: Vec<(&str, &str)> = found
            .iter()
            .map(|f| (f["check"].as_str().unwrap(), f["status"].as_str().unwrap()))
            .collect();
        assert_eq!(
            got,
            [("directory bind", "ok"), ("directory lookup", "warn")]
        );
        assert!(found[1]["fix"].as_str().unwrap().contains("[directory]"));
    }

    #[test]
    fn no_directory_is_a_skip() {
        let (_, found) = doctor(Response::Error {
            code: ErrorCode::NotConfigured,
            message: "mfad.toml has no [directory] section".into(),
            supported: vec![],
        });
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0]["status"], "skip");
        assert!(found[0]["message"].as_str().unwrap().contains("NSS"));
    }
}
