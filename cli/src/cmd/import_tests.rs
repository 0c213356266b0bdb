use super::*;
use crate::cmd::testing::{done, error, mfactl};

const GA: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\n\" RATE_LIMIT 3 30 1700000000\n\" WINDOW_SIZE 17\n\" DISALLOW_REUSE 56666666\n\" TOTP_AUTH\n\" STEP_SIZE 60\n11111111\n22222222\n";

#[test]
fn a_google_file_gives_secret_step_scratch_codes_and_notes() {
    let found = google("alice", "/home/alice/.google_authenticator", GA).unwrap();
    let r = &found.request;
    assert_eq!(r.secret.expose(), "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP");
    assert_eq!((r.digits, r.period), (6, 60));
    let scratch: Vec<&str> = r.scratch.iter().map(|s| s.expose()).collect();
    assert_eq!(scratch, ["11111111", "22222222"]);
    assert_eq!(
        found.notes,
        [
            "RATE_LIMIT not kept: mfad's lockout applies",
            "WINDOW_SIZE 17 not kept: mfad's [totp] window applies"
        ]
    );
    assert!(r.source.ends_with("/home/alice/.google_authenticator"));
    let hotp = google("a", "f", "JBSWY3DPEHPK3PXP\n\" HOTP_COUNTER 1\n").unwrap_err();
    assert!(hotp.contains("HOTP"), "{hotp}");
    assert!(
        google("a", "f", "JBSWY3DPEHPK3PXP\n")
            .unwrap_err()
            .contains("TOTP_AUTH")
    );
    assert!(google("a", "f", "").is_err());
}

#[test]
fn oath_lines_become_totp_factors_or_are_skipped() {
    let text = "# users\nHOTP/T30 alice - 3132333435363738393031323334353637383930\n\
                HOTP/T60/8 bob 1234 3132333435363738393031323334353637383930 0\n\
                HOTP carol - 3132\n\n";
    let got = oath("/etc/users.oath", text);
    assert_eq!(got.len(), 3);
    let alice = got[0].1.as_ref().unwrap();
    // RFC 4226's test secret "12345678901234567890".
    assert_eq!(
        alice.request.secret.expose(),
        "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
    );
    assert_eq!((alice.request.digits, alice.request.period), (6, 30));
    assert_eq!(alice.request.source, "oath /etc/users.oath:2");
    let bob = got[1].1.as_ref().unwrap();
    assert_eq!((bob.request.digits, bob.request.period), (8, 60));
    assert_eq!(bob.notes, ["its PIN is not kept: mfad has no PIN"]);
    assert_eq!(got[2].0, "carol");
    assert!(got[2].1.as_ref().err().unwrap().contains("counter-based"));
}

#[test]
fn expansion_follows_pam_google_authenticator() {
    assert_eq!(
        expand("~/.google_authenticator", "al", "/home/al"),
        PathBuf::from("/home/al/.google_authenticator")
    );
    assert_eq!(
        expand("/var/lib/ga/${USER}", "al", "/home/al"),
        PathBuf::from("/var/lib/ga/al")
    );
    assert_eq!(expand("${HOME}/x", "al", "/h"), PathBuf::from("/h/x"));
}

#[test]
fn each_account_is_one_request_and_refusals_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.oath");
    std::fs::write(
        &file,
        "HOTP/T30 alice - 3132333435363738393031323334353637383930\n\
         HOTP/T30 bob - 3132333435363738393031323334353637383930\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let out = mfactl(
        &["import", "oath", path],
        vec![
            done("alice: TOTP imported (6 digits, 30 s)."),
            error(ErrorCode::AlreadyEnrolled),
        ],
        "",
        false,
    );
    assert!(out.result.is_err());
    assert_eq!(out.requests.len(), 2);
    assert_eq!(out.requests[0]["type"], "import_totp");
    assert_eq!(out.requests[0]["user"], "alice");
    assert_eq!(
        out.requests[0]["secret"],
        "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
    );
    assert!(
        out.stdout.starts_with("alice: imported: "),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("\nbob: refused: "), "{}", out.stdout);
}
