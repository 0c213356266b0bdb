//! Which store this daemon uses, from `[store]`: the one place the
//! configuration meets the store backends (which take no configuration
//! types of their own).

use crate::config::{Config, StoreConfig};
use crate::store::{KeyState, PgStore, SqliteStore, Store, StoreError, peek_key_state};
use crate::{StartError, clock};
use std::sync::Arc;

/// How messages name the store: the database file, or the PostgreSQL URL
/// (which holds no password).
pub fn location(config: &Config) -> String {
    match &config.store {
        StoreConfig::Sqlite => config.database.display().to_string(),
        StoreConfig::Postgres(p) => format!("PostgreSQL {}", p.url),
    }
}

pub fn error(config: &Config, source: StoreError) -> StartError {
    StartError::Store {
        path: location(config),
        source,
    }
}

/// Opens the store for serving.
pub fn open(config: &Config) -> Result<Arc<dyn Store>, StartError> {
    match &config.store {
        StoreConfig::Sqlite => {
            let sqlite = SqliteStore::open(&config.database).map_err(|e| error(config, e))?;
            if sqlite.fence_after_unclean_stop(clock::now(), config.totp.widest_window()) {
                log::warn!(
                    "the last run of mfad did not stop cleanly: TOTP codes valid now are refused \
                     for up to {} s, in case a lost write had accepted one (see README, Security model)",
                    config.totp.longest_validity()
                );
            }
            Ok(Arc::new(sqlite))
        }
        StoreConfig::Postgres(p) => Ok(Arc::new(
            PgStore::open(p, &config.host_name, false).map_err(|e| error(config, e))?,
        )),
    }
}

/// What the store holds under the key, without changing anything (safe
/// while a daemon runs); `None` when there is no SQLite database yet.
pub fn peek(config: &Config) -> Result<Option<KeyState>, StoreError> {
    use crate::store::Keys;
    match &config.store {
        StoreConfig::Sqlite => peek_key_state(&config.database),
        StoreConfig::Postgres(p) => PgStore::open(p, &config.host_name, false)?
            .key_state()
            .map(Some),
    }
}

/// `mfad --migrate`: brings the PostgreSQL schema to this build's version.
pub fn migrate(config: &Config) -> Result<String, StartError> {
    match &config.store {
        StoreConfig::Sqlite => Ok(format!(
            "{}: SQLite databases migrate themselves when mfad starts; nothing to do",
            location(config)
        )),
        StoreConfig::Postgres(p) => {
            PgStore::open(p, &config.host_name, true).map_err(|e| error(config, e))?;
            Ok(format!(
                "{}: schema at version {}",
                location(config),
                crate::store::postgres::latest_migration()
            ))
        }
    }
}
