//! Requests other than authentication: enrollment, status, and the admin
//! operations. Every change is audited; every refusal too.

use crate::audit::{Decision, Event};
use crate::authz::{Access, Target, authorize};
use crate::factor::backup;
use crate::factor::totp::{self, Check};
use crate::peer::{self, Peer};
use crate::store::TotpParams;
use crate::store::crypto::Purpose;
use crate::{Daemon, clock, validate};
use mfad_protocol::{EnrollmentOffer, ErrorCode, Request, Response, SecretString, UserStatus};

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

impl<E: std::fmt::Display> From<E> for Refusal {
    fn from(err: E) -> Self {
        log::error!("request failed: {err}");
        Refusal::new(ErrorCode::Internal, "internal error in mfad; see its log")
    }
}

pub fn handle(d: &Daemon, peer: &Peer, request: Request) -> Response {
    if let Some(result) = crate::sessions::handle(d, peer, &request) {
        return result.unwrap_or_else(Refusal::into_response);
    }
    let result = match request {
        Request::Ping => Ok(Response::Pong {
            daemon_version: env!("CARGO_PKG_VERSION").to_owned(),
            protocol: mfad_protocol::PROTOCOL_VERSION,
        }),
        Request::Status { user } => {
            resolve(d, peer, user.as_deref(), Access::SelfOrAdmin, "status")
                .and_then(|user| status(d, &user))
        }
        Request::UserShow { user } => resolve(d, peer, Some(&user), Access::Admin, "user show")
            .and_then(|user| status(d, &user)),
        Request::EnrollTotpBegin { user, replace } => {
            let access = if replace {
                Access::Admin
            } else {
                Access::SelfOrAdmin
            };
            resolve(d, peer, user.as_deref(), access, "enroll totp")
                .and_then(|user| enroll_begin(d, peer, &user, replace))
        }
        Request::EnrollTotpConfirm { user, code } => {
            resolve(d, peer, user.as_deref(), Access::SelfOrAdmin, "enroll totp")
                .and_then(|user| enroll_confirm(d, peer, &user, &code))
        }
        Request::UserList => {
            resolve(d, peer, None, Access::Admin, "user list").and_then(|_| list(d))
        }
        Request::UserReset { user } => resolve(d, peer, Some(&user), Access::Admin, "user reset")
            .and_then(|user| {
                let event = Event::admin(
                    &user,
                    "reset: all factors and counters removed",
                    Decision::Done,
                    peer.uid,
                    clock::now(),
                );
                let existed = d.store.reset_user(&user, &event)?;
                event.log();
                Ok(done(if existed {
                    format!("Removed every factor and counter of {user}.")
                } else {
                    format!("{user} had nothing to remove.")
                }))
            }),
        Request::UserUnlock { user } => resolve(d, peer, Some(&user), Access::Admin, "user unlock")
            .and_then(|user| {
                let event = Event::admin(&user, "unlock", Decision::Done, peer.uid, clock::now());
                let n = d.store.unlock_user(&user, &event)?;
                event.log();
                Ok(done(format!(
                    "Unlocked {user} ({n} failure counters cleared)."
                )))
            }),
        Request::AuditQuery { user, limit } => resolve(d, peer, None, Access::Admin, "audit")
            .and_then(|_| {
                let rows = d
                    .store
                    .audit_rows(user.as_deref(), limit.clamp(1, MAX_AUDIT_ROWS))?;
                Ok(Response::Audit { rows })
            }),
        Request::AuditVerify => crate::audit::verify(d, peer),
        // Streams until the client leaves: the server runs it.
        Request::AuditFollow => Err(Refusal::new(
            ErrorCode::Internal,
            "audit_follow is handled by the server",
        )),
        Request::BackupCodesRegenerate { user } => resolve(
            d,
            peer,
            user.as_deref(),
            Access::SelfOrAdmin,
            "backup-codes regenerate",
        )
        .and_then(|user| {
            issue_backup_codes(
                d,
                peer,
                &user,
                "New backup codes issued; the old ones no longer work.".to_owned(),
            )
        }),
        Request::PolicyReload => resolve(d, peer, None, Access::Admin, "policy reload").map(|_| {
            let r = d.reload_policy(&format!("uid {}", peer.uid));
            Response::PolicyLoaded {
                version: r.version,
                changed: r.changed,
                rejected: r.rejected,
                diagnostics: r.diagnostics,
            }
        }),
        Request::PolicyHistory => {
            resolve(d, peer, None, Access::Admin, "policy history").and_then(|_| {
                let in_force = d.policy().version;
                let mut versions = d.store.policy_versions()?;
                for v in &mut versions {
                    v.in_force = v.version == in_force;
                }
                Ok(Response::PolicyVersions { versions })
            })
        }
        Request::PolicyShow { version } => resolve(d, peer, None, Access::Admin, "policy show")
            .and_then(|_| {
                let in_force = d.policy().version;
                let wanted = version.unwrap_or(in_force);
                match d.store.policy_text(Some(wanted))? {
                    Some((mut version, text)) => {
                        version.in_force = version.version == in_force;
                        Ok(Response::PolicyText { version, text })
                    }
                    None => Err(Refusal::new(
                        ErrorCode::BadRequest,
                        format!("there is no policy version {wanted}"),
                    )),
                }
            }),
        Request::PolicyExplain {
            user,
            service,
            rhost,
            tty: _,
        } => resolve(d, peer, None, Access::Admin, "policy explain").and_then(|_| {
            validate::user_name(&user).map_err(|p| Refusal::new(ErrorCode::BadRequest, p))?;
            Ok(Response::Explanation(crate::explain::explain(
                d,
                &user,
                &service,
                rhost.as_deref(),
            )?))
        }),
        Request::ContactVerify {
            user,
            channel,
            code,
        } => crate::contacts::verify(d, peer, user.as_deref(), channel, &code),
        Request::ContactClear { user, channel } => {
            crate::contacts::clear(d, peer, user.as_deref(), channel)
        }
        // Sending takes a while: the server runs it as a task of its own.
        Request::ContactSet { .. } => Err(Refusal::new(
            ErrorCode::Internal,
            "contact_set is handled by the server",
        )),
        Request::AuthStart(_) | Request::Answer { .. } => Err(Refusal::new(
            ErrorCode::BadRequest,
            "no authentication is in progress on this connection",
        )),
        // Served in `sessions`, above and in the server (kill waits).
        Request::SessionOpen(_)
        | Request::SessionClose(_)
        | Request::SessionList
        | Request::SessionKill { .. }
        | Request::DeviceList { .. }
        | Request::DeviceRevoke { .. } => Err(Refusal::new(
            ErrorCode::Internal,
            "session request in the wrong handler",
        )),
    };
    result.unwrap_or_else(Refusal::into_response)
}

