//! The application side of PAM, for mfactl: `pam_start` with a service name
//! for the calling user, a conversation on the caller's terminal
//! (/dev/tty), then `pam_authenticate` and `pam_acct_mgmt`, through the
//! system libpam and the stack the admin wrote in /etc/pam.d/SERVICE.

use nix::sys::termios::{self, LocalFlags, SetArg, SpecialCharacterIndices};
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::fs::File;
use std::io::{self, Read, Write};
use thiserror::Error;
use zeroize::Zeroizing;

const PAM_SUCCESS: c_int = 0;
const PAM_BUF_ERR: c_int = 5;
const PAM_CONV_ERR: c_int = 19;
const PAM_PROMPT_ECHO_OFF: c_int = 1;
const PAM_PROMPT_ECHO_ON: c_int = 2;
const PAM_ERROR_MSG: c_int = 3;
const PAM_TEXT_INFO: c_int = 4;
/// The longest answer read from the terminal.
const MAX_ANSWER: usize = 512;

#[repr(C)]
struct PamHandle {
    _opaque: [u8; 0],
}

#[repr(C)]
struct PamMessage {
    msg_style: c_int,
    msg: *const c_char,
}

#[repr(C)]
struct PamResponse {
    resp: *mut c_char,
    resp_retcode: c_int,
}

type ConvFn = unsafe extern "C" fn(
    c_int,
    *mut *const PamMessage,
    *mut *mut PamResponse,
    *mut c_void,
) -> c_int;

#[repr(C)]
struct PamConv {
    conv: Option<ConvFn>,
    appdata_ptr: *mut c_void,
}

#[link(name = "pam")]
unsafe extern "C" {
    fn pam_start(
        service: *const c_char,
        user: *const c_char,
        conv: *const PamConv,
        pamh: *mut *mut PamHandle,
    ) -> c_int;
    fn pam_end(pamh: *mut PamHandle, status: c_int) -> c_int;
    fn pam_authenticate(pamh: *mut PamHandle, flags: c_int) -> c_int;
    fn pam_acct_mgmt(pamh: *mut PamHandle, flags: c_int) -> c_int;
    fn pam_putenv(pamh: *mut PamHandle, name_value: *const c_char) -> c_int;
    fn pam_strerror(pamh: *mut PamHandle, errnum: c_int) -> *const c_char;
}

#[derive(Debug, Error)]
pub enum PamError {
    #[error("cannot open the terminal (/dev/tty): {0}")]
    NoTerminal(io::Error),
    #[error("{0:?} cannot be passed to PAM (it holds a NUL byte)")]
    Nul(&'static str),
    #[error("PAM service {service:?}: {step} failed: {text}")]
    Failed {
        service: String,
        step: &'static str,
        text: String,
    },
}

/// What a command asks of PAM, so tests can script it.
pub trait Authenticator {
    /// Runs the stack of `service` for `user` on the terminal; `reason`
    /// goes before every prompt and into the PAM environment as
    /// [`mfad_protocol::REASON_ENV`], where pam_mfa.so reads it.
    fn authenticate(
        &mut self,
        service: &str,
        user: &str,
        reason: Option<&str>,
    ) -> Result<(), PamError>;
}

/// The system libpam.
pub struct SystemPam;

impl Authenticator for SystemPam {
    fn authenticate(
        &mut self,
        service: &str,
        user: &str,
        reason: Option<&str>,
    ) -> Result<(), PamError> {
        let tty = File::options()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .map_err(PamError::NoTerminal)?;
        let mut term = Terminal {
            tty,
            prefix: reason.map(|r| format!("[{r}] ")).unwrap_or_default(),
        };
        let c_service = CString::new(service).map_err(|_| PamError::Nul("service"))?;
        let c_user = CString::new(user).map_err(|_| PamError::Nul("user"))?;
        let env = reason
            .map(|r| CString::new(format!("{}={r}", mfad_protocol::REASON_ENV)))
            .transpose()
            .map_err(|_| PamError::Nul("reason"))?;
        let conv = PamConv {
            conv: Some(converse),
            appdata_ptr: (&raw mut term).cast(),
        };
        let failed = |step, rc| PamError::Failed {
            service: service.to_owned(),
            step,
            text: strerror(rc),
        };
        let mut pamh: *mut PamHandle = std::ptr::null_mut();
        // SAFETY: the strings and the conversation are valid for the call;
        // libpam copies the strings and keeps the conversation pointer,
        // which (with `term`) outlives the handle, ended below.
        let rc = unsafe { pam_start(c_service.as_ptr(), c_user.as_ptr(), &conv, &mut pamh) };
        if rc != PAM_SUCCESS || pamh.is_null() {
            return Err(failed("pam_start", rc));
        }
        let mut rc = match &env {
            // SAFETY: pamh is live; libpam copies the string.
            Some(env) => unsafe { pam_putenv(pamh, env.as_ptr()) },
            None => PAM_SUCCESS,
        };
        let mut step = "pam_putenv";
        if rc == PAM_SUCCESS {
            step = "authentication";
            // SAFETY: pamh is live; the conversation's data is `term`.
            rc = unsafe { pam_authenticate(pamh, 0) };
        }
        if rc == PAM_SUCCESS {
            step = "account check";
            // SAFETY: as above.
            rc = unsafe { pam_acct_mgmt(pamh, 0) };
        }
        // SAFETY: pamh is live and ended exactly once, here.
        unsafe { pam_end(pamh, rc) };
        match rc {
            PAM_SUCCESS => Ok(()),
            rc => Err(failed(step, rc)),
        }
    }
}

fn strerror(rc: c_int) -> String {
    // SAFETY: Linux-PAM's pam_strerror ignores the handle and returns a
    // static string or null.
    let text = unsafe { pam_strerror(std::ptr::null_mut(), rc) };
    if text.is_null() {
        return format!("PAM error {rc}");
    }
    // SAFETY: a static NUL-terminated string from libpam.
    unsafe { CStr::from_ptr(text) }
        .to_string_lossy()
        .into_owned()
}

/// The caller's terminal, where the conversation happens.
struct Terminal {
    tty: File,
    prefix: String,
}

impl Terminal {
    fn say(&mut self, text: &str) -> io::Result<()> {
        let text = crate::output::clean_text(text);
        writeln!(self.tty, "{text}")
    }

