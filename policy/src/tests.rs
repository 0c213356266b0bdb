//! Tests of the policy engine: a table of rules × requests, validation with
//! positions and hints, and property tests against a naive re-implementation.
//! Group membership comes from [`FakeDir`], so `%group` needs no NSS.

mod props;
mod table;
mod validation;

use super::Directory;
use std::cell::Cell;
use std::collections::{HashMap, HashSet};

/// A directory in memory: user → groups, and which groups exist. Counts the
/// `groups_of` calls so tests can check the lookup is lazy and done once.
pub(super) struct FakeDir {
    members: HashMap<String, Vec<String>>,
    groups: HashSet<String>,
    lookups: Cell<usize>,
}

impl FakeDir {
    pub(super) fn new(members: &[(&str, &[&str])], extra_groups: &[&str]) -> Self {
        let members: HashMap<String, Vec<String>> = members
            .iter()
            .map(|(u, gs)| {
                (
                    (*u).to_owned(),
                    gs.iter().map(|g| (*g).to_owned()).collect(),
                )
            })
            .collect();
        let groups = members
            .values()
            .flatten()
            .cloned()
            .chain(extra_groups.iter().map(|g| (*g).to_owned()))
            .collect();
        Self {
            members,
            groups,
            lookups: Cell::new(0),
        }
    }

    /// alice and carol are in wheel; bob and carol in ops; eve is a
    /// contractor; dave has only his own group; `empty` has no members.
    pub(super) fn standard() -> Self {
        Self::new(
            &[
                ("alice", &["alice", "wheel"]),
                ("bob", &["bob", "ops"]),
                ("carol", &["carol", "wheel", "ops"]),
                ("dave", &["dave"]),
                ("eve", &["eve", "contractors"]),
            ],
            &["empty"],
        )
    }

    /// The groups of `user` straight from the table (for the naive matcher).
    pub(super) fn member(&self, user: &str, group: &str) -> bool {
        self.members
            .get(user)
            .is_some_and(|gs| gs.iter().any(|g| g == group))
    }

    pub(super) fn take_lookups(&self) -> usize {
        self.lookups.replace(0)
    }
}

impl Directory for FakeDir {
    fn groups_of(&self, user: &str) -> Vec<String> {
        self.lookups.set(self.lookups.get() + 1);
        self.members.get(user).cloned().unwrap_or_default()
    }

    fn group_exists(&self, group: &str) -> bool {
        self.groups.contains(group)
    }

    /// mfad.toml here defines one profile, "strict".
    fn totp_profile_exists(&self, name: &str) -> Option<bool> {
        Some(name == "strict")
    }
}
