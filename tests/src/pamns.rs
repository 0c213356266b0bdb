//! A program run as a user in a private mount namespace whose /etc/pam.d
//! is a directory of the test: for programs that call the system libpam
//! with a fixed service name (`mfactl`, `mfactl confirm --service NAME`),
//! which read /etc/pam.d and take no other directory. The host's
//! /etc/pam.d is never changed.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

pub struct PrivatePamd {
    dir: tempfile::TempDir,
}

impl Default for PrivatePamd {
    fn default() -> Self {
        Self::new()
    }
}

impl PrivatePamd {
    /// An empty pam.d (0755).
    pub fn new() -> PrivatePamd {
        crate::require_root();
        let dir = tempfile::Builder::new()
            .prefix("mfad-pamd-")
            .tempdir()
            .expect("create the pam.d directory");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod the pam.d directory");
        PrivatePamd { dir }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Writes the stack of `service`.
    pub fn write(&self, service: &str, stack: &str) {
        std::fs::write(self.dir().join(service), stack).expect("write a PAM service file");
    }

    /// `program ARGS...` as `uid`:`gid` (no supplementary groups) with
    /// this directory bound over /etc/pam.d in a mount namespace of its own.
    pub fn command<I, S>(&self, uid: u32, gid: u32, program: &Path, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(format!(
                "mount --bind {} /etc/pam.d && exec setpriv --reuid={uid} --regid={gid} \
                 --clear-groups -- \"$@\"",
                self.dir().display()
            ))
            .arg("sh")
            .arg(program)
            .args(args);
        cmd
    }
}
