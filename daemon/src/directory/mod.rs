//! Contacts and groups from LDAP or Active Directory (`[directory]`).
//!
//! Every lookup is bounded: it runs on a thread of its own and the caller
//! waits at most `timeout_ms`. Answers are cached for `cache_ttl_secs`; a
//! fresh cached answer is used without asking the server, so a directory
//! that is down or slow costs nothing within the TTL. Past it, a failed
//! lookup is `Unavailable` (for a few seconds, so one login waits once),
//! and callers treat the contact as absent and the groups as not held:
//! deny by default, never a hang.

pub(crate) mod check;
mod choose;
mod client;
pub mod filter;

pub use choose::{DirContact, Pick, choose};
pub use client::{DirError, Entry};

use crate::config::{DirectoryBind, SecretSource};
use crate::config::{DirectoryConfig, TotpConfig};
use crate::files::{self, FileError};
use client::Client;
use std::collections::HashMap;
use std::sync::mpsc::{RecvTimeoutError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum SetupError {
    #[error("password_file: {0}")]
    Password(#[from] FileError),
    #[error("{0}")]
    Tls(String),
}

/// The answer about one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Found(Arc<Entry>),
    /// The directory answered: no such user.
    NoSuchUser,
    /// No answer in time and nothing fresh in the cache.
    Unavailable,
}

impl From<Option<Entry>> for Lookup {
    fn from(found: Option<Entry>) -> Self {
        match found {
            Some(entry) => Lookup::Found(Arc::new(entry)),
            None => Lookup::NoSuchUser,
        }
    }
}

/// After a failed lookup, the same user's next ones fail at once for this
/// long (at most the TTL), so one login that asks several times (groups,
/// then each channel) waits for the directory once, not once per question.
const RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(10);

/// Answers kept for `ttl`, keyed by user name.
struct Cache {
    ttl: std::time::Duration,
    map: Mutex<HashMap<String, (Instant, Lookup)>>,
}

impl Cache {
    /// The cached answer while fresh; otherwise `fetch`, whose answer is
    /// kept for the TTL (a failure for [`RETRY_AFTER`]; it never revives an
    /// older answer). Time is a parameter so tests can move it.
    fn get(
        &self,
        user: &str,
        now: Instant,
        fetch: impl FnOnce() -> Result<Lookup, DirError>,
    ) -> Lookup {
        let lock = || self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, hit)) = lock().get(user) {
            let life = match hit {
                Lookup::Unavailable => self.ttl.min(RETRY_AFTER),
                _ => self.ttl,
            };
            if now.saturating_duration_since(*at) < life {
                return hit.clone();
            }
        }
        let answer = match fetch() {
            Ok(answer) => answer,
            Err(e) => {
                log::warn!("directory: cannot look up {user:?}: {e}; treating it as unknown");
                Lookup::Unavailable
            }
        };
        let mut map = lock();
        // Expired answers go when the map grows, so users that never come
        // back do not accumulate.
        if map.len() >= 10_000 {
            let ttl = self.ttl;
            map.retain(|_, (at, _)| now.saturating_duration_since(*at) < ttl);
        }
        map.insert(user.to_owned(), (now, answer.clone()));
        answer
    }
}

pub struct Directory {
    client: Arc<Client>,
    cache: Cache,
}

impl Directory {
    /// Reads the bind password and the TLS files: a problem with either
    /// stops mfad at start-up, naming the file.
    pub fn open(cfg: &DirectoryConfig) -> Result<Self, SetupError> {
        let password = match &cfg.bind {
            DirectoryBind::Simple { password_file, .. } => Some(files::read_secret(
                &SecretSource::File(password_file.clone()),
            )?),
            _ => None,
        };
        let tls = Arc::new(client::tls_config(cfg).map_err(SetupError::Tls)?);
        Ok(Self {
            cache: Cache {
                ttl: cfg.cache_ttl,
                map: Mutex::new(HashMap::new()),
            },
            client: Arc::new(Client {
                cfg: cfg.clone(),
                password,
                tls,
            }),
        })
    }

    pub fn config(&self) -> &DirectoryConfig {
        &self.client.cfg
    }

    /// What the directory knows about `user`, from the cache when fresh.
    pub fn lookup(&self, user: &str) -> Lookup {
        self.cache.get(user, Instant::now(), || {
            let name = user.to_owned();
            self.bounded(move |c| c.lookup(&name)).map(Lookup::from)
        })
    }

    /// Whether the directory has the group; `None` when it cannot tell.
    pub fn group_exists(&self, name: &str) -> Option<bool> {
        let name = name.to_owned();
        match self.bounded(move |c| c.group_exists(&name)) {
            Ok(known) => Some(known),
            Err(e) => {
                log::warn!("directory: cannot look up a group: {e}");
                None
            }
        }
    }

