//! The device a login comes from: the SSH public key that passed sshd's
//! first method, read from `SSH_AUTH_INFO_0` ("publickey <type> <base64>",
//! one line per method that passed).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use sha2::{Digest, Sha256};

/// Longest key blob accepted (an RSA-16384 key is about 2 KiB).
const MAX_BLOB: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshKey {
    pub key_type: String,
    /// The public key in SSH wire format.
    pub blob: Vec<u8>,
}

impl SshKey {
    /// "SHA256:..." as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> String {
        format!(
            "SHA256:{}",
            STANDARD_NO_PAD.encode(Sha256::digest(&self.blob))
        )
    }

    /// "ssh-ed25519 SHA256:...", for people.
    pub fn label(&self) -> String {
        format!("{} {}", self.key_type, self.fingerprint())
    }
}

/// The public key of the first `publickey` line, if there is one and it is
/// well formed: its blob must name the same key type as the line. Anything
/// else (password first, no info, garbage) is no device.
pub fn from_auth_info(info: &str) -> Option<SshKey> {
    let line = info.lines().find(|l| l.starts_with("publickey "))?;
    let mut words = line.split_ascii_whitespace().skip(1);
    let (key_type, b64) = (words.next()?, words.next()?);
    if b64.len() > MAX_BLOB * 4 / 3 + 4 {
        return None;
    }
    let blob = STANDARD.decode(b64).ok()?;
    (blob_type(&blob)? == key_type.as_bytes()).then(|| SshKey {
        key_type: key_type.to_owned(),
        blob,
    })
}

/// The key type string that starts an SSH wire-format key.
fn blob_type(blob: &[u8]) -> Option<&[u8]> {
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    blob.get(4..4usize.checked_add(len)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    // A real ed25519 public key, and its fingerprint from `ssh-keygen -lf`.
    const KEY: &str = "AAAAC3NzaC1lZDI1NTE5AAAAINLRM/3YyYkX004pw5EiYomWcf9U+0bEDvkIz0N8l69Q";

    #[test]
    fn the_first_publickey_line_is_the_device() {
        let info = format!("publickey ssh-ed25519 {KEY}\nkeyboard-interactive\n");
        let key = from_auth_info(&info).unwrap();
        assert_eq!(key.key_type, "ssh-ed25519");
        assert!(key.fingerprint().starts_with("SHA256:"));
        assert_eq!(key.fingerprint().len(), 7 + 43);
        assert!(key.label().starts_with("ssh-ed25519 SHA256:"));
    }

    #[test]
    fn no_key_or_a_malformed_one_is_no_device() {
        for info in [
            "",
            "password\n",
            "keyboard-interactive\n",
            "publickey ssh-ed25519\n",
            "publickey ssh-ed25519 !!!notbase64\n",
            // The blob says ed25519, the line says rsa.
            &format!("publickey ssh-rsa {KEY}\n"),
            "publickey ssh-ed25519 AAAA\n",
        ] {
            assert_eq!(from_auth_info(info), None, "{info:?}");
        }
    }
}
