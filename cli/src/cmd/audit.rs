//! `mfactl audit`: recent authentication attempts.

use super::Ctx;
use crate::error::{CliError, unexpected};
use crate::output::{Table, or_dash};
use clap::Args;
use mfad_protocol::time::utc;
use mfad_protocol::{AuditRow, Request, Response};

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only attempts for this account
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// Show at most N rows (1 to 10000), the most recent first
    #[arg(long, value_name = "N", default_value_t = 50,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub limit: u32,
}

pub fn request(args: &AuditArgs) -> Request {
    Request::AuditQuery {
        user: args.user.clone(),
        limit: args.limit,
    }
}

pub fn run(ctx: &mut Ctx, args: &AuditArgs) -> Result<(), CliError> {
    let resp = ctx.call(&request(args))?;
    match &resp {
        Response::Audit { rows } => ctx.show(&resp, || render(rows)),
        other => Err(unexpected(other)),
    }
}

pub fn render(rows: &[AuditRow]) -> String {
    if rows.is_empty() {
        return "No matching audit records.\n".to_owned();
    }
    let mut table = Table::new(&[
        "TIME", "USER", "SERVICE", "RHOST", "TTY", "CHANNEL", "DECISION", "RULE", "VERSION",
        "REASON",
    ]);
    for row in rows {
        table.row(vec![
            utc(row.time),
            row.user.clone(),
            row.service.clone(),
            or_dash(row.rhost.as_deref()),
            or_dash(row.tty.as_deref()),
            row.channel.clone(),
            row.decision.clone(),
            or_dash(row.rule.as_deref()),
            row.policy_version
                .map_or_else(|| "-".to_owned(), |v| v.to_string()),
            row.reason.clone(),
        ]);
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(time: i64, rhost: Option<&str>, decision: &str) -> AuditRow {
        AuditRow {
            id: time,
            time,
            user: "alice".into(),
            service: "sshd".into(),
            rhost: rhost.map(Into::into),
            tty: None,
            channel: "totp".into(),
            decision: decision.into(),
            reason: "code accepted".into(),
            peer_uid: 0,
            rule: None,
            policy_version: None,
        }
    }

    #[test]
    fn table_with_missing_fields_as_dashes() {
        let mut decided = row(1_795_460_645, Some("10.0.0.1"), "allow");
        decided.rule = Some("admins".into());
        decided.policy_version = Some(12);
        let rows = vec![decided, row(1_795_460_600, None, "deny")];
        assert_eq!(
            render(&rows),
            "TIME                  USER   SERVICE  RHOST     TTY  CHANNEL  DECISION  RULE    VERSION  REASON\n\
             2026-11-23 19:04:05Z  alice  sshd     10.0.0.1  -    totp     allow     admins  12       code accepted\n\
             2026-11-23 19:03:20Z  alice  sshd     -         -    totp     deny      -       -        code accepted\n"
        );
        assert_eq!(render(&[]), "No matching audit records.\n");
    }

    #[test]
    fn hostile_rhost_is_defused() {
        let text = render(&[row(0, Some("\u{1b}[31mevil"), "deny")]);
        assert!(text.contains("?[31mevil"));
        assert!(!text.contains('\u{1b}'));
    }

    #[test]
    fn request_carries_user_and_limit() {
        let args = AuditArgs {
            user: Some("bob".into()),
            limit: 7,
        };
        assert_eq!(
            serde_json::to_string(&request(&args)).unwrap(),
            r#"{"type":"audit_query","user":"bob","limit":7}"#
        );
    }
}
