//! `[store]`: where the daemon keeps its state. SQLite (the default, one
//! file per server) or PostgreSQL (one database for a fleet of servers).

use super::ConfigError;
use super::SecretSource;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

const DEFAULT_POOL_SIZE: usize = 8;
const DEFAULT_STATEMENT_TIMEOUT_MS: u64 = 2000;
/// A store call runs while pam_mfa waits for the daemon (5 s by default).
const MAX_STATEMENT_TIMEOUT_MS: u64 = 4000;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStore {
    backend: Option<Backend>,
    url: Option<String>,
    password_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    client_cert_file: Option<PathBuf>,
    client_key_file: Option<PathBuf>,
    pool_size: Option<usize>,
    statement_timeout_ms: Option<u64>,
    host_name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub enum StoreConfig {
    /// The file named by `database`.
    Sqlite,
    Postgres(PostgresConfig),
}

#[derive(Debug, Clone)]
pub struct PostgresConfig {
    /// A libpq-style URL or key=value string, without a password.
    pub url: String,
    pub password: Option<SecretSource>,
    /// The CA that signed the server's certificate: with it, the connection
    /// must be TLS and the certificate must verify.
    pub ca_file: Option<PathBuf>,
    /// A client certificate and key, for servers that ask for one.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    pub pool_size: usize,
    pub statement_timeout: Duration,
}

impl StoreConfig {
    pub fn describe(&self) -> String {
        match self {
            StoreConfig::Sqlite => "store = sqlite".to_owned(),
            StoreConfig::Postgres(p) => format!(
                "store = postgres {:?} (tls: {}, pool {}, statement timeout {} ms)",
                p.url,
                match (&p.ca_file, &p.client_cert) {
                    (None, _) => "as the URL's sslmode says, without a CA file".to_owned(),
                    (Some(ca), None) => format!("required, CA {ca:?}"),
                    (Some(ca), Some((cert, _))) => {
                        format!("required, CA {ca:?}, client certificate {cert:?}")
                    }
                },
                p.pool_size,
                p.statement_timeout.as_millis()
            ),
        }
    }
}

/// The store settings and the host name this daemon goes by in a fleet.
pub(super) fn check(path: &Path, raw: RawStore) -> Result<(StoreConfig, String), ConfigError> {
    let invalid = |key: &'static str, problem: &str| ConfigError::Invalid {
        path: path.to_owned(),
        key,
        problem: problem.to_owned(),
    };
    let host = match raw.host_name {
        Some(name) if valid_host(&name) => name,
        Some(_) => {
            return Err(invalid(
                "store.host_name",
                "must be 1 to 253 letters, digits, dots, dashes or underscores",
            ));
        }
        None => nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".to_owned()),
    };
    let postgres_only = [
        ("store.url", raw.url.is_some()),
        ("store.password_file", raw.password_file.is_some()),
        ("store.ca_file", raw.ca_file.is_some()),
        ("store.client_cert_file", raw.client_cert_file.is_some()),
        ("store.client_key_file", raw.client_key_file.is_some()),
        ("store.pool_size", raw.pool_size.is_some()),
        (
            "store.statement_timeout_ms",
            raw.statement_timeout_ms.is_some(),
        ),
    ];
    if raw.backend.unwrap_or(Backend::Sqlite) == Backend::Sqlite {
        if let Some((key, _)) = postgres_only.iter().find(|(_, set)| *set) {
            return Err(invalid(key, "is for backend = \"postgres\" only"));
        }
        return Ok((StoreConfig::Sqlite, host));
    }
    let url = raw
        .url
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(|| invalid("store.url", "is required with backend = \"postgres\""))?;
    let parsed: tokio_postgres::Config = url
        .parse()
        .map_err(|e| invalid("store.url", &format!("is not a PostgreSQL URL: {e}")))?;
    if parsed.get_password().is_some() {
        return Err(invalid(
            "store.url",
            "must not hold the password (anyone who reads mfad.toml would have it): put it in store.password_file",
        ));
    }
    let pool_size = raw.pool_size.unwrap_or(DEFAULT_POOL_SIZE);
    if !(1..=256).contains(&pool_size) {
        return Err(invalid("store.pool_size", "must be 1 to 256"));
    }
    let timeout = raw
        .statement_timeout_ms
        .unwrap_or(DEFAULT_STATEMENT_TIMEOUT_MS);
    if !(50..=MAX_STATEMENT_TIMEOUT_MS).contains(&timeout) {
        return Err(invalid(
            "store.statement_timeout_ms",
            &format!(
                "must be 50 to {MAX_STATEMENT_TIMEOUT_MS} (a login waits for it, and pam_mfa waits 5 s)"
            ),
        ));
    }
    let client_cert = match (raw.client_cert_file, raw.client_key_file) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => {
            return Err(invalid(
                "store.client_cert_file",
                "and store.client_key_file go together",
            ));
        }
    };
    if client_cert.is_some() && raw.ca_file.is_none() {
        return Err(invalid(
            "store.client_cert_file",
            "needs store.ca_file (a client certificate is only sent over verified TLS)",
        ));
    }
    Ok((
        StoreConfig::Postgres(PostgresConfig {
            url,
            password: raw.password_file.map(SecretSource::File),
            ca_file: raw.ca_file,
            client_cert,
            pool_size,
            statement_timeout: Duration::from_millis(timeout),
        }),
        host,
    ))
}

fn valid_host(name: &str) -> bool {
    (1..=253).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_text(text: &str) -> Result<(StoreConfig, String), ConfigError> {
        let raw: RawStore = toml::from_str(text).unwrap();
        check(Path::new("/etc/mfad/mfad.toml"), raw)
    }

    #[test]
    fn sqlite_is_the_default_and_takes_no_postgres_settings() {
        assert!(matches!(check_text("").unwrap().0, StoreConfig::Sqlite));
        let e = check_text("url = \"postgresql://db/mfad\"").unwrap_err();
        assert!(e.to_string().contains("store.url"), "{e}");
    }

    #[test]
    fn postgres_needs_a_url_without_a_password() {
        let e = check_text("backend = \"postgres\"").unwrap_err();
        assert!(e.to_string().contains("is required"), "{e}");
        let e = check_text("backend = \"postgres\"\nurl = \"postgresql://mfad:hunter2@db/mfad\"")
            .unwrap_err();
        assert!(e.to_string().contains("password_file"), "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let (store, _) = check_text(
            "backend = \"postgres\"\nurl = \"postgresql://mfad@db/mfad\"\nhost_name = \"web-1\"",
        )
        .unwrap();
        let StoreConfig::Postgres(p) = store else {
            panic!("not postgres")
        };
        assert_eq!(p.pool_size, DEFAULT_POOL_SIZE);
    }

    #[test]
    fn bad_values_name_their_key() {
        for (text, key) in [
            (
                "backend = \"postgres\"\nurl = \"host=db\"\npool_size = 0",
                "pool_size",
            ),
            (
                "backend = \"postgres\"\nurl = \"host=db\"\nstatement_timeout_ms = 60000",
                "statement_timeout_ms",
            ),
            (
                "backend = \"postgres\"\nurl = \"host=db\"\nclient_cert_file = \"/c\"",
                "client_cert_file",
            ),
            ("host_name = \"a b\"", "host_name"),
        ] {
            let e = check_text(text).unwrap_err();
            assert!(e.to_string().contains(key), "{text}: {e}");
        }
    }
}
