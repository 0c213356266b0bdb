//! Every request, in one table: who may make it and which account it is
//! about ([`route`]), checked in one place ([`admit`]) before any policy or
//! store work; then the one match that hands it to its handler
//! ([`dispatch`]). A handler gets typed input and an account already
//! authorized; there is no other authorization and no fallback arm.
//!
//! Threat: any local user can connect to the socket (see `authz.rs`).

use crate::admin::{self, Refusal};
use crate::audit::{Decision, Event};
use crate::authz::{Access, Target, authorize};
use crate::io::FrameIo;
use crate::peer::{self, Peer};
use crate::{
    Daemon, audit, clock, contacts, directory, fleet, import, keyring, login, selfservice,
    sessions, validate,
};
use mfad_protocol::{Channel, ErrorCode, Request, Response};

/// Who may make a request, and about whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route<'a> {
    pub access: Access,
    pub about: About<'a>,
    /// How the request is named in refusals and the audit log.
    pub what: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum About<'a> {
    /// No account (the policy, the audit log, the list of users).
    Nothing,
    /// An account: named, or the caller's own (`None`).
    Account(Option<&'a str>),
}

use About::{Account, Nothing};
use Access::{Admin, Anyone, Authenticate, Root, SelfOrAdmin};

fn by_channel(channel: Channel, phone: &'static str, email: &'static str) -> &'static str {
    match channel {
        Channel::Sms => phone,
        Channel::Email => email,
    }
}

/// The table.
pub fn route(request: &Request) -> Route<'_> {
    let (access, about, what) = match request {
        Request::Ping => (Anyone, Nothing, "ping"),
        // Only root runs a PAM flow for another user; a screen locker runs
        // as the user it unlocks.
        Request::AuthStart(s) => (Authenticate, Account(Some(&s.user)), "authenticate"),
        Request::Answer { .. } => (Anyone, Nothing, "answer"),
        Request::Status { user } => (SelfOrAdmin, Account(user.as_deref()), "status"),
        Request::UserShow { user } => (Admin, Account(Some(user)), "user show"),
        // Replacing an active factor without proving it is an admin's call.
        Request::EnrollTotpBegin { user, replace, .. } => (
            if *replace { Admin } else { SelfOrAdmin },
            Account(user.as_deref()),
            "enroll totp",
        ),
        Request::EnrollTotpConfirm { user, .. } => {
            (SelfOrAdmin, Account(user.as_deref()), "enroll totp")
        }
        Request::UserList => (Admin, Nothing, "user list"),
        Request::UserReset { user } => (Admin, Account(Some(user)), "user reset"),
        Request::UserUnlock { user } => (Admin, Account(Some(user)), "user unlock"),
        Request::AuditQuery { .. } => (Admin, Nothing, "audit"),
        Request::LoginHistory { user, .. } => (SelfOrAdmin, Account(user.as_deref()), "history"),
        Request::AuditVerify => (Admin, Nothing, "audit verify"),
        Request::AuditFollow => (Admin, Nothing, "audit follow"),
        Request::BackupCodesRegenerate { user } => (
            SelfOrAdmin,
            Account(user.as_deref()),
            "backup-codes regenerate",
        ),
        // Marking a destination verified without a code is an admin's call.
        Request::ContactSet {
            user,
            channel,
            verified,
            ..
        } => (
            if *verified { Admin } else { SelfOrAdmin },
            Account(user.as_deref()),
            by_channel(*channel, "phone set", "email set"),
        ),
        Request::ContactVerify { user, channel, .. } => (
            SelfOrAdmin,
            Account(user.as_deref()),
            by_channel(*channel, "phone verify", "email verify"),
        ),
        Request::ContactClear { user, channel } => (
            SelfOrAdmin,
            Account(user.as_deref()),
            by_channel(*channel, "phone clear", "email clear"),
        ),
        Request::ImportTotp(i) => (Admin, Account(Some(&i.user)), "import"),
        Request::PolicyReload => (Admin, Nothing, "policy reload"),
        Request::PolicyPush { .. } => (Admin, Nothing, "policy push"),
        Request::PolicyStatus => (Admin, Nothing, "policy status"),
        Request::PolicyHistory => (Admin, Nothing, "policy history"),
        Request::PolicyShow { .. } => (Admin, Nothing, "policy show"),
        Request::PolicyExplain { .. } => (Admin, Nothing, "policy explain"),
        // The session hooks run in the PAM stack of sshd, login and the
        // like, always as root; a user must not report sessions.
        Request::SessionOpen(_) | Request::SessionClose(_) => (Root, Nothing, "session report"),
        // Anyone may call; the handlers show and end only the caller's own
        // sessions unless the caller is root or an admin.
        Request::SessionList => (SelfOrAdmin, Nothing, "sessions list"),
        Request::SessionKill { .. } => (SelfOrAdmin, Nothing, "sessions kill"),
        Request::SessionStepup { .. } => (Admin, Nothing, "sessions stepup"),
        // A lookup of anyone's directory entry: an admin's diagnosis.
        Request::DirectoryCheck { user } => (Admin, Account(user.as_deref()), "directory check"),
        Request::GroupSources { .. } => (Admin, Nothing, "policy check"),
        Request::StoreCheck => (Admin, Nothing, "store check"),
        // The key file is root's alone, and so is the key that seals.
        Request::KeyAdd => (Root, Nothing, "key add"),
        Request::KeyRotate => (Root, Nothing, "key rotate"),
        Request::KeyStatus => (Root, Nothing, "key status"),
        Request::DeviceList { user } => (SelfOrAdmin, Account(user.as_deref()), "devices list"),
        Request::DeviceRevoke { user, .. } => {
            (SelfOrAdmin, Account(user.as_deref()), "devices revoke")
        }
        // Always the caller's own account, and only with a fresh proof.
        Request::SelfChange { .. } => (SelfOrAdmin, Account(None), "self change"),
    };
    Route {
        access,
        about,
        what,
    }
}

