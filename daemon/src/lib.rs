//! mfad, the daemon: policy, factors, store, audit. `main.rs` is a thin
//! shell around [`run`], so tests can drive the same code.

mod admin;
pub mod audit;
mod auth;
pub mod authz;
mod clock;
pub mod config;
pub mod factor;
pub mod files;
mod io;
mod limits;
pub mod logging;
pub mod peer;
pub mod policy;
mod server;
pub mod store;
mod validate;

use audit::Event;
use config::Config;
use policy::Policy;
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, RwLock};
use store::crypto::{Purpose, Vault};
use store::{Store, TotpParams};
use thiserror::Error;
use tokio::net::UnixListener;
use tokio::signal::unix::{SignalKind, signal};

#[derive(Debug, Error)]
pub enum StartError {
    #[error("key: {0}")]
    Key(#[from] files::FileError),
    #[error("database {path}: {source}")]
    Store {
        path: String,
        source: store::StoreError,
    },
    #[error(transparent)]
    Policy(#[from] policy::PolicyError),
    #[error("socket {path}: {message}")]
    Socket { path: String, message: String },
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot prepare the stand-in secret: {0}")]
    Dummy(String),
}

/// A stand-in TOTP enrollment, checked for unknown users so that they cost
/// the same work as a real wrong code.
pub(crate) struct Dummy {
    pub sealed: Vec<u8>,
    pub params: TotpParams,
}

pub struct Daemon {
    pub(crate) config: Config,
    pub(crate) store: Store,
    pub(crate) vault: Vault,
    policy: RwLock<Arc<Policy>>,
    pub(crate) dummy: Dummy,
    pub(crate) limits: Arc<limits::Limits>,
}

impl Daemon {
    pub fn open(config: Config) -> Result<Self, StartError> {
        let key = files::load_or_create_key(&config.key_file)?;
        let vault = Vault::new(&key);
        drop(key);
        let store = Store::open(&config.database).map_err(|source| StartError::Store {
            path: config.database.display().to_string(),
            source,
        })?;
        let policy = Policy::load(&config.policy_file)?;
        let params = TotpParams {
            algorithm: config.totp.algorithm,
            digits: config.totp.digits,
            period: config.totp.period,
        };
        let secret = factor::totp::new_secret().map_err(|e| StartError::Dummy(e.to_string()))?;
        let sealed = vault
            .seal("", Purpose::TotpSecret, secret.as_slice())
            .map_err(|e| StartError::Dummy(e.to_string()))?;
        let limits = limits::Limits::new(
            config.limits.max_connections,
            config.limits.per_uid_connections,
        );
        Ok(Self {
            config,
            store,
            vault,
            policy: RwLock::new(Arc::new(policy)),
            dummy: Dummy { sealed, params },
            limits,
        })
    }

    pub(crate) fn policy(&self) -> Arc<Policy> {
        Arc::clone(&self.policy.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Loads the policy file again. An invalid file never replaces a valid one.
    pub fn reload_policy(&self) {
        match Policy::load(&self.config.policy_file) {
            Ok(policy) => {
                *self.policy.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(policy);
                log::info!("policy reloaded from {}", self.config.policy_file.display());
            }
            Err(e) => log::error!("{e}; keeping the policy in force"),
        }
    }

    /// Writes an audit event to the database and to syslog. A database
    /// failure is logged; the decision it records stands.
    pub(crate) fn record(&self, event: &Event) {
        if let Err(e) = self.store.audit(event) {
            log::error!("cannot write an audit row: {e}");
        }
        event.log();
    }
}

/// Binds the socket: world-connectable, since access is decided per request
/// from SO_PEERCRED. A live daemon already on the path is never displaced.
fn bind(path: &Path) -> Result<std::os::unix::net::UnixListener, StartError> {
    let fail = |message: String| StartError::Socket {
        path: path.display().to_string(),
        message,
    };
    if let Some(parent) = path.parent().filter(|p| !p.exists()) {
        std::fs::create_dir_all(parent).map_err(|e| fail(e.to_string()))?;
        std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| fail(e.to_string()))?;
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => return Err(fail("another mfad is already listening there".to_owned())),
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
            std::fs::remove_file(path)
                .map_err(|e| fail(format!("cannot remove the stale socket: {e}")))?;
        }
        Err(_) => {}
    }
    let listener = std::os::unix::net::UnixListener::bind(path).map_err(|e| fail(e.to_string()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
        .map_err(|e| fail(e.to_string()))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| fail(e.to_string()))?;
    Ok(listener)
}

/// Runs the daemon until SIGTERM or SIGINT. SIGHUP reloads the policy.
pub fn run(config: Config) -> Result<(), StartError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.worker_threads)
        .enable_all()
        .build()
        .map_err(StartError::Runtime)?;
    // The socket first: a second mfad must fail on "already listening", not
    // on the database lock the first one holds.
    let socket = config.socket.clone();
    let std_listener = bind(&socket)?;
    let daemon = match Daemon::open(config) {
        Ok(daemon) => Arc::new(daemon),
        Err(e) => {
            let _ = std::fs::remove_file(&socket);
            return Err(e);
        }
    };
    let result = runtime.block_on(async {
        let listener = UnixListener::from_std(std_listener).map_err(|e| StartError::Socket {
            path: socket.display().to_string(),
            message: e.to_string(),
        })?;
        let mut term = signal(SignalKind::terminate()).map_err(StartError::Runtime)?;
        let mut int = signal(SignalKind::interrupt()).map_err(StartError::Runtime)?;
        let mut hup = signal(SignalKind::hangup()).map_err(StartError::Runtime)?;
        log::info!(
            "mfad {} listening on {}",
            env!("CARGO_PKG_VERSION"),
            socket.display()
        );
        let server = tokio::spawn(server::serve(listener, Arc::clone(&daemon)));
        let maintenance = tokio::spawn(purge_periodically(Arc::clone(&daemon)));
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => daemon.reload_policy(),
            }
        }
        server.abort();
        maintenance.abort();
        Ok(())
    });
    let _ = std::fs::remove_file(&socket);
    log::info!("mfad stopped");
    result
}

async fn purge_periodically(d: Arc<Daemon>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
    loop {
        tick.tick().await;
        match d.store.purge(clock::now(), &d.config.lockout) {
            Ok(0) => {}
            Ok(n) => log::debug!("purged {n} expired rows"),
            Err(e) => log::error!("purge failed: {e}"),
        }
    }
}
