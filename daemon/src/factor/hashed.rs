//! Codes that are only ever checked (backup codes, sent codes): stored as a
//! salted HMAC under a key derived from mfad's key, so a stolen database
//! does not allow offline guessing. One mechanism for every such code.

use crate::store::crypto::{CryptoError, Vault, constant_time_eq, random_bytes};
use zeroize::Zeroizing;

const SALT_LEN: usize = 16;

/// One code as stored: its salt and keyed hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub salt: Vec<u8>,
    pub hash: Vec<u8>,
}

impl Stored {
    /// The stored form of `code` for `user`, under a fresh salt.
    pub fn new(vault: &Vault, user: &str, code: &str) -> Result<Self, CryptoError> {
        let salt = random_bytes::<SALT_LEN>()?.to_vec();
        let hash = vault.hash_code(user, &salt, &normalize(code))?.to_vec();
        Ok(Self { salt, hash })
    }

    /// Whether `typed` is this code, compared in constant time.
    pub fn matches(&self, vault: &Vault, user: &str, typed: &str) -> Result<bool, CryptoError> {
        let hash = vault.hash_code(user, &self.salt, &normalize(typed))?;
        Ok(constant_time_eq(&hash, &self.hash))
    }

    /// A stand-in that no answer matches, costing the work of one check.
    pub fn never() -> Self {
        Self {
            salt: vec![0; SALT_LEN],
            hash: Vec::new(),
        }
    }

    /// The record of a decoy code (a user without the factor): stored and
    /// counted like a real one under a fresh salt, but no answer matches
    /// an empty hash.
    pub fn decoy() -> Result<Self, CryptoError> {
        Ok(Self {
            salt: random_bytes::<SALT_LEN>()?.to_vec(),
            hash: Vec::new(),
        })
    }

    /// Whether this is a [`Self::decoy`] (or [`Self::never`]) record.
    pub fn is_decoy(&self) -> bool {
        self.hash.is_empty()
    }
}

/// Codes are typed in any case, with or without dashes and spaces.
pub fn normalize(code: &str) -> Zeroizing<String> {
    Zeroizing::new(
        code.chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .flat_map(char::to_lowercase)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_matches_in_any_spelling_for_its_user_only() {
        let v = Vault::random();
        let s = Stored::new(&v, "alice", "abc-DE").unwrap();
        assert!(s.matches(&v, "alice", " ab cde ").unwrap());
        assert!(!s.matches(&v, "bob", "abcde").unwrap());
        assert!(!s.matches(&v, "alice", "abcdf").unwrap());
        assert!(!Stored::never().matches(&v, "alice", "").unwrap());
        let decoy = Stored::decoy().unwrap();
        assert!(decoy.is_decoy() && !s.is_decoy());
        assert!(!decoy.matches(&v, "alice", "").unwrap());
        assert!(!decoy.matches(&v, "alice", "abcde").unwrap());
        assert_ne!(Stored::new(&v, "alice", "abcde").unwrap().salt, s.salt);
    }
}
