//! `[directory]`: contacts and groups from LDAP or Active Directory. The raw
//! form, its defaults and its checks.

use super::ConfigError;
use super::delivery::host_is_loopback;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A lookup runs while pam_mfa waits for the daemon's first reply (5 s by
/// default), so it must end well before that.
const MAX_TIMEOUT_MS: u64 = 4000;
const MAX_CACHE_TTL_SECS: u64 = 86_400;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDirectory {
    url: String,
    starttls: Option<bool>,
    ca_file: Option<PathBuf>,
    bind_dn: Option<String>,
    password_file: Option<PathBuf>,
    client_cert_file: Option<PathBuf>,
    client_key_file: Option<PathBuf>,
    base: String,
    user_filter: Option<String>,
    phone_attributes: Option<Vec<String>>,
    email_attributes: Option<Vec<String>>,
    groups: Option<GroupSource>,
    member_of_attribute: Option<String>,
    group_base: Option<String>,
    timeout_ms: Option<u64>,
    cache_ttl_secs: Option<u64>,
    contacts: Option<ContactTrust>,
    local_contacts: Option<LocalContacts>,
}

/// Where group membership comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupSource {
    /// The user entry's `memberOf` values (OpenLDAP memberof overlay, AD).
    MemberOf,
    /// `posixGroup` entries that list the user in `memberUid`.
    Posix,
    /// AD groups holding the user directly or through other groups
    /// (matching rule 1.2.840.113556.1.4.1941, LDAP_MATCHING_RULE_IN_CHAIN).
    AdNested,
    /// Groups only through NSS.
    None,
}

/// Whether a directory contact can receive login codes at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactTrust {
    /// The directory is trusted: its contacts count as verified.
    Verified,
    /// A directory contact counts once the user has confirmed that very
    /// address with a code (`mfactl phone set` and `verify`), so a changed
    /// directory entry never silently redirects login codes.
    Confirm,
}

/// What a destination set with `mfactl` does beside the directory's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LocalContacts {
    /// A verified `mfactl` destination wins over the directory's.
    Override,
    /// The directory's destination wins, and `mfactl` refuses to set a
    /// different one for a user the directory gives one.
    Refuse,
}

#[derive(Debug, Clone)]
pub enum DirectoryBind {
    Anonymous,
    /// A simple bind; the password is read from `password_file` (private
    /// to mfad, like every secret file).
    Simple {
        dn: String,
        password_file: PathBuf,
    },
    /// SASL EXTERNAL: the TLS client certificate is the identity.
    External {
        cert_file: PathBuf,
        key_file: PathBuf,
    },
}

#[derive(Debug, Clone)]
pub struct DirectoryConfig {
    pub url: String,
    /// StartTLS on an `ldap://` URL (always for non-loopback hosts).
    pub starttls: bool,
    /// The CA that signed the server's certificate; `None`: the system's.
    pub ca_file: Option<PathBuf>,
    pub bind: DirectoryBind,
    pub base: String,
    /// A search filter with `{user}` where the (escaped) user name goes.
    pub user_filter: String,
    /// Tried in order; the first one the entry has is the phone number.
    pub phone_attributes: Vec<String>,
    pub email_attributes: Vec<String>,
    pub groups: GroupSource,
    pub member_of_attribute: String,
    pub group_base: String,
    pub timeout: Duration,
    pub cache_ttl: Duration,
    pub contacts: ContactTrust,
    pub local_contacts: LocalContacts,
}

impl DirectoryConfig {
    pub fn describe(&self) -> String {
        let bind = match &self.bind {
            DirectoryBind::Anonymous => "anonymous".to_owned(),
            DirectoryBind::Simple { dn, password_file } => {
                format!("{dn:?} with the password in {password_file:?}")
            }
            DirectoryBind::External { cert_file, .. } => {
                format!("SASL EXTERNAL with the certificate {cert_file:?}")
            }
        };
        format!(
            "directory: {}{}, CA {}, bind {bind}, base {:?}, filter {:?}, phone from {:?}, \
             email from {:?}, groups {:?} (base {:?}), timeout {} ms, cache {} s, contacts {:?}, \
             mfactl contacts {:?}\n",
            self.url,
            if self.starttls { " with StartTLS" } else { "" },
            self.ca_file
                .as_ref()
                .map_or("(system)".to_owned(), |p| format!("{p:?}")),
            self.base,
            self.user_filter,
            self.phone_attributes,
            self.email_attributes,
            self.groups,
            self.group_base,
            self.timeout.as_millis(),
            self.cache_ttl.as_secs(),
            self.contacts,
            self.local_contacts,
        )
    }
}

fn invalid(path: &Path, key: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        path: path.to_owned(),
        key,
        problem: problem.into(),
    }
}

