//! The audit stream against a real collector: rsyslogd over TLS on a
//! loopback port (started here, see `mfad_tests::rsyslog`), the JSON-lines
//! file, `mfactl audit --json --follow`, and `mfactl audit verify` against a
//! database edited behind mfad's back with the sqlite3 CLI.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use mfad_tests::bins;
use mfad_tests::daemon::{SyslogReceiver, TEST_RHOST, show};
use mfad_tests::pam::PAM_AUTH_ERR;
use mfad_tests::rsyslog::{Collector, Listener, Received};
use mfad_tests::users::{TempUser, unique_name};
use mfad_tests::{TestConfig, TestDaemon};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const SVC: &str = "mfa-test";

fn streaming_to(collector: &Collector) -> TestDaemon {
    let mut d = TestDaemon::prepare(TestConfig {
        audit: format!(
            "[audit.syslog]\nurl = \"tls://127.0.0.1:{}\"\nca_file = {:?}\n\
             spill_file = \"DIR/state/spill.jsonl\"\n\n\
             [audit.json_file]\npath = \"DIR/audit.jsonl\"\n",
            collector.port,
            collector.ca_file()
        ),
        ..TestConfig::default()
    });
    d.launch();
    d.write_pam_service(SVC, &[]);
    d
}

fn unlock(d: &TestDaemon, user: &str) {
    let out = d.mfactl(["user", "unlock", user]);
    assert!(out.status.success(), "{}", show(&out));
}

fn by_user<'a>(got: &'a [Received], user: &str) -> Vec<&'a Received> {
    got.iter().filter(|r| r.record["user"] == user).collect()
}

fn seqs_in_db(d: &TestDaemon) -> BTreeSet<i64> {
    d.audit_rows()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect()
}