/// Checks the peer may make `request`; returns the account it is about
/// (empty for requests about no account). Refusals are audited.
pub fn admit(d: &Daemon, peer: &Peer, request: &Request) -> Result<String, Refusal> {
    let route = route(request);
    let (name, target) = match route.about {
        Account(Some(name)) => {
            validate::user_name(name).map_err(|p| Refusal::new(ErrorCode::BadRequest, p))?;
            // Root may act on any account, so its requests (every sshd
            // login) skip the NSS lookup: a tenth of a login's CPU.
            let uid = match peer.uid {
                0 => None,
                _ => peer::uid_of(name),
            };
            (name.to_owned(), Target::Named(uid))
        }
        Account(None) => {
            let own = peer::name_of(peer.uid).ok_or_else(|| {
                Refusal::new(
                    ErrorCode::NoSuchUser,
                    format!("uid {} has no account name", peer.uid),
                )
            })?;
            (own, Target::Own)
        }
        Nothing => (String::new(), Target::Own),
    };
    let role = peer::role(peer, d.config.admin_group.as_deref());
    let Err(denied) = authorize(role, peer.uid, target, route.access) else {
        return Ok(name);
    };
    let now = clock::now();
    let event = match request {
        Request::AuthStart(start) => Event::auth(
            start,
            "none",
            Decision::Refused,
            "peer not allowed to authenticate this user",
            peer.uid,
            now,
        ),
        _ => {
            let who = match name.is_empty() {
                true => peer::name_of(peer.uid).unwrap_or_else(|| format!("uid {}", peer.uid)),
                false => name,
            };
            Event::admin(
                &who,
                &format!("{}: {denied}", route.what),
                Decision::Refused,
                peer.uid,
                now,
            )
        }
    };
    d.record(&event);
    Err(Refusal::new(
        ErrorCode::PermissionDenied,
        format!("{}: {denied}", route.what),
    ))
}

