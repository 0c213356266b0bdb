//! A login as a value: it takes the plan, then the user's answers and the
//! results of checks, and says what to do next. It never touches a socket,
//! the store, the clock or a provider: the time comes in as a value, and
//! everything else goes through [`Checks`], which the daemon implements
//! over its store (`checks.rs`) and the tests implement in memory.

use super::ending::{Ending, Outcome};
use super::plan::{Ask, Denial, Grant, Plan, Step};
use crate::audit::Decision as Audit;
use crate::policy::Factor;
use crate::store::Passed;
use mfad_protocol::{Channel, SecretString};
use std::time::Duration;

/// What the driver does next.
#[derive(Debug)]
pub enum Say {
    /// Ask the user; after `pause` (the growing delay after a failure).
    Prompt {
        /// Shown before the prompt (PAM_TEXT_INFO; sshd puts it above the
        /// prompt), when not empty.
        info: String,
        echo: bool,
        text: String,
        pause: Duration,
    },
    /// Send a code for this step (a new one on `resend`), then hand the
    /// result to [`Login::sent`].
    Send {
        channel: Channel,
        resend: bool,
        decoy: bool,
    },
    End(Ending),
}

/// How a typed code compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeCheck {
    /// Accepted and consumed (the audit row went with it), with a note
    /// for the user once the login is allowed (may be empty).
    Accepted(String),
    Rejected {
        message: String,
        reason: String,
        /// The same code may be typed again (a sent code with tries left).
        retry: bool,
    },
}

/// A counted failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    pub locked_until: Option<i64>,
    pub pause: Duration,
}

/// How a send for a sent-code step came out (audited by the sender).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// A code is on its way, or one sent moments ago stands.
    Live { masked: String, left: Duration },
    /// Held back (cooldown, cap): `live` is the code still usable, if any.
    Held {
        why: String,
        live: Option<(String, Duration)>,
    },
    /// The provider did not take it; `message` is for the user.
    Failed { message: String },
}

/// The state a login reads and writes through. Every method that records
/// something audits it in the same step.
pub trait Checks {
    type Error: std::fmt::Display;
    /// Until when the source or the account is locked out of `factor`.
    fn locked(&mut self, factor: Factor, now: i64) -> Result<Option<i64>, Self::Error>;
    /// Compares (and on success consumes) a typed code; a decoy never
    /// matches but costs the same work. `ends`: accepting this code ends
    /// the login allowed, with these factors proved (nothing is asked
    /// after it), so its success may be recorded with the code.
    fn check(
        &mut self,
        step: Step,
        code: &SecretString,
        now: i64,
        note: &str,
        ends: Option<&[Passed]>,
    ) -> Result<CodeCheck, Self::Error>;
    /// Counts a failure of `factor` and audits `reason`.
    fn failed(&mut self, factor: Factor, reason: &str, now: i64) -> Result<Failure, Self::Error>;
    /// Marks the trusted device used; false if its trust ended meanwhile.
    fn use_device(&mut self, now: i64) -> Result<bool, Self::Error>;
    /// Trusts the device for `days`; returns when the trust ends.
    fn trust_device(&mut self, days: u32, now: i64) -> Result<i64, Self::Error>;
    fn audit(&mut self, channel: &'static str, decision: Audit, reason: &str);
    /// A new TOTP secret for this user, kept until confirmed (nothing is
    /// stored before): how to show it.
    fn enroll_offer(&mut self, now: i64) -> Result<Offer, Self::Error>;
    /// Checks the first code against the offered secret; on a match stores
    /// the factor and a new set of backup codes at once and returns the
    /// codes. `None`: the code does not match.
    fn enroll_confirm(
        &mut self,
        code: &SecretString,
        now: i64,
    ) -> Result<Option<Vec<SecretString>>, Self::Error>;
}

/// A TOTP secret offered at login, as the user sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The otpauth URI drawn as a QR code in ASCII, when it fits an
    /// 80-column terminal.
    pub qr: Option<String>,
    /// The secret in base32, in groups of four for typing.
    pub secret: String,
    /// What to set in the app besides the secret, when it is not what apps
    /// assume (SHA1, 6 digits, 30 s).
    pub settings: Option<String>,
}

