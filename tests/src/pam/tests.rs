//! The harness against stock Linux-PAM modules, so it is known to work before
//! pam_mfa.so exists.

use super::*;

fn confdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("mfad-pamh-")
        .tempdir()
        .unwrap()
}

fn run(stack: &str, answers: &[&str]) -> (i32, Transcript) {
    let dir = confdir();
    write_stack(dir.path(), "t", stack).unwrap();
    let answers = answers.iter().map(|a| a.to_string()).collect();
    let mut pam = PamSession::start(dir.path(), "t", "nobody", answers);
    assert_eq!(pam.set_item(PAM_RHOST, "192.0.2.7"), PAM_SUCCESS);
    assert_eq!(pam.set_item(PAM_TTY, "pts/9"), PAM_SUCCESS);
    pam.authenticate(0)
}

#[test]
fn permit_and_deny() {
    assert_eq!(run("auth required pam_permit.so\n", &[]).0, PAM_SUCCESS);
    assert_eq!(run("auth required pam_deny.so\n", &[]).0, PAM_AUTH_ERR);
}

#[test]
fn write_service_uses_the_absolute_module_path() {
    let dir = confdir();
    let path = write_service(
        dir.path(),
        "svc",
        Path::new("/usr/lib/x86_64-linux-gnu/security/pam_permit.so"),
        &["debug"],
    )
    .unwrap();
    let text = std::fs::read_to_string(path).unwrap();
    assert_eq!(
        text,
        "auth required pam_permit.so\n\
         auth requisite /usr/lib/x86_64-linux-gnu/security/pam_permit.so debug\n\
         account required pam_permit.so\n"
    );
    let mut pam = PamSession::start(dir.path(), "svc", "nobody", Vec::new());
    assert_eq!(pam.authenticate(0).0, PAM_SUCCESS);
    assert_eq!(pam.acct_mgmt(0).0, PAM_SUCCESS);
}

#[test]
fn missing_service_file_fails_closed() {
    // With a confdir and neither the service nor `other` in it, libpam
    // builds no stack and refuses: it never falls back to /etc/pam.d.
    let dir = confdir();
    let rc = match PamSession::try_start(dir.path(), "absent", "nobody", Vec::new()) {
        Ok(mut pam) => pam.authenticate(0).0,
        Err(rc) => rc,
    };
    assert_eq!(rc, PAM_ABORT, "{}", strerror(rc));
}

#[test]
fn info_messages_are_recorded() {
    let (rc, t) = run(
        "auth required pam_echo.so hello %H\nauth required pam_permit.so\n",
        &[],
    );
    assert_eq!(rc, PAM_SUCCESS, "{t}");
    assert_eq!(t.infos(), vec!["hello 192.0.2.7"], "{t}");
    assert!(t.contains("HELLO"));
    assert!(t.prompts().is_empty());
}

#[test]
fn prompts_take_answers_and_an_empty_queue_is_a_conv_error() {
    // pam_unix asks for a password even for an account that cannot log in.
    let (rc, t) = run("auth required pam_unix.so nodelay\n", &["not-the-password"]);
    assert_eq!(rc, PAM_AUTH_ERR, "{t}");
    assert_eq!(t.prompts().len(), 1, "{t}");
    assert!(!t.ran_out_of_answers);

    let (rc, t) = run("auth required pam_unix.so nodelay\n", &[]);
    assert_ne!(rc, PAM_SUCCESS, "{t}");
    assert!(t.ran_out_of_answers, "{t}");
}

/// What the failmode=open stacks of the end-to-end tests return when the
/// module says PAM_IGNORE (pam_debug stands in for pam_mfa.so here).
#[test]
fn ignore_semantics_of_the_failmode_stacks() {
    let head = "auth [success=done ignore=ignore default=die] pam_debug.so auth=ignore\n";
    let (rc, _) = run(&format!("{head}auth required pam_deny.so\n"), &[]);
    assert_eq!(rc, PAM_AUTH_ERR, "{}", strerror(rc));
    let (rc, _) = run(&format!("{head}auth required pam_permit.so\n"), &[]);
    assert_eq!(rc, PAM_SUCCESS, "{}", strerror(rc));
    // A module that fails closed dies with its own code on the same line.
    let head = "auth [success=done ignore=ignore default=die] pam_debug.so auth=authinfo_unavail\n";
    let (rc, _) = run(&format!("{head}auth required pam_permit.so\n"), &[]);
    assert_eq!(rc, PAM_AUTHINFO_UNAVAIL, "{}", strerror(rc));
    // A stack where every module ignores fails with libpam's PAM_PERM_DENIED.
    let (rc, _) = run("auth required pam_debug.so auth=ignore\n", &[]);
    assert_eq!(rc, PAM_PERM_DENIED, "{}", strerror(rc));
}

#[test]
fn one_session_is_reusable_with_a_repeated_answer() {
    let dir = confdir();
    write_stack(dir.path(), "t", "auth required pam_unix.so nodelay\n").unwrap();
    let mut pam = PamSession::start(dir.path(), "t", "nobody", Vec::new());
    pam.set_recording(false);
    pam.set_repeat_answer(Some("wrong"));
    for _ in 0..3 {
        let (rc, t) = pam.authenticate(PAM_SILENT);
        // pam_unix counts failures in its data on the handle: MAXTRIES later.
        assert!(rc == PAM_AUTH_ERR || rc == PAM_MAXTRIES, "{}", strerror(rc));
        assert!(t.messages.is_empty());
    }
    pam.set_repeat_answer(None);
    pam.push_answer("wrong");
    assert_eq!(pam.answers_left(), 1);
    pam.set_recording(true);
    let (rc, t) = pam.authenticate(0);
    assert!(rc == PAM_AUTH_ERR || rc == PAM_MAXTRIES, "{}", strerror(rc));
    assert_eq!(t.prompts().len(), 1, "{t}");
    assert!(!t.ran_out_of_answers);
    assert_eq!(pam.answers_left(), 0);
}

#[test]
fn return_codes_match_libpam() {
    assert_eq!(strerror(PAM_SUCCESS), "Success");
    assert_eq!(strerror(PAM_AUTH_ERR), "Authentication failure");
    assert_eq!(
        strerror(PAM_MAXTRIES),
        "Have exhausted maximum number of retries for service"
    );
    assert_eq!(
        strerror(PAM_IGNORE),
        "The return value should be ignored by PAM dispatch"
    );
    assert_eq!(strerror(PAM_CONV_ERR), "Conversation error");
}
