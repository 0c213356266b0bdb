//! `mfactl audit`: recent events, the live stream (`--follow`), and the
//! check of the hash chain (`verify`).

use super::Ctx;
use crate::error::{CliError, unexpected};
use crate::output::{Format, Table, clean_line, or_dash};
use clap::{Args, Subcommand};
use mfad_protocol::time::utc;
use mfad_protocol::{AuditRow, AuditVerification, Request, Response};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: Option<AuditCommand>,

    /// Print each new event as it happens, until interrupted; with --json,
    /// one mfad.audit.v1 object per line
    #[arg(long, short = 'f', conflicts_with_all = ["user", "limit"])]
    pub follow: bool,

    /// Only attempts for this account
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// Show at most N rows (1 to 10000), the most recent first
    #[arg(long, value_name = "N", default_value_t = 50,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub limit: u32,
}

/// The request for the rows older than `before` still wanted after `got`.
pub fn request(args: &AuditArgs, got: usize, before: Option<i64>) -> Request {
    Request::AuditQuery {
        user: args.user.clone(),
        limit: args
            .limit
            .saturating_sub(u32::try_from(got).unwrap_or(u32::MAX)),
        before,
    }
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check that no stored audit row was edited, deleted or reordered
    ///
    /// Each row carries the hash of the row before it and its own. The check
    /// starts at the oldest row kept (older ones may have been pruned) and
    /// names every row that breaks the chain; it exits with 1 if one does.
    Verify,
}

pub fn run(ctx: &mut Ctx, args: &AuditArgs) -> Result<(), CliError> {
    if let Some(AuditCommand::Verify) = args.command {
        return verify(ctx);
    }
    if args.follow {
        return follow(ctx);
    }
    let rows = query(ctx, args)?;
    let resp = Response::Audit {
        rows: rows.clone(),
        more: false,
    };
    ctx.show(&resp, || render(&rows))
}

/// The rows `args` asks for, a page at a time: one reply holds as many as
/// fit a frame.
fn query(ctx: &mut Ctx, args: &AuditArgs) -> Result<Vec<AuditRow>, CliError> {
    let wanted = usize::try_from(args.limit).unwrap_or(usize::MAX);
    let mut rows: Vec<AuditRow> = Vec::new();
    let mut before = None;
    loop {
        match ctx.call(&request(args, rows.len(), before))? {
            Response::Audit { rows: page, more } => {
                let last = page.last().map(|r| r.id);
                rows.extend(page);
                match last {
                    Some(id) if more && rows.len() < wanted => before = Some(id),
                    _ => return Ok(rows),
                }
            }
            other => return Err(unexpected(&other)),
        }
    }
}

fn follow(ctx: &mut Ctx) -> Result<(), CliError> {
    let json = ctx.format == Format::Json;
    let out = &mut *ctx.out;
    ctx.daemon.stream(&Request::AuditFollow, &mut |resp| {
        let line = match resp {
            Response::AuditEvent { record } if json => record.to_string(),
            Response::AuditEvent { record } => event_line(&record),
            Response::Error { code, message, .. } => {
                return Err(CliError::Daemon { code, message });
            }
            other => return Err(unexpected(&other)),
        };
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(CliError::Output)
    })
}

/// One event as a line of text: time, type, user, service, source,
/// decision, reason.
fn event_line(record: &serde_json::Value) -> String {
    let field = |name: &str| match &record[name] {
        serde_json::Value::String(s) => clean_line(s),
        serde_json::Value::Null => "-".to_owned(),
        other => other.to_string(),
    };
    [
        "time", "type", "user", "service", "rhost", "decision", "reason",
    ]
    .map(field)
    .join("  ")
}

fn verify(ctx: &mut Ctx) -> Result<(), CliError> {
    let resp = ctx.call(&Request::AuditVerify)?;
    let Response::AuditVerified(v) = &resp else {
        return Err(unexpected(&resp));
    };
    ctx.show(&resp, || render_verification(v))?;
    if v.problem_count == 0 {
        return Ok(());
    }
    Err(CliError::Rejected {
        code: "audit_chain_broken",
        message: format!(
            "the audit chain is broken at {} rows: the database was changed outside mfad",
            v.problem_count
        ),
        hint: "Compare the named rows with the copy at your collector or in the JSON-lines file \
               (each record carries its hash), and find out who had write access to the database."
            .to_owned(),
    })
}

pub fn render_verification(v: &AuditVerification) -> String {
    let short = |h: &Option<String>| {
        h.as_deref()
            .map_or("-".to_owned(), |h| h.chars().take(16).collect())
    };
    let mut text = match (v.anchor_id, v.head_id) {
        (Some(first), Some(last)) => format!(
            "{} rows checked, rows {first} to {last}: from the link {} (trusted: the oldest row kept) to the head {}.\n",
            v.rows,
            short(&v.anchor_hash),
            short(&v.head_hash),
        ),
        _ => format!("{} rows checked; none is chained yet.\n", v.rows),
    };
    if v.unchained > 0 {
        text += &format!(
            "{} older rows were written before mfad chained its rows and are not checked.\n",
            v.unchained
        );
    }
    if v.problem_count == 0 {
        text += "The audit chain is intact.\n";
        return text;
    }
    text += &format!(
        "The audit chain is BROKEN ({} problems):\n",
        v.problem_count
    );
    for p in &v.problems {
        text += &format!("  {}\n", clean_line(&p.problem));
    }
    if v.problem_count > v.problems.len() as u64 {
        text += &format!(
            "  ... and {} more\n",
            v.problem_count - v.problems.len() as u64
        );
    }
    text
}