    /// Shows `prompt` and reads one line. A hidden answer is read with
    /// echo, line editing and signals off (see [`hidden_line`]); they go
    /// off before the prompt shows, and typed input is never flushed, so an
    /// answer typed as soon as the prompt appears is neither echoed nor lost.
    fn ask(&mut self, prompt: &str, hidden: bool) -> io::Result<Zeroizing<Vec<u8>>> {
        let prompt = crate::output::clean_line(prompt);
        if !hidden {
            write!(self.tty, "{}{prompt}", self.prefix)?;
            self.tty.flush()?;
            return self.visible_line();
        }
        let saved = termios::tcgetattr(&self.tty)?;
        let mut quiet = saved.clone();
        quiet
            .local_flags
            .remove(LocalFlags::ECHO | LocalFlags::ICANON | LocalFlags::ISIG);
        quiet.control_chars[SpecialCharacterIndices::VMIN as usize] = 1;
        quiet.control_chars[SpecialCharacterIndices::VTIME as usize] = 0;
        termios::tcsetattr(&self.tty, SetArg::TCSANOW, &quiet)?;
        let tty = &mut self.tty;
        let line = write!(tty, "{}{prompt}", self.prefix)
            .and_then(|()| tty.flush())
            .and_then(|()| {
                hidden_line(&mut || {
                    let mut byte = [0u8; 1];
                    match tty.read(&mut byte)? {
                        0 => Err(io::ErrorKind::UnexpectedEof.into()),
                        _ => Ok(byte[0]),
                    }
                })
            });
        let _ = writeln!(tty);
        termios::tcsetattr(&self.tty, SetArg::TCSANOW, &saved)?;
        line
    }

    /// A line as the terminal's own line editing delivers it.
    fn visible_line(&mut self) -> io::Result<Zeroizing<Vec<u8>>> {
        let mut line = Zeroizing::new(Vec::with_capacity(MAX_ANSWER + 1));
        let mut byte = [0u8; 1];
        loop {
            match self.tty.read(&mut byte)? {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                _ if byte[0] == b'\n' => return Ok(line),
                _ if line.len() < MAX_ANSWER => line.push(byte[0]),
                _ => {}
            }
        }
    }

