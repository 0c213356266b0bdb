//! The connection pool: the URL from `[store]`, the password from its own
//! file, TLS through rustls (with the admin's CA file, and a client
//! certificate if one is set), and the statement timeout on every session.

use crate::config::PostgresConfig;
use crate::files::{FileError, read_secret};
use crate::store::StoreError;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

#[derive(Debug, Error)]
pub enum ConnectError {
    #[error("store.url is not a PostgreSQL URL: {0}")]
    Url(tokio_postgres::Error),
    #[error("store.password_file: {0}")]
    Password(FileError),
    #[error("cannot read the certificates in {path}: {problem}")]
    Pem { path: PathBuf, problem: String },
    #[error("the TLS settings are not usable: {0}")]
    Tls(rustls::Error),
    #[error("cannot set up the connection pool: {0}")]
    Pool(String),
}

pub(super) fn pool(
    config: &PostgresConfig,
    runtime: &tokio::runtime::Runtime,
) -> Result<Pool, StoreError> {
    let (pg, tls) = settings(config)?;
    let manager = Manager::from_config(
        pg,
        tls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    // The pool spawns its connections' tasks on the store's runtime.
    let _entered = runtime.enter();
    Pool::builder(manager)
        .max_size(config.pool_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(config.statement_timeout))
        .create_timeout(Some(config.statement_timeout))
        .build()
        .map_err(|e| ConnectError::Pool(e.to_string()).into())
}

/// How to connect: the pool's connections and the listening one alike.
pub(super) fn settings(
    config: &PostgresConfig,
) -> Result<(tokio_postgres::Config, MakeRustlsConnect), StoreError> {
    let mut pg: tokio_postgres::Config = config.url.parse().map_err(ConnectError::Url)?;
    if let Some(source) = &config.password {
        let password = read_secret(source).map_err(ConnectError::Password)?;
        pg.password(password.expose());
    }
    let timeout_ms = config.statement_timeout.as_millis();
    pg.application_name("mfad")
        .connect_timeout(config.statement_timeout)
        .options(format!(
            "-c statement_timeout={timeout_ms} -c lock_timeout={timeout_ms}"
        ));
    if config.ca_file.is_some() {
        // With a CA named, nothing but verified TLS will do.
        pg.ssl_mode(SslMode::Require);
    }
    Ok((pg, MakeRustlsConnect::new(tls_config(config)?)))
}

fn tls_config(config: &PostgresConfig) -> Result<rustls::ClientConfig, ConnectError> {
    let mut roots = rustls::RootCertStore::empty();
    match &config.ca_file {
        Some(path) => {
            for cert in certificates(path)? {
                roots.add(cert).map_err(ConnectError::Tls)?;
            }
        }
        None => {
            // Without a CA file, the system's roots (for sslmode=require
            // or verify-full in the URL).
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(ConnectError::Tls)?
        .with_root_certificates(roots);
    match &config.client_cert {
        Some((cert, key)) => {
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| ConnectError::Pem {
                path: key.clone(),
                problem: e.to_string(),
            })?;
            builder
                .with_client_auth_cert(certificates(cert)?, key)
                .map_err(ConnectError::Tls)
        }
        None => Ok(builder.with_no_client_auth()),
    }
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, ConnectError> {
    let pem = |problem: String| ConnectError::Pem {
        path: path.to_owned(),
        problem,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem(e.to_string()))?;
    if certs.is_empty() {
        return Err(pem("no certificate in it".to_owned()));
    }
    Ok(certs)
}
