//! `mfactl status`, and the account view `mfactl user show` shares.

use super::Ctx;
use crate::error::{CliError, unexpected};
use crate::output::clean_line;
use clap::Args;
use mfad_protocol::time::utc;
use mfad_protocol::{Channel, ContactInfo, LockInfo, Request, Response, UserStatus};

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Show this account instead of your own (root and mfad admins only)
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
}

pub fn run(ctx: &mut Ctx, args: &StatusArgs) -> Result<(), CliError> {
    let resp = ctx.call(&Request::Status {
        user: args.user.clone(),
    })?;
    show_status(ctx, &resp)
}

/// Prints a `status` reply; anything else is unexpected.
pub fn show_status(ctx: &mut Ctx, resp: &Response) -> Result<(), CliError> {
    match resp {
        Response::Status(status) => ctx.show(resp, || render(status)),
        other => Err(unexpected(other)),
    }
}

pub fn render(status: &UserStatus) -> String {
    let mut text = format!("user: {}\n", clean_line(&status.user));
    match &status.totp {
        Some(totp) => {
            let last = totp.last_used.map_or_else(|| "never".to_owned(), utc);
            text.push_str(&format!(
                "totp: enrolled {} ({}, {} digits, {} s), last used {last}",
                utc(totp.enrolled_at),
                clean_line(&totp.algorithm),
                totp.digits,
                totp.period,
            ));
            if status.totp_pending {
                text.push_str("; a replacement is pending confirmation");
            }
        }
        None if status.totp_pending => text.push_str("totp: not enrolled (pending confirmation)"),
        None => text.push_str("totp: not enrolled"),
    }
    text.push('\n');
    text.push_str(&format!("backup codes: {} left", status.backup_codes));
    if status.backup_codes == 0 && status.totp.is_some() {
        text.push_str(" (issue some with `mfactl backup-codes regenerate`)");
    }
    text.push('\n');
    for channel in Channel::ALL {
        text.push_str(&render_contact(
            channel,
            status.contacts.iter().find(|c| c.channel == channel),
        ));
        text.push('\n');
    }
    text.push_str(&format!("trusted devices: {}\n", status.trusted_devices));
    text.push_str(&match &status.last_login {
        Some(row) => format!(
            "last login: {} to {} from {}\n",
            utc(row.time),
            clean_line(&row.service),
            clean_line(
                row.rhost
                    .as_deref()
                    .or(row.tty.as_deref())
                    .unwrap_or("this machine")
            ),
        ),
        None => "last login: none recorded\n".to_owned(),
    });
    if status.locks.is_empty() {
        text.push_str("locks: none\n");
    }
    for lock in &status.locks {
        text.push_str(&render_lock(lock));
        text.push('\n');
    }
    text
}

fn render_contact(channel: Channel, contact: Option<&ContactInfo>) -> String {
    let name = match channel {
        Channel::Sms => "phone",
        Channel::Email => "email",
    };
    let Some(c) = contact else {
        return format!("{name}: not set");
    };
    let mut text = match (&c.verified, c.verified_at) {
        (Some(to), _) if c.from_directory => {
            format!("{name}: {} (from the directory)", clean_line(to))
        }
        (Some(to), Some(at)) => format!("{name}: {} (verified {})", clean_line(to), utc(at)),
        (Some(to), None) => format!("{name}: {} (verified)", clean_line(to)),
        (None, _) => format!("{name}: none verified"),
    };
    if let Some(pending) = &c.pending {
        text.push_str(&format!(
            "; {} waits for its code (`mfactl {name} verify CODE`)",
            clean_line(pending)
        ));
    }
    text
}