/// What the connection does after a request.
pub enum Next {
    Continue,
    /// One connection, one conversation: a login ends it.
    Close,
}

/// Hands an admitted request to its handler, with the account `admit`
/// returned.
pub async fn dispatch(
    d: &Daemon,
    peer: &Peer,
    io: &mut FrameIo,
    request: Request,
    user: String,
) -> Next {
    let result = match request {
        Request::AuthStart(start) => {
            login::run(d, peer, io, start).await;
            return Next::Close;
        }
        Request::Answer { .. } => Err(Refusal::new(
            ErrorCode::BadRequest,
            "no authentication is in progress on this connection",
        )),
        Request::Ping => Ok(Response::Pong {
            daemon_version: env!("CARGO_PKG_VERSION").to_owned(),
            protocol: mfad_protocol::PROTOCOL_VERSION,
        }),
        Request::Status { .. } | Request::UserShow { .. } => admin::status(d, &user),
        Request::EnrollTotpBegin {
            replace,
            force,
            profile,
            ..
        } => admin::profile(d, profile.as_deref())
            .and_then(|params| admin::enroll_begin(d, peer, &user, replace, force, params)),
        Request::EnrollTotpConfirm { code, .. } => admin::enroll_confirm(d, peer, &user, &code),
        Request::UserList => admin::list(d),
        Request::UserReset { .. } => admin::reset(d, peer, &user),
        Request::UserUnlock { .. } => admin::unlock(d, peer, &user),
        Request::AuditQuery {
            user,
            limit,
            before,
        } => admin::audit(d, user.as_deref(), limit, before),
        Request::LoginHistory { limit, .. } => sessions::history(d, &user, limit),
        Request::AuditVerify => audit::verify(d),
        // Streams until the client leaves.
        Request::AuditFollow => {
            audit::follow(peer, io).await;
            return Next::Close;
        }
        Request::BackupCodesRegenerate { .. } => admin::issue_backup_codes(
            d,
            peer,
            &user,
            "New backup codes issued; the old ones no longer work.".to_owned(),
        ),
        Request::ContactSet {
            channel,
            address,
            verified,
            force,
            ..
        } => contacts::set(d, peer, &user, channel, &address, verified, force).await,
        Request::ContactVerify { channel, code, .. } => {
            contacts::verify(d, peer, &user, channel, &code)
        }
        Request::ContactClear { channel, .. } => contacts::clear(d, peer, &user, channel),
        Request::ImportTotp(i) => import::totp(d, peer, &i),
        Request::PolicyReload => Ok(admin::reload(d, peer)),
        Request::PolicyPush { text } => fleet::push(d, peer, &text),
        Request::PolicyStatus => fleet::status(d),
        Request::PolicyHistory => admin::policy_history(d),
        Request::PolicyShow { version } => admin::policy_show(d, version),
        Request::PolicyExplain {
            user,
            service,
            rhost,
            tty: _,
            device_key,
            session,
        } => admin::explain(
            d,
            &user,
            &service,
            rhost.as_deref(),
            device_key.as_deref(),
            session,
        ),
        Request::SessionOpen(r) => sessions::open(d, peer, &r),
        Request::SessionClose(r) => sessions::close(d, peer, &r),
        Request::SessionList => sessions::list(d, peer),
        Request::SessionKill { id } => sessions::kill(d, peer, id).await,
        Request::SessionStepup { id } => sessions::stepup(d, peer, id),
        Request::DeviceList { .. } => sessions::devices(d, &user),
        Request::DeviceRevoke { id, .. } => sessions::revoke(d, peer, &user, id),
        Request::DirectoryCheck { .. } => directory::check::run(d, &user),
        Request::GroupSources { groups } => directory::check::group_sources(d, &groups),
        Request::SelfChange { change, proof } => {
            selfservice::change(d, peer, &user, change, &proof).await
        }
        Request::StoreCheck => Ok(admin::store_check(d)),
        Request::KeyAdd => keyring::add(d, peer),
        Request::KeyRotate => keyring::rotate(d, peer),
        Request::KeyStatus => keyring::status(d),
    };
    let response = result.unwrap_or_else(Refusal::into_response);
    match io.send(response).await {
        Ok(()) => Next::Continue,
        Err(_) => Next::Close,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mfad_protocol::{AuthStart, SecretString, SessionReport};

    fn who(r: &Request) -> (Access, About<'_>) {
        let route = route(r);
        (route.access, route.about)
    }

    #[test]
    fn each_request_has_its_access_rule() {
        let alice = Some("alice".to_owned());
        let start = AuthStart {
            user: "alice".into(),
            service: "sshd".into(),
            ..Default::default()
        };
        let code = SecretString::new("1".to_owned());
        let report = SessionReport {
            user: "alice".into(),
            service: "sshd".into(),
            ..Default::default()
        };
        let cases = [
            (Request::Ping, Anyone, Nothing),
            (
                Request::AuthStart(start),
                Authenticate,
                Account(Some("alice")),
            ),
            (Request::Status { user: None }, SelfOrAdmin, Account(None)),
            (
                Request::EnrollTotpBegin {
                    user: alice.clone(),
                    replace: false,
                    force: false,
                    profile: None,
                },
                SelfOrAdmin,
                Account(Some("alice")),
            ),
            (
                Request::EnrollTotpBegin {
                    user: None,
                    replace: true,
                    force: false,
                    profile: None,
                },
                Admin,
                Account(None),
            ),
            (
                Request::UserReset {
                    user: "alice".into(),
                },
                Admin,
                Account(Some("alice")),
            ),
            (
                Request::ContactSet {
                    user: None,
                    channel: Channel::Sms,
                    address: code.clone(),
                    verified: true,
                    force: true,
                },
                Admin,
                Account(None),
            ),
            (
                Request::ContactSet {
                    user: None,
                    channel: Channel::Sms,
                    address: code.clone(),
                    verified: false,
                    force: false,
                },
                SelfOrAdmin,
                Account(None),
            ),
            (
                Request::ContactVerify {
                    user: alice.clone(),
                    channel: Channel::Email,
                    code,
                },
                SelfOrAdmin,
                Account(Some("alice")),
            ),
            (Request::SessionOpen(report.clone()), Root, Nothing),
            (Request::SessionClose(report), Root, Nothing),
            (Request::SessionList, SelfOrAdmin, Nothing),
            (Request::SessionKill { id: 1 }, SelfOrAdmin, Nothing),
            (Request::SessionStepup { id: 1 }, Admin, Nothing),
            (
                Request::LoginHistory {
                    user: None,
                    limit: 5,
                },
                SelfOrAdmin,
                Account(None),
            ),
            (
                Request::DeviceRevoke { user: None, id: 1 },
                SelfOrAdmin,
                Account(None),
            ),
            (Request::PolicyReload, Admin, Nothing),
            (
                Request::PolicyPush {
                    text: String::new(),
                },
                Admin,
                Nothing,
            ),
            (Request::PolicyStatus, Admin, Nothing),
            (
                Request::ImportTotp(mfad_protocol::ImportTotp {
                    user: "alice".into(),
                    ..Default::default()
                }),
                Admin,
                Account(Some("alice")),
            ),
            (Request::GroupSources { groups: vec![] }, Admin, Nothing),
            (Request::StoreCheck, Admin, Nothing),
            (Request::KeyAdd, Root, Nothing),
            (Request::KeyRotate, Root, Nothing),
            (Request::KeyStatus, Root, Nothing),
            (
                Request::SelfChange {
                    change: mfad_protocol::SelfChange::Disable,
                    proof: SecretString::new("1"),
                },
                SelfOrAdmin,
                Account(None),
            ),
            (
                Request::DirectoryCheck {
                    user: alice.clone(),
                },
                Admin,
                Account(Some("alice")),
            ),
        ];
        for (request, access, about) in &cases {
            assert_eq!(who(request), (*access, *about), "{request:?}");
        }
    }
}