/// Checks the peer may make this request about `user` (`None`: themselves)
/// and returns the account name it is about. Refusals are audited.
pub(crate) fn resolve(
    d: &Daemon,
    peer: &Peer,
    user: Option<&str>,
    access: Access,
    what: &str,
) -> Result<String, Refusal> {
    let (name, target) = match user {
        Some(name) => {
            validate::user_name(name).map_err(|p| Refusal::new(ErrorCode::BadRequest, p))?;
            (name.to_owned(), Target::Named(peer::uid_of(name)))
        }
        None => {
            let own = peer::name_of(peer.uid).ok_or_else(|| {
                Refusal::new(
                    ErrorCode::NoSuchUser,
                    format!("uid {} has no account name", peer.uid),
                )
            })?;
            (own, Target::Own)
        }
    };
    let role = peer::role(peer, d.config.admin_group.as_deref());
    if let Err(denied) = authorize(role, peer.uid, target, access) {
        d.record(&Event::admin(
            &name,
            &format!("{what}: {denied}"),
            Decision::Refused,
            peer.uid,
            clock::now(),
        ));
        return Err(Refusal::new(
            ErrorCode::PermissionDenied,
            format!("{what}: {denied}"),
        ));
    }
    Ok(name)
}

fn status(d: &Daemon, user: &str) -> Result<Response, Refusal> {
    let now = clock::now();
    Ok(Response::Status(UserStatus {
        user: user.to_owned(),
        totp: d.store.totp_info(user)?,
        totp_pending: d.store.has_pending_totp(user, now)?,
        backup_codes: d.store.backup_codes_left(user)?,
        locks: d.store.locks(user, now, &d.config.lockout)?,
        contacts: crate::contacts::info(d, user)?,
    }))
}

fn list(d: &Daemon) -> Result<Response, Refusal> {
    Ok(Response::Users {
        users: d.store.users(clock::now())?,
    })
}

fn enroll_begin(d: &Daemon, peer: &Peer, user: &str, replace: bool) -> Result<Response, Refusal> {
    if !replace && d.store.totp_info(user)?.is_some() {
        return Err(Refusal::new(
            ErrorCode::AlreadyEnrolled,
            format!("{user} already has an active TOTP factor"),
        ));
    }
    let c = &d.config.totp;
    let params = TotpParams {
        algorithm: c.algorithm,
        digits: c.digits,
        period: c.period,
    };
    let secret = totp::new_secret()?;
    let (uri, secret_base32) = totp::provisioning(secret.as_slice(), params, &c.issuer, user)?;
    let sealed = d
        .vault
        .seal(user, Purpose::PendingTotpSecret, secret.as_slice())?;
    let now = clock::now();
    let expires = now.saturating_add(i64::try_from(c.enroll_timeout.as_secs()).unwrap_or(i64::MAX));
    let event = Event::admin(
        user,
        "totp enrollment started",
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

fn enroll_confirm(
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
        d.config.totp.window,
    )? {
        Check::Match { step, .. } => {
            let sealed = d.vault.seal(user, Purpose::TotpSecret, &secret)?;
            let event = Event::admin(user, "totp enrolled", Decision::Done, peer.uid, now);
            d.store
                .activate_totp(user, &sealed, pending.params, step, now, &event)?;
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
fn issue_backup_codes(
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

pub(crate) fn done(message: String) -> Response {
    Response::Done { message }
}
