//! Requests other than authentication: enrollment, status, and the admin
//! operations. Every change is audited; every refusal too.

use crate::audit::{Decision, Event};
use crate::explain::ExplainError;
use crate::factor::backup;
use crate::factor::totp::{self, Check};
use crate::peer::Peer;
use crate::store::crypto::Purpose;
use crate::store::{NewTotp, TotpParams};
use crate::wire;
use crate::{Daemon, clock, validate};
use mfad_protocol::{EnrollmentOffer, ErrorCode, Response, SecretString, UserStatus};

/// The most audit rows one query returns.
const MAX_AUDIT_ROWS: u32 = 10_000;

pub(crate) struct Refusal {
    code: ErrorCode,
    message: String,
}

impl Refusal {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn into_response(self) -> Response {
        Response::Error {
            code: self.code,
            message: self.message,
            supported: Vec::new(),
        }
    }
}

impl Refusal {
    /// Something broke inside mfad: logged here, told as an internal error.
    fn internal(err: &dyn std::fmt::Display) -> Self {
        log::error!("request failed: {err}");
        Refusal::new(ErrorCode::Internal, "internal error in mfad; see its log")
    }
}

/// The failures of the layers below that a request can meet.
macro_rules! internal_from {
    ($($t:ty),* $(,)?) => {$(
        impl From<$t> for Refusal {
            fn from(err: $t) -> Self {
                Refusal::internal(&err)
            }
        }
    )*};
}

internal_from!(
    crate::store::StoreError,
    crate::store::crypto::CryptoError,
    crate::factor::totp::TotpError,
    crate::factor::otp::IssueError,
    crate::login::checks::CheckError,
);

pub(crate) fn reset(d: &Daemon, peer: &Peer, user: &str) -> Result<Response, Refusal> {
    let event = Event::admin(
        user,
        "reset: all factors and counters removed",
        Decision::Done,
        peer.uid,
        clock::now(),
    );
    let existed = d.store.reset_user(user, &event)?;
    event.log();
    Ok(done(if existed {
        format!("Removed every factor and counter of {user}.")
    } else {
        format!("{user} had nothing to remove.")
    }))
}

pub(crate) fn unlock(d: &Daemon, peer: &Peer, user: &str) -> Result<Response, Refusal> {
    let event = Event::admin(user, "unlock", Decision::Done, peer.uid, clock::now());
    let n = d.store.unlock_user(user, &event)?;
    event.log();
    Ok(done(format!(
        "Unlocked {user} ({n} failure counters cleared)."
    )))
}

pub(crate) fn audit(
    d: &Daemon,
    user: Option<&str>,
    limit: u32,
    before: Option<i64>,
) -> Result<Response, Refusal> {
    let rows = d
        .store
        .audit_rows(user, before, limit.clamp(1, MAX_AUDIT_ROWS))?;
    let (rows, more) = wire::fit(wire::audit_rows(rows));
    Ok(Response::Audit { rows, more })
}

pub(crate) fn reload(d: &Daemon, peer: &Peer) -> Response {
    let r = d.reload_policy(&format!("uid {}", peer.uid));
    Response::PolicyLoaded {
        version: r.version,
        changed: r.changed,
        rejected: r.rejected,
        diagnostics: r.diagnostics,
    }
}

pub(crate) fn policy_history(d: &Daemon) -> Result<Response, Refusal> {
    let in_force = d.policy().version;
    let versions = d.store.policy_versions()?;
    Ok(Response::PolicyVersions {
        versions: versions
            .into_iter()
            .map(|v| wire::policy_version(v, in_force))
            .collect(),
    })
}

pub(crate) fn policy_show(d: &Daemon, version: Option<i64>) -> Result<Response, Refusal> {
    let in_force = d.policy().version;
    let wanted = version.unwrap_or(in_force);
    match d.store.policy_text(Some(wanted))? {
        Some((version, text)) => Ok(Response::PolicyText {
            version: wire::policy_version(version, in_force),
            text,
        }),
        None => Err(Refusal::new(
            ErrorCode::BadRequest,
            format!("there is no policy version {wanted}"),
        )),
    }
}