fn render_lock(lock: &LockInfo) -> String {
    let source = if lock.source == "*" {
        "from every source".to_owned()
    } else {
        format!("from {}", clean_line(&lock.source))
    };
    let failures = match lock.failures {
        1 => "1 failure".to_owned(),
        n => format!("{n} failures"),
    };
    let channel = clean_line(&lock.channel);
    match lock.locked_until {
        Some(until) => format!(
            "locked: {channel} {source} until {} ({failures})",
            utc(until)
        ),
        None => format!("failures: {channel} {source}: {failures}, not locked"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mfad_protocol::TotpInfo;

    fn alice() -> UserStatus {
        UserStatus {
            user: "alice".into(),
            totp: Some(TotpInfo {
                algorithm: "SHA1".into(),
                digits: 6,
                period: 30,
                enrolled_at: 1_795_460_645,
                last_used: Some(1_795_460_705),
            }),
            totp_pending: false,
            backup_codes: 10,
            locks: vec![],
            contacts: vec![
                ContactInfo {
                    channel: Channel::Sms,
                    verified: Some("+44*******123".into()),
                    verified_at: Some(1_795_460_645),
                    pending: Some("+33*******456".into()),
                    from_directory: false,
                },
                ContactInfo {
                    channel: Channel::Email,
                    verified: Some("b***@corp.example".into()),
                    verified_at: None,
                    pending: Some("y***@example.com".into()),
                    from_directory: true,
                },
            ],
            trusted_devices: 2,
            last_login: Some(Box::new(mfad_protocol::AuditRow {
                id: 9,
                time: 1_795_460_705,
                user: "alice".into(),
                service: "sshd".into(),
                rhost: Some("192.0.2.7".into()),
                tty: None,
                channel: "totp".into(),
                decision: "allow".into(),
                reason: "ok".into(),
                peer_uid: 0,
                rule: None,
                policy_version: Some(1),
                ruser: None,
                caller_uid: None,
                host: None,
            })),
        }
    }

    #[test]
    fn enrolled_without_locks() {
        assert_eq!(
            render(&alice()),
            "user: alice\n\
             totp: enrolled 2026-11-23 19:04:05Z (SHA1, 6 digits, 30 s), last used 2026-11-23 19:05:05Z\n\
             backup codes: 10 left\n\
             phone: +44*******123 (verified 2026-11-23 19:04:05Z); +33*******456 waits for its code (`mfactl phone verify CODE`)\n\
             email: b***@corp.example (from the directory); y***@example.com waits for its code (`mfactl email verify CODE`)\n\
             trusted devices: 2\n\
             last login: 2026-11-23 19:05:05Z to sshd from 192.0.2.7\n\
             locks: none\n"
        );
    }

    #[test]
    fn never_used_and_pending_replacement() {
        let mut s = alice();
        s.totp.as_mut().unwrap().last_used = None;
        s.totp_pending = true;
        s.backup_codes = 0;
        let text = render(&s);
        assert!(
            text.contains("last used never; a replacement is pending confirmation\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "\nbackup codes: 0 left (issue some with `mfactl backup-codes regenerate`)\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn not_enrolled_pending_and_locks() {
        let s = UserStatus {
            user: "bob".into(),
            totp: None,
            totp_pending: true,
            backup_codes: 3,
            locks: vec![
                LockInfo {
                    channel: "totp".into(),
                    source: "10.0.0.1".into(),
                    failures: 5,
                    locked_until: Some(1_795_460_645),
                },
                LockInfo {
                    channel: "totp".into(),
                    source: "*".into(),
                    failures: 1,
                    locked_until: None,
                },
            ],
            contacts: vec![],
            trusted_devices: 0,
            last_login: None,
        };
        assert_eq!(
            render(&s),
            "user: bob\n\
             totp: not enrolled (pending confirmation)\n\
             backup codes: 3 left\n\
             phone: not set\n\
             email: not set\n\
             trusted devices: 0\n\
             last login: none recorded\n\
             locked: totp from 10.0.0.1 until 2026-11-23 19:04:05Z (5 failures)\n\
             failures: totp from every source: 1 failure, not locked\n"
        );
        let plain = UserStatus {
            totp_pending: false,
            backup_codes: 0,
            locks: vec![],
            ..s
        };
        assert_eq!(
            render(&plain),
            "user: bob\ntotp: not enrolled\nbackup codes: 0 left\nphone: not set\nemail: not set\n\
             trusted devices: 0\nlast login: none recorded\nlocks: none\n"
        );
    }
}
