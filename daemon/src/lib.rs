//! mfad, the daemon: policy, factors, store, audit. `main.rs` is a thin
//! shell around [`run`], so tests can drive the same code.

mod admin;
pub mod args;
pub mod audit;
pub mod authz;
pub mod backend;
mod blocking;
mod clock;
pub mod config;
mod contacts;
pub mod delivery;
pub mod device;
pub mod directory;
mod explain;
pub mod factor;
pub mod files;
pub mod fleet;
pub mod geo;
mod history;
mod import;
mod io;
mod keyring;
pub mod keys;
mod limits;
pub mod logging;
mod login;
mod notify;
pub mod peer;
pub use mfad_policy as policy;
pub mod procs;
mod quiet_log;
mod reevaluate;
mod risk;
mod router;
mod selfservice;
mod server;
mod sessions;
pub mod store;
mod systemd;
mod validate;
mod wire;

use audit::Event;
use config::Config;
use nix::sys::stat::{Mode, umask};
use policy::{Policy, PolicyError};
use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::sync::{Arc, RwLock};
use store::crypto::{Purpose, Vault};
use store::{Store, TotpParams};
use thiserror::Error;
use tokio::net::UnixListener;
use tokio::signal::unix::{SignalKind, signal};

#[derive(Debug, Error)]
pub enum StartError {
    #[error(transparent)]
    File(#[from] files::FileError),
    #[error("store {path}: {source}")]
    Store {
        path: String,
        source: store::StoreError,
    },
    #[error(transparent)]
    Policy(#[from] policy::PolicyError),
    #[error("socket {path}: {message}")]
    Socket { path: String, message: String },
    #[error(
        "the key {key} is missing, but the database {database} holds {rows} secrets sealed or keyed with it. \
         Restore the key from your backup to {key} (root's, mode 0400): mfad never creates a new key \
         over them, since every enrolled user would then be refused. To start over instead, move the \
         database away (every user then enrolls again)"
    )]
    KeyMissing {
        key: String,
        database: String,
        rows: u64,
    },
    #[error(
        "the key {key} is missing, and the fleet's database {database} already records the fleet's key. \
         Copy the key file from another host of the fleet to {key} (root's, mode 0400): every host of a \
         fleet holds the same key, and a host never creates one of its own once the fleet has one"
    )]
    FleetKeyMissing { key: String, database: String },
    #[error(
        "the key {key} is not the key the database {database} was written with (its key {id} differs). \
         Restore the right key file from your backup to {key} (or the database that belongs to this \
         key): with this one every enrolled user would be refused"
    )]
    KeyMismatch {
        key: String,
        database: String,
        id: u32,
    },
    #[error(
        "the key file {key} lacks key {id}, which the database {database} records: secrets there are \
         sealed with it since a `mfactl key rotate`. Copy the key file from the host that rotated to \
         {key} (root's, mode 0400) and start mfad again; never create a key of this host's own"
    )]
    KeyRingBehind {
        key: String,
        database: String,
        id: u32,
    },
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot prepare the stand-in secret: {0}")]
    Dummy(String),
    #[error(
        "cannot use the key file's keys: {0}. Restore the key file from backup, or run `mfad --check-config` to see what it holds"
    )]
    Keys(#[from] store::crypto::CryptoError),
    #[error(transparent)]
    Delivery(#[from] delivery::SetupError),
    #[error("`geoip_database`: {0}")]
    Geo(String),
    #[error("[directory] {0}")]
    Directory(#[from] directory::SetupError),
    #[error(transparent)]
    Audit(#[from] audit::outputs::OutputError),
}

/// A stand-in TOTP enrollment, checked for unknown users so that they cost
/// the same work as a real wrong code.
pub(crate) struct Dummy {
    pub sealed: store::crypto::Sealed,
    pub params: TotpParams,
}

/// The policy in force and its stored version number.
pub(crate) struct LoadedPolicy {
    pub policy: Policy,
    pub version: i64,
}

/// What a policy reload did.
pub struct Reload {
    /// The version in force afterwards.
    pub version: i64,
    pub changed: bool,
    /// The file was not loaded; `diagnostics` say why.
    pub rejected: bool,
    /// Warnings about a loaded file, or the errors of a rejected one.
    pub diagnostics: Vec<String>,
}

impl Reload {
    fn rejected(version: i64, diagnostics: Vec<String>) -> Self {
        Self {
            version,
            changed: false,
            rejected: true,
            diagnostics,
        }
    }
}

pub struct Daemon {
    pub(crate) config: Config,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) vault: Vault,
    policy: RwLock<Arc<LoadedPolicy>>,
    pub(crate) dummy: Dummy,
    pub(crate) limits: Arc<limits::Limits>,
    pub(crate) delivery: delivery::Delivery,
    /// How long real sends of codes take, for decoys to match.
    pub(crate) latencies: login::latency::Latencies,
    geo: Option<geo::Geo>,
    /// Contacts and groups from LDAP / AD, when `[directory]` is set.
    pub(crate) directory: Option<directory::Directory>,
    /// This boot's id: sessions are bound to it.
    pub(crate) boot_id: String,
    /// The TOTP cache of a fleet host, for `store_unreachable = "cached"`.
    pub(crate) cache: Option<fleet::cache::Cache>,
    /// Tickets handed out whose rows are being written.
    pub(crate) tickets: login::pending::Pending,
}

impl Daemon {
    pub fn open(config: Config) -> Result<Self, StartError> {
        audit::set_host(&config.host_name);
        // A bad key is refused before a database is created for it.
        let existing = files::read_ring_if_present(&config.key_file)?;
        let store = backend::open(&config)?;
        let store_error = |source| backend::error(&config, source);
        let ring = match existing {
            Some(ring) => ring,
            None => {
                let state = store.key_state().map_err(store_error)?;
                keys::create_unless_needed(&config, Some(&state))?
            }
        };
        audit::outputs::start(&config.audit)?;
        let active = keys::verify(&config, &*store, &ring)?;
        let vault = Vault::new(&ring, active)?;
        drop(ring);
        let delivery = delivery::Delivery::new(&config, Arc::clone(&store))?;
        let geo = match &config.geoip_database {
            Some(path) => Some(geo::Geo::open(path).map_err(StartError::Geo)?),
            None => None,
        };
        let directory = config
            .directory
            .as_ref()
            .map(directory::Directory::open)
            .transpose()?;
        let policy = startup_policy(
            &config,
            &*store,
            &directory::Groups(directory.as_ref(), &config.totp),
        )?;
        let params = TotpParams {
            algorithm: config.totp.algorithm,
            digits: config.totp.digits,
            period: config.totp.period,
        };
        let secret = factor::totp::new_secret().map_err(|e| StartError::Dummy(e.to_string()))?;
        let sealed = vault
            .seal("", Purpose::TotpSecret, secret.as_slice())
            .map_err(|e| StartError::Dummy(e.to_string()))?;
        let cache = match &config.store {
            config::StoreConfig::Postgres(_) => {
                let path = fleet::cache::path(&config.database);
                Some(
                    fleet::cache::Cache::open(&path).map_err(|source| StartError::Store {
                        path: path.display().to_string(),
                        source,
                    })?,
                )
            }
            config::StoreConfig::Sqlite => None,
        };
        let limits = limits::Limits::new(
            config.limits.max_connections,
            config.limits.per_uid_connections,
        );
        let daemon = Self {
            config,
            store,
            vault,
            policy: RwLock::new(Arc::new(policy)),
            dummy: Dummy { sealed, params },
            limits,
            delivery,
            latencies: Default::default(),
            geo,
            directory,
            boot_id: procs::boot_id(),
            cache,
            tickets: Default::default(),
        };
        login::policy_changed(&daemon, None);
        // Anchors this run in the chain: the collector sees where it resumes.
        daemon.record(&Event::daemon(
            "audit",
            audit::Decision::Done,
            &format!("mfad {} started", env!("CARGO_PKG_VERSION")),
            clock::now(),
        ));
        Ok(daemon)
    }

    /// The ISO code of the country of `ip`, when a `geoip_database` is
    /// configured and knows it (for risk signals and login notices).
    pub fn country(&self, ip: std::net::IpAddr) -> Option<String> {
        self.geo.as_ref()?.country(ip)
    }

    /// Group membership for the policy: NSS and the directory.
    pub(crate) fn groups(&self) -> directory::Groups<'_> {
        directory::Groups(self.directory.as_ref(), &self.config.totp)
    }

    pub(crate) fn has_geo(&self) -> bool {
        self.geo.is_some()
    }

    pub(crate) fn policy(&self) -> Arc<LoadedPolicy> {
        Arc::clone(&self.policy.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Puts `loaded` in force in place of `before`.
    pub(crate) fn put_in_force(&self, loaded: LoadedPolicy, before: &Policy) {
        let version = loaded.version;
        *self.policy.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(loaded);
        fleet::in_force(self.store.as_ref(), version);
        login::policy_changed(self, Some(before));
    }

    /// Loads the policy file again and records the new version. An invalid
    /// file never replaces the policy in force. In a fleet with a pushed
    /// policy, the pushed version stays (see `fleet`).
    pub fn reload_policy(&self, loaded_by: &str) -> Reload {
        if let Some(pushed) = fleet::reload(self) {
            return pushed;
        }
        let current = self.policy();
        if let Err(e) =
            files::check_trusted_if_present(&self.config.policy_file, files::Reading::Anyone)
        {
            log::error!("{e}\nkeeping policy version {} in force", current.version);
            return Reload::rejected(current.version, vec![e.to_string()]);
        }
        let (policy, warnings) = match Policy::load(&self.config.policy_file, &self.groups()) {
            Ok(loaded) => loaded,
            Err(e) => {
                log::error!("{e}\nkeeping policy version {} in force", current.version);
                let problems = match e {
                    PolicyError::Invalid { diagnostics, .. } => {
                        diagnostics.iter().map(ToString::to_string).collect()
                    }
                    PolicyError::Read { .. } => vec![e.to_string()],
                };
                self.record(&policy_event(
                    audit::Decision::Refused,
                    &format!(
                        "policy file rejected ({} problems; reload by {loaded_by}), version {} stays in force",
                        problems.len(),
                        current.version
                    ),
                    current.version,
                ));
                return Reload::rejected(current.version, problems);
            }
        };
        let warnings: Vec<String> = warnings.iter().map(ToString::to_string).collect();
        for w in &warnings {
            log::warn!("policy {}: {w}", self.config.policy_file.display());
        }
        match self
            .store
            .record_policy(&policy.sha256, &policy.text, clock::now(), loaded_by)
        {
            Ok((version, _)) => {
                let changed = version != current.version;
                self.put_in_force(LoadedPolicy { policy, version }, &current.policy);
                log::info!("policy version {version} in force (loaded by {loaded_by})");
                self.record(&policy_event(
                    audit::Decision::Done,
                    &format!("policy version {version} in force (loaded by {loaded_by})"),
                    version,
                ));
                if changed {
                    let trigger = reevaluate::Trigger::Policy { version };
                    reevaluate::run(self, &trigger, 0, Some(&current.policy));
                }
                Reload {
                    version,
                    changed,
                    rejected: false,
                    diagnostics: warnings,
                }
            }
            Err(e) => {
                log::error!(
                    "cannot record the policy version: {e}; keeping version {}",
                    current.version
                );
                Reload::rejected(
                    current.version,
                    vec![format!("cannot record the policy version: {e}")],
                )
            }
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

/// A policy load or rejection, naming the version in force after it.
fn policy_event(decision: audit::Decision, reason: &str, version: i64) -> Event {
    let mut event = Event::daemon("policy", decision, reason, clock::now());
    event.policy_version = Some(version);
    event
}

/// `mfad --init`: creates the key if it is absent (and the database, if
/// any, holds nothing under a key) and the database's directory, and checks
/// that both are private. It changes nothing in the database, so it is safe
/// while a daemon runs; the package scripts and the systemd unit run it
/// before a start (the unit's sandbox keeps /etc read-only for the daemon).
pub fn init(config: &Config) -> Result<(), StartError> {
    keys::init(config)?;
    match config.store {
        config::StoreConfig::Sqlite => {
            store::prepare(&config.database).map_err(|e| backend::error(config, e.into()))
        }
        config::StoreConfig::Postgres(_) => Ok(()),
    }
}

/// The policy at start-up: in a fleet, the version pushed to it; otherwise
/// the policy file.
fn startup_policy(
    config: &Config,
    store: &dyn Store,
    groups: &dyn policy::Directory,
) -> Result<LoadedPolicy, StartError> {
    let loaded = match fleet::startup_policy(config, store, groups) {
        Some(pushed) => pushed,
        None => file_policy(config, store, groups)?,
    };
    fleet::in_force(store, loaded.version);
    Ok(loaded)
}

/// The file if it is valid; if it is not, the last stored version (so a
/// bad edit cannot lock everyone out at the next restart), loudly; with
/// neither, the daemon does not start.
fn file_policy(
    config: &Config,
    store: &dyn Store,
    groups: &dyn policy::Directory,
) -> Result<LoadedPolicy, StartError> {
    files::check_trusted_if_present(&config.policy_file, files::Reading::Anyone)?;
    let now = clock::now();
    let record = |policy: Policy| -> Result<LoadedPolicy, StartError> {
        let (version, _) = store
            .record_policy(&policy.sha256, &policy.text, now, "startup")
            .map_err(|source| StartError::Store {
                path: config.database.display().to_string(),
                source,
            })?;
        log::info!("policy version {version} in force");
        let event = policy_event(
            audit::Decision::Done,
            &format!("policy version {version} in force (loaded at startup)"),
            version,
        );
        if let Err(e) = store.audit(&event) {
            log::error!("cannot write an audit row: {e}");
        }
        event.log();
        Ok(LoadedPolicy { policy, version })
    };
    match Policy::load(&config.policy_file, groups) {
        Ok((policy, warnings)) => {
            for w in warnings {
                log::warn!("policy {}: {w}", config.policy_file.display());
            }
            record(policy)
        }
        Err(e) => {
            let stored = store
                .policy_text(None)
                .map_err(|source| StartError::Store {
                    path: config.database.display().to_string(),
                    source,
                })?;
            let Some((version, text)) = stored else {
                return Err(e.into());
            };
            match Policy::from_text(&text, groups) {
                Ok((policy, _)) => {
                    log::error!(
                        "{e}\nusing the last stored policy, version {}, until the file is fixed",
                        version.version
                    );
                    Ok(LoadedPolicy {
                        policy,
                        version: version.version,
                    })
                }
                Err(_) => Err(e.into()),
            }
        }
    }
}

/// Binds the socket: world-connectable, since access is decided per request
/// from SO_PEERCRED. Its directory must be root's and closed to others; a
/// live daemon already on the path is never displaced, and nothing but a
/// stale socket is ever removed.
fn bind(path: &Path) -> Result<std::os::unix::net::UnixListener, StartError> {
    let fail = |message: String| StartError::Socket {
        path: path.display().to_string(),
        message,
    };
    let absolute = std::path::absolute(path).map_err(|e| fail(e.to_string()))?;
    if let Some(parent) = absolute.parent() {
        if !parent.exists() {
            std::fs::create_dir_all(parent).map_err(|e| fail(e.to_string()))?;
            std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| fail(e.to_string()))?;
        }
        files::check_socket_dir(parent)?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => {
            return Err(files::FileError::NotASocket {
                path: path.to_owned(),
            }
            .into());
        }
        Ok(_) => match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => return Err(fail("another mfad is already listening there".to_owned())),
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                std::fs::remove_file(path)
                    .map_err(|e| fail(format!("cannot remove the stale socket: {e}")))?;
            }
            Err(e) => {
                return Err(fail(format!(
                    "cannot tell whether a daemon listens there: {e}"
                )));
            }
        },
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(fail(e.to_string())),
    }
    // The socket is born with its final mode, 0666: no window in which it has
    // another, and no chmod by path (which could follow a swapped path).
    // umask is per process; nothing else creates files while mfad starts.
    let old = umask(Mode::from_bits_truncate(0o111));
    let bound = std::os::unix::net::UnixListener::bind(path);
    umask(old);
    let listener = bound.map_err(|e| fail(e.to_string()))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| fail(e.to_string()))?;
    Ok(listener)
}

/// Runs the daemon until SIGTERM or SIGINT. SIGHUP reloads the policy.
pub fn run(config: Config) -> Result<(), StartError> {
    if config.clock_offset != 0 {
        clock::set_offset(config.clock_offset);
        log::warn!(
            "[testing] clock_offset_secs = {}: the daemon's clock is shifted; this is for tests only",
            config.clock_offset
        );
    }
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
        let dropped = tokio::spawn(audit_dropped(Arc::clone(&daemon)));
        let fleet = fleet::start(&daemon);
        systemd::ready();
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => {
                    systemd::reloading();
                    daemon.reload_policy("SIGHUP");
                    systemd::ready();
                }
            }
        }
        server.abort();
        maintenance.abort();
        dropped.abort();
        if let Some(fleet) = fleet {
            fleet.abort();
        }
        Ok(())
    });
    // No connection may still be accepting a step when the store is marked
    // clean: the runtime goes first.
    drop(runtime);
    if let Err(e) = daemon.store.close_clean() {
        log::warn!("cannot mark the database cleanly closed (the next start fences TOTP): {e}");
    }
    let _ = std::fs::remove_file(&socket);
    log::info!("mfad stopped");
    result
}