pub(crate) fn explain(
    d: &Daemon,
    user: &str,
    service: &str,
    rhost: Option<&str>,
    device_key: Option<&str>,
    session: Option<i64>,
) -> Result<Response, Refusal> {
    validate::user_name(user).map_err(|p| Refusal::new(ErrorCode::BadRequest, p))?;
    let ctx = crate::explain::Context {
        device_key,
        session,
    };
    match crate::explain::explain(d, user, service, rhost, &ctx) {
        Ok(explanation) => Ok(Response::Explanation(explanation)),
        Err(ExplainError::Check(e)) => Err(e.into()),
        Err(e) => Err(Refusal::new(ErrorCode::BadRequest, e.to_string())),
    }
}

pub(crate) fn status(d: &Daemon, user: &str) -> Result<Response, Refusal> {
    let now = clock::now();
    Ok(Response::Status(UserStatus {
        user: user.to_owned(),
        totp: d.store.totp_summary(user)?.map(wire::totp),
        totp_pending: d.store.has_pending_totp(user, now)?,
        backup_codes: d.store.backup_codes_left(user)?,
        locks: (d.store.failure_counts(user, now, d.config.lockout.rule())?)
            .into_iter()
            .map(wire::lock)
            .collect(),
        contacts: crate::contacts::info(d, user)?,
        trusted_devices: u32::try_from(d.store.devices(user, now)?.len()).unwrap_or(u32::MAX),
        last_login: d
            .store
            .logins(user, 1, true)?
            .pop()
            .map(|r| Box::new(wire::audit_row(r))),
    }))
}

/// `mfactl doctor`: the store's checks of itself.
pub(crate) fn store_check(d: &Daemon) -> Response {
    Response::StoreChecked {
        steps: d.store.self_check().into_iter().map(wire::health).collect(),
    }
}

pub(crate) fn list(d: &Daemon) -> Result<Response, Refusal> {
    Ok(Response::Users {
        users: d
            .store
            .users(clock::now())?
            .into_iter()
            .map(wire::user)
            .collect(),
    })
}

/// How a TOTP factor of profile `name` computes its codes.
pub(crate) fn profile(d: &Daemon, name: Option<&str>) -> Result<TotpParams, Refusal> {
    d.config
        .totp
        .profile(name)
        .map(|p| p.params())
        .ok_or_else(|| {
            let defined: Vec<&str> = d.config.totp.profiles.keys().map(String::as_str).collect();
            Refusal::new(
                ErrorCode::BadRequest,
                format!(
                    "no TOTP profile {:?} in mfad.toml; it defines {}",
                    name.unwrap_or_default(),
                    match defined.is_empty() {
                        true => "none ([totp] alone is the default)".to_owned(),
                        false => defined.join(", "),
                    }
                ),
            )
        })
}

/// Starts a TOTP enrollment of `user` computing codes as `params` say.
pub(crate) fn enroll_begin(
    d: &Daemon,
    peer: &Peer,
    user: &str,
    replace: bool,
    force: bool,
    params: TotpParams,
) -> Result<Response, Refusal> {
    let warning = unknown_account(d, peer, user, "enroll totp", force)?;
    if !replace && d.store.totp_summary(user)?.is_some() {
        return Err(Refusal::new(
            ErrorCode::AlreadyEnrolled,
            format!("{user} already has an active TOTP factor"),
        ));
    }
    let c = &d.config.totp;
    let secret = totp::new_secret()?;
    let (uri, secret_base32) = totp::provisioning(secret.as_slice(), params, &c.issuer, user)?;
    let sealed = d
        .vault
        .seal(user, Purpose::PendingTotpSecret, secret.as_slice())?;
    let now = clock::now();
    let expires = now.saturating_add(i64::try_from(c.enroll_timeout.as_secs()).unwrap_or(i64::MAX));
    let event = Event::admin(
        user,
        &match warning {
            Some(w) => format!("totp enrollment started. {w}"),
            None => "totp enrollment started".to_owned(),
        },
        Decision::Done,
        peer.uid,
        now,
    );
    d.store
        .put_pending_totp(user, &sealed, params, expires, &event)?;
    event.log();
    Ok(Response::EnrollmentOffer(EnrollmentOffer {
        user: user.to_owned(),
        uri: SecretString::new(uri),
        secret_base32: SecretString::new(secret_base32),
        issuer: c.issuer.clone(),
        algorithm: params.algorithm.as_str().to_owned(),
        digits: params.digits,
        period: params.period,
        expires,
    }))
}

