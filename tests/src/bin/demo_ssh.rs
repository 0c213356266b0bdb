//! `demo_ssh`: the second quick start, run by `sudo scripts/demo --ssh`.
//! mfad in a temporary directory, a real OpenSSH sshd on a loopback port
//! in a private mount namespace (its /etc/pam.d, /etc/sudoers are the
//! demo's own), a throwaway user who logs in with a key and a TOTP code
//! from oathtool, lists the session, runs sudo with step-up (only the
//! factor the session lacks), and has the session ended by
//! `mfactl sessions kill`. The same harness as the ssh tests; everything
//! it made is removed at the end.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a demo driver

use mfad_tests::daemon::show;
use mfad_tests::ssh::{SshServer, Stacks};
use mfad_tests::users::TempUser;
use mfad_tests::{TestConfig, TestDaemon, TestPolicy, otp};

const POLICY: &str = r#"[service_groups]
privileged = ["sudo"]

[[rule]]
name = "sudo-step-up"
services = ["@privileged"]
require = { chain = ["totp", "backup"] }
fresh = { totp = "8h", backup = "0s" }   # TOTP passed in the last 8 h counts; a backup code every time

[[rule]]
name = "ssh"
services = ["sshd"]
require = "totp"

[[rule]]
name = "default"
all = true
require = "deny"
"#;

fn step(text: &str) {
    println!("\n\x1b[1m== {text}\x1b[0m");
}

/// What the terminal showed, indented.
fn terminal(text: &str) {
    for line in text.replace('\r', "").lines() {
        println!("   | {line}");
    }
}

/// `mfactl ARGS` as root, printed.
fn mfactl(d: &TestDaemon, args: &[&str]) -> String {
    println!("# mfactl {}", args.join(" "));
    let out = d.mfactl(args);
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    print!("{text}");
    text
}

fn main() {
    step("Starting mfad in a temporary directory, with this policy");
    let d = TestDaemon::with_config(TestConfig {
        policy: TestPolicy::text(POLICY),
        ..TestConfig::default()
    });
    print!("{POLICY}");

    let home = tempfile::tempdir().unwrap();
    let user = TempUser::create_login(home.path());
    let name = user.name.clone();
    let stacks = Stacks::mfa(&d).sudo_for(&name);
    let server = SshServer::start(&stacks);
    step(&format!(
        "sshd on 127.0.0.1:{} in a private mount namespace; its /etc/pam.d/sshd:",
        server.port()
    ));
    print!("{}", stacks.sshd);
    println!("(AuthenticationMethods publickey,keyboard-interactive; sudo has the same auth line)");

    step(&format!(
        "Enrolling the throwaway user {name} (TOTP, with backup codes)"
    ));
    let enrolled = d.enroll_totp_details(&name);
    println!("secret from the otpauth:// URI; oathtool makes the codes from it");
    println!("{} backup codes issued", enrolled.backup_codes.len());

    step(&format!(
        "ssh -p {} {name}@127.0.0.1: the key first, then the code over keyboard-interactive",
        server.port()
    ));
    let key = server.new_key("laptop");
    server.authorize(&name, &key);
    otp::wait_for_fresh_step(30, 5);
    let mut ssh = server.ssh(&name, &key, "127.0.0.1", "");
    terminal(&format!(
        "{}Verification code: ",
        ssh.expect("Verification code: ")
    ));
    let code = d.totp_code(&enrolled.secret, 0);
    println!("typing {code} (oathtool --totp)");
    ssh.send_line(&code);
    ssh.expect("$ ");
    println!("logged in: a shell prompt");

    step("The session, as mfad recorded it (pam_mfa.so's session hook)");
    mfactl(&d, &["sessions", "list"]);
    let doc = d.mfactl_json(&["sessions", "list"]);
    let id = doc["sessions"][0]["id"].as_i64().unwrap().to_string();

    step(
        "sudo inside the session: TOTP passed at login counts (fresh for 8h), so only the backup code is asked",
    );
    ssh.send_line("sudo id -un; echo \"R\"\"C=$?\"");
    terminal(&format!("{}Backup code: ", ssh.expect("Backup code: ")));
    println!("typing the first backup code");
    ssh.send_line(&enrolled.backup_codes[0]);
    terminal(&ssh.expect("RC=0"));

    step("Ending the session from outside: SIGTERM to its processes, audited");
    mfactl(&d, &["sessions", "kill", &id]);
    let status = ssh.wait();
    println!("the ssh client ended ({status})");

    step(&format!("What {name} sees in their own history"));
    mfactl(&d, &["history", "--user", &name]);

    step("Done: sshd, mfad, the user and their files are removed now");
}
