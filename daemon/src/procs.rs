//! What the kernel says about processes: the audit session id and login uid
//! that pam_loginuid gives a login and every process it starts, and the
//! boot id that tells sessions of this boot from older ones (session ids
//! start again from 1 at every boot).

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::time::Duration;

/// The kernel's "not set" value for both ids.
const UNSET: u32 = u32::MAX;

/// Reads a decimal id file of /proc. Every connection reads two, so one
/// read into a small buffer (no size query, no second read to see the end).
fn read_id(path: &str) -> Option<u32> {
    use std::io::Read;
    // "4294967295" and a newline: 11 bytes; a longer file is no id.
    let mut buf = [0u8; 16];
    let n = std::fs::File::open(path).ok()?.read(&mut buf).ok()?;
    let text = std::str::from_utf8(buf.get(..n)?).ok()?;
    text.trim().parse::<u32>().ok().filter(|&id| id != UNSET)
}

/// The audit session id of `pid`, if it has one.
pub fn audit_session(pid: i32) -> Option<u32> {
    read_id(&format!("/proc/{pid}/sessionid"))
}

/// The login uid of `pid`, if set.
pub fn loginuid(pid: i32) -> Option<u32> {
    read_id(&format!("/proc/{pid}/loginuid"))
}

/// The real uid of `pid`: for a setuid program (su, sudo) the user who
/// ran it, where the peer credentials say root.
pub fn real_uid(pid: i32) -> Option<u32> {
    use std::io::Read;
    // Every connection reads it: one read of the first page, where the Uid
    // line always is (read_to_string asks the size, then reads 32 bytes,
    // 32, 64, ... up to the end: eight calls).
    let mut buf = [0u8; 4096];
    let n = std::fs::File::open(format!("/proc/{pid}/status"))
        .ok()?
        .read(&mut buf)
        .ok()?;
    // Lossy: a process name that is not UTF-8 must not hide the line.
    let status = String::from_utf8_lossy(buf.get(..n)?);
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// This boot's id.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// Every process with an audit session, by session id.
pub fn by_session() -> BTreeMap<u32, Vec<i32>> {
    let mut out: BTreeMap<u32, Vec<i32>> = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if let Some(sid) = audit_session(pid) {
            out.entry(sid).or_default().push(pid);
        }
    }
    out
}

/// Writes `line` to the terminal of audit session `sid`, if one of its
/// processes has one open (sshd's session has the pty as its standard
/// streams). Best effort: never blocks, and a session without a terminal
/// hears nothing. Returns whether the line was written.
pub fn tell_session(sid: u32, line: &str) -> bool {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let Some(tty) = by_session()
        .remove(&sid)
        .unwrap_or_default()
        .into_iter()
        .flat_map(|pid| (0..3).map(move |fd| format!("/proc/{pid}/fd/{fd}")))
        .filter_map(|link| std::fs::read_link(link).ok())
        .find(|path| path.starts_with("/dev/pts/") || path.starts_with("/dev/tty"))
    else {
        return false;
    };
    // Names in the line come from the store and the country database: no
    // control character reaches the terminal.
    let line: String = line
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    let flags = nix::fcntl::OFlag::O_NOCTTY | nix::fcntl::OFlag::O_NONBLOCK;
    let written = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(flags.bits())
        .open(&tty)
        .and_then(|mut t| t.write_all(format!("\r\n{line}\r\n").as_bytes()));
    if let Err(e) = &written {
        log::warn!(
            "cannot write to {} of audit session {sid}: {e}",
            tty.display()
        );
    }
    written.is_ok()
}

/// Ends every process of audit session `sid`: SIGTERM (sshd then closes
/// the connection and its PAM session), and SIGKILL for whatever is still
/// there after `grace`. Never signals this process. Returns how many
/// processes there were; the `Err` is the first signal that failed (no
/// CAP_KILL, typically).
pub async fn end_session(sid: u32, grace: Duration) -> Result<usize, nix::Error> {
    let me = std::process::id() as i32;
    let pids = |sid| -> Vec<i32> {
        by_session()
            .remove(&sid)
            .unwrap_or_default()
            .into_iter()
            .filter(|&p| p != me && p > 1)
            .collect()
    };
    let first = pids(sid);
    let mut failure = None;
    for &pid in &first {
        if let Err(e) = kill(Pid::from_raw(pid), Signal::SIGTERM)
            && e != nix::Error::ESRCH
        {
            failure.get_or_insert(e);
        }
    }
    let step = Duration::from_millis(50);
    let mut waited = Duration::ZERO;
    while waited < grace && !pids(sid).is_empty() {
        tokio::time::sleep(step).await;
        waited += step;
    }
    for pid in pids(sid) {
        if let Err(e) = kill(Pid::from_raw(pid), Signal::SIGKILL)
            && e != nix::Error::ESRCH
        {
            failure.get_or_insert(e);
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(first.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_of_this_process_parse_or_are_unset() {
        let me = std::process::id() as i32;
        // Unset (u32::MAX) reads as None; anything else is a number.
        let raw = std::fs::read_to_string(format!("/proc/{me}/sessionid")).unwrap();
        let raw: u32 = raw.trim().parse().unwrap();
        assert_eq!(audit_session(me), (raw != UNSET).then_some(raw));
        assert_eq!(audit_session(-5), None);
        assert_eq!(boot_id().len(), 36);
    }
}
