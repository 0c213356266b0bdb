//! A fleet: two real mfad daemons ("web-1" and "web-2", each with its own
//! socket and config) sharing one real PostgreSQL, started by the test in a
//! temporary directory; logins through the real libpam and pam_mfa.so.
//!
//! Needs root, Debian's `postgresql` and `cargo build --workspace` first.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use mfad_tests::daemon::{TEST_RHOST, show};
use mfad_tests::pam::*;
use mfad_tests::postgres::{Postgres, write_private};
use mfad_tests::ssh::{SshServer, Stacks};
use mfad_tests::users::{TempUser, unique_name};
use mfad_tests::{TestConfig, TestDaemon, TestPolicy, bins};
use serde_json::{Value, json};
use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const SVC: &str = "mfa-test";

/// A daemon of the fleet with the tests' config.
fn member(pg: &Postgres, host: &str, keys_from: Option<&TestDaemon>) -> TestDaemon {
    pg.member(TestConfig::default(), host, keys_from)
}

fn mfad(d: &TestDaemon, args: &[&str]) -> Output {
    Command::new(bins::mfad())
        .arg("--config")
        .arg(d.config_path())
        .args(args)
        .output()
        .unwrap()
}

/// A migrated database and two daemons serving [`SVC`] on it.
fn fleet(pg: &Postgres) -> (TestDaemon, TestDaemon) {
    fleet_with(pg, |_| {})
}

fn fleet_with(pg: &Postgres, adjust: impl Fn(&mut TestConfig)) -> (TestDaemon, TestDaemon) {
    pg.pair(SVC, adjust)
}

fn login(d: &TestDaemon, user: &str, answers: &[&str]) -> (i32, Transcript) {
    d.login(SVC, user, TEST_RHOST, answers)
}

#[test]
fn enrolled_on_one_host_a_user_logs_in_on_another_and_a_code_counts_once_in_the_fleet() {
    let pg = Postgres::start();
    let (a, b) = fleet(&pg);
    let user = unique_name("alice");
    let secret = a.enroll_totp(&user);
    let code = b.totp_code(&secret, 0);
    b.expect_rc(login(&b, &user, &[&code]), PAM_SUCCESS);
    // The same code on the other host is a replay.
    let t = a.expect_rc(login(&a, &user, &[&code]), PAM_AUTH_ERR);
    assert!(t.contains("next code"), "{t}");
    // Each host's audit rows land in the shared database under its name.
    let hosts = pg.sql(&format!(
        "SELECT DISTINCT host FROM audit WHERE username = '{user}' ORDER BY host"
    ));
    assert_eq!(hosts, "web-1\nweb-2", "audit hosts");
    let decided = pg.sql(&format!(
        "SELECT host || ' ' || decision FROM audit
         WHERE username = '{user}' AND channel = 'totp' ORDER BY id"
    ));
    assert_eq!(decided, "web-2 allow\nweb-1 deny", "audit rows");
    // `mfactl audit` on any host shows the fleet's rows, each with its host.
    let out = a.mfactl(["audit", "--user", &user]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "audit: {}", show(&out));
    assert!(text.starts_with("TIME") && text.contains("HOST"), "{text}");
    assert!(text.contains("web-1") && text.contains("web-2"), "{text}");
    // Each host's chain verifies.
    for d in [&a, &b] {
        let out = d.mfactl(["audit", "verify"]);
        assert!(out.status.success(), "audit verify: {}", show(&out));
    }
}

#[test]
fn a_lock_earned_on_one_host_holds_on_the_other_until_an_admin_anywhere_lifts_it() {
    let pg = Postgres::start();
    let (a, b) = fleet(&pg);
    let user = unique_name("carol");
    let secret = a.enroll_totp(&user);
    let wrong = a.wrong_code(&secret);
    a.fail_to_threshold(SVC, &user, TEST_RHOST, &wrong);
    let code = b.totp_code(&secret, 0);
    let t = b.expect_rc(login(&b, &user, &[&code]), PAM_MAXTRIES);
    assert!(t.contains("lock"), "{t}");
    let out = b.mfactl(["user", "unlock", &user]);
    assert!(out.status.success(), "unlock: {}", show(&out));
    a.expect_rc(login(&a, &user, &[&code]), PAM_SUCCESS);
}