fn attribute_list(
    path: &Path,
    key: &'static str,
    list: Option<&Vec<String>>,
    default: &[&str],
) -> Result<Vec<String>, ConfigError> {
    let list = list
        .cloned()
        .unwrap_or_else(|| default.iter().map(|s| (*s).to_owned()).collect());
    if let Some(bad) = list.iter().find(|a| !is_attribute(a)) {
        return Err(invalid(
            path,
            key,
            format!("names {bad:?}, not an attribute name"),
        ));
    }
    Ok(list)
}

/// An attribute description: letters, digits and '-', starting with a letter.
fn is_attribute(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

pub(super) fn check(path: &Path, raw: &RawDirectory) -> Result<DirectoryConfig, ConfigError> {
    let url = url::Url::parse(&raw.url)
        .map_err(|e| invalid(path, "directory.url", format!("is not a URL ({e})")))?;
    // ldap:// is not a special scheme to `url`: its host is opaque text.
    let loopback = url.host_str().is_some_and(host_is_loopback);
    let starttls = match url.scheme() {
        "ldaps" => {
            if raw.starttls == Some(true) {
                return Err(invalid(
                    path,
                    "directory.starttls",
                    "is for ldap:// URLs; ldaps:// is TLS from the start",
                ));
            }
            false
        }
        "ldap" => {
            let starttls = raw.starttls.unwrap_or(true);
            if !starttls && !loopback {
                return Err(invalid(
                    path,
                    "directory.starttls",
                    "is false for a remote ldap:// server: passwords and contacts would \
                     travel in clear; use ldaps:// or StartTLS (plain LDAP is allowed to \
                     a loopback address only)",
                ));
            }
            starttls
        }
        other => {
            return Err(invalid(
                path,
                "directory.url",
                format!("has the scheme {other:?}; use ldaps:// or ldap:// (with StartTLS)"),
            ));
        }
    };
    if url.host().is_none()
        || !url.path().trim_start_matches('/').is_empty()
        || url.query().is_some()
    {
        return Err(invalid(
            path,
            "directory.url",
            "must be scheme://host[:port] alone; set the search base in `base`",
        ));
    }
    let bind = match (
        &raw.bind_dn,
        &raw.password_file,
        &raw.client_cert_file,
        &raw.client_key_file,
    ) {
        (None, None, None, None) => DirectoryBind::Anonymous,
        (Some(dn), Some(file), None, None) => DirectoryBind::Simple {
            dn: dn.clone(),
            password_file: file.clone(),
        },
        (None, None, Some(cert), Some(key)) => {
            if url.scheme() == "ldap" && !starttls {
                return Err(invalid(
                    path,
                    "directory.client_cert_file",
                    "needs TLS: use ldaps:// or StartTLS",
                ));
            }
            DirectoryBind::External {
                cert_file: cert.clone(),
                key_file: key.clone(),
            }
        }
        _ => {
            return Err(invalid(
                path,
                "directory.bind_dn",
                "and directory.password_file go together (a simple bind), as do \
                 directory.client_cert_file and directory.client_key_file (SASL EXTERNAL); \
                 set one pair or neither (anonymous)",
            ));
        }
    };
    if raw.base.trim().is_empty() {
        return Err(invalid(
            path,
            "directory.base",
            "must name the search base DN",
        ));
    }
    let user_filter = raw
        .user_filter
        .clone()
        .unwrap_or_else(|| "(uid={user})".to_owned());
    if user_filter.matches("{user}").count() == 0
        || !user_filter.starts_with('(')
        || !user_filter.ends_with(')')
    {
        return Err(invalid(
            path,
            "directory.user_filter",
            "must be a parenthesised LDAP filter holding {user}, such as (uid={user}) or \
             (sAMAccountName={user})",
        ));
    }
    if ldap3::parse_filter(user_filter.replace("{user}", "x")).is_err() {
        return Err(invalid(
            path,
            "directory.user_filter",
            format!("{user_filter:?} is not a valid LDAP filter (RFC 4515)"),
        ));
    }
    let member_of_attribute = raw
        .member_of_attribute
        .clone()
        .unwrap_or_else(|| "memberOf".to_owned());
    if !is_attribute(&member_of_attribute) {
        return Err(invalid(
            path,
            "directory.member_of_attribute",
            "must be an attribute name",
        ));
    }
    let timeout_ms = raw.timeout_ms.unwrap_or(2000);
    if !(100..=MAX_TIMEOUT_MS).contains(&timeout_ms) {
        return Err(invalid(
            path,
            "directory.timeout_ms",
            format!(
                "is {timeout_ms}; it must be 100 to {MAX_TIMEOUT_MS}: a lookup must end \
                 before pam_mfa stops waiting (5 s by default)"
            ),
        ));
    }
    let cache_ttl_secs = raw.cache_ttl_secs.unwrap_or(300);
    if cache_ttl_secs > MAX_CACHE_TTL_SECS {
        return Err(invalid(
            path,
            "directory.cache_ttl_secs",
            "must be at most 86400 (a day)",
        ));
    }
    Ok(DirectoryConfig {
        url: raw.url.trim_end_matches('/').to_owned(),
        starttls,
        ca_file: raw.ca_file.clone(),
        bind,
        base: raw.base.clone(),
        user_filter,
        phone_attributes: attribute_list(
            path,
            "directory.phone_attributes",
            raw.phone_attributes.as_ref(),
            &["mobile", "telephoneNumber"],
        )?,
        email_attributes: attribute_list(
            path,
            "directory.email_attributes",
            raw.email_attributes.as_ref(),
            &["mail"],
        )?,
        groups: raw.groups.unwrap_or(GroupSource::MemberOf),
        member_of_attribute,
        group_base: raw.group_base.clone().unwrap_or_else(|| raw.base.clone()),
        timeout: Duration::from_millis(timeout_ms),
        cache_ttl: Duration::from_secs(cache_ttl_secs),
        contacts: raw.contacts.unwrap_or(ContactTrust::Verified),
        local_contacts: raw.local_contacts.unwrap_or(LocalContacts::Override),
    })
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

    fn parse(body: &str) -> Result<DirectoryConfig, String> {
        let text = format!("version = 1\n[directory]\nbase = \"dc=example,dc=org\"\n{body}");
        Config::parse(Path::new("mfad.toml"), &text)
            .map(|c| c.directory.unwrap())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_read_uid_mobile_mail_and_member_of() {
        let c = parse("url = \"ldaps://ldap.example.org\"").unwrap();
        assert_eq!(c.user_filter, "(uid={user})");
        assert_eq!(c.phone_attributes, ["mobile", "telephoneNumber"]);
        assert_eq!(c.email_attributes, ["mail"]);
        assert_eq!(c.groups, GroupSource::MemberOf);
        assert_eq!(c.group_base, "dc=example,dc=org");
        assert!(!c.starttls);
        assert!(matches!(c.bind, DirectoryBind::Anonymous));
        assert_eq!(c.contacts, ContactTrust::Verified);
        assert_eq!(c.local_contacts, LocalContacts::Override);
        assert_eq!(c.timeout, Duration::from_millis(2000));
    }

    #[test]
    fn plain_ldap_needs_starttls_unless_loopback() {
        assert!(parse("url = \"ldap://ldap.example.org\"").unwrap().starttls);
        let err = parse("url = \"ldap://ldap.example.org\"\nstarttls = false").unwrap_err();
        assert!(err.contains("directory.starttls"), "{err}");
        assert!(
            !parse("url = \"ldap://127.0.0.1:3890\"\nstarttls = false")
                .unwrap()
                .starttls
        );
        let err = parse("url = \"http://ldap.example.org\"").unwrap_err();
        assert!(err.contains("ldaps://"), "{err}");
    }

    #[test]
    fn bad_settings_name_their_key() {
        for (body, key) in [
            ("url = \"ldaps://h/dc=x\"", "directory.url"),
            (
                "url = \"ldaps://h\"\nbind_dn = \"cn=a\"",
                "directory.bind_dn",
            ),
            (
                "url = \"ldaps://h\"\nuser_filter = \"uid={user}\"",
                "directory.user_filter",
            ),
            (
                "url = \"ldaps://h\"\nuser_filter = \"(uid=x)\"",
                "directory.user_filter",
            ),
            (
                "url = \"ldaps://h\"\nuser_filter = \"(&(uid={user})\"",
                "directory.user_filter",
            ),
            (
                "url = \"ldaps://h\"\nphone_attributes = [\"mo bile\"]",
                "directory.phone_attributes",
            ),
            (
                "url = \"ldaps://h\"\ntimeout_ms = 10000",
                "directory.timeout_ms",
            ),
            (
                "url = \"ldaps://h\"\ncache_ttl_secs = 100000",
                "directory.cache_ttl_secs",
            ),
            (
                "url = \"ldaps://h\"\ngroups = \"nested\"",
                "unknown variant",
            ),
        ] {
            let err = parse(body).unwrap_err();
            assert!(err.contains(key), "{body}: {err}");
        }
    }

    #[test]
    fn ad_settings_are_read() {
        let c = parse(
            "url = \"ldap://dc1.corp.example\"\nuser_filter = \"(sAMAccountName={user})\"\n\
             groups = \"ad_nested\"\nbind_dn = \"CN=mfad,CN=Users,DC=corp\"\n\
             password_file = \"/etc/mfad/ldap.pw\"\ncontacts = \"confirm\"\nlocal_contacts = \"refuse\"",
        )
        .unwrap();
        assert_eq!(c.groups, GroupSource::AdNested);
        assert!(matches!(c.bind, DirectoryBind::Simple { .. }));
        assert_eq!(c.contacts, ContactTrust::Confirm);
        assert_eq!(c.local_contacts, LocalContacts::Refuse);
    }
}
