//! Running commands, as root or as real peers of other uids (util-linux
//! `setpriv`), with some input on stdin.

use std::ffi::OsStr;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Runs `cmd` with `input` on its stdin and collects its output.
pub fn run_with_stdin(cmd: &mut Command, input: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        // The program may exit without reading; a broken pipe is its answer.
        let _ = stdin.write_all(input.as_bytes());
    }
    child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("wait for {cmd:?}: {e}"))
}

/// `setpriv --reuid --regid --clear-groups -- program ARGS...`
fn setpriv<I, S>(uid: u32, gid: u32, program: &Path, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new("setpriv");
    cmd.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"))
        .arg("--clear-groups")
        .arg("--")
        .arg(program)
        .args(args);
    cmd
}

/// Runs `program ARGS...` as `uid`:`gid` with no supplementary groups, and
/// returns its output.
pub fn run_as<I, S>(uid: u32, gid: u32, program: &Path, args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_as_with_stdin(uid, gid, program, args, "")
}

/// As [`run_as`], with `input` on stdin.
pub fn run_as_with_stdin<I, S>(uid: u32, gid: u32, program: &Path, args: I, input: &str) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_with_stdin(&mut setpriv(uid, gid, program, args), input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_with_the_given_ids_and_no_groups() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let out = run_as(65534, 65534, Path::new("/usr/bin/id"), ["-u"]);
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "65534");
        let out = run_as(65534, 65534, Path::new("/usr/bin/id"), ["-G"]);
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "65534");
        let out = run_as_with_stdin(65534, 65534, Path::new("/usr/bin/cat"), [""; 0], "hi");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hi");
    }
}