/// What the machine needs to know of the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// TOTP digits and backup-code length: a code typed at the menu is
    /// taken when exactly one offered factor has its shape.
    pub totp_digits: usize,
    pub backup_length: usize,
}

/// Prompts (and new codes on `r`) one sent-code step may go through.
const MAX_PROMPTS: usize = 6;
/// Menu answers that are neither a number nor a code before giving up.
const MAX_CHOICES: usize = 3;

#[derive(Debug)]
enum Phase {
    Choose {
        tries: usize,
    },
    Code {
        index: usize,
        prompts: usize,
    },
    Trust {
        days: u32,
    },
    /// Waiting for the first code of a TOTP set up in this login.
    EnrollCode,
    /// The backup codes are shown; waiting for "yes".
    EnrollSaved {
        tries: usize,
    },
    Done,
}

#[derive(Debug)]
pub struct Login {
    ask: Ask,
    settings: Settings,
    phase: Phase,
    passed: Vec<Passed>,
    /// What accepted factors have to tell once the login is allowed.
    notes: Vec<String>,
}

impl Login {
    /// Starts a login on `plan`: what the user sees first, or the end.
    pub fn start(
        plan: Plan,
        settings: Settings,
        checks: &mut impl Checks,
        now: i64,
    ) -> (Login, Say) {
        let ask = match plan {
            Plan::Deny(denial) => return (Self::done(settings), Self::refuse(denial, checks)),
            Plan::Allow(grant) => {
                return (Self::done(settings), Self::grant(grant, checks, now));
            }
            Plan::Ask(ask) => ask,
            Plan::Enroll => {
                let mut login = Self::done(settings);
                let say = login.enroll(checks, now);
                return (login, say);
            }
        };
        if let Some(covered) = &ask.covered {
            checks.audit("session", Audit::Allow, &covered.describe());
        }
        let mut login = Login {
            ask,
            settings,
            phase: Phase::Done,
            passed: Vec::new(),
            notes: Vec::new(),
        };
        let say = if login.ask.chooses() {
            login.phase = Phase::Choose { tries: 0 };
            login.menu("")
        } else {
            login.begin(0, checks, now)
        };
        (login, say)
    }

    fn done(settings: Settings) -> Login {
        Login {
            ask: Ask {
                chain: false,
                steps: Vec::new(),
                covered: None,
                offer_trust: None,
            },
            settings,
            phase: Phase::Done,
            passed: Vec::new(),
            notes: Vec::new(),
        }
    }

    fn refuse(denial: Denial, checks: &mut impl Checks) -> Say {
        let (reason, message) = match denial {
            Denial::NoRule => (
                "no policy rule matched",
                "No MFA policy rule covers this login, so it is refused.",
            ),
            Denial::Policy => ("policy denies", "Access is refused by the MFA policy."),
        };
        checks.audit("none", Audit::Deny, reason);
        Say::End(Ending::new(Outcome::Deny, message))
    }

    fn grant(grant: Grant, checks: &mut impl Checks, now: i64) -> Say {
        match grant {
            Grant::NothingRequired => {
                checks.audit("none", Audit::Allow, "policy requires nothing");
                Say::End(Ending::new(Outcome::Pass, ""))
            }
            Grant::Unenrolled => {
                checks.audit(
                    "none",
                    Audit::Allow,
                    "not enrolled; the policy allows unenrolled users",
                );
                Say::End(Ending::new(Outcome::Pass, ""))
            }
            Grant::Grace { until } => {
                checks.audit(
                    "none",
                    Audit::Allow,
                    "not enrolled; within the enrollment grace period",
                );
                let day = mfad_protocol::time::utc(until - 1);
                let message = format!(
                    "No second factor is set up for you. Enroll one before {} (run `mfactl enroll totp`), or logins will be refused.",
                    day.get(..10).unwrap_or(&day)
                );
                Say::End(Ending::new(Outcome::Pass, &message))
            }
            Grant::Device { label } => match checks.use_device(now) {
                Ok(true) => Say::End(Ending::new(Outcome::Allow, "").with_device(label)),
                Ok(false) => {
                    checks.audit("device", Audit::Deny, "device trust ended during the login");
                    Say::End(Ending::new(
                        Outcome::Deny,
                        "The trust of this device ended just now. Log in again.",
                    ))
                }
                Err(e) => Self::internal(checks, e),
            },
            Grant::Session(covered) => {
                checks.audit("session", Audit::Allow, &covered.describe());
                Say::End(Ending::new(Outcome::Allow, ""))
            }
        }
    }

