use super::*;
use crate::cmd::doctor::Status;

/// A pam.d directory with these files.
fn dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

fn findings(files: &[(&str, &str)], service: &str) -> Vec<(Status, String)> {
    let d = dir(files);
    let lines = load(d.path(), service).unwrap().unwrap();
    check(service, &lines, &|_| true)
        .into_iter()
        .map(|f| (f.status, f.message))
        .collect()
}

#[test]
fn includes_are_followed_with_their_types() {
    let d = dir(&[
        (
            "sudo",
            "#%PAM-1.0\n@include common-auth\nauth requisite pam_mfa.so \\\n  timeout=10 # the code\n\
             session include common-session\n",
        ),
        (
            "common-auth",
            "auth [success=1 default=ignore] pam_unix.so nullok\nauth requisite pam_deny.so\n\
             account required pam_unix.so\n",
        ),
        (
            "common-session",
            "auth required pam_never.so\nsession required pam_unix.so\n",
        ),
    ]);
    let lines = load(d.path(), "sudo").unwrap().unwrap();
    let got: Vec<(&str, &str, &str, usize)> = lines
        .iter()
        .map(|l| {
            (
                l.kind.as_str(),
                l.control.as_str(),
                l.module.as_str(),
                l.line,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("auth", "[success=1 default=ignore]", "pam_unix.so", 1),
            ("auth", "requisite", "pam_deny.so", 2),
            ("account", "required", "pam_unix.so", 3),
            ("auth", "requisite", "pam_mfa.so", 3),
            // `session include` takes only the session lines.
            ("session", "required", "pam_unix.so", 2),
        ]
    );
    assert_eq!(lines[3].args, ["timeout=10"]);
    assert!(load(d.path(), "nope").unwrap().is_none());
}

#[test]
fn controls_that_fail_closed_pass() {
    for control in [
        "requisite",
        "required",
        "[success=ok default=die]",
        "[success=ok]",
    ] {
        let text = format!("auth {control} /usr/lib/security/pam_mfa.so\n");
        let got = findings(&[("sudo", &text)], "sudo");
        assert_eq!(got.len(), 1, "{control}: {got:?}");
        assert_eq!(got[0].0, Status::Ok, "{control}: {got:?}");
    }
}

#[test]
fn the_module_is_recognised_by_its_cargo_name_too() {
    let text = "auth requisite /opt/mfad/target/release/libpam_mfa.so socket=/tmp/s\n";
    let got = findings(&[("sudo", text)], "sudo");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, Status::Ok, "{got:?}");
    let got = findings(&[("sudo", "auth requisite libpam_other.so\n")], "sudo");
    assert!(got[0].1.contains("not in the auth stack"), "{got:?}");
}

#[test]
fn controls_that_let_a_failure_through_fail() {
    for (control, named) in [
        ("optional", "authinfo_unavail=ignore"),
        ("sufficient", "auth_err=ignore"),
        ("[success=ok default=ignore]", "maxtries=ignore"),
        (
            "[success=ok authinfo_unavail=ignore default=die]",
            "authinfo_unavail=ignore",
        ),
        ("[success=done default=1]", "auth_err=1"),
    ] {
        let text = format!("auth {control} pam_mfa.so\n");
        let got = findings(&[("sudo", &text)], "sudo");
        assert_eq!(got[0].0, Status::Fail, "{control}: {got:?}");
        assert!(got[0].1.contains(named), "{control}: {got:?}");
        assert!(got[0].1.contains("sudo:1"), "{got:?}");
    }
}

#[test]
fn done_on_success_failmode_open_and_a_missing_stack_are_warned() {
    let got = findings(
        &[("sudo", "auth [success=done default=die] pam_mfa.so\n")],
        "sudo",
    );
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, Status::Warn);
    assert!(got[0].1.contains("skips every module after it"), "{got:?}");

    let got = findings(
        &[("sudo", "auth requisite pam_mfa.so failmode=open\n")],
        "sudo",
    );
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].1.contains("failmode=open"), "{got:?}");

    let got = findings(
        &[(
            "sudo",
            "auth required pam_unix.so\nsession requisite pam_mfa.so\n",
        )],
        "sudo",
    );
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, Status::Warn);
    assert!(got[0].1.contains("not in the auth stack"), "{got:?}");
}

#[test]
fn a_missing_module_or_a_broken_stack_fails() {
    let d = dir(&[("sudo", "auth requisite /nonexistent/pam_mfa.so\n")]);
    let lines = load(d.path(), "sudo").unwrap().unwrap();
    let got = check("sudo", &lines, &module_exists);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].status, Status::Fail);
    assert!(got[0].message.contains("does not exist"), "{got:?}");

    let d = dir(&[("loop", "@include loop\n")]);
    assert!(load(d.path(), "loop").unwrap_err().contains("nest deeper"));
    let d = dir(&[("short", "auth requisite\n")]);
    assert!(load(d.path(), "short").unwrap_err().contains("short:1"));
    let d = dir(&[("gone", "@include missing\n")]);
    assert!(load(d.path(), "gone").unwrap_err().contains("missing"));
}

#[test]
fn a_login_stack_should_report_its_session_after_pam_loginuid() {
    let auth = "auth requisite pam_mfa.so\n";
    let good = format!("{auth}session required pam_loginuid.so\nsession optional pam_mfa.so\n");
    let got = findings(&[("sshd", &good)], "sshd");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, Status::Ok);

    let none = format!("{auth}session required pam_loginuid.so\n");
    let got = findings(&[("sshd", &none)], "sshd");
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[1].0, Status::Warn);
    assert!(got[1].1.contains("no step-up"), "{got:?}");

    let early = format!("{auth}session optional pam_mfa.so\nsession required pam_loginuid.so\n");
    let got = findings(&[("sshd", &early)], "sshd");
    assert!(got[1].1.contains("before pam_loginuid"), "{got:?}");

    // sudo runs inside a login: no session line is expected there.
    let got = findings(&[("sudo", auth)], "sudo");
    assert_eq!(got.len(), 1, "{got:?}");
}
