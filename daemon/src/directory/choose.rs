//! Which destination login codes go to when both the directory and
//! `mfactl` may name one. Pure, and tested as a table.
//!
//! Threat: whoever can edit a directory entry (or spoof the directory)
//! could send a user's codes to their own phone. `contacts = "confirm"`
//! closes that: a directory address counts only once the user confirmed
//! that very address with a code. A directory that cannot answer never
//! falls back to an address it may have overruled (`local_contacts =
//! "refuse"`): the contact is absent, and factors needing it are denied.

use crate::config::{ContactTrust, LocalContacts};

/// The directory's answer for one channel, already checked as an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirContact {
    /// No answer in time and nothing fresh in the cache.
    Unavailable,
    /// No such user, or no usable value.
    Absent,
    Present(String),
}

/// The chosen destination and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pick {
    pub to: String,
    pub from_directory: bool,
}

/// `local` is the verified destination set with `mfactl`.
pub fn choose(
    local: Option<String>,
    dir: DirContact,
    trust: ContactTrust,
    mode: LocalContacts,
) -> Option<Pick> {
    let local_pick = |to: String| Pick {
        to,
        from_directory: false,
    };
    if mode == LocalContacts::Override
        && let Some(to) = local
    {
        return Some(local_pick(to));
    }
    match dir {
        DirContact::Present(to) => {
            let confirmed = trust == ContactTrust::Verified || local.as_deref() == Some(&to);
            confirmed.then_some(Pick {
                to,
                from_directory: true,
            })
        }
        DirContact::Absent => local.map(local_pick),
        DirContact::Unavailable => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ContactTrust::{Confirm, Verified};
    use LocalContacts::{Override, Refuse};

    /// local, directory, settings, and the pick: (to, from_directory).
    type Case = (
        Option<String>,
        DirContact,
        ContactTrust,
        LocalContacts,
        Option<(&'static str, bool)>,
    );

    #[test]
    fn table() {
        let dir = |s: &str| DirContact::Present(s.to_owned());
        let l = |s: &str| Some(s.to_owned());
        let d = |s: &'static str| Some((s, true));
        let m = |s: &'static str| Some((s, false));
        #[rustfmt::skip]
        let cases: [Case; 14] = [
            (None,      dir("+D"),                Verified, Override, d("+D")),
            (l("+L"),   dir("+D"),                Verified, Override, m("+L")),
            (l("+L"),   dir("+D"),                Verified, Refuse,   d("+D")),
            (None,      dir("+D"),                Confirm,  Override, None),
            (None,      dir("+D"),                Confirm,  Refuse,   None),
            (l("+D"),   dir("+D"),                Confirm,  Refuse,   d("+D")),
            (l("+L"),   dir("+D"),                Confirm,  Refuse,   None),
            (l("+L"),   DirContact::Absent,       Verified, Refuse,   m("+L")),
            (None,      DirContact::Absent,       Verified, Override, None),
            (l("+L"),   DirContact::Unavailable,  Verified, Override, m("+L")),
            (l("+L"),   DirContact::Unavailable,  Verified, Refuse,   None),
            (None,      DirContact::Unavailable,  Verified, Override, None),
            (l("+D"),   dir("+D"),                Confirm,  Override, m("+D")),
            (l("+L"),   DirContact::Unavailable,  Confirm,  Refuse,   None),
        ];
        for (local, dirc, trust, mode, want) in cases {
            let what = format!("{local:?} {dirc:?} {trust:?} {mode:?}");
            let got = choose(local, dirc, trust, mode);
            let got = got.as_ref().map(|p| (p.to.as_str(), p.from_directory));
            assert_eq!(got, want, "{what}");
        }
    }
}