    fn internal<C: Checks>(checks: &mut C, e: C::Error) -> Say {
        checks.audit("none", Audit::Deny, "internal error");
        Say::End(Ending::internal(e.to_string()))
    }

    fn menu(&self, before: &str) -> Say {
        let mut text = format!("{before}Choose how to verify:\n");
        for (i, step) in self.ask.steps.iter().enumerate() {
            text.push_str(&format!("  {}) {}\n", i + 1, step.factor.label()));
        }
        text.push_str("Number: ");
        Say::Prompt {
            info: String::new(),
            echo: true,
            text,
            pause: Duration::ZERO,
        }
    }

    /// " (chain step 2 of 3)" for audit reasons.
    fn note(&self, index: usize) -> String {
        match self.ask.chain && self.ask.steps.len() > 1 {
            true => format!(" (chain step {} of {})", index + 1, self.ask.steps.len()),
            false => String::new(),
        }
    }

    fn channel(&self, index: usize) -> &'static str {
        self.ask
            .steps
            .get(index)
            .map_or("none", |s| s.factor.name())
    }

    /// Opens step `index`: the lock check, then its prompt or its send.
    fn begin(&mut self, index: usize, checks: &mut impl Checks, now: i64) -> Say {
        let Some(step) = self.ask.steps.get(index).copied() else {
            return self.finish();
        };
        match checks.locked(step.factor, now) {
            Ok(Some(until)) => {
                let reason = format!("locked{}", self.note(index));
                checks.audit(step.factor.name(), Audit::Locked, &reason);
                self.phase = Phase::Done;
                return Say::End(Ending::new(Outcome::Locked, &locked_message(until)));
            }
            Ok(None) => {}
            Err(e) => return self.fail_internal(checks, e),
        }
        self.phase = Phase::Code { index, prompts: 0 };
        match step.factor.channel() {
            Some(channel) => Say::Send {
                channel,
                resend: false,
                decoy: step.decoy,
            },
            None => self.prompt(code_prompt(step.factor), Duration::ZERO),
        }
    }

    fn prompt(&mut self, text: String, pause: Duration) -> Say {
        if let Phase::Code { prompts, .. } = &mut self.phase {
            *prompts += 1;
        }
        Say::Prompt {
            info: String::new(),
            echo: false,
            text,
            pause,
        }
    }

    fn fail_internal<C: Checks>(&mut self, checks: &mut C, e: C::Error) -> Say {
        self.phase = Phase::Done;
        Self::internal(checks, e)
    }

    /// The result of a [`Say::Send`].
    pub fn sent(&mut self, sent: Sent) -> Say {
        match sent {
            Sent::Live { masked, left } => {
                self.prompt(sent_prompt(&masked, left, ""), Duration::ZERO)
            }
            Sent::Held {
                why,
                live: Some((masked, left)),
            } => self.prompt(
                sent_prompt(&masked, left, &format!("{why}. ")),
                Duration::ZERO,
            ),
            Sent::Held { why, live: None } => {
                self.phase = Phase::Done;
                Say::End(Ending::new(
                    Outcome::Deny,
                    &format!("{why}. Log in again later, or use another method."),
                ))
            }
            Sent::Failed { message } => {
                self.phase = Phase::Done;
                Say::End(Ending::new(Outcome::Deny, &message))
            }
        }
    }

    /// The user's answer to the last prompt.
    pub fn answer(&mut self, text: &SecretString, checks: &mut impl Checks, now: i64) -> Say {
        match self.phase {
            Phase::Choose { tries } => self.choose(text, tries, checks, now),
            Phase::Code { index, prompts } => self.code(index, prompts, text, checks, now),
            Phase::Trust { days } => self.trust(days, text, checks, now),
            Phase::EnrollCode => self.enroll_code(text, checks, now),
            Phase::EnrollSaved { tries } => self.enroll_saved(tries, text),
            Phase::Done => Say::End(Ending::internal("an answer after the end".to_owned())),
        }
    }

    fn choose(
        &mut self,
        text: &SecretString,
        tries: usize,
        checks: &mut impl Checks,
        now: i64,
    ) -> Say {
        let typed = text.expose().trim();
        // A choice is a short number: "000001" is a code, not choice 1.
        let picked = typed
            .parse::<usize>()
            .ok()
            .filter(|n| typed.len() <= 2 && (1..=self.ask.steps.len()).contains(n));
        if let Some(n) = picked {
            return self.begin(n - 1, checks, now);
        }
        // A code typed at the menu, when exactly one offered factor that
        // needs no send takes its shape: checked as that factor's answer.
        let shaped: Vec<usize> = (0..self.ask.steps.len())
            .filter(|&i| self.fits(self.ask.steps[i].factor, typed))
            .collect();
        if let [index] = shaped[..] {
            return match self.begin(index, checks, now) {
                Say::Prompt { .. } => self.code(index, 1, text, checks, now),
                other => other,
            };
        }
        if tries + 1 >= MAX_CHOICES {
            checks.audit("none", Audit::Deny, "invalid factor choice");
            self.phase = Phase::Done;
            return Say::End(Ending::new(Outcome::Deny, "No such choice."));
        }
        self.phase = Phase::Choose { tries: tries + 1 };
        self.menu(&format!(
            "No such choice: type a number from 1 to {}.\n",
            self.ask.steps.len()
        ))
    }

    /// Whether `typed` has the shape of a code of `factor` (only factors
    /// that need no send: a sent code cannot exist before the choice).
    fn fits(&self, factor: Factor, typed: &str) -> bool {
        let s = &self.settings;
        match factor {
            Factor::Totp => {
                typed.len() == s.totp_digits && typed.bytes().all(|b| b.is_ascii_digit())
            }
            Factor::Backup => {
                let code: String = typed
                    .chars()
                    .filter(|c| *c != '-' && !c.is_whitespace())
                    .collect();
                code.len() == s.backup_length
                    && code.chars().all(|c| c.is_ascii_alphanumeric())
                    && code.chars().any(|c| c.is_ascii_alphabetic())
            }
            Factor::Sms | Factor::Email => false,
        }
    }

    fn code(
        &mut self,
        index: usize,
        prompts: usize,
        text: &SecretString,
        checks: &mut impl Checks,
        now: i64,
    ) -> Say {
        let Some(step) = self.ask.steps.get(index).copied() else {
            return Say::End(Ending::internal("no such step".to_owned()));
        };
        if let Some(channel) = step.factor.channel()
            && prompts < MAX_PROMPTS
            && text.expose().trim().eq_ignore_ascii_case("r")
        {
            return Say::Send {
                channel,
                resend: true,
                decoy: step.decoy,
            };
        }
        let note = self.note(index);
        let passed = Passed {
            factor: step.factor.name().to_owned(),
            at: now,
        };
        let last = !self.ask.chain || index + 1 == self.ask.steps.len();
        let ends = (last && self.ask.offer_trust.is_none()).then(|| {
            let mut all = self.passed.clone();
            all.push(passed.clone());
            all
        });
        let checked = match checks.check(step, text, now, &note, ends.as_deref()) {
            Ok(c) => c,
            Err(e) => return self.fail_internal(checks, e),
        };
        let (message, reason, retry) = match checked {
            CodeCheck::Accepted(note) => {
                self.passed.push(passed);
                if !note.is_empty() {
                    self.notes.push(note);
                }
                return match self.ask.chain {
                    true => self.begin(index + 1, checks, now),
                    false => self.finish(),
                };
            }
            CodeCheck::Rejected {
                message,
                reason,
                retry,
            } => (message, reason, retry),
        };
        let failure = match checks.failed(step.factor, &format!("{reason}{note}"), now) {
            Ok(f) => f,
            Err(e) => return self.fail_internal(checks, e),
        };
        match failure.locked_until {
            Some(until) => {
                self.phase = Phase::Done;
                Say::End(
                    Ending::new(
                        Outcome::Locked,
                        &format!("{message} {}", locked_message(until)),
                    )
                    .after(failure.pause),
                )
            }
            None if retry && prompts < MAX_PROMPTS => {
                self.prompt(format!("{message} Try again: "), failure.pause)
            }
            None => {
                self.phase = Phase::Done;
                Say::End(Ending::new(Outcome::Deny, &message).after(failure.pause))
            }
        }
    }

    /// Every step passed: offer trust, or allow.
    fn finish(&mut self) -> Say {
        match self.ask.offer_trust {
            Some((days, ref label)) => {
                let text = format!(
                    "Trust this device ({label}) for {days} days, so that logins with this key skip the code? [y/N] "
                );
                self.phase = Phase::Trust { days };
                Say::Prompt {
                    info: String::new(),
                    echo: true,
                    text,
                    pause: Duration::ZERO,
                }
            }
            None => {
                self.phase = Phase::Done;
                Say::End(self.allowed(""))
            }
        }
    }

    fn allowed(&mut self, message: &str) -> Ending {
        let mut notes = std::mem::take(&mut self.notes);
        if !message.is_empty() {
            notes.push(message.to_owned());
        }
        Ending::new(Outcome::Allow, &notes.join(" ")).with_factors(std::mem::take(&mut self.passed))
    }

    fn trust(&mut self, days: u32, text: &SecretString, checks: &mut impl Checks, now: i64) -> Say {
        self.phase = Phase::Done;
        let yes = matches!(
            text.expose().trim().to_ascii_lowercase().as_str(),
            "y" | "yes"
        );
        if !yes {
            return Say::End(self.allowed(""));
        }
        match checks.trust_device(days, now) {
            Ok(until) => {
                let message = format!(
                    "This device is trusted until {}.",
                    mfad_protocol::time::utc(until)
                );
                Say::End(self.allowed(&message))
            }
            Err(e) => Self::internal(checks, e),
        }
    }

    /// Enrollment at login: the QR code, the secret, and the prompt for
    /// the first code, all in one prompt (sshd shows info text only with
    /// the next prompt).
    fn enroll(&mut self, checks: &mut impl Checks, now: i64) -> Say {
        match checks.locked(Factor::Totp, now) {
            Ok(Some(until)) => {
                checks.audit("totp", Audit::Locked, "locked (enrollment at login)");
                return Say::End(Ending::new(Outcome::Locked, &locked_message(until)));
            }
            Ok(None) => {}
            Err(e) => return self.fail_internal(checks, e),
        }
        let offer = match checks.enroll_offer(now) {
            Ok(offer) => offer,
            Err(e) => return self.fail_internal(checks, e),
        };
        self.phase = Phase::EnrollCode;
        // The QR code goes as information above the prompt: ssh clients
        // escape anything but ASCII inside a prompt.
        Say::Prompt {
            info: format!(
                "You have no second factor yet: set one up now.\n{}Secret: {}\n{}",
                match &offer.qr {
                    Some(qr) => format!(
                        "Scan this QR code with an authenticator app (or type the secret):\n\n{qr}\n"
                    ),
                    None => "Type this secret into an authenticator app (its QR code would not \
                             fit an 80-column terminal):\n"
                        .to_owned(),
                },
                offer.secret,
                offer
                    .settings
                    .as_ref()
                    .map(|s| format!("Settings: {s}\n"))
                    .unwrap_or_default(),
            ),
            echo: false,
            text: format!(
                "Enter the {}-digit code the app shows: ",
                self.settings.totp_digits
            ),
            pause: Duration::ZERO,
        }
    }

    fn enroll_code(&mut self, code: &SecretString, checks: &mut impl Checks, now: i64) -> Say {
        let codes = match checks.enroll_confirm(code, now) {
            Ok(Some(codes)) => codes,
            Ok(None) => {
                let failure =
                    match checks.failed(Factor::Totp, "wrong first code at enrollment", now) {
                        Ok(f) => f,
                        Err(e) => return self.fail_internal(checks, e),
                    };
                if let Some(until) = failure.locked_until {
                    self.phase = Phase::Done;
                    return Say::End(
                        Ending::new(
                            Outcome::Locked,
                            &format!("Wrong code. {} Nothing was set up.", locked_message(until)),
                        )
                        .after(failure.pause),
                    );
                }
                return Say::Prompt {
                    info: String::new(),
                    echo: false,
                    text: "That code does not match. Check the app's clock and try again: "
                        .to_owned(),
                    pause: failure.pause,
                };
            }
            Err(e) => return self.fail_internal(checks, e),
        };
        self.passed.push(Passed {
            factor: Factor::Totp.name().to_owned(),
            at: now,
        });
        let mut text = "Your authenticator is set up. Your backup codes, each good for one login if you lose the app (they are shown only now):\n".to_owned();
        for (i, c) in codes.iter().enumerate() {
            text.push_str(&format!("  {:2}. {}\n", i + 1, c.expose()));
        }
        text.push_str("Type yes once you have saved them: ");
        self.phase = Phase::EnrollSaved { tries: 0 };
        Say::Prompt {
            info: String::new(),
            echo: true,
            text,
            pause: Duration::ZERO,
        }
    }

    fn enroll_saved(&mut self, tries: usize, text: &SecretString) -> Say {
        let yes = text.expose().trim().eq_ignore_ascii_case("yes");
        if yes || tries + 1 >= MAX_CHOICES {
            // Enrolled either way: the codes can be made anew with
            // `mfactl backup-codes regenerate`.
            self.phase = Phase::Done;
            let note = match yes {
                true => "",
                false => {
                    "Make new backup codes with `mfactl backup-codes regenerate` once you can save them."
                }
            };
            return Say::End(self.allowed(note));
        }
        self.phase = Phase::EnrollSaved { tries: tries + 1 };
        Say::Prompt {
            info: String::new(),
            echo: true,
            text: "Type yes once you have saved the backup codes above: ".to_owned(),
            pause: Duration::ZERO,
        }
    }

    /// The conversation ended without an answer (the client left, timed
    /// out, or sent something else): audited against the step it was in.
    pub fn abandon(&mut self, reason: &str, checks: &mut impl Checks) -> Ending {
        let channel = match self.phase {
            Phase::Code { index, .. } => self.channel(index),
            Phase::Trust { .. } => "device",
            Phase::EnrollCode | Phase::EnrollSaved { .. } => "totp",
            Phase::Choose { .. } | Phase::Done => "none",
        };
        let reason = match self.phase {
            Phase::Code { index, .. } => format!("{reason}{}", self.note(index)),
            _ => reason.to_owned(),
        };
        self.phase = Phase::Done;
        checks.audit(channel, Audit::Deny, &reason);
        Ending::new(Outcome::Aborted, "")
    }
}

/// The prompt of a factor that needs no send. No count of backup codes
/// left: it would tell who has some.
fn code_prompt(factor: Factor) -> String {
    match factor {
        Factor::Backup => "Backup code: ".to_owned(),
        Factor::Totp | Factor::Sms | Factor::Email => "Verification code: ".to_owned(),
    }
}

/// The prompt for a code on its way. sshd shows info text only with the
/// next prompt, so where it went and how long it lives are in the prompt.
fn sent_prompt(masked: &str, left: Duration, before: &str) -> String {
    format!(
        "{before}Code sent to {masked}, valid {}. Enter it, or r for a new code: ",
        crate::delivery::lifetime(left)
    )
}

pub fn locked_message(until: i64) -> String {
    format!(
        "Too many failed attempts: verification is locked until {}. Try again later or ask an administrator to unlock your account.",
        mfad_protocol::time::utc(until)
    )
}
