//! A libpam application, by FFI: the real libpam loads the real module from
//! a service file in a test directory (`pam_start_confdir`, Linux-PAM 1.4+),
//! so the host's /etc/pam.d is never read or touched.
//!
//! A [`PamSession`] is one PAM handle. It can be reused for many calls (the
//! benchmark does): answers are queued with [`PamSession::push_answer`] or
//! repeated with [`PamSession::set_repeat_answer`], and recording of the
//! transcript can be switched off, so a call allocates only what libpam
//! itself needs.

mod conv;

pub use conv::{Message, Responder, Style, Transcript};

use conv::{ConvState, PamConv, converse};
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::io;
use std::path::{Path, PathBuf};

// Return codes, from /usr/include/security/_pam_types.h (Linux-PAM 1.5.2).
pub const PAM_SUCCESS: i32 = 0;
pub const PAM_OPEN_ERR: i32 = 1;
pub const PAM_SYMBOL_ERR: i32 = 2;
pub const PAM_SERVICE_ERR: i32 = 3;
pub const PAM_SYSTEM_ERR: i32 = 4;
pub const PAM_BUF_ERR: i32 = 5;
pub const PAM_PERM_DENIED: i32 = 6;
pub const PAM_AUTH_ERR: i32 = 7;
pub const PAM_AUTHINFO_UNAVAIL: i32 = 9;
pub const PAM_USER_UNKNOWN: i32 = 10;
pub const PAM_MAXTRIES: i32 = 11;
pub const PAM_CONV_ERR: i32 = 19;
pub const PAM_IGNORE: i32 = 25;
pub const PAM_ABORT: i32 = 26;

// Message styles.
pub const PAM_PROMPT_ECHO_OFF: i32 = 1;
pub const PAM_PROMPT_ECHO_ON: i32 = 2;
pub const PAM_ERROR_MSG: i32 = 3;
pub const PAM_TEXT_INFO: i32 = 4;

// Items an application may set.
pub const PAM_SERVICE: i32 = 1;
pub const PAM_USER: i32 = 2;
pub const PAM_TTY: i32 = 3;
pub const PAM_RHOST: i32 = 4;
pub const PAM_RUSER: i32 = 8;

// Flags.
pub const PAM_SILENT: i32 = 0x8000;
pub const PAM_DISALLOW_NULL_AUTHTOK: i32 = 0x0001;

#[repr(C)]
struct PamHandle {
    _opaque: [u8; 0],
}

#[link(name = "pam")]
unsafe extern "C" {
    fn pam_start_confdir(
        service: *const c_char,
        user: *const c_char,
        conv: *const PamConv,
        confdir: *const c_char,
        pamh: *mut *mut PamHandle,
    ) -> c_int;
    fn pam_end(pamh: *mut PamHandle, status: c_int) -> c_int;
    fn pam_authenticate(pamh: *mut PamHandle, flags: c_int) -> c_int;
    fn pam_acct_mgmt(pamh: *mut PamHandle, flags: c_int) -> c_int;
    fn pam_set_item(pamh: *mut PamHandle, item_type: c_int, item: *const c_void) -> c_int;
    fn pam_putenv(pamh: *mut PamHandle, name_value: *const c_char) -> c_int;
    fn pam_strerror(pamh: *mut PamHandle, errnum: c_int) -> *const c_char;
}

/// libpam's text for a return code.
pub fn strerror(rc: i32) -> String {
    // SAFETY: Linux-PAM's pam_strerror ignores the handle (not declared
    // nonnull) and returns a static string or null.
    let text = unsafe { pam_strerror(std::ptr::null_mut(), rc) };
    if text.is_null() {
        return format!("PAM error {rc}");
    }
    // SAFETY: a static NUL-terminated string from libpam.
    unsafe { CStr::from_ptr(text) }
        .to_string_lossy()
        .into_owned()
}

fn cstring(what: &str, s: &str) -> CString {
    CString::new(s).unwrap_or_else(|_| panic!("{what} {s:?} contains a NUL byte"))
}

/// One PAM handle with its conversation; `pam_end` on drop.
pub struct PamSession {
    pamh: *mut PamHandle,
    /// From `Box::into_raw`; freed in `Drop` after `pam_end`.
    state: *mut ConvState,
    /// libpam copies the conversation, but keep ours alive with the handle.
    _conv: Box<PamConv>,
    last_status: c_int,
}

// SAFETY: the handle and the conversation state are owned by this value
// alone and used through `&mut self`; a libpam handle is not bound to the
// thread that created it, and pam_mfa.so keeps no thread-local state.
unsafe impl Send for PamSession {}

impl PamSession {
    /// Starts a handle for `service` (a file in `confdir`) and `user`, with
    /// `answers` queued for the prompts. Panics if libpam refuses.
    pub fn start(confdir: &Path, service: &str, user: &str, answers: Vec<String>) -> Self {
        Self::try_start(confdir, service, user, answers).unwrap_or_else(|rc| {
            panic!("pam_start_confdir({service}) failed: {rc} {}", strerror(rc))
        })
    }

