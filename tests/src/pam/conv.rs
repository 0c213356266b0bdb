//! The libpam FFI types and the conversation callback.
//!
//! The callback answers prompts from a queue (or a repeated answer, for
//! benchmarks) and records every message it is shown. It allocates only
//! what libpam frees: the response array (`calloc`) and each answer
//! (`strdup`); recording can be switched off for hot loops.

use std::collections::VecDeque;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::fmt;

use super::{
    PAM_BUF_ERR, PAM_CONV_ERR, PAM_ERROR_MSG, PAM_PROMPT_ECHO_OFF, PAM_PROMPT_ECHO_ON, PAM_SUCCESS,
    PAM_TEXT_INFO,
};

/// Linux-PAM's limit on messages in one conversation call.
const PAM_MAX_NUM_MSG: c_int = 32;

#[repr(C)]
pub(super) struct PamMessage {
    msg_style: c_int,
    msg: *const c_char,
}

#[repr(C)]
pub(super) struct PamResponse {
    resp: *mut c_char,
    resp_retcode: c_int,
}

pub(super) type ConvFn = unsafe extern "C" fn(
    c_int,
    *mut *const PamMessage,
    *mut *mut PamResponse,
    *mut c_void,
) -> c_int;

#[repr(C)]
pub(super) struct PamConv {
    pub(super) conv: Option<ConvFn>,
    pub(super) appdata_ptr: *mut c_void,
}

/// The kind of a message the PAM stack showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    PromptEchoOff,
    PromptEchoOn,
    ErrorMsg,
    TextInfo,
    Other(i32),
}

impl Style {
    fn from_raw(style: c_int) -> Self {
        match style {
            PAM_PROMPT_ECHO_OFF => Style::PromptEchoOff,
            PAM_PROMPT_ECHO_ON => Style::PromptEchoOn,
            PAM_ERROR_MSG => Style::ErrorMsg,
            PAM_TEXT_INFO => Style::TextInfo,
            other => Style::Other(other),
        }
    }

    pub fn is_prompt(self) -> bool {
        matches!(self, Style::PromptEchoOff | Style::PromptEchoOn)
    }
}

/// One message shown through the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub style: Style,
    pub text: String,
}

/// Everything the PAM stack said during one call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transcript {
    pub messages: Vec<Message>,
    /// A prompt arrived with no answer left in the queue (the callback then
    /// returned PAM_CONV_ERR).
    pub ran_out_of_answers: bool,
}

impl Transcript {
    fn texts(&self, pred: impl Fn(Style) -> bool) -> impl Iterator<Item = &str> {
        self.messages
            .iter()
            .filter(move |m| pred(m.style))
            .map(|m| m.text.as_str())
    }

    /// Texts of the prompts (echo on or off), in order.
    pub fn prompts(&self) -> Vec<&str> {
        self.texts(Style::is_prompt).collect()
    }

    /// Texts of PAM_ERROR_MSG messages.
    pub fn errors(&self) -> Vec<&str> {
        self.texts(|s| s == Style::ErrorMsg).collect()
    }

    /// Texts of PAM_TEXT_INFO messages.
    pub fn infos(&self) -> Vec<&str> {
        self.texts(|s| s == Style::TextInfo).collect()
    }

    /// Whether any message contains `needle`, ignoring ASCII case.
    pub fn contains(&self, needle: &str) -> bool {
        let needle = needle.to_ascii_lowercase();
        self.messages
            .iter()
            .any(|m| m.text.to_ascii_lowercase().contains(&needle))
    }
}

impl fmt::Display for Transcript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for m in &self.messages {
            writeln!(f, "[{:?}] {}", m.style, m.text)?;
        }
        if self.ran_out_of_answers {
            writeln!(f, "[harness] ran out of answers")?;
        }
        Ok(())
    }
}

/// Computes the answer to a prompt from its text, when the queue is empty:
/// for codes that exist only once the prompt is shown (a sent code).
pub type Responder = Box<dyn FnMut(&str) -> Option<String> + Send>;

/// What the callback reads and writes; owned by the session, reached by
/// libpam through `appdata_ptr`.
#[derive(Default)]
pub(super) struct ConvState {
    pub(super) answers: VecDeque<CString>,
    /// Answer for every prompt once the queue is empty (benchmarks).
    pub(super) repeat: Option<CString>,
    /// Asked once the queue is empty, before `repeat`.
    pub(super) responder: Option<Responder>,
    pub(super) record: bool,
    pub(super) transcript: Transcript,
}