#[test]
fn a_backup_code_issued_on_one_host_is_good_once_anywhere() {
    let pg = Postgres::start();
    let (a, b) = fleet_with(&pg, |c| {
        c.policy.default = r#"{ any = ["totp", "backup"] }"#.into();
    });
    let user = unique_name("fay");
    a.enroll_totp(&user);
    let doc = a.mfactl_json(&["backup-codes", "regenerate", "--user", &user]);
    let code = doc["codes"][0].as_str().unwrap().to_owned();
    let t = b.expect_rc(login(&b, &user, &["2", &code]), PAM_SUCCESS);
    assert!(t.contains("9 backup codes left."), "{t}");
    let t = a.expect_rc(login(&a, &user, &["2", &code]), PAM_AUTH_ERR);
    assert!(t.contains("Wrong backup code."), "{t}");
    assert_eq!(
        a.mfactl_json(&["status", "--user", &user])["backup_codes"],
        9
    );
}

#[test]
fn a_daemon_refuses_to_start_on_an_old_schema_or_with_another_key() {
    let pg = Postgres::start();
    let mut early = member(&pg, "web-0", None);
    let failure = early.start_expecting_failure();
    assert!(
        failure.stderr.contains("mfad --migrate"),
        "no hint to migrate:\n{}",
        failure.stderr
    );
    let (a, _b) = fleet(&pg);
    a.enroll_totp(&unique_name("dave"));
    let mut stranger = member(&pg, "web-3", None);
    write_private(&stranger.dir().join("state/mfad.key"), &[7u8; 32], 0o400);
    let failure = stranger.start_expecting_failure();
    assert!(
        failure.stderr.contains("is not the key"),
        "wrong key not named:\n{}",
        failure.stderr
    );
    // Without a key, a new host is told to copy the fleet's, not given one.
    let mut keyless = member(&pg, "web-4", None);
    let failure = keyless.start_expecting_failure();
    assert!(
        failure
            .stderr
            .contains("Copy the key file from another host"),
        "{}",
        failure.stderr
    );
    assert!(!keyless.dir().join("state/mfad.key").exists());
}

#[test]
fn with_the_database_down_logins_are_denied_and_service_comes_back_by_itself() {
    let mut pg = Postgres::start();
    let (a, _b) = fleet(&pg);
    let user = unique_name("erin");
    let secret = a.enroll_totp(&user);
    pg.stop_server();
    let code = a.totp_code(&secret, 0);
    let (rc, t) = login(&a, &user, &[&code]);
    assert_ne!(
        rc, PAM_SUCCESS,
        "a login went through without the database:\n{t}"
    );
    pg.start_server();
    let code = a.totp_code(&secret, 0);
    a.expect_rc(login(&a, &user, &[&code]), PAM_SUCCESS);
}

#[test]
fn a_hung_database_costs_a_login_the_statement_timeout_then_a_denial() {
    let pg = Postgres::start();
    let (a, _b) = fleet(&pg);
    let user = unique_name("gus");
    let secret = a.enroll_totp(&user);
    pg.freeze();
    let code = a.totp_code(&secret, 0);
    let started = std::time::Instant::now();
    let (rc, t) = login(&a, &user, &[&code]);
    let waited = started.elapsed();
    pg.thaw();
    assert_ne!(
        rc, PAM_SUCCESS,
        "a login went through a hung database:\n{t}"
    );
    // Not a performance bound: a hung database must end in a verdict, not
    // in a login that hangs (the timeout is 2 s per store call).
    assert!(
        waited < std::time::Duration::from_secs(15),
        "the login hung for {waited:?}"
    );
    let code = a.totp_code(&secret, 0);
    a.expect_rc(login(&a, &user, &[&code]), PAM_SUCCESS);
}

