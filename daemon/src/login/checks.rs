//! The daemon's [`Checks`]: the only login code that touches the store and
//! the vault. What a login records goes into the same transaction as its
//! audit row (a consumed code, a failure, a trusted device).

use super::machine::{Checks, CodeCheck, Failure, Offer};
use super::plan::{Device, Inputs, Session, Step};
use super::send;
use crate::audit::{Decision as Audit, Event};
use crate::config::LockoutConfig;
use crate::device::SshKey;
use crate::factor::backup;
use crate::factor::hashed::Stored;
use crate::factor::otp::Purpose;
use crate::factor::totp::{self, Check, TotpAlgorithm, TotpError};
use crate::peer::Peer;
use crate::policy::{Factor, Rule, TrustedDevices};
use crate::reevaluate::{self, Trigger};
use crate::store::crypto::{CryptoError, Purpose as Sealed};
use crate::store::{
    Counter, NewDevice, NewTotp, Passed, StoreError, StoredSession, Succeeded, TakeStep,
    TotpParams, TotpRecord,
};
use crate::{Daemon, clock, risk};
use mfad_protocol::{AuthStart, SecretString};
use qrcode::{EcLevel, QrCode};
use std::sync::Mutex;
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum CheckError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Totp(#[from] TotpError),
    #[error(transparent)]
    Issue(#[from] crate::factor::otp::IssueError),
    #[error("{0}")]
    Broken(&'static str),
}

/// Keyed hashes of device keys are bound to this domain and the user.
const DEVICE_DOMAIN: &str = "trusted-device";
const DAY: i64 = 86_400;

/// One login attempt, as the store sees it.
pub struct Attempt<'a> {
    pub d: &'a Daemon,
    pub peer: &'a Peer,
    pub start: &'a AuthStart,
    pub rule: Option<&'a Rule>,
    pub version: i64,
    /// The failure-counter source: the remote host, or "local".
    pub source: &'a str,
    /// The key that passed sshd's first method, honoured from root only.
    pub key: Option<SshKey>,
    /// A TOTP secret offered for enrollment at login, sealed, kept only in
    /// this connection until the first code confirms it.
    pub offered: Option<(crate::store::crypto::Sealed, TotpParams)>,
    /// The shared database is unreachable and the rule lets this login's
    /// TOTP code be checked against the host's cache (`cached.rs`).
    pub cached: bool,
    /// The user's TOTP factor as gathered for this login (`Gathered::totp`).
    pub totp: Option<TotpRecord>,
    /// `Gathered::totp_locked`, until the machine has started (`converse`).
    pub totp_locked: Option<Option<i64>>,
    /// Where a login comes from and the session it steps up in, for what
    /// its success leaves behind (`None`: not a login, as self-service).
    pub place: Option<&'a risk::Place>,
    pub session: Option<i64>,
    /// The success recorded with the code that ended the login.
    pub recorded: Mutex<Option<super::Recorded<'a>>>,
}

/// What a plan needs from the store, read before it is made.
pub struct Gathered {
    pub enrolled: Vec<Factor>,
    pub session: Option<StoredSession>,
    pub device: Option<(String, Option<i64>)>,
    /// The user's TOTP factor, when the rule asks for TOTP and the user has
    /// it: read once, for the plan (the length of its codes) and for the
    /// check of the code. The step is taken only while the store still holds
    /// this secret (`Totps::accept_totp_step`).
    pub totp: Option<TotpRecord>,
    /// Until when the login's source is locked out of TOTP, read with
    /// `totp` (one round trip on PostgreSQL): it answers the lock check of
    /// the step the login starts with, at the same `now`, and no later one.
    pub totp_locked: Option<Option<i64>>,
}

impl Gathered {
    pub fn inputs<'a>(&'a self, rule: Option<&'a Rule>, now: i64) -> Inputs<'a> {
        Inputs {
            rule,
            enrolled: &self.enrolled,
            session: self.session.as_ref().map(|s| Session {
                id: s.id,
                passed: &s.proof.factors,
            }),
            device: self.device.as_ref().map(|(label, at)| Device {
                label,
                trusted_at: *at,
            }),
            now,
        }
    }
}

/// Reads what a plan for `user` under `rule` depends on. Nothing changes.
/// With `lock_source` (a login's failure source), the TOTP lock of that
/// source is read with the factor.
pub fn gather(
    d: &Daemon,
    user: &str,
    rule: Option<&Rule>,
    key: Option<&SshKey>,
    session: Option<StoredSession>,
    now: i64,
    lock_source: Option<&str>,
) -> Result<Gathered, CheckError> {
    let mut enrolled = Vec::new();
    let mut totp = None;
    let mut totp_locked = None;
    for &f in rule.map_or(&[][..], |r| r.require.factors()) {
        let has = match f {
            // Read once for all: whether it is there, its shape, its secret.
            Factor::Totp => {
                totp = match lock_source {
                    Some(source) => {
                        let counter = Counter {
                            factor: f.name(),
                            source,
                        };
                        let (record, locked) = d.store.totp_and_lock(user, counter, now)?;
                        totp_locked = Some(locked);
                        record
                    }
                    None => d.store.totp(user)?,
                };
                let sealed = totp.as_ref().map(|r: &TotpRecord| &r.sealed_secret);
                super::cached::forget(d, user, sealed);
                totp.is_some()
            }
            _ => enrolled_in(d, user, f)?,
        };
        if has {
            enrolled.push(f);
        }
    }
    let trust = rule.is_some_and(|r| matches!(r.trusted_devices, TrustedDevices::Days(_)));
    let device = match key.filter(|_| trust) {
        Some(key) => {
            let hash = device_hash(d, user, key)?;
            Some((key.label(), d.store.device_trusted_at(user, &hash, now)?))
        }
        None => None,
    };
    Ok(Gathered {
        enrolled,
        session,
        device,
        totp,
        totp_locked,
    })
}

/// Whether `user` can answer `factor` now. A sent-code factor needs its
/// channel configured and a verified destination.
pub fn enrolled_in(d: &Daemon, user: &str, factor: Factor) -> Result<bool, CheckError> {
    Ok(match factor {
        Factor::Totp => d.store.totp_summary(user)?.is_some(),
        Factor::Backup => d.store.backup_codes_left(user)? > 0,
        // The same destination a code would go to, from the store or the
        // directory.
        Factor::Sms | Factor::Email => match factor.channel() {
            Some(c) if d.delivery.configured(c) => super::send::contact(d, user, c)?.is_some(),
            _ => false,
        },
    })
}

fn device_hash(d: &Daemon, user: &str, key: &SshKey) -> Result<[u8; 32], CryptoError> {
    d.vault.keyed_hash(DEVICE_DOMAIN, user, &key.blob)
}

impl Attempt<'_> {
    pub fn user(&self) -> &str {
        &self.start.user
    }

    pub fn event(&self, channel: &'static str, decision: Audit, reason: &str) -> Event {
        let reason = match self.cached {
            true => format!("{reason} ({})", super::cached::REASON),
            false => reason.to_owned(),
        };
        Event::auth(
            self.start,
            channel,
            decision,
            &reason,
            self.peer.uid,
            clock::now(),
        )
        .decided_by(self.rule.map(|r| r.name.as_str()), self.version)
    }

    /// Writes `event` to the store, or while it is unreachable to the
    /// cache's spool, and to syslog.
    pub fn record(&self, event: &Event) {
        match self.cached {
            true => super::cached::spool(self.d, event),
            false => self.d.record(event),
        }
    }

    /// Where this login's failures of `factor` are counted.
    fn counter(&self, factor: Factor) -> Counter<'_> {
        Counter {
            factor: factor.name(),
            source: self.source,
        }
    }

    fn trust_days(&self) -> Option<u32> {
        match self.rule?.trusted_devices {
            TrustedDevices::Days(days) => Some(days),
            TrustedDevices::Forbidden => None,
        }
    }

    /// The lockout a factor's failures count against: a sent-code channel
    /// locks a source after its profile's `attempts`.
    fn lockout(&self, factor: Factor) -> LockoutConfig {
        let mut lockout = self.d.config.lockout.clone();
        if let Some(profile) = factor.channel().and_then(|ch| send::profile(self.d, ch)) {
            lockout.threshold = profile.attempts;
            lockout.account_threshold = lockout.account_threshold.max(profile.attempts);
        }
        lockout
    }

    fn check_totp(
        &self,
        step: Step,
        code: &SecretString,
        now: i64,
        note: &str,
        ends: Option<&[Passed]>,
    ) -> Result<CodeCheck, CheckError> {
        let d = self.d;
        let user = self.user();
        let record = self.totp.as_ref().filter(|_| !step.decoy);
        let (aad_user, sealed, params) = match record {
            Some(r) => (user, &r.sealed_secret, r.params),
            None => ("", &d.dummy.sealed, d.dummy.params),
        };
        let secret = d.vault.open(aad_user, Sealed::TotpSecret, sealed)?;
        let window = d.config.totp.window_for(params);
        let check = totp::check(&secret, params, code.expose(), now, window)?;
        Ok(match (record.is_some(), check) {
            (false, _) => wrong("Wrong code.", "not enrolled"),
            (true, Check::Wrong) => wrong("Wrong code.", "wrong code"),
            (true, Check::Skewed { drift }) => wrong(
                &format!(
                    "That code is not valid now: the clock of your authenticator seems off by about {} seconds. Set it to the network time and try again.",
                    drift.unsigned_abs().saturating_mul(params.period)
                ),
                "code from a neighbouring time window (clock skew)",
            ),
            (true, Check::Match { step, drift }) => {
                let reason = match drift {
                    0 => format!("ok{note}"),
                    _ => format!("ok (clock drift {drift} step){note}"),
                };
                let allowed = self.event("totp", Audit::Allow, &reason);
                let fresh = match self.cached {
                    true => {
                        super::cached::accept(self, self.counter(Factor::Totp), step, &allowed)?
                    }
                    false => {
                        let take = TakeStep {
                            user,
                            checked: record.map(|r| &r.sealed_secret),
                            counter: self.counter(Factor::Totp),
                            step,
                            now,
                        };
                        let accept = |then: Option<&Succeeded<'_>>| {
                            d.store.accept_totp_step(&take, &allowed, then)
                        };
                        // The login's success goes in the same write as
                        // the step when this code ends it.
                        let merge = self.place.is_some() && d.store.success_with_step();
                        let fresh = match ends.filter(|_| merge) {
                            Some(proved) => {
                                super::with_success(self, proved, now, |what| accept(Some(what)))?
                            }
                            None => accept(None)?,
                        };
                        if let Some(r) = record.filter(|_| fresh) {
                            super::cached::remember(d, user, r, step);
                        }
                        fresh
                    }
                };
                match fresh {
                    true => accepted(&allowed, String::new()),
                    // Not taken: the step was used, or (read again, only on
                    // this path) the secret is no longer the one checked.
                    false if !self.cached && !self.still_holds(record)? => wrong(
                        "Your authenticator was replaced or removed during this login. Start again.",
                        "the TOTP secret was replaced or removed during the login",
                    ),
                    false => wrong(
                        "That code was already used. Wait for the next code, then try again.",
                        "code already used",
                    ),
                }
            }
        })
    }

    /// Whether the store still holds `record`'s secret for the user.
    fn still_holds(&self, record: Option<&TotpRecord>) -> Result<bool, CheckError> {
        let now = self.d.store.totp(self.user())?;
        Ok(now.as_ref().map(|r| &r.sealed_secret) == record.map(|r| &r.sealed_secret))
    }

    fn check_backup(
        &self,
        step: Step,
        code: &SecretString,
        now: i64,
        note: &str,
    ) -> Result<CodeCheck, CheckError> {
        let d = self.d;
        let user = self.user();
        let mut candidates = match step.decoy {
            true => Vec::new(),
            false => d.store.unused_backup_codes(user)?,
        };
        if candidates.is_empty() {
            // The work of one comparison, for an answer that cannot match.
            candidates.push((-1, Stored::never()));
        }
        let found = backup::find(&d.vault, user, code.expose(), &candidates)?;
        let Some(id) = found.filter(|_| !step.decoy) else {
            return Ok(wrong(
                "Wrong backup code.",
                if step.decoy {
                    "not enrolled"
                } else {
                    "wrong code"
                },
            ));
        };
        let left = candidates.len() - 1;
        let allowed = self.event(
            "backup",
            Audit::Allow,
            &format!("ok, {left} backup codes left{note}"),
        );
        // Told only after the login passed: a count in the prompt would
        // tell who has backup codes.
        let note = match left {
            1 => "1 backup code left: make new ones with `mfactl backup-codes regenerate`."
                .to_owned(),
            0 => "That was your last backup code: make new ones with `mfactl backup-codes regenerate`."
                .to_owned(),
            n => format!("{n} backup codes left."),
        };
        Ok(
            match d.store.consume_backup_code(
                user,
                id,
                now,
                self.counter(Factor::Backup),
                &allowed,
            )? {
                true => accepted(&allowed, note),
                false => wrong(
                    "That backup code was already used.",
                    "backup code already used",
                ),
            },
        )
    }

    /// Checks a typed login code against the live one; a wrong one may be
    /// typed again while the code has tries left.
    fn check_sent(
        &self,
        step: Step,
        typed: &SecretString,
        now: i64,
        note: &str,
    ) -> Result<CodeCheck, CheckError> {
        let (d, user) = (self.d, self.user());
        let channel = step
            .factor
            .channel()
            .ok_or(CheckError::Broken("a sent code without a channel"))?;
        let name = channel.name();
        let attempts = send::profile(d, channel).map_or(1, |p| p.attempts);
        // A decoy step reads its decoy record (see `send::deliver`), which
        // expires, counts tries and goes void as a real code does; no
        // answer matches it. Neither kind stands in for the other.
        let sent = d
            .store
            .sent_code(user, name, Purpose::Login)?
            .filter(|c| c.stored.is_decoy() == step.decoy);
        // The work of one comparison whatever the state of the code.
        let stored = sent
            .as_ref()
            .map_or_else(Stored::never, |c| c.stored.clone());
        let matches = stored.matches(&d.vault, user, typed.expose())?;
        let Some(sent) = sent else {
            return Ok(wrong(
                "That code is no longer valid: it expired, was used, or was replaced by a newer one. Log in again for a new code.",
                "no live code (expired, used or replaced)",
            ));
        };
        if sent.expires <= now {
            return Ok(wrong(
                "That code has expired. Log in again for a new code.",
                "code expired",
            ));
        }
        if sent.failures >= attempts {
            return Ok(wrong(
                "That code is void after too many wrong tries. Log in again for a new code.",
                "code void after too many wrong tries",
            ));
        }
        if !matches {
            let failures = d
                .store
                .code_failed(user, name, Purpose::Login, &sent.stored.salt)?;
            let reason = match step.decoy {
                true => "not enrolled",
                false => "wrong code",
            };
            return Ok(wrong_try(failures, attempts, reason));
        }
        let allowed = self.event(name, Audit::Allow, &format!("ok{note}"));
        Ok(
            match d.store.consume_login_code(
                user,
                name,
                self.counter(step.factor),
                &sent.stored.salt,
                now,
                &allowed,
            )? {
                true => accepted(&allowed, String::new()),
                false => wrong("That code was already used.", "code already used"),
            },
        )
    }
}

