//! What peers other than root may do (security rule 8: a non-root peer acts
//! only on its own uid): `nobody` administers no one and reads no audit log,
//! a member of the admin group administers but runs no PAM flow for others,
//! and every refusal is audited. Real processes of those uids, through
//! setpriv: the real mfactl and a raw protocol client.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use mfad_tests::daemon::{TEST_RHOST, auth_start_frame, is_permission_denied, show};
use mfad_tests::pam::PAM_SUCCESS;
use mfad_tests::users::{NOBODY_UID, NOGROUP_GID, TempGroup, TempUser, unique_name};
use mfad_tests::{TestConfig, TestDaemon};

const SVC: &str = "mfa-test";

fn daemon_with(config: TestConfig) -> TestDaemon {
    let d = TestDaemon::with_config(config);
    d.write_pam_service(SVC, &[]);
    d
}

#[test]
fn nobody_cannot_administer_other_users_and_each_refusal_is_audited() {
    let d = daemon_with(TestConfig::default());
    let target = unique_name("erin");
    d.enroll_totp(&target);
    let attempts: [&[&str]; 7] = [
        &["enroll", "totp", "--user", &target, "--print-uri"],
        &["enroll", "totp", "--user", "root", "--print-uri"],
        &["user", "reset", &target, "--yes"],
        &["user", "reset", "root", "--yes"],
        &["user", "unlock", &target],
        &["user", "list"],
        &["audit"],
    ];
    for args in attempts {
        let out = d.mfactl_as(NOBODY_UID, NOGROUP_GID, [&["--json"][..], args].concat());
        assert!(!out.status.success(), "nobody ran {args:?}: {}", show(&out));
        let doc: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&out)));
        assert_eq!(doc["code"], "permission_denied", "{args:?}: {}", show(&out));
    }
    let status = d.mfactl_json(&["user", "show", &target]);
    assert!(status["totp"].is_object(), "{target} was changed: {status}");

    let refused: Vec<_> = d
        .audit_rows()
        .into_iter()
        .filter(|r| r["decision"] == "refused" && r["peer_uid"] == NOBODY_UID)
        .collect();
    for (user, what) in [
        (target.as_str(), "enroll totp"),
        ("root", "enroll totp"),
        (target.as_str(), "user reset"),
        ("root", "user reset"),
        (target.as_str(), "user unlock"),
        ("nobody", "user list"),
        ("nobody", "audit"),
    ] {
        let n = refused
            .iter()
            .filter(|r| r["user"] == user && r["reason"].as_str().unwrap().starts_with(what))
            .count();
        assert_eq!(n, 1, "refused `{what}` on {user}: {refused:#?}");
    }
}

#[test]
fn an_admin_group_member_administers_but_cannot_authenticate_others() {
    let group = TempGroup::create("mfadt-admins");
    let admin = TempUser::create();
    // A supplementary member: its primary group is its own.
    admin.join(&group);
    let d = daemon_with(TestConfig {
        admin_group: Some(group.name.clone()),
        ..TestConfig::default()
    });
    let target = unique_name("finn");
    let secret = d.enroll_totp(&target);
    let wrong = d.wrong_code(&secret);
    d.fail_to_threshold(SVC, &target, TEST_RHOST, &wrong);

    let as_admin = |args: &[&str]| {
        let out = d.mfactl_as(admin.uid, admin.gid, [&["--json"][..], args].concat());
        let doc: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&out)));
        (out, doc)
    };
    let (out, doc) = as_admin(&["user", "list"]);
    assert!(out.status.success(), "{}", show(&out));
    let listed = doc["users"].as_array().unwrap();
    assert!(
        listed
            .iter()
            .any(|u| u["user"] == target.as_str() && u["locked"] == true),
        "{doc}"
    );
    let (out, _) = as_admin(&["user", "unlock", &target]);
    assert!(out.status.success(), "{}", show(&out));
    let code = d.totp_code(&secret, 0);
    d.expect_rc(d.login(SVC, &target, TEST_RHOST, &[&code]), PAM_SUCCESS);

    // Running a PAM flow for someone else is root's alone.
    for user in [target.as_str(), "root"] {
        let resps = d.raw_as(admin.uid, admin.gid, &[auth_start_frame(user, SVC)]);
        assert!(
            is_permission_denied(resps.first()),
            "auth_start for {user} by an admin: {resps:?}"
        );
    }
    let rows = d.audit_rows();
    let by_admin = |decision: &str| {
        rows.iter()
            .filter(|r| r["decision"] == decision && r["peer_uid"] == admin.uid)
            .count()
    };
    assert_eq!(by_admin("done"), 1, "the unlock, audited: {rows:#?}");
    assert_eq!(by_admin("refused"), 2, "the two auth_starts: {rows:#?}");
}