#[test]
fn a_login_cut_off_inside_its_transaction_leaves_no_connection_in_it() {
    let pg = Postgres::start();
    let (a, _b) = fleet(&pg);
    let user = unique_name("ivy");
    let secret = a.enroll_totp(&user);
    // Another session holds the user's TOTP row for longer than the store's
    // timeout (2 s): the login's pipelined transaction (BEGIN and the UPDATE
    // that takes the step) is cut off in the middle.
    let locker = pg.hold(
        &format!("SELECT 1 FROM totp WHERE username = '{user}' FOR UPDATE"),
        4,
        "SELECT count(*) FROM pg_locks
         WHERE relation = 'totp'::regclass AND mode = 'RowShareLock' AND granted",
    );
    let code = a.totp_code(&secret, 0);
    let (rc, t) = login(&a, &user, &[&code]);
    assert_ne!(rc, PAM_SUCCESS, "a login went through a locked row:\n{t}");
    locker.join().expect("the locking session");
    // The denial is in the shared audit, written after the cut-off: the
    // connection cut off went back to the pool out of its transaction
    // (inside the aborted one, the row would be refused and lost).
    let denied = pg.sql(&format!(
        "SELECT count(*) FROM audit WHERE username = '{user}' AND service = '{SVC}'
         AND decision = 'deny'"
    ));
    assert_eq!(
        denied.trim(),
        "1",
        "the denial is missing from the shared audit"
    );
    // The step was not taken: the same code now logs in, and no connection
    // of mfad's is left inside a transaction.
    a.expect_rc(login(&a, &user, &[&code]), PAM_SUCCESS);
    let open = pg.sql(&format!(
        "SELECT count(*) FROM pg_stat_activity
         WHERE usename = '{}' AND state LIKE 'idle in transaction%'",
        mfad_tests::postgres::ROLE
    ));
    assert_eq!(
        open.trim(),
        "0",
        "mfad connections left inside a transaction"
    );
}

/// `mfactl doctor`'s findings about the store: (check, status, message).
fn store_findings_with_messages(d: &TestDaemon) -> Vec<(String, String, String)> {
    // Other checks (sshd, PAM files) may fail here: only the store matters.
    let out = d.mfactl(["--json", "doctor", "--service", "none"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("doctor --json: {e}: {}", show(&out)));
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"].as_str().unwrap().starts_with("store"))
        .map(|f| {
            let field = |k: &str| f[k].as_str().unwrap().to_owned();
            (field("check"), field("status"), field("message"))
        })
        .collect()
}

fn store_findings(d: &TestDaemon) -> Vec<(String, String)> {
    store_findings_with_messages(d)
        .into_iter()
        .map(|(check, status, _)| (check, status))
        .collect()
}

#[test]
fn doctor_reports_the_store_connection_its_tls_and_schema() {
    let mut pg = Postgres::start();
    let (a, _b) = fleet(&pg);
    let found = store_findings(&a);
    assert_eq!(
        found,
        [
            ("store connection".to_owned(), "ok".to_owned()),
            ("store tls".to_owned(), "warn".to_owned()),
            ("store schema".to_owned(), "ok".to_owned()),
        ],
        "{found:?}"
    );
    pg.stop_server();
    let found = store_findings(&a);
    assert_eq!(found, [("store connection".to_owned(), "fail".to_owned())]);
}

#[test]
fn tls_to_the_database_is_verified_against_the_ca_file() {
    let pg = Postgres::start_tls();
    let (a, _b) = fleet(&pg);
    let found = store_findings_with_messages(&a);
    let tls = found
        .iter()
        .find(|(check, _, _)| check == "store tls")
        .unwrap_or_else(|| panic!("no store tls finding: {found:?}"));
    assert_eq!(tls.1, "ok", "{tls:?}");
    assert!(tls.2.contains("TLS"), "{tls:?}");
    // A server whose certificate the configured CA did not sign is refused.
    let mut c = member(&pg, "web-9", Some(&a));
    c.config_mut().store = Some(pg.store_table_trusting("web-9", Some(&pg.other_ca_file())));
    let failure = c.start_expecting_failure();
    assert!(
        failure.stderr.contains("certificate"),
        "the untrusted certificate is not named:\n{}",
        failure.stderr
    );
}

#[test]
fn check_config_names_a_wrong_password() {
    let pg = Postgres::start();
    let d = member(&pg, "web-1", None);
    write_private(
        &d.dir().join("state/pg.password"),
        b"not-the-password",
        0o600,
    );
    let out = mfad(&d, &["--check-config"]);
    assert!(!out.status.success());
    let text = show(&out);
    assert!(text.contains("password authentication failed"), "{text}");
    assert!(
        !text.contains("not-the-password"),
        "the password leaked: {text}"
    );
}

/// Pids of `uid`'s live processes named `comm`.
fn processes_of(uid: u32, comm: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let field = |name: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(|v| v.split_whitespace().next().unwrap_or("").to_owned())
            };
            // A zombie has ended; only its parent's wait() is missing.
            field("Name:").as_deref() == Some(comm)
                && field("Uid:") == Some(uid.to_string())
                && field("State:").as_deref() != Some("Z")
        })
        .collect()
}

