//! Running commands, as root or as real peers of other uids (util-linux
//! `setpriv`), with some input on stdin; and connecting to a socket as
//! another uid from within the test process.

use std::ffi::OsStr;
use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

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

/// Runs `cmd` (stdin empty) and collects its output; kills it and panics
/// if it has not exited within `timeout`.
pub fn output_within(cmd: &mut Command, timeout: Duration) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid fits i32"));
    let (tx, rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(timeout) {
        Ok(out) => out,
        Err(_) => {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let out = rx.recv().ok().and_then(Result::ok);
            let _ = waiter.join();
            panic!(
                "{cmd:?} was still running after {timeout:?}; killed it. {}",
                out.as_ref().map(super::show).unwrap_or_default()
            );
        }
    };
    let _ = waiter.join();
    out.unwrap_or_else(|e| panic!("wait for {cmd:?}: {e}"))
}

/// Connects to the Unix stream socket `path` as `uid`:`gid` with no
/// supplementary groups, for tests that need many connections of a non-root
/// peer held open (a process per connection through `setpriv` would not do).
///
/// A short-lived thread drops to those ids with the raw setgroups,
/// setresgid and setresuid system calls and connects. On Linux credentials
/// belong to a thread (glibc's wrappers make a change process-wide by
/// signalling every thread; the raw calls do not), and SO_PEERCRED records
/// the credentials of the thread that called connect(2): the daemon sees a
/// real peer of that uid, while the rest of the test process stays root.
/// The stream can then be used, and closed, from any thread.
pub fn connect_as(uid: u32, gid: u32, path: &Path) -> io::Result<UnixStream> {
    let path = path.to_owned();
    std::thread::spawn(move || {
        let check = |rc: libc::c_long| {
            if rc == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        };
        let (uid, gid) = (libc::c_long::from(uid), libc::c_long::from(gid));
        // SAFETY: raw system calls with integer arguments (and an empty group
        // list): they change only this thread's credentials, and the thread
        // ends after the connect below.
        unsafe {
            check(libc::syscall(
                libc::SYS_setgroups,
                0,
                std::ptr::null::<libc::gid_t>(),
            ))?;
            check(libc::syscall(libc::SYS_setresgid, gid, gid, gid))?;
            check(libc::syscall(libc::SYS_setresuid, uid, uid, uid))?;
        }
        UnixStream::connect(&path)
    })
    .join()
    .expect("the connecting thread panicked")
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

    #[test]
    fn connect_as_gives_the_peer_those_ids_and_leaves_the_process_root() {
        use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let path = dir.path().join("s.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .unwrap();
        let _client = connect_as(65534, 65534, &path).unwrap();
        let (server, _) = listener.accept().unwrap();
        let cred = getsockopt(&server, PeerCredentials).unwrap();
        assert_eq!((cred.uid(), cred.gid()), (65534, 65534));
        assert!(nix::unistd::geteuid().is_root());
        assert!(nix::unistd::getuid().is_root());
    }

    #[test]
    fn output_within_kills_a_command_that_hangs() {
        let out = output_within(Command::new("true").arg("x"), Duration::from_secs(5));
        assert!(out.status.success());
        let hung = std::panic::catch_unwind(|| {
            output_within(Command::new("sleep").arg("30"), Duration::from_millis(200))
        });
        assert!(hung.is_err());
    }
}
