//! AES-256-GCM sealing of secrets at rest, bound to their owner and purpose.
//!
//! The associated data names the user and the purpose, so a ciphertext
//! copied to another user's row, or from a pending enrollment into an active
//! one, fails to open instead of authenticating someone else.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use hmac::{Hmac, KeyInit as MacKeyInit, Mac};
use mfad_protocol::Channel;
use sha2::Sha256;
use thiserror::Error;
use zeroize::Zeroizing;

const NONCE_LEN: usize = 12;
pub const KEY_LEN: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    TotpSecret,
    PendingTotpSecret,
    /// A verified destination of a channel, and one waiting for its code.
    Contact(mfad_protocol::Channel),
    PendingContact(mfad_protocol::Channel),
}

impl Purpose {
    fn label(self) -> &'static str {
        match self {
            Purpose::TotpSecret => "totp",
            Purpose::PendingTotpSecret => "totp-pending",
            Purpose::Contact(Channel::Sms) => "phone",
            Purpose::PendingContact(Channel::Sms) => "phone-pending",
            Purpose::Contact(Channel::Email) => "email",
            Purpose::PendingContact(Channel::Email) => "email-pending",
        }
    }
}

#[derive(Debug, Error)]
pub enum CryptoError {
    #[error("the operating system's random generator failed: {0}")]
    Random(getrandom::Error),
    #[error("a stored secret failed to decrypt (wrong key, or the row was tampered with or moved)")]
    Open,
    #[error("encryption failed")]
    Seal,
}

pub struct Vault {
    cipher: Aes256Gcm,
    /// Keys the hashes of codes that are only ever checked (backup codes),
    /// so a stolen database does not allow offline guessing without the key.
    mac_key: Zeroizing<[u8; 32]>,
}

type HmacSha256 = Hmac<Sha256>;

impl Vault {
    pub fn new(key: &Zeroizing<[u8; KEY_LEN]>) -> Result<Self, CryptoError> {
        let mac_key = Zeroizing::new(keyed(key.as_slice(), &[b"mfad/v1 code-hash key"])?);
        Ok(Self {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key.as_slice())),
            mac_key,
        })
    }

    /// HMAC-SHA256 of a code under the derived hash key, bound to the user
    /// and a per-code salt.
    pub fn hash_code(&self, user: &str, salt: &[u8], code: &str) -> Result<[u8; 32], CryptoError> {
        keyed(
            self.mac_key.as_slice(),
            &[salt, user.as_bytes(), b"\0", code.as_bytes()],
        )
    }

    /// HMAC-SHA256 under the derived hash key of `data`, bound to a domain
    /// and a user: for values only ever looked up (trusted device keys,
    /// session tickets), so the database alone does not reveal them.
    pub fn keyed_hash(
        &self,
        domain: &str,
        user: &str,
        data: &[u8],
    ) -> Result<[u8; 32], CryptoError> {
        keyed(
            self.mac_key.as_slice(),
            &[
                b"mfad/v1 ",
                domain.as_bytes(),
                b"\0",
                user.as_bytes(),
                b"\0",
                data,
            ],
        )
    }

    /// A value that identifies the key without revealing it (a keyed hash
    /// of a constant), recorded in the database to recognise the right key.
    pub fn check_value(&self) -> Result<[u8; 32], CryptoError> {
        keyed(self.mac_key.as_slice(), &[b"mfad/v1 key check value"])
    }

    /// Returns nonce || ciphertext || tag.
    pub fn seal(
        &self,
        user: &str,
        purpose: Purpose,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(CryptoError::Random)?;
        let aad = associated_data(user, purpose);
        let ct = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| CryptoError::Seal)?;
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    pub fn open(
        &self,
        user: &str,
        purpose: Purpose,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if sealed.len() < NONCE_LEN {
            return Err(CryptoError::Open);
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let aad = associated_data(user, purpose);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Open)
    }
}

/// `mfad/v1`, the purpose and the user, NUL-separated: a user name cannot hold
/// a NUL, so no two (user, purpose) pairs share associated data.
fn associated_data(user: &str, purpose: Purpose) -> Vec<u8> {
    let mut aad = Vec::with_capacity(16 + user.len());
    aad.extend_from_slice(b"mfad/v1\0");
    aad.extend_from_slice(purpose.label().as_bytes());
    aad.push(0);
    aad.extend_from_slice(user.as_bytes());
    aad
}

fn keyed(key: &[u8], parts: &[&[u8]]) -> Result<[u8; 32], CryptoError> {
    let mut mac = <HmacSha256 as MacKeyInit>::new_from_slice(key).map_err(|_| CryptoError::Seal)?;
    for part in parts {
        mac.update(part);
    }
    Ok(mac.finalize().into_bytes().into())
}

/// Constant-time equality of two byte strings (lengths are not secret).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    bool::from(subtle::ConstantTimeEq::ct_eq(a, b))
}

/// Fills a buffer from the OS CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<Zeroizing<[u8; N]>, CryptoError> {
    let mut buf = Zeroizing::new([0u8; N]);
    getrandom::fill(buf.as_mut_slice()).map_err(CryptoError::Random)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault() -> Vault {
        Vault::new(&random_bytes::<KEY_LEN>().unwrap()).unwrap()
    }

    #[test]
    fn seal_open_round_trip() {
        let v = vault();
        let sealed = v.seal("alice", Purpose::TotpSecret, b"secret").unwrap();
        assert_eq!(
            &v.open("alice", Purpose::TotpSecret, &sealed).unwrap()[..],
            b"secret"
        );
    }

    #[test]
    fn moving_a_ciphertext_to_another_user_or_purpose_fails() {
        let v = vault();
        let sealed = v.seal("alice", Purpose::TotpSecret, b"secret").unwrap();
        assert!(matches!(
            v.open("mallory", Purpose::TotpSecret, &sealed),
            Err(CryptoError::Open)
        ));
        assert!(matches!(
            v.open("alice", Purpose::PendingTotpSecret, &sealed),
            Err(CryptoError::Open)
        ));
        // A prefix trick on the user name does not collide either.
        let sealed = v.seal("a", Purpose::TotpSecret, b"x").unwrap();
        assert!(v.open("a\0", Purpose::TotpSecret, &sealed).is_err());
    }

    #[test]
    fn tampering_and_a_wrong_key_fail() {
        let v = vault();
        let mut sealed = v.seal("alice", Purpose::TotpSecret, b"secret").unwrap();
        assert!(vault().open("alice", Purpose::TotpSecret, &sealed).is_err());
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(v.open("alice", Purpose::TotpSecret, &sealed).is_err());
        assert!(v.open("alice", Purpose::TotpSecret, &sealed[..5]).is_err());
    }

    #[test]
    fn nonces_differ() {
        let v = vault();
        assert_ne!(
            v.seal("a", Purpose::TotpSecret, b"x").unwrap(),
            v.seal("a", Purpose::TotpSecret, b"x").unwrap()
        );
    }
}
