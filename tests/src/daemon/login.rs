//! PAM logins against a [`TestDaemon`] and the assertions tests make on them.

use super::TestDaemon;
use crate::pam::{
    PAM_AUTH_ERR, PAM_MAXTRIES, PAM_RHOST, PAM_RUSER, PAM_SUCCESS, PAM_TTY, Responder, Transcript,
    strerror,
};

/// The remote host tests log in from unless they say otherwise.
pub const TEST_RHOST: &str = "192.0.2.10";

impl TestDaemon {
    /// One `pam_authenticate` for `user` on `service` (a file written by
    /// `write_pam_service`/`write_pam_stack`) from `rhost`, tty `ssh`.
    pub fn login(
        &self,
        service: &str,
        user: &str,
        rhost: &str,
        answers: &[&str],
    ) -> (i32, Transcript) {
        self.login_with(service, user, rhost, answers, None)
    }

    /// As [`Self::login`], with `responder` answering each prompt after
    /// the queued `answers` (a code that is sent only once asked for).
    pub fn login_with(
        &self,
        service: &str,
        user: &str,
        rhost: &str,
        answers: &[&str],
        responder: Option<Responder>,
    ) -> (i32, Transcript) {
        let answers = answers.iter().map(|a| a.to_string()).collect();
        let mut pam = self.pam(service, user, answers);
        for (item, value) in [(PAM_RHOST, rhost), (PAM_TTY, "ssh"), (PAM_RUSER, "tester")] {
            assert_eq!(pam.set_item(item, value), PAM_SUCCESS);
        }
        if let Some(r) = responder {
            pam.set_responder(r);
        }
        pam.authenticate(0)
    }

    /// Asserts a PAM result; on a mismatch shows both codes' names, the
    /// transcript and the daemon's log. Returns the transcript.
    #[track_caller]
    pub fn expect_rc(&self, got: (i32, Transcript), want: i32) -> Transcript {
        let (rc, t) = got;
        assert_eq!(
            rc,
            want,
            "got {rc} ({}), want {want} ({})\n--- transcript ---\n{t}--- mfad stderr ---\n{}",
            strerror(rc),
            strerror(want),
            self.log_text()
        );
        t
    }

    /// A well-formed code that is none of the codes valid around now
    /// (previous, current and next step).
    pub fn wrong_code(&self, secret: &str) -> String {
        let valid: Vec<String> = (-1..=1).map(|k| self.totp_code(secret, k)).collect();
        let digits = self.config.totp.digits;
        let modulus = 10u64.pow(digits);
        let mut n: u64 = valid[1].parse().expect("oathtool prints digits");
        loop {
            n = (n + modulus / 2 + 7) % modulus;
            let code = format!("{n:0width$}", width = digits as usize);
            if !valid.contains(&code) {
                return code;
            }
        }
    }

    /// Sends `wrong` as many times as the per-source lockout threshold
    /// allows. Every answer is PAM_AUTH_ERR, except that the last may
    /// already say "locked" (PAM_MAXTRIES). Returns the last transcript.
    pub fn fail_to_threshold(
        &self,
        service: &str,
        user: &str,
        rhost: &str,
        wrong: &str,
    ) -> Transcript {
        let n = self.config.lockout.threshold;
        for _ in 1..n {
            self.expect_rc(self.login(service, user, rhost, &[wrong]), PAM_AUTH_ERR);
        }
        let (rc, t) = self.login(service, user, rhost, &[wrong]);
        assert!(
            rc == PAM_AUTH_ERR || rc == PAM_MAXTRIES,
            "failure {n} of {n}: {rc} ({})\n{t}\n{}",
            strerror(rc),
            self.log_text()
        );
        t
    }
}