/// A code accepted: its audit row is in the store already; syslog now.
fn accepted(event: &Event, note: String) -> CodeCheck {
    event.log();
    CodeCheck::Accepted(note)
}

/// A wrong sent code: typed again while it has tries left, then void.
fn wrong_try(failures: u32, attempts: u32, reason: &str) -> CodeCheck {
    match failures >= attempts {
        true => wrong(
            "Wrong code. That was the last try for this code: log in again for a new one.",
            &format!("{reason}; the code is now void"),
        ),
        false => CodeCheck::Rejected {
            message: "Wrong code.".to_owned(),
            reason: reason.to_owned(),
            retry: true,
        },
    }
}

fn wrong(message: &str, reason: &str) -> CodeCheck {
    CodeCheck::Rejected {
        message: message.to_owned(),
        reason: reason.to_owned(),
        retry: false,
    }
}

impl Checks for Attempt<'_> {
    type Error = CheckError;

    fn locked(&mut self, factor: Factor, now: i64) -> Result<Option<i64>, CheckError> {
        if factor == Factor::Totp
            && let Some(locked) = self.totp_locked.take()
        {
            return Ok(locked);
        }
        if self.cached {
            return super::cached::locked(self.d, self.user(), self.counter(factor), now);
        }
        Ok(self
            .d
            .store
            .locked_until(self.user(), self.counter(factor), now)?)
    }

    fn check(
        &mut self,
        step: Step,
        code: &SecretString,
        now: i64,
        note: &str,
        ends: Option<&[Passed]>,
    ) -> Result<CodeCheck, CheckError> {
        match step.factor {
            Factor::Totp => self.check_totp(step, code, now, note, ends),
            _ if self.cached => Err(CheckError::Broken(
                "only TOTP codes can be checked against this host's cache",
            )),
            Factor::Backup => self.check_backup(step, code, now, note),
            Factor::Sms | Factor::Email => self.check_sent(step, code, now, note),
        }
    }

    fn failed(&mut self, factor: Factor, reason: &str, now: i64) -> Result<Failure, CheckError> {
        let event = self.event(factor.name(), Audit::Deny, reason);
        let (user, counter, rule) = (
            self.user(),
            self.counter(factor),
            self.lockout(factor).rule(),
        );
        let state = match self.cached {
            true => super::cached::failed(self.d, user, counter, now, rule, &event)?,
            false => {
                let state = self
                    .d
                    .store
                    .record_failure(user, counter, now, rule, &event)?;
                event.log();
                state
            }
        };
        // Re-judging the user's sessions needs the database.
        if state.locked_until.is_some() && !self.cached {
            let trigger = Trigger::Locked {
                user: self.user(),
                source: self.source,
            };
            reevaluate::run(self.d, &trigger, self.peer.uid, None);
        }
        let l = &self.d.config.lockout;
        Ok(Failure {
            locked_until: state.locked_until,
            pause: l
                .failure_delay
                .saturating_mul(state.consecutive)
                .min(l.failure_delay_max),
        })
    }

    fn use_device(&mut self, now: i64) -> Result<bool, CheckError> {
        let (Some(key), Some(days), false) = (&self.key, self.trust_days(), self.cached) else {
            return Ok(false);
        };
        let hash = device_hash(self.d, self.user(), key)?;
        let event = self.event(
            "device",
            Audit::Allow,
            &format!("trusted device {}", key.label()),
        );
        let since = now.saturating_sub(i64::from(days) * DAY);
        let used = self
            .d
            .store
            .use_trusted_device(self.user(), &hash, now, since, &event)?;
        if used.is_some() {
            event.log();
        }
        Ok(used.is_some())
    }

    fn trust_device(&mut self, days: u32, now: i64) -> Result<i64, CheckError> {
        let key = self
            .key
            .as_ref()
            .filter(|_| !self.cached)
            .ok_or(CheckError::Broken("no device to trust"))?;
        let expires = now.saturating_add(i64::from(days) * DAY);
        let hash = device_hash(self.d, self.user(), key)?;
        let event = self.event(
            "device",
            Audit::Done,
            &format!("device trusted for {days} days: {}", key.label()),
        );
        self.d.store.trust_device(
            &NewDevice {
                user: self.user(),
                key_hash: &hash,
                key_type: &key.key_type,
                fingerprint: &key.fingerprint(),
                first_ip: self.start.rhost.as_deref(),
                created_at: now,
                expires_at: expires,
            },
            &event,
        )?;
        event.log();
        Ok(expires)
    }

    fn audit(&mut self, channel: &'static str, decision: Audit, reason: &str) {
        self.record(&self.event(channel, decision, reason));
    }

    fn enroll_offer(&mut self, _now: i64) -> Result<Offer, CheckError> {
        if self.cached {
            return Err(CheckError::Broken(
                "no enrollment while the shared database is unreachable",
            ));
        }
        let c = &self.d.config.totp;
        // The policy was checked against mfad.toml's profiles when it loaded.
        let params = c
            .profile(self.rule.and_then(|r| r.totp_profile.as_deref()))
            .ok_or(CheckError::Broken(
                "the rule names a TOTP profile mfad.toml lacks",
            ))?
            .params();
        let secret = totp::new_secret()?;
        let (uri, base32) = totp::provisioning(secret.as_slice(), params, &c.issuer, self.user())?;
        let sealed =
            self.d
                .vault
                .seal(self.user(), Sealed::PendingTotpSecret, secret.as_slice())?;
        self.offered = Some((sealed, params));
        let qr = ascii_qr(&uri)?;
        let grouped: Vec<String> = base32
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        self.audit("totp", Audit::Done, "enrollment at login offered");
        let usual =
            params.algorithm == TotpAlgorithm::SHA1 && params.digits == 6 && params.period == 30;
        Ok(Offer {
            qr,
            secret: grouped.join(" "),
            settings: (!usual).then(|| {
                format!(
                    "{}, {} digits, a new code every {} s",
                    params.algorithm.as_str(),
                    params.digits,
                    params.period
                )
            }),
        })
    }

    fn enroll_confirm(
        &mut self,
        code: &SecretString,
        now: i64,
    ) -> Result<Option<Vec<SecretString>>, CheckError> {
        let (sealed, params) = self
            .offered
            .as_ref()
            .ok_or(CheckError::Broken("no enrollment offered"))?;
        let d = self.d;
        let user = self.user();
        let secret = d.vault.open(user, Sealed::PendingTotpSecret, sealed)?;
        let Check::Match { step, .. } = totp::check(
            &secret,
            *params,
            code.expose(),
            now,
            d.config.totp.window_for(*params),
        )?
        else {
            return Ok(None);
        };
        let sealed = d.vault.seal(user, Sealed::TotpSecret, &secret)?;
        let b = &d.config.backup;
        let (codes, stored): (Vec<_>, Vec<_>) =
            backup::generate(&d.vault, user, b.count, b.length)?
                .into_iter()
                .unzip();
        let event = self.event(
            "totp",
            Audit::Done,
            &format!(
                "totp enrolled at login, {} backup codes issued",
                codes.len()
            ),
        );
        let totp = NewTotp {
            sealed: &sealed,
            params: *params,
            step,
            now,
        };
        d.store.enroll_totp(user, &totp, Some(&stored), &event)?;
        event.log();
        self.offered = None;
        Ok(Some(
            codes
                .iter()
                .map(|c| SecretString::new(c.as_str()))
                .collect(),
        ))
    }
}

