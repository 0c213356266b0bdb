//! Where the binaries under test live.

use std::path::PathBuf;

/// The cargo target directory holding `mfad`, `mfactl` and `libpam_mfa.so`:
/// `$MFAD_TARGET_DIR` if set, else the one this test program was built in
/// (`<target>/<profile>`, its own directory or the parent of `deps/`), so a
/// `CARGO_TARGET_DIR` elsewhere never leaves the tests on stale binaries.
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MFAD_TARGET_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("the path of the test program");
    let dir = exe.parent().expect("the test program's directory");
    if dir.ends_with("deps") {
        dir.parent().unwrap_or(dir).to_path_buf()
    } else {
        dir.to_path_buf()
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
