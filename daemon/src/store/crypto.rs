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
use std::collections::BTreeMap;
use std::sync::RwLock;
use thiserror::Error;
use zeroize::Zeroizing;

const NONCE_LEN: usize = 12;
pub const KEY_LEN: usize = 32;
/// The most keys a key ring holds (a rotation adds one).
pub const MAX_KEYS: usize = 255;

/// A sealed value and the id of the key that sealed it (its place in the
/// key ring, from 1). Rows written before key ids existed are key 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key: u32,
    pub bytes: Vec<u8>,
}

/// The keys of the key file, oldest first: key id N is the Nth.
#[derive(Default)]
pub struct KeyRing(Vec<Zeroizing<[u8; KEY_LEN]>>);

/// The number of keys, never the keys.
impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyRing({} keys)", self.0.len())
    }
}

impl KeyRing {
    pub fn new(keys: Vec<Zeroizing<[u8; KEY_LEN]>>) -> Self {
        Self(keys)
    }

    /// The id of the newest key (0 for an empty ring).
    pub fn newest(&self) -> u32 {
        u32::try_from(self.0.len()).unwrap_or(u32::MAX)
    }

    pub fn keys(&self) -> impl Iterator<Item = (u32, &Zeroizing<[u8; KEY_LEN]>)> {
        (1..).zip(self.0.iter())
    }

    /// Appends a new random key; returns its id.
    pub fn add_random(&mut self) -> Result<u32, CryptoError> {
        self.0.push(random_bytes::<KEY_LEN>()?);
        Ok(self.newest())
    }
}

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
    #[error(
        "a stored secret is sealed with key {0}, which this host's key ring lacks: copy the key file from the host that ran `mfactl key rotate` and restart mfad"
    )]
    UnknownKey(u32),
    #[error("the key ring is empty")]
    EmptyRing,
    #[error(
        "key {0} of this host's key file is not the key {0} the database records: copy the key file from the host that ran `mfactl key add` and restart mfad"
    )]
    KeyDiffers(u32),
}

pub struct Vault {
    ring: RwLock<Ciphers>,
    /// Keys the hashes of codes that are only ever checked (backup codes),
    /// so a stolen database does not allow offline guessing without the key.
    /// Derived from key 1 for good: a hash cannot be re-keyed without the
    /// code it hashes, so a rotation re-seals secrets but keeps this key.
    mac_key: Zeroizing<[u8; 32]>,
}

/// The ciphers of a key ring with their check values, and the id of the
/// one that seals.
struct Ciphers {
    by_id: BTreeMap<u32, (Aes256Gcm, [u8; 32])>,
    active: u32,
}

type HmacSha256 = Hmac<Sha256>;

impl Vault {
    /// A vault over `ring` that seals with key `active`.
    pub fn new(ring: &KeyRing, active: u32) -> Result<Self, CryptoError> {
        let (_, first) = ring.keys().next().ok_or(CryptoError::EmptyRing)?;
        Ok(Self {
            ring: RwLock::new(Ciphers::new(ring, active)?),
            mac_key: mac_key(first)?,
        })
    }

    /// Seals with key `active` of `ring` from now on; `ring` must hold the
    /// keys the database records (the caller checks with `keys::judge`).
    pub fn install(&self, ring: &KeyRing, active: u32) -> Result<(), CryptoError> {
        let ciphers = Ciphers::new(ring, active)?;
        *self.ring.write().unwrap_or_else(|p| p.into_inner()) = ciphers;
        Ok(())
    }

    /// A vault over one random key, for tests.
    #[cfg(test)]
    pub fn random() -> Self {
        let mut ring = KeyRing::default();
        ring.add_random().unwrap();
        Self::new(&ring, 1).unwrap()
    }

    /// The id of the key that seals.
    pub fn active(&self) -> u32 {
        self.ring.read().unwrap_or_else(|p| p.into_inner()).active
    }

    /// Seals with key `id` from now on, if this vault holds that key and it
    /// has the check value `check` (another host rotated to it); true if
    /// that changed the sealing key.
    pub fn follow(&self, id: u32, check: &[u8]) -> Result<bool, CryptoError> {
        let mut ring = self.ring.write().unwrap_or_else(|p| p.into_inner());
        if ring.active == id {
            return Ok(false);
        }
        let (_, ours) = ring.by_id.get(&id).ok_or(CryptoError::UnknownKey(id))?;
        if !constant_time_eq(ours, check) {
            return Err(CryptoError::KeyDiffers(id));
        }
        ring.active = id;
        Ok(true)
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

    /// Returns nonce || ciphertext || tag, under the active key.
    pub fn seal(
        &self,
        user: &str,
        purpose: Purpose,
        plaintext: &[u8],
    ) -> Result<Sealed, CryptoError> {
        let ring = self.ring.read().unwrap_or_else(|p| p.into_inner());
        let (cipher, _) = ring
            .by_id
            .get(&ring.active)
            .ok_or(CryptoError::UnknownKey(ring.active))?;
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(CryptoError::Random)?;
        let aad = associated_data(user, purpose);
        let ct = cipher
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
        Ok(Sealed {
            key: ring.active,
            bytes: out,
        })
    }

    /// Opens with the key that sealed: a key id the ring lacks is an
    /// error of its own, never a wrong code.
    pub fn open(
        &self,
        user: &str,
        purpose: Purpose,
        sealed: &Sealed,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let ring = self.ring.read().unwrap_or_else(|p| p.into_inner());
        let (cipher, _) = ring
            .by_id
            .get(&sealed.key)
            .ok_or(CryptoError::UnknownKey(sealed.key))?;
        if sealed.bytes.len() < NONCE_LEN {
            return Err(CryptoError::Open);
        }
        let (nonce, ct) = sealed.bytes.split_at(NONCE_LEN);
        let aad = associated_data(user, purpose);
        cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Open)
    }
}

