//! Peers that are not root: the daemon decides by SO_PEERCRED, so these run
//! as uid 65534 (`nobody`) through `setpriv`, with the real mfactl and with
//! a raw protocol client (`src/bin/raw_client.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use mfad_protocol::Response;
use mfad_tests::daemon::{TEST_RHOST, auth_start_frame, is_permission_denied, ping_frame, show};
use mfad_tests::pam::{PAM_RHOST, PAM_SUCCESS};
use mfad_tests::users::{NOBODY_UID, NOGROUP_GID, TempUser};
use mfad_tests::{TestConfig, TestDaemon, TestPolicy};

#[test]
fn nobody_cannot_show_another_user_with_mfactl() {
    let d = TestDaemon::start();
    // People read the refusal on stderr...
    let out = d.mfactl_as(NOBODY_UID, NOGROUP_GID, ["user", "show", "alice"]);
    assert!(!out.status.success(), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr).to_ascii_lowercase();
    assert!(
        stderr.contains("permission") || stderr.contains("needs root"),
        "{}",
        show(&out)
    );
    // ...scripts branch on the daemon's stable code.
    let out = d.mfactl_as(NOBODY_UID, NOGROUP_GID, ["--json", "user", "show", "alice"]);
    assert!(!out.status.success(), "{}", show(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("--json error document: {e}\n{}", show(&out)));
    assert_eq!(doc["code"], "permission_denied", "{}", show(&out));
}

#[test]
fn nobody_cannot_run_a_pam_flow_for_another_user() {
    let d = TestDaemon::start();
    for user in ["alice", "root"] {
        let resps = d.raw_as(NOBODY_UID, NOGROUP_GID, &[auth_start_frame(user, "sshd")]);
        assert!(
            is_permission_denied(resps.first()),
            "auth_start for {user} as nobody got {resps:?}\n{}",
            d.log_text()
        );
    }
}

#[test]
fn nobody_may_run_a_pam_flow_for_itself() {
    // Screen lockers run as the user: a flow for one's own account is not a
    // permission error (the policy then decides).
    let d = TestDaemon::start();
    let resps = d.raw_as(
        NOBODY_UID,
        NOGROUP_GID,
        &[auth_start_frame("nobody", "sshd")],
    );
    let first = resps.first();
    assert!(
        first.is_some() && !is_permission_denied(first),
        "auth_start for nobody as nobody got {resps:?}\n{}",
        d.log_text()
    );
}

#[test]
fn nobody_can_ping() {
    let d = TestDaemon::start();
    let resps = d.raw_as(NOBODY_UID, NOGROUP_GID, &[ping_frame()]);
    assert!(
        matches!(resps.first(), Some(Response::Pong { protocol: 1, .. })),
        "{resps:?}"
    );
}

#[test]
fn a_local_user_enrolls_itself_but_nobody_else() {
    let d = TestDaemon::start();
    d.write_pam_service("mfa-test", &[]);
    let user = TempUser::create();
    let secret = d.enroll_totp_as(user.uid, user.gid);

    let args = [
        "--json",
        "enroll",
        "totp",
        "--user",
        "nobody",
        "--print-uri",
    ];
    let out = d.mfactl_as(user.uid, user.gid, args);
    assert!(!out.status.success(), "{}", show(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["code"], "permission_denied", "{}", show(&out));

    let code = d.totp_code(&secret, 0);
    let got = d.login("mfa-test", &user.name, TEST_RHOST, &[&code]);
    d.expect_rc(got, PAM_SUCCESS);
}

/// Only sshd, running as root, vouches for the SSH key of a login: the same
/// `SSH_AUTH_INFO_0` from a non-root peer, or from root for a service the
/// policy's `[host] device_services` does not name, is no device, so a
/// trusted key skips nothing there.
#[test]
fn a_trusted_key_counts_only_when_root_sshd_vouches_for_it() {
    const KEY: &str = "AAAAC3NzaC1lZDI1NTE5AAAAINLRM/3YyYkX004pw5EiYomWcf9U+0bEDvkIz0N8l69Q";
    let info = format!("publickey ssh-ed25519 {KEY}\n");
    let d = TestDaemon::with_config(TestConfig {
        policy: TestPolicy::text(
            "[[rule]]\nname = \"ssh\"\nservices = [\"sshd\", \"mfa-test\"]\n\
             require = \"totp\"\ntrusted_devices = { days = 30 }\n",
        ),
        ..TestConfig::default()
    });
    for service in ["sshd", "mfa-test"] {
        d.write_pam_service(service, &[]);
    }
    // nobody: the one user a non-root peer (uid 65534) may log in.
    let secret = d.enroll_totp("nobody");
    let login = |service: &str, answers: Vec<String>| {
        let mut pam = d.pam(service, "nobody", answers);
        assert_eq!(pam.set_item(PAM_RHOST, TEST_RHOST), PAM_SUCCESS);
        assert_eq!(pam.putenv(&format!("SSH_AUTH_INFO_0={info}")), PAM_SUCCESS);
        pam.authenticate(0)
    };
    let code = d.totp_code(&secret, 0);
    let t = d.expect_rc(login("sshd", vec![code, "y".to_owned()]), PAM_SUCCESS);
    assert!(t.contains("Trust this device"), "{t}");
    let t = d.expect_rc(login("sshd", vec![]), PAM_SUCCESS);
    assert!(
        t.prompts().is_empty(),
        "root's sshd vouches for the key: {t}"
    );

    let (rc, t) = login("mfa-test", vec![]);
    assert_ne!(rc, PAM_SUCCESS, "{t}");
    assert_eq!(t.prompts(), ["Verification code: "], "{t}");

    let start = serde_json::json!({"version": 1, "request": {
        "type": "auth_start", "user": "nobody", "service": "sshd",
        "rhost": TEST_RHOST, "ssh_auth_info": info}});
    let resps = d.raw_as(NOBODY_UID, NOGROUP_GID, &[start.to_string()]);
    assert!(
        matches!(resps.first(), Some(Response::Prompt { text, .. }) if text == "Verification code: "),
        "a non-root peer's key skipped the code: {resps:?}\n{}",
        d.log_text()
    );
}