pub fn render(rows: &[AuditRow]) -> String {
    if rows.is_empty() {
        return "No matching audit records.\n".to_owned();
    }
    // A fleet's rows come from several hosts: then each row names its own.
    let hosts = rows.iter().any(|r| r.host != rows[0].host);
    let mut columns = vec!["TIME"];
    if hosts {
        columns.push("HOST");
    }
    columns.extend([
        "USER", "SERVICE", "RHOST", "TTY", "CHANNEL", "DECISION", "RULE", "VERSION", "REASON",
    ]);
    let mut table = Table::new(&columns);
    for row in rows {
        let mut cells = vec![utc(row.time)];
        if hosts {
            cells.push(or_dash(row.host.as_deref()));
        }
        cells.extend([
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
        table.row(cells);
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
            ruser: None,
            caller_uid: None,
            host: None,
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
            command: None,
            follow: false,
            user: Some("bob".into()),
            limit: 7,
        };
        assert_eq!(
            serde_json::to_string(&request(&args, 0, None)).unwrap(),
            r#"{"type":"audit_query","user":"bob","limit":7}"#
        );
    }

    #[test]
    fn a_reply_cut_short_by_the_frame_limit_is_followed_by_the_older_rows() {
        let replies = vec![
            Response::Audit {
                rows: vec![
                    row(1_700_000_009, None, "allow"),
                    row(1_700_000_008, None, "deny"),
                ],
                more: true,
            },
            Response::Audit {
                rows: vec![row(1_700_000_007, None, "allow")],
                more: false,
            },
        ];
        let out = crate::cmd::testing::mfactl(&["audit", "--limit", "5"], replies, "", false);
        assert!(out.result.is_ok(), "{:?}", out.result);
        assert_eq!(
            out.requests,
            vec![
                serde_json::json!({"type": "audit_query", "user": null, "limit": 5}),
                serde_json::json!({"type": "audit_query", "user": null, "limit": 3, "before": 1_700_000_008}),
            ]
        );
        assert_eq!(out.stdout.matches("alice").count(), 3, "{}", out.stdout);
    }

    #[test]
    fn follow_prints_one_record_per_line() {
        let record = serde_json::json!({"schema": "mfad.audit.v1", "time": "2026-11-23T19:04:05Z",
            "type": "authentication", "user": "alice", "service": "sshd", "rhost": null,
            "decision": "deny", "reason": "wrong code"});
        let events = || {
            vec![
                Response::AuditEvent {
                    record: record.clone(),
                },
                Response::AuditEvent {
                    record: record.clone(),
                },
            ]
        };
        let out =
            crate::cmd::testing::mfactl(&["audit", "--json", "--follow"], events(), "", false);
        assert!(out.result.is_ok());
        assert_eq!(
            out.requests,
            vec![serde_json::json!({"type": "audit_follow"})]
        );
        let lines: Vec<_> = out.stdout.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(lines[0]).unwrap(),
            record
        );
        let out = crate::cmd::testing::mfactl(&["audit", "-f"], events(), "", false);
        assert_eq!(
            out.stdout.lines().next(),
            Some("2026-11-23T19:04:05Z  authentication  alice  sshd  -  deny  wrong code")
        );
    }

    #[test]
    fn verify_names_the_rows_and_fails() {
        let broken = AuditVerification {
            rows: 9,
            unchained: 0,
            anchor_id: Some(1),
            anchor_hash: Some("0".repeat(64)),
            head_id: Some(9),
            head_hash: Some("ab".repeat(32)),
            problem_count: 1,
            problems: vec![mfad_protocol::AuditProblem {
                id: 4,
                problem: "row 4 does not match its hash".into(),
            }],
        };
        let out = crate::cmd::testing::mfactl(
            &["audit", "verify"],
            vec![Response::AuditVerified(broken.clone())],
            "",
            false,
        );
        assert!(out.stdout.contains("BROKEN (1 problems)"), "{}", out.stdout);
        assert!(
            out.stdout.contains("  row 4 does not match its hash"),
            "{}",
            out.stdout
        );
        assert!(matches!(
            out.result,
            Err(CliError::Rejected {
                code: "audit_chain_broken",
                ..
            })
        ));
        let intact = AuditVerification {
            problem_count: 0,
            problems: vec![],
            ..broken
        };
        let out = crate::cmd::testing::mfactl(
            &["audit", "verify"],
            vec![Response::AuditVerified(intact)],
            "",
            false,
        );
        assert!(out.result.is_ok());
        assert!(
            out.stdout.contains("9 rows checked, rows 1 to 9"),
            "{}",
            out.stdout
        );
        assert!(
            out.stdout.ends_with("The audit chain is intact.\n"),
            "{}",
            out.stdout
        );
    }
}
