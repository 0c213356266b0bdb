//! Never lose the key silently: the key is created only for a database that
//! holds nothing under a key, and a key that is not the one the database's
//! secrets were sealed with is refused, with what to restore. Without this
//! a lost key meant a fresh one over a database of useless secrets: every
//! enrolled user refused with "internal error" while still shown enrolled.
//!
//! The key file is a key ring (see `files::read_ring_if_present`): the
//! database records a check value per key id, and seals with the newest
//! key it records. A key in the file that the database does not record yet
//! is staged by `mfactl key add`: held, not used until `mfactl key rotate`.

use crate::backend;
use crate::config::Config;
use crate::store::crypto::{KeyRing, check_values, constant_time_eq};
use crate::store::{KeyState, Store, StoreError};
use crate::{StartError, clock, files};
use std::collections::BTreeMap;

/// What the database's check values say of a key ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Every key the database records is in the ring, and the same:
    /// `active`, the newest of them, seals.
    Matches { active: u32 },
    /// The database records no key, or holds nothing under the keys it
    /// records: the ring's check values are recorded (`replace`: over the
    /// old ones), and its newest key seals.
    Record { replace: bool },
    /// The ring's key `id` is not the one the database recorded.
    Mismatch { id: u32 },
    /// The database records key `id`, which the ring lacks.
    Behind { id: u32 },
}

/// Judges a ring (its check values by key id) against the database.
pub(crate) fn judge(ring: &BTreeMap<u32, [u8; 32]>, state: &KeyState) -> Verdict {
    let Some(&newest) = state.checks.keys().next_back() else {
        return Verdict::Record { replace: false };
    };
    let wrong = state.checks.iter().find_map(|(id, stored)| {
        let ours = ring.get(id)?;
        (!constant_time_eq(ours, stored)).then_some(*id)
    });
    let missing = state
        .checks
        .keys()
        .filter(|id| !ring.contains_key(id))
        .max()
        .copied();
    match (wrong, missing) {
        (None, None) => Verdict::Matches { active: newest },
        // An old copy of the fleet's key file: copying the new one fixes
        // it, and recording this one would hide the fleet's newest key.
        (None, Some(id)) => Verdict::Behind { id },
        _ if state.keyed_rows == 0 => Verdict::Record { replace: true },
        (Some(id), _) => Verdict::Mismatch { id },
    }
}

/// A new key for a missing one, unless the database (`state`, `None`
/// without one) holds something sealed or keyed under the old one.
pub(crate) fn create_unless_needed(
    config: &Config,
    state: Option<&KeyState>,
) -> Result<KeyRing, StartError> {
    match state {
        // A fleet has one key ring: once a host recorded it, every other
        // host gets a copy of it, never a key of its own.
        Some(state) if !state.checks.is_empty() && fleet(config) => {
            Err(StartError::FleetKeyMissing {
                key: config.key_file.display().to_string(),
                database: backend::location(config),
            })
        }
        Some(state) if state.keyed_rows > 0 => Err(missing(config, state)),
        _ => Ok(files::create_key(&config.key_file)?),
    }
}

/// Refuses a ring that does not match the database's check values; records
/// them where there are none yet, or where nothing was stored under the
/// old keys (a key deleted before anyone enrolled). Returns the id of the
/// key that seals.
pub(crate) fn verify(
    config: &Config,
    store: &dyn Store,
    ring: &KeyRing,
) -> Result<u32, StartError> {
    let checks = check_values(ring)?;
    let state = store.key_state().map_err(|e| db_error(config, e))?;
    match judge(&checks, &state) {
        Verdict::Matches { active } => Ok(active),
        Verdict::Mismatch { id } => Err(mismatch(config, id)),
        Verdict::Behind { id } => Err(behind(config, id)),
        Verdict::Record { replace } => {
            if replace {
                log::warn!(
                    "the key file {} is new to the database, which holds nothing under the old keys; recording it",
                    config.key_file.display()
                );
            }
            let all: Vec<(u32, [u8; 32])> = checks.into_iter().collect();
            store
                .record_key_checks(&all, replace, clock::now())
                .map_err(|e| db_error(config, e))?;
            Ok(ring.newest())
        }
    }
}

