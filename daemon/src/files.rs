//! Start-up checks and creation of the files that hold secrets.
//!
//! The daemon refuses to run, naming the path, the problem and the fix, when
//! the key or the database can be read by anyone but its owner.

use crate::config::SecretSource;
use crate::store::crypto::{KEY_LEN, random_bytes};
use mfad_protocol::SecretString;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use thiserror::Error;
use zeroize::Zeroizing;

#[derive(Debug, Error)]
pub enum FileError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "{path} is readable or writable by group or others (mode {mode:04o}); run `chmod {fix:04o} {path}`"
    )]
    TooOpen { path: PathBuf, mode: u32, fix: u32 },
    #[error("{path} is owned by uid {owner}, but mfad runs as uid {me}; run `chown {me} {path}`")]
    WrongOwner { path: PathBuf, owner: u32, me: u32 },
    #[error("{path} is not a regular file")]
    NotAFile { path: PathBuf },
    #[error(
        "{path} holds {len} bytes; a key is exactly {KEY_LEN} random bytes. Restore the right key from backup: without it the stored secrets cannot be read"
    )]
    KeyLength { path: PathBuf, len: u64 },
    #[error(
        "the systemd credential {name:?} is configured, but $CREDENTIALS_DIRECTORY is not set; \
         add `LoadCredential={name}:/path/to/file` to the mfad unit, or use a file path instead"
    )]
    NoCredentialsDirectory { name: String },
    #[error("{path} is empty or longer than 4096 bytes; it must hold the secret alone")]
    BadSecret { path: PathBuf },
    #[error("cannot create the key {path}: {source}")]
    Random {
        path: PathBuf,
        source: crate::store::crypto::CryptoError,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> FileError + '_ {
    move |source| FileError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Refuses a file that others can read or that belongs to someone else.
pub fn check_private(path: &Path, fix_mode: u32) -> Result<(), FileError> {
    let meta = fs::symlink_metadata(path).map_err(io_err(path))?;
    if !meta.file_type().is_file() {
        return Err(FileError::NotAFile {
            path: path.to_owned(),
        });
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return Err(FileError::WrongOwner {
            path: path.to_owned(),
            owner: meta.uid(),
            me,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(FileError::TooOpen {
            path: path.to_owned(),
            mode,
            fix: fix_mode,
        });
    }
    Ok(())
}

/// The longest secret (an API token, a password) read from a file.
const MAX_SECRET: u64 = 4096;

/// Reads a provider secret from its file, or from
/// `$CREDENTIALS_DIRECTORY/<name>` (systemd `LoadCredential=`). The file
/// must be private to mfad, as the key is; one trailing newline is dropped.
pub fn read_secret(source: &SecretSource) -> Result<SecretString, FileError> {
    let path = match source {
        SecretSource::File(path) => path.clone(),
        SecretSource::Credential(name) => match std::env::var_os("CREDENTIALS_DIRECTORY") {
            Some(dir) => Path::new(&dir).join(name),
            None => return Err(FileError::NoCredentialsDirectory { name: name.clone() }),
        },
    };
    check_private(&path, 0o600)?;
    let mut file = fs::File::open(&path).map_err(io_err(&path))?;
    let mut text = Zeroizing::new(String::new());
    Read::take(&mut file, MAX_SECRET + 1)
        .read_to_string(&mut text)
        .map_err(io_err(&path))?;
    let secret = text.strip_suffix('\n').unwrap_or(&text);
    let secret = secret.strip_suffix('\r').unwrap_or(secret);
    if secret.is_empty() || text.len() as u64 > MAX_SECRET {
        return Err(FileError::BadSecret { path });
    }
    Ok(SecretString::new(secret))
}

/// Reads the 32-byte key, creating it (mode 0400) on first start.
pub fn load_or_create_key(path: &Path) -> Result<Zeroizing<[u8; KEY_LEN]>, FileError> {
    match fs::symlink_metadata(path) {
        Ok(_) => read_key(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => create_key(path),
        Err(e) => Err(FileError::Io {
            path: path.to_owned(),
            source: e,
        }),
    }
}

fn read_key(path: &Path) -> Result<Zeroizing<[u8; KEY_LEN]>, FileError> {
    check_private(path, 0o400)?;
    let mut file = fs::File::open(path).map_err(io_err(path))?;
    let len = file.metadata().map_err(io_err(path))?.len();
    if len != KEY_LEN as u64 {
        return Err(FileError::KeyLength {
            path: path.to_owned(),
            len,
        });
    }
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    file.read_exact(key.as_mut_slice()).map_err(io_err(path))?;
    Ok(key)
}

fn create_key(path: &Path) -> Result<Zeroizing<[u8; KEY_LEN]>, FileError> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    let key = random_bytes::<KEY_LEN>().map_err(|source| FileError::Random {
        path: path.to_owned(),
        source,
    })?;
    // create_new: two daemons racing on first start cannot both write a key.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o400)
        .open(path)
        .map_err(io_err(path))?;
    file.write_all(key.as_slice()).map_err(io_err(path))?;
    file.sync_all().map_err(io_err(path))?;
    if let Some(parent) = path.parent() {
        fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(io_err(parent))?;
    }
    log::info!("created a new key at {}", path.display());
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn key_is_created_private_and_reread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/mfad.key");
        let k1 = load_or_create_key(&path).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o400);
        let k2 = load_or_create_key(&path).unwrap();
        assert_eq!(*k1, *k2);
    }

    #[test]
    fn readable_key_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mfad.key");
        load_or_create_key(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o444)).unwrap();
        let err = load_or_create_key(&path).unwrap_err().to_string();
        assert!(err.contains("chmod 0400"), "{err}");
    }

    #[test]
    fn secrets_must_be_private_and_lose_one_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        fs::write(&path, "s3cret\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let source = SecretSource::File(path.clone());
        let err = read_secret(&source).unwrap_err().to_string();
        assert!(err.contains("chmod 0600"), "{err}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_secret(&source).unwrap().expose(), "s3cret");
        fs::write(&path, "\n").unwrap();
        assert!(matches!(
            read_secret(&source),
            Err(FileError::BadSecret { .. })
        ));
    }

    #[test]
    fn short_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mfad.key");
        fs::write(&path, b"short").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
        assert!(matches!(
            load_or_create_key(&path),
            Err(FileError::KeyLength { len: 5, .. })
        ));
    }
}
