//! `mfactl key add | rotate | status` (root only): the key ring that seals
//! TOTP secrets and contact addresses.

use super::Ctx;
use crate::error::{CliError, unexpected};
use crate::output::clean_line;
use clap::Subcommand;
use mfad_protocol::{KeyInfo, Request, Response};

pub const HELP: &str = "The key file (`key_file` in mfad.toml) is a key ring: one or more \
32-byte keys back to back, key id N the Nth. Each sealed value records the id of its key; the \
newest key the database records seals new values. Old keys stay in the file: they open what \
they sealed, and key 1 keys the hashes of backup codes and trusted devices for good.\n\n\
One server: `mfactl key rotate`.\n\
A fleet (one PostgreSQL): `mfactl key add` on one host; copy the key file to every host \
(root's, mode 0400) and restart mfad there; then `mfactl key rotate` on any host. A host whose \
key file lacks a key the database records refuses to start, naming the key.";

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Add a new key to the key file, staged: not used until `key rotate`
    Add,
    /// Seal with the newest key (a new one if none is staged) and re-seal every stored secret
    ///
    /// A rotation that stopped part way is finished first: while secrets are left under older
    /// keys, `rotate` re-seals them with the key that seals instead of adding another.
    Rotate,
    /// Show the keys of the key file and how many stored secrets each seals
    Status,
}

pub fn run(ctx: &mut Ctx, cmd: KeyCommand) -> Result<(), CliError> {
    let request = match cmd {
        KeyCommand::Add => Request::KeyAdd,
        KeyCommand::Rotate => Request::KeyRotate,
        KeyCommand::Status => Request::KeyStatus,
    };
    let resp = ctx.call(&request)?;
    match &resp {
        Response::Keys { keys, message, .. } => ctx.show(&resp, || render(keys, message)),
        other => Err(unexpected(other)),
    }
}

fn render(keys: &[KeyInfo], message: &str) -> String {
    let mut text = format!("{}\n", clean_line(message));
    for key in keys {
        text.push_str(&format!(
            "key {}: {}, {} sealed values\n",
            key.id,
            key.role.name(),
            key.values
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use mfad_protocol::KeyRole;

    #[test]
    fn each_key_is_one_line() {
        let keys = [
            KeyInfo {
                id: 1,
                role: KeyRole::Old,
                values: 0,
            },
            KeyInfo {
                id: 2,
                role: KeyRole::Seals,
                values: 7,
            },
        ];
        assert_eq!(
            render(&keys, "Key 2 now seals."),
            "Key 2 now seals.\nkey 1: old, 0 sealed values\nkey 2: seals, 7 sealed values\n"
        );
    }
}