impl ConvState {
    fn next_answer(&mut self, prompt: &str) -> Option<*mut c_char> {
        let dup = |s: &CStr| {
            // SAFETY: `s` is a valid NUL-terminated string; strdup copies it
            // into malloc'd memory that libpam frees.
            unsafe { libc::strdup(s.as_ptr()) }
        };
        if let Some(answer) = self.answers.pop_front() {
            return Some(dup(&answer));
        }
        if let Some(answer) = self.responder.as_mut().and_then(|r| r(prompt)) {
            let answer = CString::new(answer).ok()?;
            return Some(dup(&answer));
        }
        self.repeat.as_deref().map(dup)
    }
}

/// Frees the first `filled` answers and the array itself.
///
/// # Safety
/// `replies` must come from `calloc` with at least `filled` entries whose
/// `resp` fields are null or from `strdup`.
unsafe fn free_replies(replies: *mut PamResponse, filled: usize) {
    for i in 0..filled {
        // SAFETY: i < filled, within the array, per the caller's contract.
        let resp = unsafe { (*replies.add(i)).resp };
        // SAFETY: resp is null or was returned by strdup.
        unsafe { libc::free(resp.cast()) };
    }
    // SAFETY: replies was returned by calloc.
    unsafe { libc::free(replies.cast()) };
}

/// The `pam_conv.conv` callback. Never unwinds into libpam.
pub(super) unsafe extern "C" fn converse(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata: *mut c_void,
) -> c_int {
    let run = std::panic::AssertUnwindSafe(|| {
        // SAFETY: libpam passes the arguments of the pam_conv contract and the
        // appdata pointer we registered; converse_inner checks for null.
        unsafe { converse_inner(num_msg, msg, resp, appdata) }
    });
    std::panic::catch_unwind(run).unwrap_or(PAM_CONV_ERR)
}

unsafe fn converse_inner(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata: *mut c_void,
) -> c_int {
    if !(1..=PAM_MAX_NUM_MSG).contains(&num_msg) || msg.is_null() || resp.is_null() {
        return PAM_CONV_ERR;
    }
    if appdata.is_null() {
        return PAM_CONV_ERR;
    }
    // SAFETY: appdata is the ConvState the session registered; it outlives the
    // handle and nothing else touches it while libpam runs a call.
    let state = unsafe { &mut *appdata.cast::<ConvState>() };
    let n = num_msg as usize;
    // SAFETY: plain allocation; zeroed, so every resp starts null.
    let replies =
        unsafe { libc::calloc(n, std::mem::size_of::<PamResponse>()) }.cast::<PamResponse>();
    if replies.is_null() {
        return PAM_BUF_ERR;
    }
    for i in 0..n {
        // SAFETY: Linux-PAM passes an array of `num_msg` message pointers.
        let m = unsafe { *msg.add(i) };
        if m.is_null() {
            // SAFETY: replies came from calloc; entries before i are filled.
            unsafe { free_replies(replies, i) };
            return PAM_CONV_ERR;
        }
        // SAFETY: m is a valid pam_message for the duration of the call.
        let (style, text) = unsafe { ((*m).msg_style, (*m).msg) };
        let style = Style::from_raw(style);
        let wanted = state.record || (style.is_prompt() && state.responder.is_some());
        let text = if text.is_null() || !wanted {
            String::new()
        } else {
            // SAFETY: libpam's message text is NUL-terminated.
            unsafe { CStr::from_ptr(text) }
                .to_string_lossy()
                .into_owned()
        };
        let reply = match style {
            Style::PromptEchoOff | Style::PromptEchoOn => state.next_answer(&text),
            Style::ErrorMsg | Style::TextInfo => Some(std::ptr::null_mut()),
            Style::Other(_) => None,
        };
        if state.record {
            state.transcript.messages.push(Message { style, text });
        }
        match reply {
            Some(answer) => {
                // SAFETY: i < n; the entry is ours to fill.
                unsafe { (*replies.add(i)).resp = answer };
            }
            None => {
                state.transcript.ran_out_of_answers |= style.is_prompt();
                // SAFETY: entries before i are filled, entry i is null.
                unsafe { free_replies(replies, i) };
                return PAM_CONV_ERR;
            }
        }
    }
    // SAFETY: resp is a valid out-pointer; libpam frees the array and strings.
    unsafe { *resp = replies };
    PAM_SUCCESS
}