    /// As [`PamSession::start`], returning libpam's error code on failure.
    pub fn try_start(
        confdir: &Path,
        service: &str,
        user: &str,
        answers: Vec<String>,
    ) -> Result<Self, i32> {
        let service = cstring("service", service);
        let user = cstring("user", user);
        let confdir = cstring("confdir", &confdir.to_string_lossy());
        let state = Box::into_raw(Box::new(ConvState {
            answers: answers.iter().map(|a| cstring("answer", a)).collect(),
            record: true,
            ..ConvState::default()
        }));
        let conv = Box::new(PamConv {
            conv: Some(converse),
            appdata_ptr: state.cast(),
        });
        let mut pamh: *mut PamHandle = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call; libpam copies the
        // strings and the conversation; pamh is a valid out-pointer.
        let rc = unsafe {
            pam_start_confdir(
                service.as_ptr(),
                user.as_ptr(),
                &*conv,
                confdir.as_ptr(),
                &mut pamh,
            )
        };
        if rc != PAM_SUCCESS || pamh.is_null() {
            // SAFETY: state came from Box::into_raw above and libpam, having
            // failed, holds no handle that could call back into it.
            drop(unsafe { Box::from_raw(state) });
            return Err(if rc == PAM_SUCCESS {
                PAM_SYSTEM_ERR
            } else {
                rc
            });
        }
        Ok(Self {
            pamh,
            state,
            _conv: conv,
            last_status: PAM_SUCCESS,
        })
    }

    fn state(&mut self) -> &mut ConvState {
        // SAFETY: state is valid until Drop, and `&mut self` guarantees no
        // libpam call (and so no callback) is running.
        unsafe { &mut *self.state }
    }

    /// Sets a string item (PAM_RHOST, PAM_TTY, PAM_RUSER, ...); returns rc.
    pub fn set_item(&mut self, item: i32, value: &str) -> i32 {
        let value = cstring("item", value);
        // SAFETY: pamh is live; libpam copies string items.
        unsafe { pam_set_item(self.pamh, item, value.as_ptr().cast()) }
    }

    /// Sets `NAME=value` in the PAM environment (as sshd sets
    /// `SSH_AUTH_INFO_0`); returns rc.
    pub fn putenv(&mut self, name_value: &str) -> i32 {
        let name_value = cstring("variable", name_value);
        // SAFETY: pamh is live; libpam copies the string.
        unsafe { pam_putenv(self.pamh, name_value.as_ptr()) }
    }

    /// Runs `pam_authenticate` and returns its code and what was shown.
    pub fn authenticate(&mut self, flags: i32) -> (i32, Transcript) {
        // SAFETY: pamh is live; the conversation state outlives the call.
        let rc = unsafe { pam_authenticate(self.pamh, flags) };
        self.last_status = rc;
        (rc, std::mem::take(&mut self.state().transcript))
    }

    /// Runs `pam_acct_mgmt` and returns its code and what was shown.
    pub fn acct_mgmt(&mut self, flags: i32) -> (i32, Transcript) {
        // SAFETY: as in `authenticate`.
        let rc = unsafe { pam_acct_mgmt(self.pamh, flags) };
        self.last_status = rc;
        (rc, std::mem::take(&mut self.state().transcript))
    }

    /// Queues one more answer.
    pub fn push_answer(&mut self, answer: &str) {
        let answer = cstring("answer", answer);
        self.state().answers.push_back(answer);
    }

    /// Answers every prompt with `answer` once the queue is empty (`None`:
    /// stop doing so). For benchmarks: no allocation per call on our side.
    pub fn set_repeat_answer(&mut self, answer: Option<&str>) {
        let answer = answer.map(|a| cstring("answer", a));
        self.state().repeat = answer;
    }

    /// Answers prompts from `responder` once the queue is empty: it sees
    /// the prompt's text and returns the answer (`None`: none, which fails
    /// the conversation).
    pub fn set_responder(&mut self, responder: Responder) {
        self.state().responder = Some(responder);
    }

    /// Switches transcript recording on or off (on by default).
    pub fn set_recording(&mut self, on: bool) {
        self.state().record = on;
    }

    /// Answers still queued.
    pub fn answers_left(&mut self) -> usize {
        self.state().answers.len()
    }

    /// libpam's text for a return code.
    pub fn strerror(&self, rc: i32) -> String {
        strerror(rc)
    }
}

impl Drop for PamSession {
    fn drop(&mut self) {
        // SAFETY: pamh is live and ended exactly once, here.
        unsafe { pam_end(self.pamh, self.last_status) };
        // SAFETY: state came from Box::into_raw; the handle that could call
        // back into it is gone.
        drop(unsafe { Box::from_raw(self.state) });
    }
}

/// Writes `<confdir>/<service>` with the given stack text (one PAM line per
/// line); creates `confdir`. Returns the file's path.
pub fn write_stack(confdir: &Path, service: &str, stack: &str) -> io::Result<PathBuf> {
    std::fs::create_dir_all(confdir)?;
    let path = confdir.join(service);
    std::fs::write(&path, stack)?;
    Ok(path)
}

/// Writes a service whose auth stack is the module alone:
/// `auth required <abs module_path> <args>` and `account required pam_permit.so`.
pub fn write_service(
    confdir: &Path,
    service: &str,
    module_path: &Path,
    args: &[&str],
) -> io::Result<PathBuf> {
    let module = std::path::absolute(module_path)?;
    let mut line = format!("auth requisite {}", module.display());
    for arg in args {
        line.push(' ');
        line.push_str(arg);
    }
    // As shipped: requisite, after the first factor (pam_permit stands in
    // for it here), so a PAM_IGNORE from pam_mfa leaves the decision to it.
    write_stack(
        confdir,
        service,
        &format!("auth required pam_permit.so\n{line}\naccount required pam_permit.so\n"),
    )
}

#[cfg(test)]
mod tests;