pub(crate) fn enroll_confirm(
    d: &Daemon,
    peer: &Peer,
    user: &str,
    code: &SecretString,
) -> Result<Response, Refusal> {
    let now = clock::now();
    let Some(pending) = d.store.pending_totp(user, now)? else {
        return Err(Refusal::new(
            ErrorCode::NoPendingEnrollment,
            format!("{user} has no pending TOTP enrollment (none was started, or it expired)"),
        ));
    };
    let secret = d
        .vault
        .open(user, Purpose::PendingTotpSecret, &pending.sealed_secret)?;
    match totp::check(
        &secret,
        pending.params,
        code.expose(),
        now,
        d.config.totp.window_for(pending.params),
    )? {
        Check::Match { step, .. } => {
            let sealed = d.vault.seal(user, Purpose::TotpSecret, &secret)?;
            let event = Event::admin(user, "totp enrolled", Decision::Done, peer.uid, now);
            let totp = NewTotp {
                sealed: &sealed,
                params: pending.params,
                step,
                now,
            };
            d.store.enroll_totp(user, &totp, None, &event)?;
            event.log();
            issue_backup_codes(d, peer, user, format!("TOTP is now active for {user}."))
        }
        Check::Skewed { .. } => Err(Refusal::new(
            ErrorCode::WrongCode,
            "the code is from a neighbouring time window: check the clock of the device running the authenticator",
        )),
        Check::Wrong => Err(Refusal::new(
            ErrorCode::WrongCode,
            "the code does not match; check it and try again",
        )),
    }
}

/// Issues a new set of backup codes for `user`, replacing any earlier set.
pub(crate) fn issue_backup_codes(
    d: &Daemon,
    peer: &Peer,
    user: &str,
    message: String,
) -> Result<Response, Refusal> {
    let b = &d.config.backup;
    let generated = backup::generate(&d.vault, user, b.count, b.length)?;
    let (codes, stored): (Vec<_>, Vec<_>) = generated.into_iter().unzip();
    let event = Event::admin(
        user,
        &format!("{} backup codes issued", codes.len()),
        Decision::Done,
        peer.uid,
        clock::now(),
    );
    d.store.replace_backup_codes(user, &stored, &event)?;
    event.log();
    Ok(Response::BackupCodes {
        user: user.to_owned(),
        codes: codes
            .iter()
            .map(|c| SecretString::new(c.as_str()))
            .collect(),
        message,
    })
}

/// Refuses, audited, a request about a name no local account has, unless
/// `force`: a typo would otherwise enroll nobody, silently. With `force`,
/// the warning for the reply.
pub(crate) fn unknown_account(
    d: &Daemon,
    peer: &Peer,
    user: &str,
    what: &str,
    force: bool,
) -> Result<Option<String>, Refusal> {
    if crate::peer::uid_of(user).is_some() {
        return Ok(None);
    }
    let warning = format!("no local account is named {user:?}");
    if force {
        return Ok(Some(format!("Warning: {warning}; going on (--force).")));
    }
    d.record(&Event::admin(
        user,
        &format!("{what} refused: {warning}"),
        Decision::Refused,
        peer.uid,
        clock::now(),
    ));
    Err(Refusal::new(
        ErrorCode::NoSuchUser,
        format!(
            "{what}: {warning}; check the name, or pass --force for an account this machine does not know yet"
        ),
    ))
}

pub(crate) fn done(message: String) -> Response {
    Response::Done { message }
}
