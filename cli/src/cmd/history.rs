//! `mfactl history`: your own logins, newest first, from the audit log.

use super::Ctx;
use crate::error::{CliError, unexpected};
use crate::output::Table;
use clap::Args;
use mfad_protocol::time::utc;
use mfad_protocol::{AuditRow, Request, Response};

#[derive(Debug, Args)]
#[command(
    after_long_help = "Each line is one login: when it ended, the service, where it came from \
(the remote host, or the terminal of a local login), the factors it used joined with + (totp, \
backup, sms, email; a trusted device or the factors of the session (step-up) standing in; - for \
a verdict without a prompt), and its result, with mfad's reason for it (and how many tries \
failed before a success). Rows mfad wrote before it gave each login an id (schema 8) show one \
step each.\n\n\
With --json the reply is {\"type\":\"audit\",\"rows\":[...]}, one row per login in the \
shape `mfactl audit` prints: `channel` holds the factors joined with +, `decision` the result."
)]
pub struct HistoryArgs {
    /// Show this account's logins instead of your own (root and mfad admins only)
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// Show at most N logins (1 to 10000), the most recent first
    #[arg(long, value_name = "N", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub limit: u32,
}

pub fn run(ctx: &mut Ctx, args: &HistoryArgs) -> Result<(), CliError> {
    let resp = ctx.call(&Request::LoginHistory {
        user: args.user.clone(),
        limit: args.limit,
    })?;
    match &resp {
        Response::Audit { rows, more } => ctx.show(&resp, || {
            let mut text = render(rows);
            if *more {
                text.push_str("Older logins left out: one reply holds no more.\n");
            }
            text
        }),
        other => Err(unexpected(other)),
    }
}

/// What stood for the login: the factors, or what replaced them.
fn factors(channel: &str) -> String {
    let names: Vec<&str> = channel
        .split('+')
        .map(|f| match f {
            "none" => "-",
            "device" => "trusted device",
            "session" => "session (step-up)",
            other => other,
        })
        .collect();
    names.join(" + ")
}

pub fn render(rows: &[AuditRow]) -> String {
    if rows.is_empty() {
        return "No logins recorded.\n".to_owned();
    }
    let mut table = Table::new(&["TIME", "SERVICE", "FROM", "FACTORS", "RESULT", "DETAIL"]);
    for row in rows {
        let from = match (&row.rhost, &row.tty) {
            (Some(rhost), _) if !rhost.is_empty() => rhost.clone(),
            (_, Some(tty)) if !tty.is_empty() => format!("local ({tty})"),
            _ => "local".to_owned(),
        };
        table.row(vec![
            utc(row.time),
            row.service.clone(),
            from,
            factors(&row.channel),
            row.decision.clone(),
            row.reason.clone(),
        ]);
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::testing::mfactl;
    use serde_json::json;

    fn row(id: i64, rhost: Option<&str>, channel: &str, decision: &str) -> AuditRow {
        AuditRow {
            id,
            time: 86_400 + id,
            user: "alice".into(),
            service: "sshd".into(),
            rhost: rhost.map(str::to_owned),
            tty: Some("ssh".into()),
            channel: channel.into(),
            decision: decision.into(),
            reason: "ok".into(),
            peer_uid: 0,
            rule: Some("ssh".into()),
            policy_version: Some(1),
            ruser: None,
            caller_uid: None,
            host: None,
        }
    }

    #[test]
    fn history_asks_for_the_own_account_and_shows_each_login() {
        let rows = vec![
            row(2, Some("192.0.2.7"), "totp+device", "allow"),
            row(1, None, "device", "allow"),
        ];
        let out = mfactl(
            &["history", "--limit", "5"],
            vec![Response::Audit { rows, more: false }],
            "",
            false,
        );
        assert!(out.result.is_ok());
        assert_eq!(
            out.requests,
            vec![json!({"type": "login_history", "user": null, "limit": 5})]
        );
        assert_eq!(
            out.stdout,
            "TIME                  SERVICE  FROM         FACTORS                RESULT  DETAIL\n\
             1970-01-02 00:00:02Z  sshd     192.0.2.7    totp + trusted device  allow   ok\n\
             1970-01-02 00:00:01Z  sshd     local (ssh)  trusted device         allow   ok\n"
        );
        assert_eq!(render(&[]), "No logins recorded.\n");
    }

    #[test]
    fn an_admin_names_the_account_and_gets_json() {
        let out = mfactl(
            &["--json", "history", "--user", "bob"],
            vec![Response::Audit {
                rows: vec![],
                more: false,
            }],
            "",
            false,
        );
        assert_eq!(out.requests[0]["user"], "bob");
        assert_eq!(out.requests[0]["limit"], 20);
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(v, json!({"type": "audit", "rows": []}));
    }
}
