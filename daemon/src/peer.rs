//! Who is on the other end of a connection, from SO_PEERCRED, and what role
//! that gives them. Access is never decided by socket file modes.

use nix::unistd::{Gid, Group, Uid, User, getgrouplist};
use std::ffi::CString;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
    /// For logs, and to read the two ids below at accept time: pids are
    /// reused, so it decides nothing by itself.
    pub pid: Option<i32>,
    /// The caller's audit session id (`/proc/<pid>/sessionid`, set by
    /// pam_loginuid), read when the connection was accepted.
    pub audit_session: Option<u32>,
    /// The caller's login uid (`/proc/<pid>/loginuid`), read with it.
    pub loginuid: Option<u32>,
    /// The real uid of the calling process, read with them: who ran su or
    /// sudo, where `uid` (effective) is root.
    pub real_uid: Option<u32>,
}

impl Peer {
    /// The peer of a connection, with its audit ids read now, while the
    /// process that connected is certainly alive (it is blocked on us).
    pub fn from_cred(uid: u32, gid: u32, pid: Option<i32>) -> Self {
        Self {
            uid,
            gid,
            pid,
            audit_session: pid.and_then(crate::procs::audit_session),
            loginuid: pid.and_then(crate::procs::loginuid),
            real_uid: pid.and_then(crate::procs::real_uid),
        }
    }
}

impl Peer {
    /// Whether the caller already runs inside a login (pam_loginuid gave it
    /// a login uid): sudo, su, a screen locker. sshd, login and services
    /// started by init have none until the session they open.
    pub fn inside_login(&self) -> bool {
        self.loginuid.is_some()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Root,
    /// A member of the configured admin group.
    Admin,
    User,
}

/// The peer's role. Group membership is looked up through NSS (so LDAP and
/// SSSD groups count) including supplementary groups, not just the primary gid.
pub fn role(peer: &Peer, admin_group: Option<&str>) -> Role {
    if peer.uid == 0 {
        return Role::Root;
    }
    let Some(group) = admin_group else {
        return Role::User;
    };
    let Ok(Some(group)) = Group::from_name(group) else {
        return Role::User;
    };
    let Ok(Some(user)) = User::from_uid(Uid::from_raw(peer.uid)) else {
        return Role::User;
    };
    let Ok(name) = CString::new(user.name) else {
        return Role::User;
    };
    match getgrouplist(&name, Gid::from_raw(peer.gid)) {
        Ok(groups) if groups.contains(&group.gid) => Role::Admin,
        _ => Role::User,
    }
}

/// The uid of a named local account, if NSS knows it.
pub fn uid_of(name: &str) -> Option<u32> {
    User::from_name(name).ok().flatten().map(|u| u.uid.as_raw())
}

/// The account name of `uid`, if NSS knows it.
pub fn name_of(uid: u32) -> Option<String> {
    User::from_uid(Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
}
