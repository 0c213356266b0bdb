//! `mfactl sessions`: active login sessions, and ending one.

use super::{Ctx, show_done};
use crate::error::{CliError, unexpected};
use crate::output::{Table, or_dash};
use clap::Subcommand;
use mfad_protocol::{Request, Response, SessionInfo};

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// List active login sessions (your own; root and mfad admins: all): user, source, factors passed and age
    #[command(
        after_long_help = "Sessions are reported by the session hook of pam_mfa.so (see pam_mfa(8): \
`session optional pam_mfa.so` after pam_loginuid.so). FACTORS lists what the login passed and \
when; a later sudo in the session counts those within its rule's `fresh` limits. Sessions none \
of whose processes are left are dropped from the list. A user sees only sessions of their own \
uid; root and mfad admins see every session.\n\n\
With the fleet store ([store] backend = \"postgres\"), the list holds every host's sessions \
with a HOST column (for root and mfad admins; a user sees their own on this host). PROCS is \
counted on this host only: another host's sessions show 0."
    )]
    List,
    /// End a session (your own; root and mfad admins: any): terminate all its processes; audited
    #[command(
        after_long_help = "A session on another host of the fleet is ended by that host's mfad, \
which is told at once through the database; mfactl waits up to 3 s for it, and says so if that \
host has not done it (its mfad carries the request out when it next checks)."
    )]
    Kill {
        /// The session id from `mfactl sessions list`
        #[arg(value_name = "ID")]
        id: i64,
    },
    /// Make a session step up again (root and mfad admins): its next sudo asks every factor; audited
    Stepup {
        /// The session id from `mfactl sessions list`
        #[arg(value_name = "ID")]
        id: i64,
    },
}

pub fn request(cmd: &SessionsCommand) -> Request {
    match cmd {
        SessionsCommand::List => Request::SessionList,
        SessionsCommand::Kill { id } => Request::SessionKill { id: *id },
        SessionsCommand::Stepup { id } => Request::SessionStepup { id: *id },
    }
}

pub fn run(ctx: &mut Ctx, cmd: SessionsCommand) -> Result<(), CliError> {
    let resp = ctx.call(&request(&cmd))?;
    match cmd {
        SessionsCommand::List => match &resp {
            Response::Sessions { sessions } => {
                let now = super::now();
                ctx.show(&resp, || render(sessions, now))
            }
            other => Err(unexpected(other)),
        },
        SessionsCommand::Kill { .. } | SessionsCommand::Stepup { .. } => show_done(ctx, &resp),
    }
}

/// "3h 12m", "40s": how long ago.
pub fn age(now: i64, then: i64) -> String {
    let s = now.saturating_sub(then).max(0);
    match s {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    }
}

pub fn render(sessions: &[SessionInfo], now: i64) -> String {
    if sessions.is_empty() {
        return "No active sessions.\n".to_owned();
    }
    // A fleet's sessions name their host; a single host's do not.
    let fleet = sessions.iter().any(|s| s.host.is_some());
    let mut headers = vec!["ID"];
    if fleet {
        headers.push("HOST");
    }
    headers.extend([
        "USER", "SERVICE", "SOURCE", "TTY", "AGE", "FACTORS", "PROCS",
    ]);
    let mut table = Table::new(&headers);
    for s in sessions {
        let factors = match (&s.device, s.factors.is_empty()) {
            (Some(device), _) => format!("trusted device {device}"),
            (None, true) => "none".to_owned(),
            (None, false) => s
                .factors
                .iter()
                .map(|f| format!("{} ({} ago)", f.factor, age(now, f.at)))
                .collect::<Vec<_>>()
                .join(", "),
        };
        let mut row = vec![s.id.to_string()];
        if fleet {
            row.push(or_dash(s.host.as_deref()));
        }
        row.extend([
            s.user.clone(),
            s.service.clone(),
            or_dash(s.rhost.as_deref()),
            or_dash(s.tty.as_deref()),
            age(now, s.opened_at),
            factors,
            s.processes.to_string(),
        ]);
        table.row(row);
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::testing::{done, mfactl};
    use mfad_protocol::PassedFactor;
    use serde_json::json;

    fn session(id: i64) -> SessionInfo {
        SessionInfo {
            id,
            host: None,
            audit_session: 7,
            user: "alice".into(),
            service: "sshd".into(),
            rhost: Some("192.0.2.7".into()),
            tty: None,
            opened_at: 1000,
            factors: vec![PassedFactor {
                factor: "totp".into(),
                at: 1000,
            }],
            device: None,
            processes: 3,
        }
    }

    #[test]
    fn list_table_shows_factors_and_age() {
        let mut trusted = session(2);
        trusted.factors.clear();
        trusted.device = Some("ssh-ed25519 SHA256:abc".into());
        assert_eq!(
            render(&[session(1), trusted], 1000 + 3600 + 120),
            "ID  USER   SERVICE  SOURCE     TTY  AGE    FACTORS                                PROCS\n\
             1   alice  sshd     192.0.2.7  -    1h 2m  totp (1h 2m ago)                       3\n\
             2   alice  sshd     192.0.2.7  -    1h 2m  trusted device ssh-ed25519 SHA256:abc  3\n"
        );
        assert_eq!(render(&[], 0), "No active sessions.\n");
        let mut remote = session(3);
        remote.host = Some("web-2".into());
        remote.processes = 0;
        assert_eq!(
            render(&[remote], 1000 + 60),
            "ID  HOST   USER   SERVICE  SOURCE     TTY  AGE  FACTORS        PROCS\n\
             3   web-2  alice  sshd     192.0.2.7  -    1m   totp (1m ago)  0\n"
        );
    }

    #[test]
    fn kill_sends_the_id_and_prints_the_reply() {
        let out = mfactl(
            &["sessions", "kill", "4"],
            vec![done("Session 4 ended.")],
            "",
            false,
        );
        assert!(out.result.is_ok());
        assert_eq!(out.requests, vec![json!({"type": "session_kill", "id": 4})]);
        assert_eq!(out.stdout, "Session 4 ended.\n");
        let out = mfactl(
            &["sessions", "stepup", "4"],
            vec![done("Session 4 of alice must step up again.")],
            "",
            false,
        );
        assert!(out.result.is_ok());
        assert_eq!(
            out.requests,
            vec![json!({"type": "session_stepup", "id": 4})]
        );
        let out = mfactl(
            &["--json", "sessions", "list"],
            vec![Response::Sessions {
                sessions: vec![session(1)],
            }],
            "",
            false,
        );
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(v["sessions"][0]["factors"][0]["factor"], "totp");
    }
}
