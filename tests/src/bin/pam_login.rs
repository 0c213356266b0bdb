//! `pam_login CONFDIR SERVICE USER`: one `pam_authenticate` through the real
//! libpam, with the service file CONFDIR/SERVICE (`pam_start_confdir`), for
//! shell tests such as scripts/test-packages, which checks the module a
//! package installed.
//!
//! The answers to the prompts come from stdin, one line per prompt in order
//! (never from argv, where other users could read them). Prints what the
//! stack showed and libpam's verdict on stdout, and exits with the PAM
//! return code (0 is PAM_SUCCESS, 7 PAM_AUTH_ERR, ...).

use mfad_tests::pam::{self, PamSession};
use std::io::BufRead;
use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [confdir, service, user] = args.as_slice() else {
        eprintln!("usage: pam_login CONFDIR SERVICE USER  (answers on stdin, one per line)");
        return ExitCode::from(2);
    };
    let answers: Vec<String> = match std::io::stdin().lock().lines().collect() {
        Ok(lines) => lines,
        Err(e) => {
            eprintln!("pam_login: cannot read the answers from stdin: {e}");
            return ExitCode::from(2);
        }
    };
    let mut session = match PamSession::try_start(Path::new(confdir), service, user, answers) {
        Ok(session) => session,
        Err(rc) => {
            println!("pam_start_confdir: {rc} {}", pam::strerror(rc));
            return ExitCode::from(u8::try_from(rc).unwrap_or(u8::MAX));
        }
    };
    let (rc, transcript) = session.authenticate(0);
    print!("{transcript}");
    println!("pam_authenticate: {rc} {}", pam::strerror(rc));
    ExitCode::from(u8::try_from(rc).unwrap_or(u8::MAX))
}
