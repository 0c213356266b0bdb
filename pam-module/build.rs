//! Links the unwinder into pam_mfa.so instead of depending on libgcc_s.so.1,
//! and keeps the module loaded once a process has loaded it (NODELETE).
//!
//! Rust's standard library on linux-gnu asks for `-lgcc_s` (unwinding, for
//! catch_unwind at the PAM hooks). A process that has not loaded libgcc_s
//! yet (sshd, sudo) would then load and unload it with every PAM handle:
//! about 115 µs of a `pam_start` + `pam_end` pair. Here `-lgcc_s` finds a
//! linker script first that names libgcc's static unwinder instead, the way
//! `gcc -static-libgcc` links a C++ shared library. Our unwinding never
//! crosses into another library: every hook catches its panics.

use std::path::PathBuf;

fn main() {
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if target_os != "linux" {
        return;
    }
    // libpam dlopens its modules in pam_start and dlcloses them in pam_end.
    // Marked NODELETE, pam_mfa.so stays mapped after its first pam_end, so
    // a process that opens many handles (a display manager, a PAM-backed
    // service, the benchmark) maps, relocates and unmaps it once instead of
    // every time: 64 -> 33 µs for pam_start + pam_end (pam_permit: 31). It
    // keeps no state between handles. sshd opens one handle per process and
    // pays the first load either way.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    if target_env != "gnu" {
        return;
    }
    let Some(out) = std::env::var_os("OUT_DIR").map(PathBuf::from) else {
        return;
    };
    // Without libgcc_eh.a (or the script), the module links against
    // libgcc_s.so.1 as usual: slower to load, otherwise the same.
    let Some(gcc_eh) = static_unwinder() else {
        return;
    };
    let dir = out.join("static-unwind");
    let script = format!("INPUT({})\n", gcc_eh.display());
    if std::fs::create_dir_all(&dir).is_err()
        || std::fs::write(dir.join("libgcc_s.so"), script).is_err()
    {
        return;
    }
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CC");
}

/// The C compiler's libgcc_eh.a, if it has one.
fn static_unwinder() -> Option<PathBuf> {
    let cc = std::env::var_os("CC").unwrap_or_else(|| "cc".into());
    let out = std::process::Command::new(cc)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    (out.status.success() && path.is_absolute() && path.is_file()).then_some(path)
}