#[test]
fn a_tls_collector_gets_every_event_and_nothing_spilled_is_lost() {
    let mut collector = Collector::start_tls();
    let d = streaming_to(&collector);
    let nemo = unique_name("nemo");
    d.expect_rc(d.login(SVC, &nemo, TEST_RHOST, &["123456"]), PAM_AUTH_ERR);
    let admin_target = unique_name("aud");
    unlock(&d, &admin_target);

    // Every stored row arrives, with the fields of mfad.audit.v1.
    let in_db = seqs_in_db(&d);
    let got = collector.wait_until(Duration::from_secs(20), |got| {
        let seen: BTreeSet<i64> = got
            .iter()
            .filter_map(|r| r.record["seq"].as_i64())
            .collect();
        in_db.is_subset(&seen)
    });
    let login = by_user(&got, &nemo);
    assert!(!login.is_empty(), "no event of the login arrived");
    let r = &login[0].record;
    assert_eq!(r["schema"], "mfad.audit.v1");
    assert_eq!(r["type"], "authentication");
    assert_eq!(r["actor"], "pam");
    assert_eq!(r["service"], SVC);
    assert_eq!(r["rhost"], TEST_RHOST);
    assert_eq!(r["decision"], "deny");
    assert_eq!(r["rule"], "default");
    assert!(r["policy_version"].as_i64().unwrap() >= 1, "{r}");
    assert!(
        r["request_id"].as_str().is_some_and(|s| !s.is_empty()),
        "{r}"
    );
    assert!(!r["host"].as_str().unwrap().is_empty(), "{r}");
    let time = r["time"].as_str().unwrap();
    assert!(
        time.len() == 20 && time.as_bytes()[10] == b'T' && time.ends_with('Z'),
        "{time}"
    );
    for hash in ["hash", "prev_hash"] {
        assert_eq!(r[hash].as_str().map(str::len), Some(64), "{r}");
    }
    let sd = &login[0].sd;
    assert!(
        sd.starts_with("[mfad@32473 schema=\"mfad.audit.v1\""),
        "{sd}"
    );
    assert!(sd.contains(&format!("user=\"{nemo}\"")), "{sd}");
    assert!(sd.contains(&format!("rhost=\"{TEST_RHOST}\"")), "{sd}");
    let admin = by_user(&got, &admin_target);
    assert_eq!(admin.len(), 1);
    assert_eq!(admin[0].record["type"], "admin");
    assert!(
        got.iter().any(|r| r.record["type"] == "policy_load"),
        "the policy load is an event"
    );
    // The chain runs through the stream: each record links to the one before.
    let mut ordered: Vec<_> = got.iter().map(|r| &r.record).collect();
    ordered.sort_by_key(|r| r["seq"].as_i64());
    for pair in ordered.windows(2) {
        assert_eq!(
            pair[1]["prev_hash"], pair[0]["hash"],
            "{} after {}",
            pair[1], pair[0]
        );
    }

    // The collector dies: records wait in the spill file, then all arrive,
    // in order, once it is back.
    collector.kill();
    let later: Vec<String> = (0..5).map(|_| unique_name("spl")).collect();
    for user in &later {
        unlock(&d, user);
    }
    // The writer thread spills in the background: wait for it.
    let spill = d.dir().join("state/spill.jsonl");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let spilled = std::fs::read_to_string(&spill).unwrap_or_default();
        if later.iter().all(|u| spilled.contains(u.as_str())) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "records for a dead collector are spilled to disk: {spilled}\n{}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    collector.launch();
    let got = collector.wait_until(Duration::from_secs(60), |got| {
        later.iter().all(|u| !by_user(got, u).is_empty())
    });
    let order: Vec<i64> = later
        .iter()
        .map(|u| by_user(&got, u)[0].record["seq"].as_i64().unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    for user in &later {
        assert_eq!(by_user(&got, user).len(), 1, "{user} arrived once");
    }
    let file = std::fs::read_to_string(d.dir().join("audit.jsonl")).unwrap();
    for user in later.iter().chain([&nemo, &admin_target]) {
        assert!(
            file.contains(&format!("\"user\":\"{user}\"")),
            "{user} not in the JSON-lines file"
        );
    }
}

#[test]
fn follow_streams_json_records() {
    let d = TestDaemon::start();
    let mut follower = Command::new(bins::mfactl())
        .arg("--socket")
        .arg(d.socket())
        .args(["--json", "audit", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start mfactl audit --follow");
    let target = unique_name("fol");
    // The follower may not be subscribed yet: try until an event reaches it.
    let stdout = follower.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut record = None;
    for _ in 0..20 {
        unlock(&d, &target);
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(500)) {
            record = Some(serde_json::from_str::<serde_json::Value>(&line).unwrap());
            break;
        }
    }
    let _ = follower.kill();
    let _ = follower.wait();
    let record = record.expect("no record reached mfactl audit --follow");
    assert_eq!(record["schema"], "mfad.audit.v1");
    assert_eq!(record["user"], target.as_str());
    assert_eq!(record["type"], "admin");
    assert_eq!(record["actor"], "admin");
}

#[test]
fn audit_verify_trusts_a_pruned_start_and_names_an_edited_and_a_deleted_row() {
    let mut d = TestDaemon::start();
    let users: Vec<String> = (0..4).map(|_| unique_name("ver")).collect();
    for u in &users {
        unlock(&d, u);
    }
    let out = d.mfactl(["audit", "verify"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("The audit chain is intact."));

    let id_of = |d: &TestDaemon, user: &str| {
        d.audit_rows()
            .iter()
            .find(|r| r["user"] == user)
            .and_then(|r| r["id"].as_i64())
            .unwrap()
    };
    let edited = id_of(&d, &users[0]);
    let deleted = id_of(&d, &users[2]);
    let before_deleted = id_of(&d, &users[1]);
    let after_deleted = id_of(&d, &users[3]);
    // The daemon holds the database exclusively: edit it while it is down.
    let sql = |d: &mut TestDaemon, statements: String| {
        d.stop();
        let out = Command::new("sqlite3")
            .arg(d.dir().join("state/mfad.db"))
            .arg(statements)
            .output()
            .expect("run sqlite3");
        assert!(out.status.success(), "{}", show(&out));
        d.launch();
    };

    // Rows removed from the start, as pruning by age does: what is kept
    // still verifies, from the oldest kept row.
    sql(&mut d, format!("DELETE FROM audit WHERE id < {edited};"));
    let out = d.mfactl(["audit", "verify"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", show(&out));
    assert!(text.contains(&format!("rows {edited} to ")), "{text}");
    assert!(text.contains("The audit chain is intact."), "{text}");

    sql(
        &mut d,
        format!(
            "UPDATE audit SET decision = 'refused' WHERE id = {edited}; \
             DELETE FROM audit WHERE id = {deleted};"
        ),
    );
    let out = d.mfactl(["audit", "verify"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(text.contains("BROKEN (2 problems)"), "{text}");
    assert!(
        text.contains(&format!("row {edited} does not match its hash")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "row {after_deleted} does not follow row {before_deleted}"
        )),
        "{text}"
    );
}

#[test]
fn journald_gets_each_field_of_its_own() {
    // No journald runs here: a datagram socket of the test's own stands at
    // the journal's place and receives what mfad sends.
    let mut d = TestDaemon::prepare(TestConfig {
        audit: "[audit]\njournald = true\njournald_socket = \"DIR/journal.sock\"\n".into(),
        ..TestConfig::default()
    });
    let journal = SyslogReceiver::bind(&d.dir().join("journal.sock"));
    d.launch();
    let target = unique_name("jou");
    unlock(&d, &target);
    let wanted = format!("\nMFAD_USER={target}\n");
    assert!(
        journal.wait_for(Duration::from_secs(5), |m| m.contains(&wanted)),
        "no journal entry for {target}: {:?}",
        journal.messages()
    );
    let entry = journal
        .messages()
        .into_iter()
        .find(|m| m.contains(&wanted))
        .unwrap();
    let fields: Vec<(&str, &str)> = entry.lines().filter_map(|l| l.split_once('=')).collect();
    let get = |name: &str| fields.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
    assert_eq!(get("SYSLOG_IDENTIFIER"), Some("mfad"));
    assert_eq!(get("PRIORITY"), Some("6"));
    assert_eq!(get("MFAD_SCHEMA"), Some("mfad.audit.v1"));
    assert_eq!(get("MFAD_TYPE"), Some("admin"));
    assert_eq!(get("MFAD_DECISION"), Some("done"));
    assert_eq!(get("MFAD_HASH").map(str::len), Some(64));
    assert!(
        get("MESSAGE").is_some_and(|m| m.contains(&target)),
        "{entry}"
    );
}

#[test]
fn what_the_outputs_lose_is_counted_and_audited() {
    // A collector that never answers and a spill file too small for one
    // record: every record is lost, and the count becomes an event.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let d = TestDaemon::with_config(TestConfig {
        audit: format!(
            "[audit.syslog]\nurl = \"tcp://127.0.0.1:{port}\"\n\
             spill_file = \"DIR/state/spill.jsonl\"\nspill_max_bytes = 1\n"
        ),
        ..TestConfig::default()
    });
    unlock(&d, &unique_name("drp"));
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let rows = d.audit_rows();
        let dropped = rows
            .iter()
            .find(|r| r["channel"] == "audit" && r["reason"].as_str().unwrap().contains("dropped"));
        if let Some(row) = dropped {
            assert_eq!(row["decision"], "failed", "{row}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no audit event counts the lost records: {rows:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!d.dir().join("state/spill.jsonl").exists());
}

#[test]
fn self_service_is_the_users_own_and_admin_work_is_the_admins() {
    let d = TestDaemon::with_config(TestConfig {
        audit: "[audit.json_file]\npath = \"DIR/audit.jsonl\"\n".into(),
        ..TestConfig::default()
    });
    let user = TempUser::create();
    let out = d.mfactl_as(user.uid, user.gid, ["email", "clear"]);
    assert!(out.status.success(), "{}", show(&out));
    let out = d.mfactl(["email", "clear", "--user", &user.name]);
    assert!(out.status.success(), "{}", show(&out));
    let path = d.dir().join("audit.jsonl");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let records = loop {
        let records: Vec<serde_json::Value> = std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .filter(|r: &serde_json::Value| r["user"] == user.name.as_str())
            .collect();
        if records.len() >= 2 || std::time::Instant::now() > deadline {
            break records;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let kinds: Vec<(&str, &str, u64)> = records
        .iter()
        .map(|r| {
            (
                r["type"].as_str().unwrap(),
                r["actor"].as_str().unwrap(),
                r["peer_uid"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("self_service", "self", u64::from(user.uid)),
            ("admin", "admin", 0)
        ]
    );
}

#[test]
fn plain_tcp_and_udp_collectors_get_the_records() {
    for (listener, scheme) in [(Listener::Tcp, "tcp"), (Listener::Udp, "udp")] {
        let collector = Collector::start(listener);
        let d = TestDaemon::with_config(TestConfig {
            audit: format!(
                "[audit.syslog]\nurl = \"{scheme}://127.0.0.1:{}\"\n\
                 spill_file = \"DIR/state/spill.jsonl\"\n",
                collector.port
            ),
            ..TestConfig::default()
        });
        let target = unique_name("pln");
        // UDP cannot tell whether the collector listens yet: an event is
        // repeated until one arrives.
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        let got = loop {
            unlock(&d, &target);
            std::thread::sleep(Duration::from_millis(200));
            let got = collector.received();
            if !by_user(&got, &target).is_empty() {
                break got;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{scheme}: nothing for {target} reached the collector\n{}",
                d.log_text()
            );
        };
        let r = by_user(&got, &target)[0];
        assert_eq!(r.record["type"], "admin", "{scheme}");
        assert_eq!(r.record["schema"], "mfad.audit.v1", "{scheme}");
        assert!(
            r.sd.contains(&format!("user=\"{target}\"")),
            "{scheme}: {}",
            r.sd
        );
    }
}
