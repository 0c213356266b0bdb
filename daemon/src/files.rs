//! Start-up checks of every file mfad trusts, and creation of the key.
//!
//! Whoever can write the configuration, the policy, the key or a provider
//! secret decides who needs MFA or reads every stored secret; so can whoever
//! can replace one of their directories. One checker, [`check_trusted`],
//! serves every such file, and the daemon refuses to run, naming the path,
//! the problem and the fix, when:
//!
//! - the file, or any directory up to `/`, is a symbolic link (use the real
//!   path instead);
//! - any of them is owned by anyone but root (or mfad's own user, which is
//!   root in production);
//! - any of them is writable by group or others. The one exception is a
//!   directory with the sticky bit owned by root, such as `/tmp`: there
//!   nobody but root can remove or rename what root owns (as sudo-rs
//!   accepts). The socket's own directory gets no such exception
//!   ([`check_socket_dir`]): anyone could squat the socket path in it;
//! - a file holding a secret (the key, a provider secret, the database) can
//!   be read by group or others.

use crate::config::SecretSource;
use crate::store::crypto::{KEY_LEN, KeyRing, MAX_KEYS};
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
    #[error(
        "{path} is writable by group or others (mode {mode:04o}), so they could change what mfad trusts; run `chmod go-w {path}`"
    )]
    Writable { path: PathBuf, mode: u32 },
    #[error(
        "{path} is owned by uid {owner}, but mfad trusts only files and directories of root (or its own user, uid {me}); run `chown {me} {path}`"
    )]
    WrongOwner { path: PathBuf, owner: u32, me: u32 },
    #[error(
        "{path} is a symbolic link; mfad trusts only real paths (a link can be pointed elsewhere): name {target} in the configuration instead"
    )]
    Symlink { path: PathBuf, target: String },
    #[error("{path} is not a regular file")]
    NotAFile { path: PathBuf },
    #[error("{path} is not a directory")]
    NotADirectory { path: PathBuf },
    #[error(
        "{path} is not a socket; mfad never removes anything but a stale socket of its own: move it away, or choose another `socket` path"
    )]
    NotASocket { path: PathBuf },
    #[error(
        "{path} holds {len} bytes; a key file is one or more keys of exactly {KEY_LEN} random bytes each (at most {MAX_KEYS}). Restore the right key file from backup: without it the stored secrets cannot be read"
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

/// Who besides mfad may read a trusted file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// Anyone (the configuration, the policy).
    Anyone,
    /// Nobody else: the file holds a secret; `fix` is the mode to suggest.
    OwnerOnly { fix: u32 },
}

/// Whether a group- or world-writable directory may be trusted because it
/// is sticky and root's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sticky {
    Allowed,
    Refused,
}

/// Refuses a file that mfad must not trust (see the module header): a
/// symlink, someone else's, writable by others, readable by others when it
/// holds a secret, or in a directory that any of these apply to.
pub fn check_trusted(path: &Path, reading: Reading) -> Result<(), FileError> {
    let path = std::path::absolute(path).map_err(io_err(path))?;
    let meta = fs::symlink_metadata(&path).map_err(io_err(&path))?;
    check_not_symlink(&path, &meta)?;
    if !meta.file_type().is_file() {
        return Err(FileError::NotAFile { path });
    }
    check_owner(&path, &meta)?;
    let mode = meta.mode() & 0o7777;
    match reading {
        Reading::OwnerOnly { fix } if mode & 0o077 != 0 => {
            return Err(FileError::TooOpen { path, mode, fix });
        }
        _ if mode & 0o022 != 0 => return Err(FileError::Writable { path, mode }),
        _ => {}
    }
    check_ancestors(&path)
}

/// As [`check_trusted`] for a file that may be absent (the policy: the
/// built-in default applies); then its directories must still be trusted,
/// or someone could put one there.
pub fn check_trusted_if_present(path: &Path, reading: Reading) -> Result<(), FileError> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => check_ancestors(path),
        _ => check_trusted(path, reading),
    }
}

/// Refuses a file that others can read or that mfad must not trust.
pub fn check_private(path: &Path, fix_mode: u32) -> Result<(), FileError> {
    check_trusted(path, Reading::OwnerOnly { fix: fix_mode })
}

/// Checks every directory above `path` (which may not exist) up to `/`.
pub fn check_ancestors(path: &Path) -> Result<(), FileError> {
    let path = std::path::absolute(path).map_err(io_err(path))?;
    for dir in path.ancestors().skip(1) {
        check_dir(dir, Sticky::Allowed)?;
    }
    Ok(())
}

/// The socket's directory: root's, not writable by others even if sticky
/// (anyone could squat the socket path in it), and trusted up to `/`.
pub fn check_socket_dir(dir: &Path) -> Result<(), FileError> {
    let dir = std::path::absolute(dir).map_err(io_err(dir))?;
    check_dir(&dir, Sticky::Refused)?;
    check_ancestors(&dir)
}

