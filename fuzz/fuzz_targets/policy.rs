//! policy.toml: any text gives a policy or diagnostics, never a panic; a
//! policy that loads is its own text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mfad_policy::{Directory, parse};

/// Groups without NSS: `wheel` and `admins` exist, each user is in `wheel`.
struct Groups;

impl Directory for Groups {
    fn groups_of(&self, _user: &str) -> Vec<String> {
        vec!["wheel".to_owned()]
    }
    fn group_exists(&self, group: &str) -> bool {
        matches!(group, "wheel" | "admins")
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (policy, diagnostics) = parse(text, &Groups);
    if let Some(policy) = policy {
        assert_eq!(policy.text, text);
    }
    for d in diagnostics.iter() {
        let _ = d.to_string();
    }
});