    /// One answer (null for a message), as libpam frees it.
    fn answer(&mut self, style: c_int, text: &str) -> Result<*mut c_char, c_int> {
        let line = match style {
            PAM_PROMPT_ECHO_OFF | PAM_PROMPT_ECHO_ON => self
                .ask(text, style == PAM_PROMPT_ECHO_OFF)
                .map_err(|_| PAM_CONV_ERR)?,
            PAM_ERROR_MSG | PAM_TEXT_INFO => {
                self.say(text).map_err(|_| PAM_CONV_ERR)?;
                return Ok(std::ptr::null_mut());
            }
            _ => return Err(PAM_CONV_ERR),
        };
        if line.contains(&0) {
            return Err(PAM_CONV_ERR);
        }
        // SAFETY: calloc of len + 1 bytes, filled below within bounds; the
        // NUL is already there. libpam frees it (after wiping, for
        // pam_mfa's answers).
        unsafe {
            let out = libc::calloc(line.len() + 1, 1).cast::<c_char>();
            if out.is_null() {
                return Err(PAM_BUF_ERR);
            }
            std::ptr::copy_nonoverlapping(line.as_ptr().cast(), out, line.len());
            Ok(out)
        }
    }
}

/// A hidden answer from raw terminal bytes: Enter ends it, Backspace and
/// Ctrl-U edit it, Ctrl-C and Ctrl-D on an empty line abandon it. With
/// signals off Ctrl-C arrives here as a byte, so mfactl restores the
/// terminal and fails the conversation instead of dying with echo off.
fn hidden_line(next: &mut dyn FnMut() -> io::Result<u8>) -> io::Result<Zeroizing<Vec<u8>>> {
    let mut line = Zeroizing::new(Vec::with_capacity(MAX_ANSWER + 1));
    loop {
        match next()? {
            b'\n' | b'\r' => return Ok(line),
            0x03 => return Err(io::ErrorKind::Interrupted.into()),
            0x04 if line.is_empty() => return Err(io::ErrorKind::UnexpectedEof.into()),
            0x7f | 0x08 => {
                line.pop();
            }
            0x15 => line.clear(),
            b if line.len() < MAX_ANSWER => line.push(b),
            _ => {}
        }
    }
}

/// libpam's conversation callback: one answer per message, or an error
/// with nothing left allocated. Panics stop here.
unsafe extern "C" fn converse(
    n: c_int,
    msgs: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    data: *mut c_void,
) -> c_int {
    let run = || {
        let count = usize::try_from(n).map_err(|_| PAM_CONV_ERR)?;
        if count == 0 || msgs.is_null() || resp.is_null() || data.is_null() {
            return Err(PAM_CONV_ERR);
        }
        // SAFETY: data is the `Terminal` given to pam_start, alive for the
        // handle's life; libpam calls back on the calling thread only.
        let term = unsafe { &mut *data.cast::<Terminal>() };
        // SAFETY: zeroed array of `count` responses, freed by libpam.
        let out = unsafe { libc::calloc(count, std::mem::size_of::<PamResponse>()) }
            .cast::<PamResponse>();
        if out.is_null() {
            return Err(PAM_BUF_ERR);
        }
        for i in 0..count {
            // SAFETY: Linux-PAM passes an array of `count` message pointers.
            let msg = unsafe { &**msgs.add(i) };
            let text = match msg.msg.is_null() {
                true => String::new(),
                // SAFETY: a NUL-terminated string owned by the module.
                false => unsafe { CStr::from_ptr(msg.msg) }
                    .to_string_lossy()
                    .into_owned(),
            };
            match term.answer(msg.msg_style, &text) {
                // SAFETY: i < count, within the array allocated above.
                Ok(answer) => unsafe { (*out.add(i)).resp = answer },
                Err(rc) => {
                    // SAFETY: every answer so far came from calloc; none
                    // reached libpam.
                    unsafe {
                        for j in 0..i {
                            free_wiped((*out.add(j)).resp);
                        }
                        libc::free(out.cast());
                    }
                    return Err(rc);
                }
            }
        }
        // SAFETY: resp is libpam's out-pointer.
        unsafe { *resp = out };
        Ok(())
    };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok(Ok(())) => PAM_SUCCESS,
        Ok(Err(rc)) => rc,
        Err(_) => PAM_CONV_ERR,
    }
}

/// Wipes and frees an answer of ours that never reached libpam.
///
/// # Safety
/// `p` is null or a NUL-terminated string from `calloc`.
unsafe fn free_wiped(p: *mut c_char) {
    if p.is_null() {
        return;
    }
    // SAFETY: per the contract, a NUL-terminated allocation of ours.
    unsafe {
        let len = libc::strlen(p);
        std::ptr::write_bytes(p, 0, len);
        libc::free(p.cast());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(bytes: &[u8]) -> io::Result<Vec<u8>> {
        let mut it = bytes.iter().copied();
        hidden_line(&mut || it.next().ok_or_else(|| io::ErrorKind::UnexpectedEof.into()))
            .map(|l| l.to_vec())
    }

    #[test]
    fn hidden_answers_are_edited_and_abandoned_like_a_terminal_line() {
        assert_eq!(typed(b"secret\r").unwrap(), b"secret");
        assert_eq!(typed(b"secrex\x7ft\n").unwrap(), b"secret");
        assert_eq!(typed(b"wrong\x15right\r").unwrap(), b"right");
        assert_eq!(typed(b"\x7f\r").unwrap(), b"");
        assert_eq!(
            typed(b"half\x03more\r").unwrap_err().kind(),
            io::ErrorKind::Interrupted
        );
        assert_eq!(
            typed(b"\x04").unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        assert_eq!(typed(b"a\x04\r").unwrap(), b"a\x04");
        assert_eq!(
            typed(&[b'x'; 600]).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        let long = [&[b'x'; 600][..], b"\r"].concat();
        assert_eq!(typed(&long).unwrap().len(), MAX_ANSWER);
    }
}
