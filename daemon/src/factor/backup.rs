//! Backup codes: a set issued at TOTP enrollment, shown once, stored only as
//! salted keyed hashes, each accepted once.

pub use super::hashed::Stored;
use crate::store::crypto::{CryptoError, Vault, random_bytes};
use zeroize::Zeroizing;

/// 32 letters and digits without the look-alikes 0/o, 1/l: 5 bits a character.
const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";

/// `count` new codes of `length` characters, shown grouped (`abcde-fghij`),
/// and what to store for each.
pub fn generate(
    vault: &Vault,
    user: &str,
    count: u32,
    length: usize,
) -> Result<Vec<(Zeroizing<String>, Stored)>, CryptoError> {
    (0..count)
        .map(|_| {
            let mut code = Zeroizing::new(String::with_capacity(length + length / 5));
            let random = random_bytes::<64>()?;
            for (i, byte) in random.iter().take(length).enumerate() {
                if i > 0 && i % 5 == 0 {
                    code.push('-');
                }
                code.push(char::from(ALPHABET[usize::from(byte & 31)]));
            }
            let stored = Stored::new(vault, user, &code)?;
            Ok((code, stored))
        })
        .collect()
}

/// The id of the unused code `typed` matches, checking every candidate so
/// the time taken does not depend on which one (if any) matched.
pub fn find(
    vault: &Vault,
    user: &str,
    typed: &str,
    candidates: &[(i64, Stored)],
) -> Result<Option<i64>, CryptoError> {
    let mut found = None;
    for (id, stored) in candidates {
        if stored.matches(vault, user, typed)? && found.is_none() {
            found = Some(*id);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault() -> Vault {
        Vault::random()
    }

    #[test]
    fn generated_codes_verify_once_each_and_only_for_their_user() {
        let v = vault();
        let codes = generate(&v, "alice", 10, 10).unwrap();
        assert_eq!(codes.len(), 10);
        let stored: Vec<(i64, Stored)> = codes
            .iter()
            .enumerate()
            .map(|(i, (_, s))| (i as i64, s.clone()))
            .collect();
        for (i, (code, _)) in codes.iter().enumerate() {
            assert_eq!(code.len(), 11, "{}", code.as_str());
            assert!(
                code.chars()
                    .all(|c| c == '-' || ALPHABET.contains(&(c as u8)))
            );
            assert_eq!(find(&v, "alice", code, &stored).unwrap(), Some(i as i64));
            assert_eq!(
                find(&v, "alice", &code.to_uppercase().replace('-', " "), &stored).unwrap(),
                Some(i as i64)
            );
            assert_eq!(find(&v, "bob", code, &stored).unwrap(), None);
        }
        assert_eq!(find(&v, "alice", "aaaaa-aaaaa", &stored).unwrap(), None);
        assert_eq!(
            find(&vault(), "alice", &codes[0].0, &stored).unwrap(),
            None,
            "another key"
        );
    }

    #[test]
    fn codes_differ_and_salts_differ() {
        let v = vault();
        let codes = generate(&v, "alice", 20, 10).unwrap();
        let mut seen = std::collections::HashSet::new();
        for (code, stored) in &codes {
            assert!(seen.insert(code.to_string()));
            assert_eq!(stored.salt.len(), 16);
        }
    }
}
