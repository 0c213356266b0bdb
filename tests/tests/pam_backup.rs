//! Backup codes end to end through libpam: offered in the choice, the
//! prompt says how many are left, each works once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use mfad_tests::daemon::TEST_RHOST;
use mfad_tests::pam::*;
use mfad_tests::users::unique_name;
use mfad_tests::{TestConfig, TestDaemon, TestPolicy};

const SVC: &str = "mfa-test";

#[test]
fn a_backup_code_is_offered_counted_and_accepted_once() {
    let d = TestDaemon::with_config(TestConfig {
        policy: TestPolicy {
            default: r#"{ any = ["totp", "backup"] }"#.into(),
            ..TestPolicy::default()
        },
        ..TestConfig::default()
    });
    d.write_pam_service(SVC, &[]);
    let user = unique_name("bea");
    d.enroll_totp(&user);
    let doc = d.mfactl_json(&["backup-codes", "regenerate", "--user", &user]);
    let codes: Vec<String> = doc["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    let t = d.expect_rc(
        d.login(SVC, &user, TEST_RHOST, &["2", &codes[0]]),
        PAM_SUCCESS,
    );
    let prompts = t.prompts();
    assert!(prompts[0].contains("2) backup code"), "{t}");
    // How many are left is told after the login, never in the prompt
    // (which would tell who has backup codes).
    assert_eq!(prompts[1], "Backup code: ");
    assert!(t.contains("9 backup codes left."), "{t}");
    let t = d.expect_rc(
        d.login(SVC, &user, TEST_RHOST, &["2", &codes[0]]),
        PAM_AUTH_ERR,
    );
    assert_eq!(t.prompts()[1], "Backup code: ");
    assert!(t.contains("Wrong backup code."), "{t}");
    let status = d.mfactl_json(&["status", "--user", &user]);
    assert_eq!(status["backup_codes"], 9);
    // Typed in capitals and without the dash, another code still works.
    let other = codes[1].replace('-', "").to_uppercase();
    d.expect_rc(d.login(SVC, &user, TEST_RHOST, &["2", &other]), PAM_SUCCESS);
}