/// Audits, every few seconds, how many events the stream's outputs lost.
async fn audit_dropped(d: Arc<Daemon>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        tick.tick().await;
        let n = audit::stream::take_dropped();
        if n > 0 {
            d.record(&Event::daemon(
                "audit",
                audit::Decision::Failed,
                &format!(
                    "the audit stream dropped {n} events (queue or spill file full, or an output failed)"
                ),
                clock::now(),
            ));
        }
    }
}

async fn purge_periodically(d: Arc<Daemon>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
    loop {
        tick.tick().await;
        let now = clock::now();
        if let Err(e) = d.store.purge_sessions(&d.boot_id, now) {
            log::error!("purging sessions failed: {e}");
        }
        sessions::forget_ended(&d);
        match d.store.purge(now, d.config.lockout.rule()) {
            Ok(0) => {}
            Ok(n) => log::debug!("purged {n} expired rows"),
            Err(e) => log::error!("purge failed: {e}"),
        }
        if let Some(keep) = d.config.audit.retention {
            let before = now.saturating_sub(i64::try_from(keep.as_secs()).unwrap_or(i64::MAX));
            match d.store.purge_audit(before) {
                Ok(0) => {}
                Ok(n) => log::info!("deleted {n} audit rows older than audit.retention_days"),
                Err(e) => log::error!("purging old audit rows failed: {e}"),
            }
        }
    }
}
