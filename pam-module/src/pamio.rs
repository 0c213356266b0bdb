//! Everything that touches libpam directly beyond what pamsm offers, and the
//! adapters that give `flow` a PAM conversation and pam_syslog.
//!
//! We call libpam's own `pam_prompt` rather than pamsm's `conv()`: pamsm hands
//! back a `&CStr` into the application's response and never wipes or frees it
//! (nor the `pam_response` struct). `pam_prompt` frees the struct; we copy the
//! answer into a zeroizing buffer, wipe the original and free it.

use crate::conv::{ConvError, Conversation, Env, Level, Log};
use pamsm::{LogLvl, Pam, PamLibExt};
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::ptr;
use zeroize::{Zeroize, Zeroizing};

const PAM_SUCCESS: c_int = 0;
const PAM_TTY: c_int = 3;
const PAM_PROMPT_ECHO_OFF: c_int = 1;
const PAM_PROMPT_ECHO_ON: c_int = 2;
const PAM_ERROR_MSG: c_int = 3;
const PAM_TEXT_INFO: c_int = 4;

// `raw_handle` reads a `Pam` as the `pam_handle_t *` it wraps; refuse to
// build if pamsm ever changes that shape.
const _: () = assert!(size_of::<Pam>() == size_of::<*mut c_void>());

#[link(name = "pam")]
unsafe extern "C" {
    fn pam_get_item(pamh: *const c_void, item_type: c_int, item: *mut *const c_void) -> c_int;
    fn pam_prompt(
        pamh: *mut c_void,
        style: c_int,
        response: *mut *mut c_char,
        fmt: *const c_char,
        ...
    ) -> c_int;
}

/// The `pam_handle_t *` inside pamsm's `Pam`.
fn raw_handle(pamh: &Pam) -> *mut c_void {
    // SAFETY: pamsm 0.5.5 declares `#[repr(transparent)] pub struct Pam(PamHandle)`
    // with `PamHandle = *const c_void`, and its `pam_module!` receives `Pam` by
    // value from C as the handle pointer; the size is checked at compile time
    // above. We read the pointer value only, through a valid reference.
    unsafe { *ptr::from_ref(pamh).cast::<*mut c_void>() }
}

/// PAM_TTY, which pamsm has no accessor for. Copied out at once.
pub fn tty(pamh: &Pam) -> Result<Option<String>, c_int> {
    let mut item: *const c_void = ptr::null();
    // SAFETY: the handle is the live one libpam passed to this hook, PAM_TTY
    // is a string item, and `item` is a valid out-pointer.
    let rc = unsafe { pam_get_item(raw_handle(pamh), PAM_TTY, &mut item) };
    if rc != PAM_SUCCESS {
        return Err(rc);
    }
    if item.is_null() {
        return Ok(None);
    }
    // SAFETY: libpam stores PAM_TTY as a NUL-terminated string owned by the
    // handle; it stays valid until the item is set again, and we copy it now.
    let text = unsafe { CStr::from_ptr(item.cast::<c_char>()) };
    Ok(Some(text.to_string_lossy().into_owned()))
}

/// Sends one message through the application's conversation function.
/// For the two prompt styles the answer is returned (`None`: the application
/// gave no response, e.g. Ctrl-D); for messages it is always `None`.
fn converse(pamh: &Pam, style: c_int, text: &str) -> Result<Option<Zeroizing<String>>, c_int> {
    // A NUL cannot cross the C boundary; the daemon never sends one anyway.
    let msg = CString::new(text.replace('\0', "")).unwrap_or_default();
    let wants_answer = matches!(style, PAM_PROMPT_ECHO_OFF | PAM_PROMPT_ECHO_ON);
    let mut resp: *mut c_char = ptr::null_mut();
    let resp_out: *mut *mut c_char = if wants_answer {
        &mut resp
    } else {
        ptr::null_mut()
    };
    // SAFETY: live handle; "%s" with one NUL-terminated argument, so the
    // text is never a format string; `resp_out` is null or points to `resp`.
    let rc = unsafe {
        pam_prompt(
            raw_handle(pamh),
            style,
            resp_out,
            c"%s".as_ptr(),
            msg.as_ptr(),
        )
    };
    // pam_prompt may hand back a response even when the conversation failed;
    // it is ours to wipe and free either way.
    let answer = if resp.is_null() {
        None
    } else {
        // SAFETY: a non-null response is a malloc'd NUL-terminated string that
        // the caller of pam_prompt owns; nothing else refers to it.
        Some(unsafe { take_response(resp) })
    };
    if rc != PAM_SUCCESS {
        return Err(rc);
    }
    Ok(answer)
}