fn check_dir(dir: &Path, sticky: Sticky) -> Result<(), FileError> {
    let meta = fs::symlink_metadata(dir).map_err(io_err(dir))?;
    check_not_symlink(dir, &meta)?;
    if !meta.is_dir() {
        return Err(FileError::NotADirectory {
            path: dir.to_owned(),
        });
    }
    check_owner(dir, &meta)?;
    let mode = meta.mode() & 0o7777;
    let sticky_root = sticky == Sticky::Allowed && mode & 0o1000 != 0 && meta.uid() == 0;
    if mode & 0o022 != 0 && !sticky_root {
        return Err(FileError::Writable {
            path: dir.to_owned(),
            mode,
        });
    }
    Ok(())
}

fn check_not_symlink(path: &Path, meta: &fs::Metadata) -> Result<(), FileError> {
    if !meta.file_type().is_symlink() {
        return Ok(());
    }
    let target = fs::canonicalize(path).map_or_else(
        |_| "the file it points to".to_owned(),
        |p| p.display().to_string(),
    );
    Err(FileError::Symlink {
        path: path.to_owned(),
        target,
    })
}

fn check_owner(path: &Path, meta: &fs::Metadata) -> Result<(), FileError> {
    // Root can change anything anyway; mfad's own user is root in production.
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me && meta.uid() != 0 {
        return Err(FileError::WrongOwner {
            path: path.to_owned(),
            owner: meta.uid(),
            me,
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

/// Reads the key ring: `None` when there is no key file. Whether one may
/// be created then is the caller's decision (see `keys.rs`).
///
/// The file is the keys back to back, 32 bytes each, oldest first: key id
/// N is the Nth. A file of one key (every key file before rotation) is a
/// ring of key 1.
pub fn read_ring_if_present(path: &Path) -> Result<Option<KeyRing>, FileError> {
    match fs::symlink_metadata(path) {
        Ok(_) => read_ring(path).map(Some),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(FileError::Io {
            path: path.to_owned(),
            source: e,
        }),
    }
}

fn read_ring(path: &Path) -> Result<KeyRing, FileError> {
    check_private(path, 0o400)?;
    let mut file = fs::File::open(path).map_err(io_err(path))?;
    let len = file.metadata().map_err(io_err(path))?.len();
    let whole = len % KEY_LEN as u64 == 0;
    if len == 0 || !whole || len > (KEY_LEN * MAX_KEYS) as u64 {
        return Err(FileError::KeyLength {
            path: path.to_owned(),
            len,
        });
    }
    let mut keys = Vec::new();
    for _ in 0..len / KEY_LEN as u64 {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        file.read_exact(key.as_mut_slice()).map_err(io_err(path))?;
        keys.push(key);
    }
    Ok(KeyRing::new(keys))
}

/// Creates a key file of one new random key, mode 0400.
pub fn create_key(path: &Path) -> Result<KeyRing, FileError> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    check_ancestors(path)?;
    let mut ring = KeyRing::default();
    ring.add_random().map_err(|source| FileError::Random {
        path: path.to_owned(),
        source,
    })?;
    // create_new: two daemons racing on first start cannot both write a key.
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o400)
        .open(path)
        .map_err(io_err(path))?;
    write_keys(file, path, &ring)?;
    log::info!("created a new key at {}", path.display());
    Ok(ring)
}

/// Replaces the key file with `ring` atomically (a new file, 0400, synced,
/// renamed over the old one): a crash leaves the old ring or the new one,
/// never half of one.
pub fn write_ring(path: &Path, ring: &KeyRing) -> Result<(), FileError> {
    check_ancestors(path)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".new");
    let tmp = PathBuf::from(tmp);
    // A leftover of a crashed write holds no key anyone relies on.
    match fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err(&tmp)(e)),
        _ => {}
    }
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o400)
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    write_keys(file, &tmp, ring)?;
    fs::rename(&tmp, path).map_err(io_err(path))?;
    sync_parent(path)
}

fn write_keys(mut file: fs::File, path: &Path, ring: &KeyRing) -> Result<(), FileError> {
    for (_, key) in ring.keys() {
        file.write_all(key.as_slice()).map_err(io_err(path))?;
    }
    file.sync_all().map_err(io_err(path))?;
    sync_parent(path)
}

