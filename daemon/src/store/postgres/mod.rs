//! PostgreSQL storage: one database for a fleet of servers, so a user
//! enrolls once, a code is good once across the fleet, and locks, trusted
//! devices, contacts and the audit log are shared.
//!
//! The store traits are synchronous (the login core calls them between
//! answers); each call here runs its statements on a small runtime of its
//! own, with a pooled connection, under one deadline: a hung database costs
//! a login at most `statement_timeout_ms`, then an error, never a wait.
//!
//! Once-only rules hold across hosts through row locks: an accepted TOTP
//! step, a used backup code, a consumed sent code or ticket is one UPDATE or
//! DELETE whose WHERE clause the loser of a race re-checks after the winner
//! commits (READ COMMITTED), so exactly one sees its row change.

mod accounts;
mod audit;
mod codes;
mod connect;
mod factors;
mod fleet;
mod keys;
pub mod listen;
mod migrate;
mod pipeline;
mod sessions;

pub use connect::ConnectError;
pub use migrate::{latest as latest_migration, migrate};

use crate::config::PostgresConfig;
use crate::store::StoreError;
use deadpool_postgres::Pool;
use std::future::Future;
use std::time::Duration;

pub struct PgStore {
    pool: Pool,
    runtime: tokio::runtime::Runtime,
    /// This server's name: audit rows and sessions carry it.
    host: String,
    deadline: Duration,
}

impl PgStore {
    /// Connects and checks that the schema is at this build's version. Run
    /// with `migrate = true` (`mfad --migrate`) to bring it there first.
    pub fn open(config: &PostgresConfig, host: &str, migrate: bool) -> Result<Self, StoreError> {
        // The thread of a store call drives its connection itself: no
        // hand-over to another thread and back at each round trip.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Thread(e.to_string()))?;
        let pool = connect::pool(config, &runtime)?;
        let store = Self {
            pool,
            runtime,
            host: host.to_owned(),
            deadline: config.statement_timeout,
        };
        store.block(async {
            let mut client = store.client().await?;
            if migrate {
                migrate::migrate(&mut client).await
            } else {
                migrate::check(&client).await
            }
        })?;
        Ok(store)
    }

    /// Runs `f` to completion on the store's runtime, within the deadline.
    /// From a worker of the daemon's runtime, the worker's other tasks move
    /// to another thread meanwhile.
    fn block<T>(&self, f: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
        let run = || {
            self.runtime.block_on(async {
                tokio::time::timeout(self.deadline, f)
                    .await
                    .unwrap_or(Err(StoreError::Timeout(self.deadline)))
            })
        };
        crate::blocking::wait(run)
    }

    /// Runs `f` in a transaction on a pooled connection, within the
    /// deadline; commits when `f` returns `Ok((value, true))`, rolls back
    /// when it returns `Ok((value, false))` or an error.
    fn write<T>(
        &self,
        f: impl for<'t> AsyncFnOnce(
            &'t deadpool_postgres::Transaction<'t>,
        ) -> Result<(T, bool), StoreError>,
    ) -> Result<T, StoreError> {
        self.block(async {
            let mut c = self.client().await?;
            let tx = c.transaction().await?;
            let (value, commit) = f(&tx).await?;
            if commit {
                tx.commit().await?;
            }
            Ok(value)
        })
    }

    async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        // The connections' tasks run only inside a store call on this
        // runtime, so one the server closed while idle (a restart, a
        // failover) is noticed only once its task runs: let the I/O driver
        // report and the tasks run first (a yield to the driver, then one
        // to the woken tasks), and the pool hands out no dead connection.
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
        self.pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(e) => StoreError::Postgres(e),
            e => StoreError::Pool(e.to_string()),
        })
    }
}

/// What went wrong, with the server's own words when it said something
/// (tokio-postgres alone says only "db error").
pub fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({}: {})", db.message(), db.severity(), db.code().code()),
        None => match std::error::Error::source(e) {
            Some(source) => format!("{e}: {source}"),
            None => e.to_string(),
        },
    }
}

/// Whether `e` says the database could not serve the call, rather than that
/// the call was wrong: the connection failed or closed, or the server gave
/// up on it (its statement or lock timeout, a cancel, a shutdown, a
/// failover that left it read-only, no room for another connection). A
/// client-side error of another kind (a value that would not convert, an
/// unexpected reply) is a fault, not an outage.
pub fn unavailable(e: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    const GAVE_UP: [SqlState; 7] = [
        SqlState::QUERY_CANCELED,
        SqlState::LOCK_NOT_AVAILABLE,
        SqlState::ADMIN_SHUTDOWN,
        SqlState::CRASH_SHUTDOWN,
        SqlState::CANNOT_CONNECT_NOW,
        SqlState::TOO_MANY_CONNECTIONS,
        SqlState::READ_ONLY_SQL_TRANSACTION,
    ];
    match e.code() {
        // Class 08: connection exceptions.
        Some(code) => GAVE_UP.contains(code) || code.code().starts_with("08"),
        None => {
            e.is_closed()
                || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
                // tokio-postgres's connect timeout has no source; should its
                // wording change, the error counts as a fault: fail closed.
                || e.to_string() == "timeout waiting for server"
        }
    }
}

/// A stored u32 (PostgreSQL has no unsigned types).
fn u32_of(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}