/// Copies a response into a zeroizing buffer, then wipes and frees it.
///
/// # Safety
/// `resp` must be a non-null, NUL-terminated string from `malloc`, owned by
/// the caller and not used again.
unsafe fn take_response(resp: *mut c_char) -> Zeroizing<String> {
    // SAFETY: guaranteed by the caller.
    let bytes = unsafe { CStr::from_ptr(resp) }.to_bytes();
    let len = bytes.len();
    // Room for the worst case (every byte replaced by U+FFFD) so the buffer
    // never reallocates and leaves an unwiped copy behind.
    let mut out = Zeroizing::new(String::with_capacity(len.saturating_mul(3)));
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        if !chunk.invalid().is_empty() {
            out.push(char::REPLACEMENT_CHARACTER);
        }
    }
    // SAFETY: `resp` points to `len` writable bytes we own (see above); the
    // shared `bytes` borrow is no longer used.
    unsafe { std::slice::from_raw_parts_mut(resp.cast::<u8>(), len) }.zeroize();
    // SAFETY: allocated with malloc by the application (PAM convention), freed once.
    unsafe { libc::free(resp.cast::<c_void>()) };
    out
}

/// The application's conversation function, as `flow` sees it.
pub struct PamConv<'a>(pub &'a Pam);

impl Conversation for PamConv<'_> {
    fn prompt(&mut self, text: &str, echo: bool) -> Result<Zeroizing<String>, ConvError> {
        let style = if echo {
            PAM_PROMPT_ECHO_ON
        } else {
            PAM_PROMPT_ECHO_OFF
        };
        match converse(self.0, style, text) {
            Ok(Some(answer)) => Ok(answer),
            Ok(None) => Err(ConvError::NoResponse),
            Err(rc) => Err(ConvError::Failed(rc)),
        }
    }

    fn info(&mut self, text: &str) {
        // A message that cannot be shown is not worth failing the login over.
        let _ = converse(self.0, PAM_TEXT_INFO, text);
    }

    fn error(&mut self, text: &str) {
        let _ = converse(self.0, PAM_ERROR_MSG, text);
    }
}

/// pam_syslog: authpriv, with libpam's `pam_mfa(service:auth):` prefix.
pub struct PamLog<'a>(pub &'a Pam);

impl Log for PamLog<'_> {
    fn log(&mut self, level: Level, msg: &str) {
        let lvl = match level {
            Level::Err => LogLvl::ERR,
            Level::Warning => LogLvl::WARNING,
            Level::Notice => LogLvl::NOTICE,
            Level::Debug => LogLvl::DEBUG,
        };
        // pamsm refuses text with a NUL; `flow::clean` has already removed them.
        let _ = self.0.syslog(lvl, msg);
    }
}

/// The PAM environment of the handle.
pub struct PamEnv<'a>(pub &'a Pam);

impl Env for PamEnv<'_> {
    fn get(&self, name: &str) -> Option<String> {
        match self.0.getenv(name) {
            Ok(Some(value)) => Some(value.to_string_lossy().into_owned()),
            _ => None,
        }
    }

    fn set(&mut self, name: &str, value: &str) -> Result<(), i32> {
        self.0
            .putenv(&format!("{name}={value}"))
            .map_err(|e| e as i32)
    }

    fn remove(&mut self, name: &str) {
        // Linux-PAM: a name without '=' deletes the variable; an absent one
        // gives PAM_BAD_ITEM, which is fine.
        let _ = self.0.putenv(name);
    }
}
