//! Temporary local users, for tests that need a non-root uid other than
//! `nobody` (65534): `useradd --system --no-create-home` on create,
//! `userdel` on drop. Prefer `nobody` wherever any non-root uid will do.

use std::process::Command;
use std::time::Duration;

/// The uid and gid of `nobody`/`nogroup` on Debian.
pub const NOBODY_UID: u32 = 65534;
pub const NOGROUP_GID: u32 = 65534;

/// A system user that exists until this value is dropped.
#[derive(Debug)]
pub struct TempUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// Runs a shadow-utils command, retrying while another process holds the
/// passwd/group locks (tests run in parallel).
fn shadow_tool(program: &str, args: &[&str]) -> Result<(), String> {
    let mut last = String::new();
    for _ in 0..50 {
        let out = Command::new(program)
            .args(args)
            .output()
            .map_err(|e| format!("cannot run {program}: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        last = String::from_utf8_lossy(&out.stderr).into_owned();
        // useradd/userdel exit 10 (E_PW_UPDATE / cannot lock) on contention;
        // userdel exits 8 while processes it was asked to outlive still exit.
        let busy = last.contains("lock") || matches!(out.status.code(), Some(8 | 10));
        if !busy {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("{program} {args:?} failed: {last}"))
}

impl TempUser {
    /// Creates `mfadt-<random>` with its own group, no home and no shell.
    pub fn create() -> TempUser {
        Self::create_with(&["--no-create-home", "--shell", "/usr/sbin/nologin"])
    }

    /// A user who can log in: shell `/bin/sh` and a home directory (0700,
    /// theirs) under `base`, which the caller removes.
    pub fn create_login(base: &std::path::Path) -> TempUser {
        let mut rnd = [0u8; 4];
        getrandom(&mut rnd);
        let home = base.join(format!("home-{:08x}", u32::from_be_bytes(rnd)));
        let home_arg = home.to_string_lossy().into_owned();
        let user = Self::create_with(&[
            "--no-create-home",
            "--shell",
            "/bin/sh",
            "--home-dir",
            &home_arg,
        ]);
        std::fs::create_dir_all(&home).expect("create the home directory");
        nix::unistd::chown(
            &home,
            Some(nix::unistd::Uid::from_raw(user.uid)),
            Some(nix::unistd::Gid::from_raw(user.gid)),
        )
        .expect("chown the home directory");
        user
    }

    fn create_with(options: &[&str]) -> TempUser {
        crate::require_root();
        let mut rnd = [0u8; 4];
        getrandom(&mut rnd);
        let name = format!("mfadt-{:08x}", u32::from_be_bytes(rnd));
        let mut args = vec![
            "--system",
            "--user-group",
            "--comment",
            "mfad end-to-end test user",
        ];
        args.extend_from_slice(options);
        args.push(&name);
        shadow_tool("useradd", &args).unwrap_or_else(|e| panic!("{e}"));
        let user = nix::unistd::User::from_name(&name)
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("{name} was created but cannot be looked up"));
        TempUser {
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
            name,
        }
    }
}

impl Drop for TempUser {
    fn drop(&mut self) {
        // userdel refuses a user with processes (a shell a failed test left
        // behind): end them first, so no user outlives its test.
        let _ = Command::new("pkill")
            .args(["-KILL", "-u", &self.uid.to_string()])
            .status();
        if let Err(e) = shadow_tool("userdel", &[&self.name]) {
            eprintln!("warning: could not remove the test user {}: {e}", self.name);
        }
    }
}

impl TempUser {
    /// Sets the user's password (`chpasswd`), for PAM stacks with pam_unix.
    pub fn set_password(&self, password: &str) {
        let out = crate::daemon::run_with_stdin(
            &mut Command::new("chpasswd"),
            &format!("{}:{password}\n", self.name),
        );
        assert!(
            out.status.success(),
            "chpasswd for {}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Adds this user to `group` as a supplementary member.
    pub fn join(&self, group: &TempGroup) {
        shadow_tool("usermod", &["-aG", &group.name, &self.name]).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// A system group that exists until this value is dropped.
#[derive(Debug)]
pub struct TempGroup {
    pub name: String,
}

impl TempGroup {
    /// Creates `<prefix>-<random>`.
    pub fn create(prefix: &str) -> TempGroup {
        crate::require_root();
        let name = unique_name(prefix);
        shadow_tool("groupadd", &["--system", &name]).unwrap_or_else(|e| panic!("{e}"));
        TempGroup { name }
    }
}

impl Drop for TempGroup {
    fn drop(&mut self) {
        if let Err(e) = shadow_tool("groupdel", &[&self.name]) {
            eprintln!(
                "warning: could not remove the test group {}: {e}",
                self.name
            );
        }
    }
}

/// A few random bytes from the kernel, without another dependency.
fn getrandom(buf: &mut [u8]) {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .expect("read /dev/urandom");
}

/// A name unique to this process and call, for users that exist only in the
/// daemon's database (no system account).
pub fn unique_name(prefix: &str) -> String {
    let mut rnd = [0u8; 4];
    getrandom(&mut rnd);
    format!("{prefix}-{:08x}", u32::from_be_bytes(rnd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_user_exists_until_dropped() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let user = TempUser::create();
        assert_ne!(user.uid, 0);
        assert_ne!(user.uid, NOBODY_UID);
        let name = user.name.clone();
        assert!(nix::unistd::User::from_name(&name).unwrap().is_some());
        drop(user);
        assert!(nix::unistd::User::from_name(&name).unwrap().is_none());
        assert!(nix::unistd::Group::from_name(&name).unwrap().is_none());
    }
}
