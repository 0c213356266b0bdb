//! The minimal per-service policy: what each service requires, and what
//! happens to users who have not enrolled. (The full rule engine replaces it.)

use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;
use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Requirement {
    None,
    Totp,
    Deny,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unenrolled {
    Deny,
    Allow,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default = "default_requirement")]
    pub default: Requirement,
    #[serde(default = "default_unenrolled")]
    pub unenrolled: Unenrolled,
    #[serde(default)]
    pub services: HashMap<String, Requirement>,
}

fn default_requirement() -> Requirement {
    Requirement::Totp
}

fn default_unenrolled() -> Unenrolled {
    Unenrolled::Deny
}

#[derive(Debug, Error)]
pub enum PolicyError {
    #[error("cannot read the policy {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid policy {path}: {message}")]
    Parse { path: String, message: String },
}

impl Policy {
    /// When no policy file exists: TOTP for every service, unenrolled users denied.
    pub fn builtin() -> Self {
        Self {
            default: Requirement::Totp,
            unenrolled: Unenrolled::Deny,
            services: HashMap::new(),
        }
    }

    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text).map_err(|message| PolicyError::Parse {
                path: path.display().to_string(),
                message,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                log::info!(
                    "no policy at {}: using the built-in default (TOTP everywhere, unenrolled users denied)",
                    path.display()
                );
                Ok(Self::builtin())
            }
            Err(source) => Err(PolicyError::Read {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// What `service` requires, and the name of the setting that decided it.
    pub fn decide(&self, service: &str) -> (Requirement, String) {
        match self.services.get(service) {
            Some(r) => (*r, format!("services.{service}")),
            None => (self.default, "default".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_entries_override_the_default() {
        let p = Policy::parse("default = \"totp\"\nunenrolled = \"allow\"\n[services]\ncron = \"none\"\nftp = \"deny\"\n").unwrap();
        assert_eq!(
            p.decide("cron"),
            (Requirement::None, "services.cron".into())
        );
        assert_eq!(p.decide("ftp").0, Requirement::Deny);
        assert_eq!(p.decide("sshd"), (Requirement::Totp, "default".into()));
        assert_eq!(p.unenrolled, Unenrolled::Allow);
    }

    #[test]
    fn errors_name_the_problem() {
        let err = Policy::parse("default = \"sms\"").unwrap_err();
        assert!(err.contains("sms") && err.contains("line 1"), "{err}");
        assert!(
            Policy::parse("defualt = \"none\"")
                .unwrap_err()
                .contains("defualt")
        );
        let p = Policy::parse("").unwrap();
        assert_eq!(p.decide("x").0, Requirement::Totp);
        assert_eq!(p.unenrolled, Unenrolled::Deny);
    }
}
