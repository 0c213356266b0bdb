//! `mfactl policy explain`: which rule of the policy in force would decide
//! a login, why every rule before it did not, and what the user would be
//! asked for. mfad changes nothing to answer.

use super::Ctx;
use crate::error::{CliError, unexpected};
use crate::output::clean_line;
use clap::Args;
use mfad_protocol::{Explanation, Request, Response};

#[derive(Debug, Args)]
#[command(
    after_long_help = "Rules are consulted in order and the first that matches decides; \
each rule before it is listed with the condition that did not hold. Then come the \
requirement of the matching rule, the factors the user has enrolled among those it names, \
and the outcome (including any lock in force). Without a matching rule the login is denied.\n\n\
Group membership (%group) is looked up by mfad through NSS, as for a real login."
)]
pub struct ExplainArgs {
    /// The account that logs in (PAM_USER)
    #[arg(long, value_name = "NAME")]
    pub user: String,

    /// The PAM service, such as sshd or sudo (PAM_SERVICE)
    #[arg(long, value_name = "SERVICE")]
    pub service: String,

    /// The remote address the login comes from (PAM_RHOST); leave out for a local login
    #[arg(long, value_name = "IP")]
    pub rhost: Option<String>,

    /// The terminal of the login (PAM_TTY); no policy condition looks at it today
    #[arg(long, value_name = "TTY")]
    pub tty: Option<String>,

    /// The SSH public key that passed sshd's first method, as a file (`id_ed25519.pub`) or the key line itself: whether it counts as a trusted device
    #[arg(long, value_name = "KEY")]
    pub device_key: Option<String>,

    /// The session the login comes from (a sudo inside it), by the id `mfactl sessions list` shows: what that session already covers
    #[arg(long, value_name = "ID")]
    pub session: Option<i64>,
}

pub fn request(args: ExplainArgs, device_key: Option<String>) -> Request {
    Request::PolicyExplain {
        user: args.user,
        service: args.service,
        rhost: args.rhost,
        tty: args.tty,
        device_key,
        session: args.session,
    }
}

/// `--device-key`: a key line as given, or the first line of the file it
/// names.
fn device_key(arg: Option<&str>) -> Result<Option<String>, CliError> {
    let Some(arg) = arg else { return Ok(None) };
    if arg.trim_start().starts_with("ssh-") || arg.trim_start().starts_with("ecdsa-") {
        return Ok(Some(arg.trim().to_owned()));
    }
    let text = std::fs::read_to_string(arg).map_err(|source| CliError::ReadFile {
        path: arg.to_owned(),
        source,
    })?;
    Ok(text.lines().next().map(|l| l.trim().to_owned()))
}

pub fn run(ctx: &mut Ctx, args: ExplainArgs) -> Result<(), CliError> {
    let key = device_key(args.device_key.as_deref())?;
    let resp = ctx.call(&request(args, key))?;
    match &resp {
        Response::Explanation(explanation) => ctx.show(&resp, || render(explanation)),
        other => Err(unexpected(other)),
    }
}