    /// For `mfactl doctor`: connect and bind, then the lookup of
    /// `sample` (not cached, so it shows the directory as it is now).
    pub fn check(&self, sample: &str) -> (Result<(), DirError>, Option<Result<Lookup, DirError>>) {
        let bind = self.bounded(|c| c.bind_only());
        if bind.is_err() {
            return (bind, None);
        }
        let name = sample.to_owned();
        let lookup = self.bounded(move |c| c.lookup(&name)).map(Lookup::from);
        (bind, Some(lookup))
    }

    /// Runs `job` on its own thread and waits at most `timeout_ms`. A
    /// worker of the async runtime hands its other tasks on while it
    /// waits; a panic in the LDAP library ends only that thread.
    fn bounded<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Client) -> Result<T, DirError> + Send + 'static,
    ) -> Result<T, DirError> {
        let (tx, rx) = sync_channel(1);
        let client = Arc::clone(&self.client);
        std::thread::Builder::new()
            .name("mfad-directory".to_owned())
            .spawn(move || {
                let _ = tx.send(job(&client));
            })
            .map_err(DirError::Thread)?;
        let timeout = self.client.cfg.timeout;
        let wait = || rx.recv_timeout(timeout);
        let got = crate::blocking::wait(wait);
        match got {
            // The library's own deadline is the same one: one message for both.
            Ok(Err(DirError::Ldap(ldap3::LdapError::Timeout { .. })))
            | Err(RecvTimeoutError::Timeout) => Err(DirError::Timeout(timeout.as_millis())),
            Ok(answer) => answer,
            Err(RecvTimeoutError::Disconnected) => Err(DirError::Lost),
        }
    }
}

/// What the policy asks of this host: group membership from NSS, and the
/// directory when one is configured, and the TOTP profiles of mfad.toml. A
/// group the directory cannot confirm (it is down, past the cache) is
/// simply not held, so `%group` rules fall through to the next rule, as for
/// any user outside the group.
pub struct Groups<'a>(pub Option<&'a Directory>, pub &'a TotpConfig);

impl crate::policy::Directory for Groups<'_> {
    fn groups_of(&self, user: &str) -> Vec<String> {
        let mut groups = crate::policy::Nss.groups_of(user);
        if let Some(Lookup::Found(entry)) = self.0.map(|d| d.lookup(user)) {
            groups.extend(entry.groups.iter().cloned());
        }
        groups
    }

    /// A policy is checked when it loads: a directory that cannot answer
    /// then must not reject it, so an unanswered question counts as known.
    fn group_exists(&self, group: &str) -> bool {
        crate::policy::Nss.group_exists(group)
            || self
                .0
                .is_some_and(|d| d.group_exists(group).unwrap_or(true))
    }

    fn totp_profile_exists(&self, name: &str) -> Option<bool> {
        Some(self.1.profiles.contains_key(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn entry(phone: &str) -> Lookup {
        Lookup::Found(Arc::new(Entry {
            dn: "uid=a,dc=x".to_owned(),
            phone: Some(phone.to_owned()),
            email: None,
            groups: vec![],
        }))
    }

    #[test]
    fn cache_answers_within_ttl_then_asks_and_fails_closed() {
        let cache = Cache {
            ttl: Duration::from_secs(60),
            map: Mutex::new(HashMap::new()),
        };
        let t0 = Instant::now();
        assert_eq!(cache.get("a", t0, || Ok(entry("+1"))), entry("+1"));
        // Fresh: the server is not asked, even if it is down.
        let down = || Err(DirError::Timeout(100));
        assert_eq!(
            cache.get("a", t0 + Duration::from_secs(59), down),
            entry("+1")
        );
        // Stale and the server is down: unavailable, nothing stale used.
        assert_eq!(
            cache.get("a", t0 + Duration::from_secs(60), down),
            Lookup::Unavailable
        );
        // A failure holds for RETRY_AFTER: one login asking several
        // questions waits once; then the server is asked again.
        let never = || -> Result<Lookup, DirError> { panic!("asked again") };
        assert_eq!(
            cache.get("a", t0 + Duration::from_secs(69), never),
            Lookup::Unavailable
        );
        assert_eq!(
            cache.get("a", t0 + Duration::from_secs(70), || Ok(entry("+2"))),
            entry("+2")
        );
        // "No such user" is an answer, cached like one.
        assert_eq!(
            cache.get("b", t0, || Ok(Lookup::NoSuchUser)),
            Lookup::NoSuchUser
        );
        assert_eq!(cache.get("b", t0, down), Lookup::NoSuchUser);
    }
}
