//! `mfactl doctor`, the sshd part: judges sshd's effective configuration
//! (`sshd -T`) for what keeps the second-factor prompt from ever appearing
//! over SSH, or lets a login skip it.

use super::doctor::Finding;
use crate::output::clean_line;
use std::collections::HashMap;

const TOPIC: &str = "sshd";

/// sshd's message when its privilege separation directory is missing: a
/// machine where the ssh service never started (ssh.service creates it).
const NO_PRIVSEP_DIR: &str = "Missing privilege separation directory: ";

/// The finding when `sshd -T` exits non-zero: why (from sshd's `stderr`),
/// and what to do. `as_root`: whether doctor ran as root.
pub fn failed(stderr: &str, as_root: bool) -> Finding {
    let why = clean_line(stderr.trim());
    if let Some(dir) = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix(NO_PRIVSEP_DIR))
    {
        let dir = clean_line(dir);
        return Finding::warn(
            TOPIC,
            format!(
                "`sshd -T` failed: sshd's privilege separation directory {dir} is missing \
                 (the ssh service creates it when it starts), so sshd's settings were not checked"
            ),
            format!(
                "create it with `install -d -m 0755 {dir}` (or start ssh), then run `mfactl doctor` again"
            ),
        );
    }
    if !as_root {
        return Finding::skip(
            TOPIC,
            format!("`sshd -T` failed, and it needs root (run `mfactl doctor` as root): {why}"),
        );
    }
    Finding::fail(
        TOPIC,
        format!("`sshd -T` failed: {why}"),
        "fix sshd's configuration (`sshd -t` names the problem): sshd does not start with it",
    )
}

/// Findings about the output of `sshd -T` (lower-case `key value` lines).
pub fn check(effective: &str) -> Vec<Finding> {
    let settings: HashMap<&str, &str> = effective
        .lines()
        .filter_map(|l| l.split_once(' '))
        .collect();
    let get = |key: &str| settings.get(key).copied().unwrap_or("");
    let mut findings = Vec::new();
    if get("usepam") != "yes" {
        findings.push(Finding::fail(
            TOPIC,
            "UsePAM is not yes: sshd never runs the PAM stack, so pam_mfa.so never asks".to_owned(),
            "set `UsePAM yes` in /etc/ssh/sshd_config",
        ));
    }
    // OpenSSH before 8.7 calls it ChallengeResponseAuthentication.
    let kbd = match get("kbdinteractiveauthentication") {
        "" => get("challengeresponseauthentication"),
        v => v,
    };
    if kbd != "yes" {
        findings.push(Finding::fail(
            TOPIC,
            "KbdInteractiveAuthentication is not yes, so no second-factor prompt appears over SSH"
                .to_owned(),
            "set `KbdInteractiveAuthentication yes`, and check that no file in /etc/ssh/sshd_config.d/ sets it to no",
        ));
    }
    let methods = get("authenticationmethods");
    if methods.is_empty() || methods == "any" {
        if get("pubkeyauthentication") != "no" {
            findings.push(Finding::fail(
                TOPIC,
                "AuthenticationMethods is any: a public key alone logs in, without the PAM stack or a second factor".to_owned(),
                "set `AuthenticationMethods publickey,keyboard-interactive` (a key, then the code)",
            ));
        }
        if get("passwordauthentication") == "yes" {
            findings.push(Finding::warn(
                TOPIC,
                "PasswordAuthentication is yes: a password login cannot show the code prompt".to_owned(),
                "set `PasswordAuthentication no`; keyboard-interactive asks for the password and the code",
            ));
        }
    } else {
        for list in methods.split_whitespace() {
            if !list
                .split(',')
                .any(|m| m.split(':').next() == Some("keyboard-interactive"))
            {
                findings.push(Finding::fail(
                    TOPIC,
                    format!("AuthenticationMethods allows `{list}`, which never asks for a second factor"),
                    "end every method list with keyboard-interactive, e.g. `publickey,keyboard-interactive`",
                ));
            }
        }
    }
    if findings.is_empty() {
        findings.push(Finding::ok(
            TOPIC,
            format!(
                "UsePAM yes, KbdInteractiveAuthentication yes, AuthenticationMethods {methods}"
            ),
        ));
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::doctor::Status;

    const GOOD: &str = "port 22\nusepam yes\nkbdinteractiveauthentication yes\n\
        pubkeyauthentication yes\npasswordauthentication no\n\
        authenticationmethods publickey,keyboard-interactive\n";

    fn statuses(text: &str) -> Vec<(Status, String)> {
        check(text)
            .into_iter()
            .map(|f| (f.status, f.message))
            .collect()
    }

    #[test]
    fn the_recommended_settings_pass() {
        let got = statuses(GOOD);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, Status::Ok);
    }

    #[test]
    fn debians_stock_kbdinteractive_no_fails() {
        let text = GOOD.replace(
            "kbdinteractiveauthentication yes",
            "kbdinteractiveauthentication no",
        );
        let got = statuses(&text);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, Status::Fail);
        assert!(got[0].1.contains("KbdInteractiveAuthentication"));
    }

    #[test]
    fn a_key_alone_and_passwords_are_named() {
        let text = GOOD
            .replace("publickey,keyboard-interactive", "any")
            .replace("passwordauthentication no", "passwordauthentication yes");
        let got = statuses(&text);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].0, Status::Fail);
        assert!(got[0].1.contains("public key alone"));
        assert_eq!(got[1].0, Status::Warn);
    }

    #[test]
    fn every_method_list_needs_keyboard_interactive() {
        let text = GOOD.replace(
            "publickey,keyboard-interactive",
            "publickey,keyboard-interactive:pam publickey,password",
        );
        let got = statuses(&text);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].1.contains("`publickey,password`"), "{got:?}");
    }

    #[test]
    fn a_missing_privilege_separation_directory_is_named_with_the_fix() {
        let f = failed("Missing privilege separation directory: /run/sshd\n", true);
        assert_eq!(f.status, Status::Warn);
        assert!(
            f.message.contains("directory /run/sshd is missing"),
            "{f:?}"
        );
        assert!(!f.message.contains("root"), "{f:?}");
        let fix = f.fix.unwrap_or_default();
        assert!(fix.contains("install -d -m 0755 /run/sshd"), "{fix}");
    }

    #[test]
    fn other_failures_name_sshds_reason_and_root_only_when_not_root() {
        let err = "/etc/ssh/sshd_config line 3: Bad configuration option: Frob\n";
        let f = failed(err, true);
        assert_eq!(f.status, Status::Fail);
        assert!(
            f.message.contains("Bad configuration option: Frob"),
            "{f:?}"
        );
        assert!(!f.message.contains("root"), "{f:?}");
        let f = failed("sshd: no hostkeys available -- exiting.\n", false);
        assert_eq!(f.status, Status::Skip);
        assert!(
            f.message.contains("needs root") && f.message.contains("no hostkeys"),
            "{f:?}"
        );
    }

    #[test]
    fn usepam_no_and_old_openssh_names() {
        let text = "usepam no\nchallengeresponseauthentication yes\n\
            authenticationmethods keyboard-interactive\n";
        let got = statuses(text);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].1.contains("UsePAM"));
    }
}