fn sync_parent(path: &Path) -> Result<(), FileError> {
    if let Some(parent) = path.parent() {
        fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(io_err(parent))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn key_is_created_private_and_reread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/mfad.key");
        assert!(read_ring_if_present(&path).unwrap().is_none());
        let mut k1 = create_key(&path).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o400);
        let k2 = read_ring_if_present(&path).unwrap().unwrap();
        let checks = |r: &KeyRing| crate::store::crypto::check_values(r).unwrap();
        assert_eq!(checks(&k1), checks(&k2));
        // Never over an existing key.
        assert!(create_key(&path).is_err());
        // A rotation's ring replaces it whole, as private.
        assert_eq!(k1.add_random().unwrap(), 2);
        write_ring(&path, &k1).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), 2 * KEY_LEN as u64);
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o400);
        let k3 = read_ring_if_present(&path).unwrap().unwrap();
        assert_eq!(k3.newest(), 2);
        assert_eq!(checks(&k3)[&1], checks(&k2)[&1]);
        assert_eq!(checks(&k3), checks(&k1));
    }

    #[test]
    fn readable_key_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mfad.key");
        create_key(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o444)).unwrap();
        let err = read_ring_if_present(&path).unwrap_err().to_string();
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

    /// A private directory for a test, 0700, in the system's temporary
    /// directory (root's and sticky, which the checker accepts above it).
    fn private_dir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    fn chmod(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_trusted_file_passes_and_every_kind_of_untrusted_one_is_named_with_its_fix() {
        let dir = private_dir();
        let conf = dir.path().join("mfad.toml");
        fs::write(&conf, "version = 1\n").unwrap();
        chmod(&conf, 0o644);
        check_trusted(&conf, Reading::Anyone).unwrap();

        chmod(&conf, 0o664);
        let err = check_trusted(&conf, Reading::Anyone).unwrap_err();
        assert!(matches!(err, FileError::Writable { .. }), "{err}");
        assert!(err.to_string().contains("chmod go-w"), "{err}");
        chmod(&conf, 0o644);

        // A directory on the way that others can write.
        let sub = dir.path().join("sub");
        fs::create_dir(&sub).unwrap();
        let inner = sub.join("policy.toml");
        fs::write(&inner, "").unwrap();
        chmod(&sub, 0o777);
        let err = check_trusted(&inner, Reading::Anyone).unwrap_err();
        assert!(
            matches!(&err, FileError::Writable { path, .. } if *path == sub),
            "{err}"
        );
        // ... is fine when sticky and root's, like /tmp.
        chmod(&sub, 0o1777);
        if nix::unistd::geteuid().is_root() {
            check_trusted(&inner, Reading::Anyone).unwrap();
        }
        chmod(&sub, 0o755);

        // A symlink, as the file or as a directory on the way.
        let link = dir.path().join("link.toml");
        std::os::unix::fs::symlink(&conf, &link).unwrap();
        let err = check_trusted(&link, Reading::Anyone).unwrap_err();
        assert!(matches!(err, FileError::Symlink { .. }), "{err}");
        assert!(
            err.to_string().contains(&conf.display().to_string()),
            "{err}"
        );
        let dir_link = dir.path().join("dirlink");
        std::os::unix::fs::symlink(&sub, &dir_link).unwrap();
        let err = check_trusted(&dir_link.join("policy.toml"), Reading::Anyone).unwrap_err();
        assert!(matches!(err, FileError::Symlink { .. }), "{err}");

        // Absent: the directories still count.
        check_trusted_if_present(&dir.path().join("absent"), Reading::Anyone).unwrap();
        chmod(&sub, 0o777);
        assert!(check_trusted_if_present(&sub.join("absent"), Reading::Anyone).is_err());
    }

    #[test]
    fn files_and_directories_of_another_user_are_refused() {
        if !nix::unistd::geteuid().is_root() {
            return; // only root can give a file away
        }
        let dir = private_dir();
        let conf = dir.path().join("mfad.toml");
        fs::write(&conf, "").unwrap();
        let other = Some(nix::unistd::Uid::from_raw(4242));
        nix::unistd::chown(&conf, other, None).unwrap();
        let err = check_trusted(&conf, Reading::Anyone).unwrap_err();
        assert!(
            matches!(err, FileError::WrongOwner { owner: 4242, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("chown 0"), "{err}");
        nix::unistd::chown(&conf, Some(nix::unistd::Uid::from_raw(0)), None).unwrap();
        nix::unistd::chown(dir.path(), other, None).unwrap();
        let err = check_trusted(&conf, Reading::Anyone).unwrap_err();
        assert!(
            matches!(err, FileError::WrongOwner { owner: 4242, .. }),
            "{err}"
        );
        // The sticky exception is for root's directories only.
        chmod(dir.path(), 0o1777);
        assert!(check_trusted(&conf, Reading::Anyone).is_err());
    }

    #[test]
    fn the_socket_directory_gets_no_sticky_exception() {
        let dir = private_dir();
        chmod(dir.path(), 0o755);
        check_socket_dir(dir.path()).unwrap();
        chmod(dir.path(), 0o1777);
        let err = check_socket_dir(dir.path()).unwrap_err();
        assert!(matches!(err, FileError::Writable { .. }), "{err}");
        chmod(dir.path(), 0o700);
    }

    #[test]
    fn short_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mfad.key");
        fs::write(&path, b"short").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
        assert!(matches!(
            read_ring_if_present(&path),
            Err(FileError::KeyLength { len: 5, .. })
        ));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(&path, [7u8; KEY_LEN + 1]).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
        assert!(matches!(
            read_ring_if_present(&path),
            Err(FileError::KeyLength { len: 33, .. })
        ));
    }
}
