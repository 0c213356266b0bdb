//! Where the binaries under test live.

use std::path::{Path, PathBuf};

/// The cargo target directory holding `mfad`, `mfactl` and `libpam_mfa.so`:
/// `$MFAD_TARGET_DIR` if set, else `<workspace>/target/debug`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("MFAD_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("target")
            .join("debug"),
    }
}

/// The absolute path of an artifact in [`target_dir`]; panics if it is
/// missing, since `cargo test -p mfad-tests` does not build other packages.
pub fn artifact(name: &str) -> PathBuf {
    let path = target_dir().join(name);
    if !path.is_file() {
        panic!(
            "{} is missing: run `cargo build --workspace` first (or set MFAD_TARGET_DIR)",
            path.display()
        );
    }
    std::fs::canonicalize(&path).unwrap_or(path)
}

/// The daemon binary.
pub fn mfad() -> PathBuf {
    artifact("mfad")
}

/// The command line binary.
pub fn mfactl() -> PathBuf {
    artifact("mfactl")
}

/// The PAM module as cargo builds it.
pub fn pam_module() -> PathBuf {
    artifact("libpam_mfa.so")
}
