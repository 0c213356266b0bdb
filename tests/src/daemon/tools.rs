//! The real clients of a [`TestDaemon`]: mfactl (as root or another uid),
//! enrollment through it, and PAM service files for pam_mfa.so.

use super::{TestDaemon, run_as_with_stdin, run_with_stdin, show};
use crate::{bins, otp, pam};
use std::ffi::{OsStr, OsString};
use std::process::{Command, Output};

/// What a TOTP enrollment through mfactl showed and typed.
#[derive(Debug, Clone)]
pub struct Enrollment {
    /// Base32, as in the URI.
    pub secret: String,
    /// The `otpauth://` URI mfactl printed.
    pub uri: String,
    /// The code typed to confirm the enrollment (of the previous step).
    pub confirm_code: String,
    /// The backup codes issued with it, as mfactl showed them.
    pub backup_codes: Vec<String>,
}

impl TestDaemon {
    /// Runs the real `mfactl --socket <sock> ARGS...` as root.
    pub fn mfactl<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.mfactl_with_stdin(args, "")
    }

    /// As [`Self::mfactl`], with `input` on stdin (e.g. `--confirm-code -`).
    pub fn mfactl_with_stdin<I, S>(&self, args: I, input: &str) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(bins::mfactl());
        cmd.arg("--socket").arg(self.socket()).args(args);
        run_with_stdin(&mut cmd, input)
    }

    /// Runs the real mfactl as `uid`:`gid` with no supplementary groups.
    pub fn mfactl_as<I, S>(&self, uid: u32, gid: u32, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.mfactl_as_with_stdin(uid, gid, args, "")
    }

    /// `mfactl --json ARGS` as root, which must succeed; its JSON document.
    pub fn mfactl_json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.mfactl([&["--json"][..], args].concat());
        assert!(out.status.success(), "mfactl {args:?}: {}", show(&out));
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("mfactl --json {args:?}: {e}: {}", show(&out)))
    }

    /// The whole audit log through `mfactl --json audit` as root, most
    /// recent first: one JSON object per row.
    pub fn audit_rows(&self) -> Vec<serde_json::Value> {
        let doc = self.mfactl_json(&["audit", "--limit", "10000"]);
        doc["rows"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| panic!("no rows in {doc}"))
    }

    /// As [`Self::mfactl_as`], with `input` on stdin.
    pub fn mfactl_as_with_stdin<I, S>(&self, uid: u32, gid: u32, args: I, input: &str) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut all: Vec<OsString> = vec!["--socket".into(), self.socket().into()];
        all.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        run_as_with_stdin(uid, gid, &bins::mfactl(), all, input)
    }

    /// The TOTP code of `secret` at `offset_steps` from now, by oathtool,
    /// with this daemon's algorithm, digits and period.
    pub fn totp_code(&self, secret: &str, offset_steps: i64) -> String {
        let t = &self.config.totp;
        let steps = offset_steps * t.period as i64;
        let at = otp::now_unix() as i64 + self.config.clock_offset_secs + steps;
        otp::oathtool_totp_at(secret, &t.algorithm, t.digits, t.period, at as u64)
    }

    /// Enrolls `user` in TOTP through the real mfactl as root
    /// (`enroll totp --user U --print-uri`, then `--confirm-code -` with the
    /// code on stdin) and returns the secret.
    ///
    /// The enrollment is confirmed with the code of the PREVIOUS time step
    /// (accepted with window = 1), so that the current and the next step are
    /// still unused afterwards, whether or not the daemon counts the
    /// confirmation as a use of its step. It may wait up to 3 s for a fresh
    /// step so that this holds.
    pub fn enroll_totp(&self, user: &str) -> String {
        self.enroll_totp_details(user).secret
    }

    /// As [`Self::enroll_totp`], returning everything the enrollment showed
    /// and typed: for tests that look for these where they must not be.
    pub fn enroll_totp_details(&self, user: &str) -> Enrollment {
        self.enroll_via(
            |args, input| self.mfactl_with_stdin(args, input),
            Some(user),
        )
    }

    /// As [`Self::enroll_totp`], self-service: mfactl runs as `uid`:`gid`
    /// and enrolls that account.
    pub fn enroll_totp_as(&self, uid: u32, gid: u32) -> String {
        self.enroll_via(
            |args, input| self.mfactl_as_with_stdin(uid, gid, args, input),
            None,
        )
        .secret
    }

    fn enroll_via(
        &self,
        mfactl: impl Fn(&[&str], &str) -> Output,
        user: Option<&str>,
    ) -> Enrollment {
        let who: Vec<&str> = user.map(|u| vec!["--user", u]).unwrap_or_default();
        // Test accounts are names only: --force enrolls them all the same.
        let force: &[&str] = if user.is_some() { &["--force"] } else { &[] };
        let args = [&["enroll", "totp"][..], &who, force, &["--print-uri"]].concat();
        let out = mfactl(&args, "");
        assert!(out.status.success(), "mfactl {args:?}: {}", show(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let uri = stdout
            .split_whitespace()
            .find(|w| w.starts_with("otpauth://"))
            .unwrap_or_else(|| panic!("no otpauth:// URI in the output: {}", show(&out)))
            .to_owned();
        let secret = otp::secret_from_uri(&uri);
        otp::wait_for_fresh_step(self.config.totp.period, 3);
        let code = self.totp_code(&secret, -1);
        // "-": the code comes on stdin, never in argv.
        let args = [&["enroll", "totp"][..], &who, &["--confirm-code", "-"]].concat();
        let out = mfactl(&args, &format!("{code}\n"));
        assert!(out.status.success(), "mfactl {args:?}: {}", show(&out));
        // The codes are the indented lines after the warning.
        let backup_codes = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("  "))
            .map(|c| c.trim().to_owned())
            .collect();
        Enrollment {
            secret,
            uri,
            confirm_code: code,
            backup_codes,
        }
    }

    /// `mfactl KIND set DESTINATION --user USER --verified --force` as
    /// root: a verified phone number (`phone`) or email address (`email`),
    /// for an account that may be a name only.
    pub fn set_contact(&self, user: &str, kind: &str, destination: &str) {
        let out = self.mfactl([
            kind,
            "set",
            destination,
            "--user",
            user,
            "--verified",
            "--force",
        ]);
        assert!(out.status.success(), "mfactl {kind} set: {}", show(&out));
    }

    /// The arguments after `auth required` for this daemon's module:
    /// `<abs path of libpam_mfa.so> socket=<sock> ARGS...`.
    pub fn module_line(&self, args: &[&str]) -> String {
        let mut line = format!(
            "{} socket={}",
            bins::pam_module().display(),
            self.socket().display()
        );
        for arg in args {
            line.push(' ');
            line.push_str(arg);
        }
        line
    }

    /// Writes `pam.d/<service>` running pam_mfa.so against this daemon.
    pub fn write_pam_service(&self, service: &str, args: &[&str]) {
        let socket = format!("socket={}", self.socket().display());
        let mut all = vec![socket.as_str()];
        all.extend_from_slice(args);
        pam::write_service(&self.pam_confdir(), service, &bins::pam_module(), &all)
            .expect("write the PAM service file");
    }

    /// Writes `pam.d/<service>` with a whole stack of PAM lines.
    pub fn write_pam_stack(&self, service: &str, stack: &str) {
        pam::write_stack(&self.pam_confdir(), service, stack).expect("write the PAM stack");
    }

    /// A PAM handle for `service` (written by [`Self::write_pam_service`]).
    pub fn pam(&self, service: &str, user: &str, answers: Vec<String>) -> pam::PamSession {
        pam::PamSession::start(&self.pam_confdir(), service, user, answers)
    }
}
