//! Risk signals in the policy, through the real sshd: a source network the
//! user never logged in from, and a country other than the last login's
//! (from a MaxMind-format database the test writes). Logins come from
//! different loopback addresses (`ssh -b 127.0.x.y`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use mfad_tests::ssh::{SshServer, Stacks};
use mfad_tests::users::TempUser;
use mfad_tests::{TestConfig, TestDaemon, TestPolicy, mmdb};

const POLICY: &str = r#"
[[rule]]
name = "new-country"
services = ["sshd"]
new_country = true
require = { chain = ["totp", "backup"] }

[[rule]]
name = "new-network"
services = ["sshd"]
new_network = true
require = "totp"
trusted_devices = false

[[rule]]
name = "ssh"
services = ["sshd"]
require = "totp"
trusted_devices = true

[[rule]]
name = "default"
all = true
require = "deny"
"#;

const CODE: &str = "Verification code: ";
const BACKUP: &str = "Backup code: ";
const TRUST: &str = "Trust this device";
const DONE: &str = "LOGGED-IN";

#[test]
fn a_new_network_refuses_trust_and_a_new_country_demands_more() {
    let mut d = TestDaemon::prepare(TestConfig {
        policy: TestPolicy::text(POLICY),
        geoip_database: Some("countries.mmdb".into()),
        ..TestConfig::default()
    });
    std::fs::write(
        d.dir().join("countries.mmdb"),
        mmdb::country_db(&[("127.0.0.0/24", "DE"), ("127.0.1.0/24", "FR")]),
    )
    .unwrap();
    d.launch();
    let server = SshServer::start(&Stacks::mfa(&d));
    let user = TempUser::create_login(server.dir());
    let key = server.new_key("laptop");
    server.authorize(&user.name, &key);
    let e = d.enroll_totp_details(&user.name);

    // `explain` shows the signals it matches with.
    let explain = |rhost: &str| {
        d.mfactl_json(&[
            "policy",
            "explain",
            "--user",
            &user.name,
            "--service",
            "sshd",
            "--rhost",
            rhost,
        ])
    };
    let first = explain("127.0.0.1");
    assert_eq!(first["rule"], "new-network", "{first}");
    assert_eq!(first["signals"][0]["name"], "new_network");
    assert_eq!(first["signals"][0]["value"], true);

    // 1: a network never seen (127.0.0.0/24, DE): TOTP, and no trust offered.
    let mut ssh = server.ssh(&user.name, &key, "127.0.0.1", "echo LOGGED\"\"-IN");
    ssh.expect(CODE);
    ssh.send_line(&d.totp_code(&e.secret, 0));
    let (which, _) = ssh.expect_any(&[TRUST, DONE]).unwrap();
    assert_eq!(
        which,
        1,
        "trust offered on a new network:\n{}",
        ssh.transcript()
    );
    assert!(ssh.wait().success());

    // The same network is known now: the ordinary rule, which offers trust.
    let again = explain("127.0.0.9");
    assert_eq!(again["rule"], "ssh", "{again}");
    assert_eq!(again["signals"][0]["value"], false);
    assert_eq!(again["signals"][1]["value"], false);

    // 2: from France after a login from Germany: TOTP and a backup code.
    let fr = explain("127.0.1.1");
    assert_eq!(fr["rule"], "new-country", "{fr}");
    assert!(
        fr["signals"][1]["detail"]
            .as_str()
            .unwrap()
            .contains("from FR"),
        "{fr}"
    );
    let mut ssh = server.ssh(&user.name, &key, "127.0.1.1", "echo LOGGED\"\"-IN");
    ssh.expect(CODE);
    ssh.send_line(&d.totp_code(&e.secret, 1));
    ssh.expect(BACKUP);
    ssh.send_line(&e.backup_codes[0]);
    ssh.expect(DONE);
    assert!(ssh.wait().success(), "{}", ssh.transcript());

    // France is now the last country, and its network is known.
    assert_eq!(explain("127.0.1.1")["rule"], "ssh");
    assert_eq!(explain("127.0.0.1")["rule"], "new-country");
}
