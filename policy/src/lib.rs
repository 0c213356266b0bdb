//! The policy engine: one TOML file of ordered rules, first match wins.
//! Every loaded version is kept in the store, and every decision names the
//! rule and the version that made it.

mod diagnostic;
mod matcher;
mod parse;
mod rule;
#[cfg(test)]
mod tests;

pub use diagnostic::{Diagnostic, Severity};
pub use matcher::{Directory, Facts, Miss, Nss, Signals, Why, canonical};
pub use parse::{parse, parse_duration, parse_net};
pub use rule::{
    Conditions, Factor, Host, OnRisk, PRIVILEGED_SERVICES, Requirement, Rule, StoreUnreachable,
    TrustedDevices, Unenrolled, UserMatch,
};

use sha2::{Digest, Sha256};
use std::path::Path;
use thiserror::Error;

/// What applies when there is no policy file.
pub const BUILTIN: &str = "# The built-in policy, in force when there is no policy file:
# TOTP for every service; users without TOTP are denied.
[[rule]]
name = \"builtin-default\"
all = true
require = \"totp\"
unenrolled = \"deny\"
";

#[derive(Debug, Clone)]
pub struct Policy {
    pub host: Host,
    pub rules: Vec<Rule>,
    /// The text it was read from, and its SHA-256 in hex.
    pub text: String,
    pub sha256: String,
}

#[derive(Debug, Error)]
pub enum PolicyError {
    #[error("cannot read the policy {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid policy {path}:\n{}", list(.diagnostics))]
    Invalid {
        path: String,
        diagnostics: Vec<Diagnostic>,
    },
}

fn list(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(|d| format!("  {d}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Policy {
    /// Whether a rule looks at the risk signals, which cost a look at the
    /// login history: a policy without such rules spares every login that.
    pub fn uses_signals(&self) -> bool {
        self.rules
            .iter()
            .any(|r| r.when.new_network.is_some() || r.when.new_country.is_some())
    }

    /// Whether a rule says what happens to its live sessions when risk
    /// rises: only then does a login from a new place look at them.
    pub fn uses_on_risk(&self) -> bool {
        self.rules.iter().any(|r| r.on_risk != OnRisk::None)
    }

    pub fn new(host: Host, rules: Vec<Rule>, text: String) -> Self {
        let sha256 = Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Self {
            host,
            rules,
            text,
            sha256,
        }
    }

    /// TOTP for every service, unenrolled users denied ([`BUILTIN`]).
    pub fn builtin() -> Self {
        let rule = Rule {
            name: "builtin-default".to_owned(),
            // The line of `name = ` in BUILTIN, as parsing it would say.
            line: 4,
            when: Conditions {
                all: true,
                ..Default::default()
            },
            require: Requirement::Any(vec![Factor::Totp]),
            fresh: Vec::new(),
            trusted_devices: TrustedDevices::Forbidden,
            unenrolled: Unenrolled::Deny,
            on_risk: OnRisk::None,
            store_unreachable: Default::default(),
            totp_profile: None,
        };
        Self::new(Host::default(), vec![rule], BUILTIN.to_owned())
    }

    /// Reads and validates the file; its absence means [`Policy::builtin`].
    /// Warnings are returned beside the policy.
    pub fn load(path: &Path, dir: &dyn Directory) -> Result<(Self, Vec<Diagnostic>), PolicyError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok((Self::builtin(), Vec::new()));
            }
            Err(source) => {
                return Err(PolicyError::Read {
                    path: path.display().to_string(),
                    source,
                });
            }
        };
        Self::from_text(&text, dir).map_err(|diagnostics| PolicyError::Invalid {
            path: path.display().to_string(),
            diagnostics,
        })
    }

    /// Validates `text`; on failure every diagnostic is returned.
    pub fn from_text(
        text: &str,
        dir: &dyn Directory,
    ) -> Result<(Self, Vec<Diagnostic>), Vec<Diagnostic>> {
        match parse(text, dir) {
            (Some(policy), warnings) => Ok((policy, warnings)),
            (None, diagnostics) => Err(diagnostics),
        }
    }
}
