//! `history`: one line per login. A login is one connection, so its audit
//! rows share a request id (`audit.request_id`, in the hash chain since
//! schema 8); they become one row here: the factors used joined, the final
//! result. Rows without a request id (written before schema 8) stay one
//! line each, as they were shown before.

use crate::audit::chain::StoredRow;
use crate::wire;
use mfad_protocol::AuditRow;
use std::collections::HashMap;

/// Rows read for each login asked for: a login writes a row per factor
/// checked and per wrong try.
pub const ROWS_PER_LOGIN: u32 = 8;

/// Groups `rows` (newest first, as the store returns them) into at most
/// `limit` logins, newest first. `complete` is false when the store had
/// more rows than it returned: the oldest login may then be cut, and is
/// left out.
pub fn logins(rows: Vec<StoredRow>, limit: usize, complete: bool) -> Vec<AuditRow> {
    let mut groups: Vec<Vec<StoredRow>> = Vec::new();
    // Where each request's group is: tens of thousands of rows group in
    // one pass.
    let mut index: HashMap<String, usize> = HashMap::new();
    for row in rows {
        let Some(id) = row.body.request_id.clone() else {
            groups.push(vec![row]);
            continue;
        };
        match index.get(&id) {
            Some(&i) => groups[i].push(row),
            None => {
                index.insert(id, groups.len());
                groups.push(vec![row]);
            }
        }
    }
    if !complete && groups.len() > 1 {
        groups.pop();
    }
    groups.truncate(limit);
    groups.into_iter().filter_map(summary).collect()
}

/// One login from its rows, newest first: the newest row (the verdict)
/// with the factors of every row, oldest first, and how many tries failed.
fn summary(rows: Vec<StoredRow>) -> Option<AuditRow> {
    let mut factors: Vec<String> = Vec::new();
    let mut failed = 0;
    for row in rows.iter().rev() {
        let b = &row.body;
        if b.decision == "deny" && rows.len() > 1 {
            failed += 1;
        }
        if b.channel != "none" && !factors.contains(&b.channel) {
            factors.push(b.channel.clone());
        }
    }
    let mut last = wire::audit_row(rows.into_iter().next()?);
    if !factors.is_empty() {
        last.channel = factors.join("+");
    }
    if failed > 0 && last.decision != "deny" {
        last.reason = match failed {
            1 => format!("{} (after 1 failed try)", last.reason),
            n => format!("{} (after {n} failed tries)", last.reason),
        };
    }
    Some(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::{Body, SCHEMA};

    fn row(id: i64, request: Option<&str>, channel: &str, decision: &str) -> StoredRow {
        StoredRow {
            id,
            time: id,
            body: Body {
                schema: SCHEMA.to_owned(),
                seq: Some(id),
                time: String::new(),
                host: String::new(),
                kind: String::new(),
                actor: String::new(),
                user: "alice".into(),
                service: "sshd".into(),
                rhost: None,
                tty: None,
                session_id: None,
                channel: channel.into(),
                decision: decision.into(),
                rule: Some("r".into()),
                policy_version: Some(1),
                reason: "ok".into(),
                peer_uid: 0,
                request_id: request.map(str::to_owned),
                ruser: None,
                caller_uid: None,
                prev_hash: None,
            },
            hash: None,
        }
    }

    fn shown(rows: &[AuditRow]) -> Vec<(i64, &str, &str, &str)> {
        rows.iter()
            .map(|r| {
                (
                    r.id,
                    r.channel.as_str(),
                    r.decision.as_str(),
                    r.reason.as_str(),
                )
            })
            .collect()
    }

    #[test]
    fn the_rows_of_a_login_become_one_line_and_older_rows_stay_apart() {
        // Newest first; two logins interleaved, then two rows from before
        // request ids.
        let rows = vec![
            row(9, Some("a-2"), "sms", "allow"),
            row(8, Some("a-3"), "none", "deny"),
            row(7, Some("a-2"), "totp", "allow"),
            row(6, Some("a-2"), "totp", "deny"),
            row(5, Some("a-1"), "backup", "deny"),
            row(4, Some("a-1"), "totp", "deny"),
            row(2, None, "totp", "allow"),
            row(1, None, "sms", "allow"),
        ];
        let logins = logins(rows, 10, true);
        assert_eq!(
            shown(&logins),
            [
                (9, "totp+sms", "allow", "ok (after 1 failed try)"),
                (8, "none", "deny", "ok"),
                (5, "totp+backup", "deny", "ok"),
                (2, "totp", "allow", "ok"),
                (1, "sms", "allow", "ok"),
            ]
        );
    }

    #[test]
    fn the_limit_counts_logins_and_a_cut_login_is_left_out() {
        let rows = vec![
            row(4, Some("a-2"), "totp", "allow"),
            row(3, Some("a-1"), "sms", "allow"),
            row(2, Some("a-1"), "totp", "allow"),
        ];
        assert_eq!(shown(&logins(rows.clone(), 1, true)).len(), 1);
        let all = logins(rows.clone(), 5, true);
        assert_eq!(shown(&all)[1], (3, "totp+sms", "allow", "ok"));
        // The store had more: login a-1 may have older rows; not shown.
        assert_eq!(shown(&logins(rows, 5, false)), [(4, "totp", "allow", "ok")]);
        assert!(logins(Vec::new(), 5, false).is_empty());
    }
}