/// The otpauth URI as a QR code in ASCII, two columns a module, within 80
/// columns. OpenSSH's client escapes every non-ASCII byte of
/// keyboard-interactive text (a UTF-8 half block arrives as `\342\226\200`),
/// so block characters cannot reach the user there.
fn ascii_qr(uri: &str) -> Result<Option<String>, CheckError> {
    let code = QrCode::with_error_correction_level(uri.as_bytes(), EcLevel::L)
        .map_err(|_| CheckError::Broken("cannot draw the QR code"))?;
    let drawn = code
        .render::<char>()
        .quiet_zone(false)
        .module_dimensions(2, 1)
        .dark_color('#')
        .light_color(' ')
        .build();
    // A margin of one module (scanners need some quiet zone), so that a
    // version 5 code (37 modules, an URI of up to 106 bytes) fits 78
    // columns. A larger one (a profile's longer URI) would wrap: none then.
    let width = code.width() * 2 + 4;
    if width > 80 {
        return Ok(None);
    }
    let blank = " ".repeat(width);
    let mut out = format!("{blank}\n");
    for line in drawn.lines() {
        out.push_str(&format!("  {line}  \n"));
    }
    out.push_str(&blank);
    Ok(Some(out))
}

/// How long a wait is, for a prompt.
pub fn until(expires: i64, now: i64) -> Duration {
    Duration::from_secs(u64::try_from(expires - now).unwrap_or(0))
}
