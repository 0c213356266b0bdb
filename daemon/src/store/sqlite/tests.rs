//! The start-up fence and the database lock, on a real database file.

use super::*;
use crate::audit::{Decision, Event};
use crate::factor::totp::TotpAlgorithm;
use crate::store::crypto::Sealed;
use crate::store::{
    Accounts, Counter, History, NewTotp, Succeeded, TakeStep, TotpParams, Totps, Visit,
};

const PARAMS: TotpParams = TotpParams {
    algorithm: TotpAlgorithm::SHA1,
    digits: 6,
    period: 30,
};
const COUNTER: Counter<'static> = Counter {
    factor: "totp",
    source: "192.0.2.1",
};
/// A start time in step 1000 (30-second steps).
const START: i64 = 30_000 + 5;

/// Takes `step` for alice at `now`.
fn take(
    store: &SqliteStore,
    checked: Option<&Sealed>,
    step: i64,
    now: i64,
) -> Result<bool, StoreError> {
    let take = TakeStep {
        user: "alice",
        checked,
        counter: COUNTER,
        step,
        now,
    };
    store.accept_totp_step(&take, &event(), None)
}

fn event() -> Event {
    Event::admin("alice", "test", Decision::Allow, 0, START)
}

/// A database in `dir` with alice enrolled, her last step 900.
fn enrolled(dir: &Path) -> SqliteStore {
    // Everything the daemon creates is private (its main sets this umask).
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let store = SqliteStore::open(&dir.join("mfad.db")).expect("open");
    store
        .enroll_totp(
            "alice",
            &NewTotp {
                sealed: &crate::store::crypto::Sealed {
                    key: 1,
                    bytes: vec![1, 2, 3],
                },
                params: PARAMS,
                step: 900,
                now: START,
            },
            None,
            &event(),
        )
        .expect("enroll");
    store
}

fn reopen(dir: &Path) -> SqliteStore {
    SqliteStore::open(&dir.join("mfad.db")).expect("reopen")
}

#[test]
fn after_an_unclean_stop_no_step_the_old_run_could_have_accepted_is_taken() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The old run stops without close_clean: a crash, or a power loss.
    drop(enrolled(dir.path()));
    let store = reopen(dir.path());
    assert!(store.fence_after_unclean_stop(START, 1));
    // Step 1000 is the start's, 1001 the last one window 1 reaches from it.
    for step in [999, 1000, 1001] {
        let taken = take(&store, None, step, START);
        assert!(!taken.expect("accept"), "step {step} is behind the fence");
    }
    assert!(take(&store, None, 1002, START + 60).expect("accept"));
}

#[test]
fn after_a_clean_stop_there_is_no_fence() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = enrolled(dir.path());
    store.close_clean().expect("close");
    drop(store);
    let store = reopen(dir.path());
    assert!(!store.fence_after_unclean_stop(START, 1));
    assert!(take(&store, None, 1000, START).expect("accept"));
    // Each step once, fence or not.
    assert!(!take(&store, None, 1000, START).expect("accept"));
}

#[test]
fn a_second_store_on_the_same_database_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _first = enrolled(dir.path());
    match SqliteStore::open(&dir.path().join("mfad.db")) {
        Err(StoreError::InUse(path)) => assert_eq!(path, dir.path().join("mfad.db")),
        Err(e) => panic!("expected InUse, got {e}"),
        Ok(_) => panic!("a second store opened the same database"),
    }
}

/// The login's success goes with the step when asked, and only with it.
#[test]
fn a_step_taken_with_the_logins_success_writes_both_or_neither() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = enrolled(dir.path());
    let visit = Visit {
        rhost: "192.0.2.1".to_owned(),
        network: "192.0.2.0/24".to_owned(),
        country: None,
    };
    let what = Succeeded {
        now: START,
        visit: Some(&visit),
        ticket: None,
    };
    let step = |step| TakeStep {
        user: "alice",
        checked: None,
        counter: COUNTER,
        step,
        now: START,
    };
    assert!(
        store
            .accept_totp_step(&step(1000), &event(), Some(&what))
            .expect("accept")
    );
    let last = store.last_login("alice").expect("read");
    assert_eq!(last, Some(("192.0.2.1".to_owned(), None)));
    // A step not taken writes nothing of the login.
    let elsewhere = Visit {
        rhost: "198.51.100.1".to_owned(),
        network: "198.51.100.0/24".to_owned(),
        country: None,
    };
    let what = Succeeded {
        visit: Some(&elsewhere),
        ..what
    };
    assert!(
        !store
            .accept_totp_step(&step(1000), &event(), Some(&what))
            .expect("accept")
    );
    assert_eq!(store.last_login("alice").expect("read"), last);
}

#[test]
fn reads_see_the_last_commit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = enrolled(dir.path());
    assert!(take(&store, None, 1000, START).expect("accept"));
    let record = store.totp("alice").expect("read").expect("enrolled");
    assert_eq!(record.last_step, 1000);
}

#[test]
fn a_step_is_taken_only_while_the_checked_secret_is_still_the_users() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = enrolled(dir.path());
    let sealed = |key, bytes: &[u8]| crate::store::crypto::Sealed {
        key,
        bytes: bytes.to_vec(),
    };
    let last_step = || {
        store
            .totp("alice")
            .expect("read")
            .expect("enrolled")
            .last_step
    };
    let take_checked = |checked: &Sealed| take(&store, Some(checked), 1000, START);
    // Checked against a secret replaced (other bytes) or re-sealed (other
    // key) since the login read it: no step is taken.
    for other in [sealed(1, &[9, 9, 9]), sealed(2, &[1, 2, 3])] {
        assert!(!take_checked(&other).expect("accept"), "{other:?}");
    }
    assert_eq!(last_step(), 900);
    assert!(take_checked(&sealed(1, &[1, 2, 3])).expect("accept"));
    assert_eq!(last_step(), 1000);
}
