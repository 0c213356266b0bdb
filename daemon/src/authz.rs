//! Who may do what: a pure function over the peer's role and uids, so the
//! rules can be read in one place and tested as a table.
//!
//! Threat: any local user can connect to the socket. Without these checks a
//! user could verify codes, enroll a factor or read state for someone else.

use crate::peer::Role;

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (ping).
    Anyone,
    /// Root for any user; anyone else for their own uid only. Admins get no
    /// extra right here: running a PAM flow for another user is root's.
    Authenticate,
    /// Root and admins for any user; anyone else for their own uid only.
    SelfOrAdmin,
    /// Root and admins only.
    Admin,
    /// Root only: the PAM stack's own reports (sessions), and the key ring.
    Root,
}

/// The account a request is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The caller's own account.
    Own,
    /// A named account, with its uid if NSS knows it.
    Named(Option<u32>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Denied(pub &'static str);

pub fn authorize(role: Role, peer_uid: u32, target: Target, access: Access) -> Result<(), Denied> {
    // Compare uids, never names: two names may share a uid.
    let is_self = match target {
        Target::Own => true,
        Target::Named(uid) => uid == Some(peer_uid),
    };
    match (access, role) {
        (Access::Anyone, _) | (_, Role::Root) => Ok(()),
        (Access::Authenticate, _) if is_self => Ok(()),
        (Access::Authenticate, _) => Err(Denied("only root may authenticate another user")),
        (Access::SelfOrAdmin, Role::Admin) => Ok(()),
        (Access::SelfOrAdmin, Role::User) if is_self => Ok(()),
        (Access::SelfOrAdmin, Role::User) => Err(Denied("you may act only on your own account")),
        (Access::Admin, Role::Admin) => Ok(()),
        (Access::Admin, Role::User) => Err(Denied(
            "this needs root or membership of the mfad admin group",
        )),
        (Access::Root, _) => Err(Denied(
            "only root may do this (report sessions from the PAM stack, manage the key ring)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let me = 1000;
        let other = Target::Named(Some(1001));
        let mine = Target::Named(Some(me));
        let unknown = Target::Named(None);
        let cases = [
            (Role::User, Target::Own, Access::Anyone, true),
            (Role::User, other, Access::Anyone, true),
            (Role::Root, other, Access::Authenticate, true),
            (Role::Root, unknown, Access::Authenticate, true),
            (Role::Admin, other, Access::Authenticate, false),
            (Role::Admin, mine, Access::Authenticate, true),
            (Role::User, mine, Access::Authenticate, true),
            (Role::User, Target::Own, Access::Authenticate, true),
            (Role::User, other, Access::Authenticate, false),
            (Role::User, unknown, Access::Authenticate, false),
            (Role::User, Target::Own, Access::SelfOrAdmin, true),
            (Role::User, mine, Access::SelfOrAdmin, true),
            (Role::User, other, Access::SelfOrAdmin, false),
            (Role::User, unknown, Access::SelfOrAdmin, false),
            (Role::Admin, other, Access::SelfOrAdmin, true),
            (Role::Root, unknown, Access::SelfOrAdmin, true),
            (Role::User, mine, Access::Admin, false),
            (Role::User, Target::Own, Access::Admin, false),
            (Role::Admin, other, Access::Admin, true),
            (Role::Root, other, Access::Admin, true),
            (Role::Root, Target::Own, Access::Root, true),
            (Role::Admin, Target::Own, Access::Root, false),
            (Role::User, Target::Own, Access::Root, false),
        ];
        for (role, target, access, allowed) in cases {
            assert_eq!(
                authorize(role, me, target, access).is_ok(),
                allowed,
                "{role:?} {target:?} {access:?}"
            );
        }
    }
}