/// Starts a long-running process in the shell and waits until it runs
/// (the shell echoes before its child has exec'd); returns its pid.
fn start_sleeping(ssh: &mut mfad_tests::pty::Pty, uid: u32) -> u32 {
    ssh.send_line("sleep 600 & echo \"SLE\"\"EPING\"");
    ssh.expect("SLEEPING");
    let since = Instant::now();
    loop {
        let sleeping = processes_of(uid, "sleep");
        match sleeping[..] {
            [pid] => return pid,
            [] if since.elapsed() < Duration::from_secs(5) => {
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => panic!("sleep processes of uid {uid}: {sleeping:?}"),
        }
    }
}

fn session_on<'a>(doc: &'a Value, user: &str) -> &'a Value {
    doc["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["user"] == user)
        .unwrap_or_else(|| panic!("no session of {user} in {doc}"))
}

#[test]
fn a_session_on_one_host_is_listed_stepped_up_and_ended_from_the_other() {
    let pg = Postgres::start();
    let (a, b) = fleet(&pg);
    // A real login on web-2, through its sshd, running a long process.
    let server = SshServer::start(&Stacks::mfa(&b));
    let user = TempUser::create_login(server.dir());
    let secret = a.enroll_totp(&user.name);
    let mut ssh = server.shell(&b, &user.name, &secret);
    let sleeping = vec![start_sleeping(&mut ssh, user.uid)];

    // Listed on web-1 with its host; web-2 counts its processes.
    let doc = a.mfactl_json(&["sessions", "list"]);
    let listed = session_on(&doc, &user.name);
    assert_eq!(listed["host"], "web-2", "{doc}");
    assert_eq!(listed["factors"][0]["factor"], "totp", "{doc}");
    let id = listed["id"].as_i64().unwrap().to_string();
    let doc = b.mfactl_json(&["sessions", "list"]);
    assert!(
        session_on(&doc, &user.name)["processes"].as_u64().unwrap() >= 2,
        "{doc}"
    );
    let out = a.mfactl(["sessions", "list"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.starts_with("ID  HOST "), "{table}");
    assert!(table.contains("web-2"), "{table}");

    // Its owner, asking web-1, sees none of it: a uid is someone only on
    // its own host.
    let mine = a.mfactl_as(user.uid, user.gid, ["--json", "sessions", "list"]);
    let mine: Value = serde_json::from_slice(&mine.stdout).unwrap();
    assert_eq!(mine["sessions"], json!([]), "{mine}");
    let out = a.mfactl_as(user.uid, user.gid, ["--json", "sessions", "kill", &id]);
    assert!(!out.status.success(), "{}", show(&out));
    assert!(show(&out).contains("permission_denied"), "{}", show(&out));
    assert_eq!(processes_of(user.uid, "sleep"), sleeping);

    // A step-up asked on web-1 clears what the session proved, for web-2.
    let out = a.mfactl(["sessions", "stepup", &id]);
    assert!(out.status.success(), "{}", show(&out));
    let doc = b.mfactl_json(&["sessions", "list"]);
    assert_eq!(session_on(&doc, &user.name)["factors"], json!([]), "{doc}");

    // Killed from web-1: web-2 ends it, its processes die within 2 s.
    let asked = Instant::now();
    let out = a.mfactl(["sessions", "kill", &id]);
    assert!(out.status.success(), "{}\n{}", show(&out), b.log_text());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("on web-2 ended"),
        "{}",
        show(&out)
    );
    while !processes_of(user.uid, "sleep").is_empty() {
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "the session's process outlived the kill by 2 s\n{}",
            b.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!ssh.wait().success(), "{}", ssh.transcript());
    let doc = a.mfactl_json(&["sessions", "list"]);
    assert!(
        !doc["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["user"] == user.name.as_str()),
        "{doc}"
    );
    // Audited by web-2, in its chain, naming who asked from where (once
    // its kill has counted the processes: sshd's close hook may forget the
    // session first).
    let audited = || {
        pg.sql(&format!(
            "SELECT host FROM audit WHERE username = '{}' AND reason LIKE '%killed by uid 0 on web-1%'",
            user.name
        ))
    };
    while audited().is_empty() && asked.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(audited(), "web-2", "{}", b.log_text());
    let out = b.mfactl(["audit", "verify"]);
    assert!(out.status.success(), "audit verify: {}", show(&out));
}

/// A user's login on `d` up to its first prompt (no answer is given).
fn prompts(d: &TestDaemon, user: &str) -> (i32, Transcript) {
    login(d, user, &[])
}

fn push(d: &TestDaemon, dir: &Path, name: &str, text: &str) -> Output {
    let file = dir.join(name);
    std::fs::write(&file, text).unwrap();
    d.mfactl([OsStr::new("policy"), OsStr::new("push"), file.as_os_str()])
}

fn status(d: &TestDaemon) -> Value {
    d.mfactl_json(&["policy", "status"])
}

fn version_on(doc: &Value, host: &str) -> Option<i64> {
    doc["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == host)
        .and_then(|h| h["version"].as_i64())
}

#[test]
fn a_policy_pushed_on_one_host_is_enforced_on_every_host_with_its_own_class() {
    let pg = Postgres::start();
    let (a, mut b) = fleet_with(&pg, |c| {
        c.lockout.threshold = 100;
        c.lockout.account_threshold = 100;
    });
    let user = unique_name("gil");
    a.enroll_totp(&user);
    a.mfactl_json(&["backup-codes", "regenerate", "--user", &user]);
    let (_, t) = prompts(&b, &user);
    assert!(!t.contains("Choose how to verify"), "{t}");
    // web-2 says in its own policy file that it is a database server.
    b.write_policy(&TestPolicy::text("[host]\nclass = \"db\"\n"));

    let dir = tempfile::tempdir().unwrap();
    let pushed = format!(
        "[[rule]]\nname = \"db-servers\"\nhost_class = [\"db\"]\nservices = [\"{SVC}\"]\nrequire = \"deny\"\n\n\
         [[rule]]\nname = \"everyone\"\nall = true\nrequire = {{ any = [\"totp\", \"backup\"] }}\n"
    );
    let out = push(&a, dir.path(), "fleet.toml", &pushed);
    assert!(out.status.success(), "{}", show(&out));
    let version = status(&a)["pushed"].as_i64().unwrap();
    let since = Instant::now();
    // web-2 puts it in force within 2 s, as its login shows.
    while version_on(&status(&a), "web-2") != Some(version) {
        assert!(
            since.elapsed() < Duration::from_secs(2),
            "web-2 did not pick up version {version}\n{}",
            b.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (rc, t) = prompts(&b, &user);
    assert_eq!(rc, PAM_AUTH_ERR, "{t}");
    assert!(t.prompts().is_empty(), "web-2 is of class db, denied: {t}");
    let (_, t) = prompts(&a, &user);
    assert!(t.contains("Choose how to verify"), "{t}");

    // Both hosts, both at the latest pushed version.
    let doc = status(&b);
    assert_eq!(version_on(&doc, "web-1"), Some(version), "{doc}");
    assert_eq!(version_on(&doc, "web-2"), Some(version), "{doc}");
    let out = b.mfactl(["policy", "status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("latest pushed version: {version}")),
        "{text}"
    );
    assert_eq!(text.matches(" yes").count(), 2, "{text}");

    // A bad file is refused with line and column; nothing changes.
    let history = a.mfactl_json(&["policy", "history"]);
    let out = push(
        &b,
        dir.path(),
        "bad.toml",
        "[[rule]]\nname = \"x\"\nrequire = \"totpp\"\nall = true\n",
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(show(&out).contains("line 3, column"), "{}", show(&out));
    assert_eq!(a.mfactl_json(&["policy", "history"]), history);
    assert_eq!(status(&a)["pushed"].as_i64(), Some(version));
    let (_, t) = prompts(&a, &user);
    assert!(t.contains("Choose how to verify"), "{t}");

    // History, diff, show and explain work on the central versions.
    let out = b.mfactl(["policy", "diff", "1", &version.to_string()]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("+name = \"db-servers\""),
        "{}",
        show(&out)
    );
    let shown = b.mfactl(["policy", "show"]);
    assert_eq!(String::from_utf8_lossy(&shown.stdout), pushed);
    let explained = b.mfactl_json(&["policy", "explain", "--user", &user, "--service", SVC]);
    assert_eq!(explained["policy_version"], version, "{explained}");
    assert_eq!(explained["rule"], "db-servers", "{explained}");
    let explained = a.mfactl_json(&["policy", "explain", "--user", &user, "--service", SVC]);
    assert_eq!(explained["rule"], "everyone", "{explained}");

    // A reload on web-2 keeps the pushed version and says why.
    let out = b.mfactl(["policy", "reload"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(show(&out).contains("mfactl policy push"), "{}", show(&out));
    assert_eq!(version_on(&status(&a), "web-2"), Some(version));
    // So does a restart; --check-config says what the file is used for.
    b.restart();
    assert_eq!(
        b.mfactl_json(&["policy", "show"])["version"]["version"],
        version
    );
    let out = mfad(&b, &["--check-config"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        show(&out).contains(&format!("pushed version {version} is in force")),
        "{}",
        show(&out)
    );
}

#[test]
fn a_daemon_of_one_host_refuses_a_push() {
    let d = TestDaemon::start();
    let dir = tempfile::tempdir().unwrap();
    let out = push(
        &d,
        dir.path(),
        "p.toml",
        "[[rule]]\nname = \"a\"\nall = true\nrequire = \"totp\"\n",
    );
    assert!(!out.status.success());
    assert!(
        show(&out).contains("needs the fleet store"),
        "{}",
        show(&out)
    );
}

#[test]
fn after_the_database_comes_back_a_host_hears_of_pushes_again() {
    let mut pg = Postgres::start();
    let (a, b) = fleet(&pg);
    let listening = |d: &TestDaemon| {
        d.log_text()
            .matches("fleet: listening for other hosts' notices")
            .count()
    };
    let wait_for = |n: usize| {
        let since = Instant::now();
        while listening(&b) < n {
            assert!(
                since.elapsed() < Duration::from_secs(15),
                "web-2 did not listen ({n})\n{}",
                b.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_for(1);
    pg.stop_server();
    pg.start_server();
    // web-2's listening connection comes back by itself.
    wait_for(2);
    // What each host logged until now, the server's shutdown included (a
    // read that raced with it failed, as it should).
    let before: Vec<usize> = [&a, &b].iter().map(|d| d.log_text().len()).collect();
    let dir = tempfile::tempdir().unwrap();
    let out = push(
        &a,
        dir.path(),
        "p.toml",
        "[[rule]]\nname = \"after\"\nall = true\nrequire = \"totp\"\n",
    );
    assert!(out.status.success(), "{}", show(&out));
    let version = status(&a)["pushed"].as_i64().unwrap();
    let pushed = Instant::now();
    while version_on(&status(&a), "web-2") != Some(version) {
        assert!(
            pushed.elapsed() < Duration::from_secs(2),
            "web-2 did not hear of version {version}\n{}",
            b.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // No request after the restart met a pooled connection the server had
    // closed: the pool let it go first.
    for (d, from) in [&a, &b].into_iter().zip(before) {
        let log = d.log_text();
        assert!(
            !log[from..].contains("PostgreSQL: connection closed"),
            "a dead pooled connection was used:\n{log}"
        );
    }
}

/// Holds the table of last logins for a second (under the store's 2 s
/// timeout) from another session.
fn hold_last_logins(pg: &Postgres) -> std::thread::JoinHandle<String> {
    pg.hold(
        "LOCK TABLE last_login IN SHARE MODE",
        1,
        "SELECT count(*) FROM pg_locks
         WHERE relation = 'last_login'::regclass AND mode = 'ShareLock' AND granted",
    )
}

#[test]
fn a_ticket_redeemed_before_its_row_is_written_waits_for_it() {
    let pg = Postgres::start();
    // A backup code: its login's ticket is written after the verdict (a
    // TOTP code that ends a login is written with its success).
    let (a, b) = fleet_with(&pg, |c| {
        c.policy.text =
            Some("[[rule]]\nname = \"backup\"\nall = true\nrequire = \"backup\"\n".to_owned());
    });
    let server = SshServer::start(&Stacks::mfa(&b));
    let user = TempUser::create_login(server.dir());
    let enrolled = a.enroll_totp_details(&user.name);
    let key = server.new_key("laptop");
    server.authorize(&user.name, &key);
    // The verdict, with its ticket, goes out before the ticket's row is
    // written, in one transaction with the login's place. Held up here for
    // a second (under the store's 2 s timeout) by the table of last logins,
    // the row is written after sshd's session hook has asked for it.
    let locker = hold_last_logins(&pg);
    let mut ssh = server.ssh(&user.name, &key, "127.0.0.1", "");
    ssh.expect("Backup code: ");
    ssh.send_line(&enrolled.backup_codes[0]);
    ssh.expect("$ ");
    locker.join().expect("the locking session");
    // The session got what the login proved: the redemption waited for the
    // row instead of finding no ticket.
    let doc = a.mfactl_json(&["sessions", "list"]);
    assert_eq!(
        session_on(&doc, &user.name)["factors"][0]["factor"],
        "backup",
        "{doc}\n{}",
        b.log_text()
    );
    ssh.send_line("exit");
    assert!(ssh.wait().success(), "{}", ssh.transcript());
}

/// A TOTP code that ends a login is accepted in one transaction with what
/// the login leaves behind (its place, its ticket), before the verdict.
#[test]
fn a_totp_code_that_ends_a_login_is_accepted_with_what_the_login_leaves_behind() {
    let pg = Postgres::start();
    let (a, b) = fleet(&pg);
    let user = unique_name("tess");
    let secret = a.enroll_totp(&user);
    // Held up for a second by the table of last logins, the step's
    // transaction holds up the verdict: when the login returns, its place
    // is written (written after the verdict, it would not be yet).
    let locker = hold_last_logins(&pg);
    b.expect_rc(login(&b, &user, &[&b.totp_code(&secret, 0)]), PAM_SUCCESS);
    let rows = pg.sql(&format!(
        "SELECT count(*) FROM last_login WHERE username = '{user}'"
    ));
    locker.join().expect("the locking session");
    assert_eq!(rows.trim(), "1", "{}", b.log_text());
}

#[test]
fn a_kill_asked_while_the_other_host_is_down_is_carried_out_when_it_is_back() {
    let pg = Postgres::start();
    let (a, mut b) = fleet(&pg);
    let server = SshServer::start(&Stacks::mfa(&b));
    let user = TempUser::create_login(server.dir());
    let secret = a.enroll_totp(&user.name);
    let mut ssh = server.shell(&b, &user.name, &secret);
    start_sleeping(&mut ssh, user.uid);
    let doc = a.mfactl_json(&["sessions", "list"]);
    let id = session_on(&doc, &user.name)["id"]
        .as_i64()
        .unwrap()
        .to_string();
    b.stop();
    // web-1 records the request and says web-2 has not acted on it.
    let out = a.mfactl(["--json", "sessions", "kill", &id]);
    assert!(!out.status.success(), "{}", show(&out));
    assert!(show(&out).contains("\"timeout\""), "{}", show(&out));
    assert!(
        show(&out).contains("web-2 was asked to end session"),
        "{}",
        show(&out)
    );
    assert_eq!(processes_of(user.uid, "sleep").len(), 1);
    // Back, web-2 ends it at once.
    b.launch();
    let back = Instant::now();
    while !processes_of(user.uid, "sleep").is_empty() {
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "web-2 did not carry out the request\n{}",
            b.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!ssh.wait().success(), "{}", ssh.transcript());
}