impl Ciphers {
    fn new(ring: &KeyRing, active: u32) -> Result<Self, CryptoError> {
        let by_id = ring
            .keys()
            .map(|(id, key)| {
                let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key.as_slice()));
                Ok((id, (cipher, check_value(key)?)))
            })
            .collect::<Result<BTreeMap<_, _>, CryptoError>>()?;
        if !by_id.contains_key(&active) {
            return Err(CryptoError::UnknownKey(active));
        }
        Ok(Self { by_id, active })
    }
}

fn mac_key(key: &[u8; KEY_LEN]) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    Ok(Zeroizing::new(keyed(key, &[b"mfad/v1 code-hash key"])?))
}

/// A value that identifies a key without revealing it (a keyed hash of a
/// constant), recorded in the database to recognise the right key ring.
pub fn check_value(key: &[u8; KEY_LEN]) -> Result<[u8; 32], CryptoError> {
    keyed(mac_key(key)?.as_slice(), &[b"mfad/v1 key check value"])
}

/// The check value of every key of `ring`, by key id.
pub fn check_values(ring: &KeyRing) -> Result<BTreeMap<u32, [u8; 32]>, CryptoError> {
    ring.keys()
        .map(|(id, key)| Ok((id, check_value(key)?)))
        .collect()
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

    fn ring(n: usize) -> KeyRing {
        let mut ring = KeyRing::default();
        for _ in 0..n {
            ring.add_random().unwrap();
        }
        ring
    }

    fn vault() -> Vault {
        Vault::random()
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
    fn each_value_opens_with_the_key_that_sealed_it() {
        let mut keys = ring(1);
        let v = Vault::new(&keys, 1).unwrap();
        let old = v.seal("alice", Purpose::TotpSecret, b"old").unwrap();
        let hash = v.hash_code("alice", b"salt", "123").unwrap();
        assert_eq!(keys.add_random().unwrap(), 2);
        v.install(&keys, 2).unwrap();
        let new = v.seal("alice", Purpose::TotpSecret, b"new").unwrap();
        assert_eq!((old.key, new.key), (1, 2));
        assert_eq!(
            &v.open("alice", Purpose::TotpSecret, &old).unwrap()[..],
            b"old"
        );
        assert_eq!(
            &v.open("alice", Purpose::TotpSecret, &new).unwrap()[..],
            b"new"
        );
        // Hashes stay keyed by key 1: backup codes survive a rotation.
        assert_eq!(v.hash_code("alice", b"salt", "123").unwrap(), hash);
        // Another key with the same id is the wrong key, not a new one.
        let wrong = Sealed {
            key: 2,
            ..new.clone()
        };
        assert!(matches!(
            vault().open("alice", Purpose::TotpSecret, &wrong),
            Err(CryptoError::UnknownKey(2))
        ));
        let checks = check_values(&keys).unwrap();
        assert_eq!(checks.keys().copied().collect::<Vec<_>>(), [1, 2]);
        assert_ne!(checks[&1], checks[&2]);
        // Following the database's newest key: only the right one.
        assert!(v.follow(1, &checks[&1]).unwrap());
        assert_eq!(v.seal("a", Purpose::TotpSecret, b"x").unwrap().key, 1);
        assert!(matches!(
            v.follow(2, &checks[&1]),
            Err(CryptoError::KeyDiffers(2))
        ));
        assert!(matches!(
            v.follow(3, &checks[&1]),
            Err(CryptoError::UnknownKey(3))
        ));
        assert!(v.follow(2, &checks[&2]).unwrap());
        assert!(!v.follow(2, &checks[&2]).unwrap());
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
        let last = sealed.bytes.len() - 1;
        sealed.bytes[last] ^= 1;
        assert!(v.open("alice", Purpose::TotpSecret, &sealed).is_err());
        sealed.bytes.truncate(5);
        assert!(v.open("alice", Purpose::TotpSecret, &sealed).is_err());
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
