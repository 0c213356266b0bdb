//! Default locations, in one place. Every one of them can be overridden.

pub const CONFIG: &str = "/etc/mfad/mfad.toml";
pub const POLICY: &str = "/etc/mfad/policy.toml";
pub const KEY: &str = "/etc/mfad/mfad.key";
pub const DATABASE: &str = "/var/lib/mfad/mfad.db";
pub const SOCKET: &str = "/run/mfad/mfad.sock";