/// `--init`'s part: reads the key (checking it), or creates a missing one
/// if nothing needs the old one. The database is only read (a running
/// daemon may hold it).
pub(crate) fn init(config: &Config) -> Result<(), StartError> {
    if files::read_ring_if_present(&config.key_file)?.is_none() {
        let state = backend::peek(config).map_err(|e| db_error(config, e))?;
        create_unless_needed(config, state.as_ref())?;
    }
    Ok(())
}

/// `--check-config`'s line about the key, or the error the daemon would
/// refuse to start with.
pub fn describe(config: &Config) -> Result<String, StartError> {
    let key = config.key_file.display();
    let state = match backend::peek(config) {
        Ok(state) => state,
        Err(StoreError::Sql(rusqlite::Error::SqliteFailure(e, _)))
            if matches!(
                e.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            return Ok(format!(
                "key {key}: not compared with the database, which a running mfad holds (it checked the key when it started)"
            ));
        }
        Err(e) => return Err(db_error(config, e)),
    };
    let Some(ring) = files::read_ring_if_present(&config.key_file)? else {
        return match state {
            Some(state) if state.keyed_rows > 0 => Err(missing(config, &state)),
            _ => Ok(format!("key {key}: absent, created at the first start")),
        };
    };
    let keys = match ring.newest() {
        1 => "present".to_owned(),
        n => format!("{n} keys"),
    };
    let Some(state) = state else {
        return Ok(format!("key {key}: {keys}; no database yet"));
    };
    Ok(match judge(&check_values(&ring)?, &state) {
        Verdict::Matches { active } if active == ring.newest() && active == 1 => {
            format!("key {key}: matches the database")
        }
        Verdict::Matches { active } => format!(
            "key {key}: {keys}, matching the database; key {active} seals{}",
            match ring.newest() > active {
                true => format!(", key {} is staged for `mfactl key rotate`", ring.newest()),
                false => String::new(),
            }
        ),
        Verdict::Mismatch { id } => return Err(mismatch(config, id)),
        Verdict::Behind { id } => return Err(behind(config, id)),
        Verdict::Record { .. } => {
            format!("key {key}: {keys}; the database records it at the next start")
        }
    })
}

fn fleet(config: &Config) -> bool {
    matches!(config.store, crate::config::StoreConfig::Postgres(_))
}

fn missing(config: &Config, state: &KeyState) -> StartError {
    StartError::KeyMissing {
        key: config.key_file.display().to_string(),
        database: backend::location(config),
        rows: state.keyed_rows,
    }
}

fn mismatch(config: &Config, id: u32) -> StartError {
    StartError::KeyMismatch {
        key: config.key_file.display().to_string(),
        database: backend::location(config),
        id,
    }
}

fn behind(config: &Config, id: u32) -> StartError {
    StartError::KeyRingBehind {
        key: config.key_file.display().to_string(),
        database: backend::location(config),
        id,
    }
}

fn db_error(config: &Config, source: StoreError) -> StartError {
    backend::error(config, source)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(checks: &[(u32, u8)], keyed_rows: u64) -> KeyState {
        KeyState {
            checks: checks.iter().map(|&(id, v)| (id, vec![v; 32])).collect(),
            keyed_rows,
        }
    }

    #[test]
    fn a_ring_is_judged_by_every_key_the_database_records() {
        let ring: BTreeMap<u32, [u8; 32]> = [(1, [1; 32]), (2, [2; 32])].into();
        let cases = [
            (state(&[], 0), Verdict::Record { replace: false }),
            (state(&[(1, 1)], 5), Verdict::Matches { active: 1 }),
            (state(&[(1, 1), (2, 2)], 5), Verdict::Matches { active: 2 }),
            (state(&[(1, 9)], 5), Verdict::Mismatch { id: 1 }),
            (state(&[(1, 1), (2, 9)], 5), Verdict::Mismatch { id: 2 }),
            (
                state(&[(1, 1), (2, 2), (3, 3)], 5),
                Verdict::Behind { id: 3 },
            ),
            // Nothing stored under the old keys: a new ring replaces them.
            (state(&[(1, 9)], 0), Verdict::Record { replace: true }),
            (
                state(&[(1, 9), (3, 3)], 0),
                Verdict::Record { replace: true },
            ),
            // Even with nothing sealed, an older key file is not the fleet's.
            (state(&[(1, 1), (3, 3)], 0), Verdict::Behind { id: 3 }),
        ];
        for (state, verdict) in cases {
            assert_eq!(judge(&ring, &state), verdict, "{state:?}");
        }
    }
}