pub fn render(e: &Explanation) -> String {
    let mut text = format!("policy version {}\n", e.policy_version);
    for r in &e.rules {
        let name = clean_line(&r.rule);
        if r.matched {
            text.push_str(&format!("  ✓ rule {name} (line {})\n", r.line));
        } else {
            text.push_str(&format!(
                "  ✗ rule {name} (line {}): {}\n",
                r.line,
                clean_line(&r.reason)
            ));
        }
    }
    if e.rule.is_none() {
        text.push_str("  no rule matched: denied\n");
    }
    let enrolled = if e.enrolled.is_empty() {
        "none".to_owned()
    } else {
        clean_line(&e.enrolled.join(", "))
    };
    text.push_str(&format!(
        "requires: {}\nenrolled: {enrolled}\noutcome: {}\n",
        clean_line(&e.requirement),
        clean_line(&e.outcome)
    ));
    if let Some(on_risk) = &e.on_risk {
        text.push_str(&format!("on risk: {}\n", clean_line(on_risk)));
    }
    if let Some(unreachable) = &e.store_unreachable {
        text.push_str(&format!(
            "database unreachable: {}\n",
            clean_line(unreachable)
        ));
    }
    for s in &e.signals {
        text.push_str(&format!(
            "signal {} = {}: {}\n",
            clean_line(&s.name),
            s.value,
            clean_line(&s.detail)
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::testing::{error, mfactl};
    use mfad_protocol::{ErrorCode, ExplainedRule};
    use serde_json::{Value, json};

    fn rule(name: &str, line: usize, reason: &str) -> ExplainedRule {
        ExplainedRule {
            rule: name.into(),
            line,
            matched: reason.is_empty(),
            reason: reason.into(),
        }
    }

    fn explanation() -> Explanation {
        Explanation {
            policy_version: 7,
            rules: vec![
                rule("lan", 3, "rhost 203.0.113.9 is not in 10.0.0.0/8"),
                rule("ssh", 9, ""),
            ],
            rule: Some("ssh".into()),
            requirement: "any of [totp, backup]".into(),
            enrolled: vec!["totp".into(), "backup".into()],
            outcome: "asked to choose one of: TOTP, backup code".into(),
            signals: Vec::new(),
            on_risk: None,
            store_unreachable: None,
        }
    }

    const ARGS: [&str; 7] = [
        "policy",
        "explain",
        "--user",
        "alice",
        "--service",
        "sshd",
        "--rhost",
    ];

    #[test]
    fn explain_lists_each_rule_consulted_and_the_outcome() {
        let args = [&ARGS[..], &["203.0.113.9", "--tty", "pts/1"]].concat();
        let out = mfactl(&args, vec![Response::Explanation(explanation())], "", false);
        assert!(out.result.is_ok());
        assert_eq!(
            out.requests,
            vec![
                json!({"type": "policy_explain", "user": "alice", "service": "sshd",
                        "rhost": "203.0.113.9", "tty": "pts/1"})
            ]
        );
        assert_eq!(
            out.stdout,
            "policy version 7\n\
             \x20 ✗ rule lan (line 3): rhost 203.0.113.9 is not in 10.0.0.0/8\n\
             \x20 ✓ rule ssh (line 9)\n\
             requires: any of [totp, backup]\n\
             enrolled: totp, backup\n\
             outcome: asked to choose one of: TOTP, backup code\n"
        );
    }

    #[test]
    fn no_matching_rule_says_denied() {
        let mut e = explanation();
        e.rules.truncate(1);
        e.rule = None;
        e.requirement = "deny".into();
        e.enrolled.clear();
        e.outcome = "denied: no rule matches this login".into();
        let args = ["policy", "explain", "--user", "bob", "--service", "su"];
        let out = mfactl(&args, vec![Response::Explanation(e)], "", false);
        assert_eq!(out.requests[0]["rhost"], Value::Null);
        assert!(
            out.stdout.ends_with(
                "(line 3): rhost 203.0.113.9 is not in 10.0.0.0/8\n\
                 \x20 no rule matched: denied\n\
                 requires: deny\n\
                 enrolled: none\n\
                 outcome: denied: no rule matches this login\n"
            ),
            "{}",
            out.stdout
        );
    }

    #[test]
    fn a_rules_on_risk_is_shown_after_the_outcome() {
        let mut e = explanation();
        e.on_risk = Some("end: when risk rises, a live session of this rule is ended".into());
        assert!(
            render(&e).ends_with(
                "outcome: asked to choose one of: TOTP, backup code\n\
                 on risk: end: when risk rises, a live session of this rule is ended\n"
            ),
            "{}",
            render(&e)
        );
    }

    #[test]
    fn what_happens_when_the_database_is_unreachable_is_shown_last() {
        let mut e = explanation();
        e.store_unreachable = Some("cached: checked against this host's cache".into());
        assert!(
            render(&e).ends_with(
                "outcome: asked to choose one of: TOTP, backup code\n\
                 database unreachable: cached: checked against this host's cache\n"
            ),
            "{}",
            render(&e)
        );
    }

    #[test]
    fn explain_json_is_the_reply() {
        let args = [&["--json"], &ARGS[..6]].concat();
        let out = mfactl(&args, vec![Response::Explanation(explanation())], "", false);
        let v: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(v["type"], "explanation");
        assert_eq!(v["policy_version"], 7);
        assert_eq!(v["rules"][0]["matched"], false);
        assert_eq!(v["rules"][1]["rule"], "ssh");
        assert_eq!(v["enrolled"], json!(["totp", "backup"]));
    }

    #[test]
    fn hostile_reasons_are_defused_and_refusals_fail() {
        let mut e = explanation();
        e.rules[0].reason = "rhost \u{1b}[2J is not a network".into();
        let text = render(&e);
        assert!(text.contains("rhost ?[2J is not") && !text.contains('\u{1b}'));
        let out = mfactl(
            &ARGS[..6],
            vec![error(ErrorCode::PermissionDenied)],
            "",
            false,
        );
        assert!(matches!(
            out.result,
            Err(CliError::Daemon {
                code: ErrorCode::PermissionDenied,
                ..
            })
        ));
        assert_eq!(out.stdout, "");
    }

    #[test]
    fn signals_are_listed_after_the_outcome() {
        let mut e = explanation();
        e.signals = vec![mfad_protocol::RiskSignal {
            name: "new_network".into(),
            value: true,
            detail: "no successful login of alice from 203.0.113.0/24 yet".into(),
        }];
        assert!(render(&e).ends_with(
            "signal new_network = true: no successful login of alice from 203.0.113.0/24 yet\n"
        ));
    }
}
