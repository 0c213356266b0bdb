//! Never lose the key silently: the key is created only for a database that
//! holds nothing under a key, and a key that is not the one the database's
//! secrets were sealed with is refused, with what to restore. Without this
//! a lost key meant a fresh one over a database of useless secrets: every
//! enrolled user refused with "internal error" while still shown enrolled.

use crate::backend;
use crate::config::Config;
use crate::store::crypto::{KEY_LEN, Vault, constant_time_eq};
use crate::store::{KeyState, Store, StoreError};
use crate::{StartError, clock, files};
use zeroize::Zeroizing;

/// A new key for a missing one, unless the database (`state`, `None`
/// without one) holds something sealed or keyed under the old one.
pub(crate) fn create_unless_needed(
    config: &Config,
    state: Option<&KeyState>,
) -> Result<Zeroizing<[u8; KEY_LEN]>, StartError> {
    match state {
        // A fleet has one key: once a host recorded it, every other host
        // gets a copy of it, never a key of its own.
        Some(state) if state.check.is_some() && fleet(config) => Err(StartError::FleetKeyMissing {
            key: config.key_file.display().to_string(),
            database: backend::location(config),
        }),
        Some(state) if state.keyed_rows > 0 => Err(missing(config, state)),
        _ => Ok(files::create_key(&config.key_file)?),
    }
}

/// Refuses a key that does not match the database's check value; records
/// the value where there is none yet, or where nothing was stored under the
/// old key (a key deleted before anyone enrolled).
pub(crate) fn verify(config: &Config, store: &dyn Store, vault: &Vault) -> Result<(), StartError> {
    let value = check_value(vault)?;
    let state = store.key_state().map_err(|e| db_error(config, e))?;
    match &state.check {
        Some(stored) if constant_time_eq(stored, &value) => Ok(()),
        Some(_) if state.keyed_rows > 0 => Err(mismatch(config)),
        _ => {
            if state.check.is_some() {
                log::warn!(
                    "the key {} is new to the database, which holds nothing under the old one; recording it",
                    config.key_file.display()
                );
            }
            store
                .record_key_check(&value, clock::now())
                .map_err(|e| db_error(config, e))
        }
    }
}

/// `--init`'s part: reads the key (checking it), or creates a missing one
/// if nothing needs the old one. The database is only read (a running
/// daemon may hold it).
pub(crate) fn init(config: &Config) -> Result<(), StartError> {
    if files::read_key_if_present(&config.key_file)?.is_none() {
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
    let Some(found) = files::read_key_if_present(&config.key_file)? else {
        return match state {
            Some(state) if state.keyed_rows > 0 => Err(missing(config, &state)),
            _ => Ok(format!("key {key}: absent, created at the first start")),
        };
    };
    let vault = Vault::new(&found).map_err(|e| StartError::Dummy(e.to_string()))?;
    let value = check_value(&vault)?;
    Ok(match state {
        None => format!("key {key}: present; no database yet"),
        Some(KeyState {
            check: Some(stored),
            ..
        }) if constant_time_eq(&stored, &value) => {
            format!("key {key}: matches the database")
        }
        Some(state) if state.check.is_some() && state.keyed_rows > 0 => {
            return Err(mismatch(config));
        }
        Some(_) => format!("key {key}: present; the database records it at the next start"),
    })
}

fn fleet(config: &Config) -> bool {
    matches!(config.store, crate::config::StoreConfig::Postgres(_))
}

fn check_value(vault: &Vault) -> Result<[u8; 32], StartError> {
    vault
        .check_value()
        .map_err(|e| StartError::Dummy(e.to_string()))
}

fn missing(config: &Config, state: &KeyState) -> StartError {
    StartError::KeyMissing {
        key: config.key_file.display().to_string(),
        database: backend::location(config),
        rows: state.keyed_rows,
    }
}

fn mismatch(config: &Config) -> StartError {
    StartError::KeyMismatch {
        key: config.key_file.display().to_string(),
        database: backend::location(config),
    }
}

fn db_error(config: &Config, source: StoreError) -> StartError {
    backend::error(config, source)
}
