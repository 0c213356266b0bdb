//! One directory conversation: connect (TLS), bind, search. Blocking, with
//! ldap3's own runtime; [`super::Directory`] runs it on a thread of its own
//! and waits at most `timeout_ms`, so a hung server never holds a login.

use super::filter;
use crate::config::{DirectoryBind, DirectoryConfig, GroupSource};
use ldap3::{LdapConn, LdapConnSettings, Scope, SearchEntry};
use mfad_protocol::SecretString;
use rustls::ClientConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::collections::HashMap;
use std::sync::Arc;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum DirError {
    #[error("{0}")]
    Ldap(#[from] ldap3::LdapError),
    #[error("no answer within {0} ms")]
    Timeout(u128),
    #[error("the lookup ended without an answer")]
    Lost,
    #[error("cannot start a lookup: {0}")]
    Thread(std::io::Error),
    #[error("{0} entries match the user filter; it must match at most one")]
    Ambiguous(usize),
}

/// What mfad needs to know about one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub dn: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub groups: Vec<String>,
}

/// How the directory is reached, prepared once at start-up.
pub struct Client {
    pub cfg: DirectoryConfig,
    pub password: Option<SecretString>,
    pub tls: Arc<ClientConfig>,
}

/// The TLS settings: the configured CA (or the system's) and, for SASL
/// EXTERNAL, the client certificate. Read at start-up, so a missing or
/// broken file stops mfad with its name rather than failing every login.
pub fn tls_config(cfg: &DirectoryConfig) -> Result<ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    match &cfg.ca_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!(
                    "ca_file {}: no usable PEM certificate in it",
                    path.display()
                ));
            }
        }
        None => {
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots);
    match &cfg.bind {
        DirectoryBind::External {
            cert_file,
            key_file,
        } => {
            crate::files::check_private(key_file, 0o600).map_err(|e| e.to_string())?;
            let chain = CertificateDer::pem_file_iter(cert_file)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("client_cert_file {}: {e}", cert_file.display()))?;
            let key = PrivateKeyDer::from_pem_file(key_file)
                .map_err(|e| format!("client_key_file {}: {e}", key_file.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("client_cert_file {}: {e}", cert_file.display()))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

impl Client {
    /// A bound connection.
    fn connect(&self) -> Result<LdapConn, DirError> {
        let settings = LdapConnSettings::new()
            .set_conn_timeout(self.cfg.timeout)
            .set_starttls(self.cfg.starttls)
            .set_config(Arc::clone(&self.tls));
        let mut conn = LdapConn::with_settings(settings, &self.cfg.url)?;
        conn.with_timeout(self.cfg.timeout);
        match (&self.cfg.bind, &self.password) {
            (DirectoryBind::Simple { dn, .. }, Some(pw)) => {
                conn.simple_bind(dn, pw.expose())?.success()?;
            }
            (DirectoryBind::External { .. }, _) => {
                conn.sasl_external_bind()?.success()?;
            }
            // An explicit anonymous bind: the server must answer, so a
            // silent one is found here, not later.
            _ => {
                conn.simple_bind("", "")?.success()?;
            }
        }
        Ok(conn)
    }

    fn search(
        &self,
        conn: &mut LdapConn,
        base: &str,
        filter: &str,
        attrs: &[&str],
    ) -> Result<Vec<SearchEntry>, DirError> {
        conn.with_timeout(self.cfg.timeout);
        let (entries, _) = conn
            .search(base, Scope::Subtree, filter, attrs.to_vec())?
            .success()?;
        Ok(entries.into_iter().map(SearchEntry::construct).collect())
    }

    /// The entry of `user`, or `None` when the directory has no such user.
    pub fn lookup(&self, user: &str) -> Result<Option<Entry>, DirError> {
        let cfg = &self.cfg;
        let mut conn = self.connect()?;
        let mut attrs: Vec<&str> = cfg
            .phone_attributes
            .iter()
            .chain(&cfg.email_attributes)
            .map(String::as_str)
            .collect();
        if cfg.groups == GroupSource::MemberOf {
            attrs.push(&cfg.member_of_attribute);
        }
        let filter = filter::user(&cfg.user_filter, user);
        let mut found = self.search(&mut conn, &cfg.base, &filter, &attrs)?;
        if found.len() > 1 {
            return Err(DirError::Ambiguous(found.len()));
        }
        let Some(entry) = found.pop() else {
            let _ = conn.unbind();
            return Ok(None);
        };
        let names = |entries: Vec<SearchEntry>| -> Vec<String> {
            entries
                .iter()
                .filter_map(|e| first(&e.attrs, &["cn".to_owned()]))
                .collect()
        };
        let groups = match cfg.groups {
            GroupSource::MemberOf => values(&entry.attrs, &cfg.member_of_attribute)
                .iter()
                .filter_map(|dn| filter::first_rdn_value(dn))
                .collect(),
            GroupSource::Posix => names(self.search(
                &mut conn,
                &cfg.group_base,
                &filter::posix_groups(user),
                &["cn"],
            )?),
            GroupSource::AdNested => names(self.search(
                &mut conn,
                &cfg.group_base,
                &filter::nested_groups(&entry.dn),
                &["cn"],
            )?),
            GroupSource::None => Vec::new(),
        };
        let _ = conn.unbind();
        Ok(Some(Entry {
            phone: first(&entry.attrs, &cfg.phone_attributes),
            email: first(&entry.attrs, &cfg.email_attributes),
            dn: entry.dn,
            groups,
        }))
    }

    /// Whether the directory has a group called `name`.
    pub fn group_exists(&self, name: &str) -> Result<bool, DirError> {
        let mut conn = self.connect()?;
        let found = self.search(
            &mut conn,
            &self.cfg.group_base,
            &filter::group(name),
            &["cn"],
        )?;
        let _ = conn.unbind();
        Ok(!found.is_empty())
    }

    /// Connects and binds only: for `mfactl doctor`, which reports the
    /// steps one by one.
    pub fn bind_only(&self) -> Result<(), DirError> {
        let mut conn = self.connect()?;
        let _ = conn.unbind();
        Ok(())
    }
}

/// The values of `name`, whatever case the server spells it in.
fn values<'a>(attrs: &'a HashMap<String, Vec<String>>, name: &str) -> &'a [String] {
    attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map_or(&[], |(_, v)| v.as_slice())
}

/// The first non-empty value of the first of `names` the entry has.
fn first(attrs: &HashMap<String, Vec<String>>, names: &[String]) -> Option<String> {
    names.iter().find_map(|n| {
        values(attrs, n)
            .iter()
            .map(|v| v.trim())
            .find(|v| !v.is_empty())
            .map(str::to_owned)
    })
}
