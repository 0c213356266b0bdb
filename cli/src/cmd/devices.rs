//! `mfactl devices`: trusted devices (SSH keys that skip the second factor
//! for a while), for your own account or, as an admin, anyone's.

use super::{Ctx, show_done};
use crate::error::{CliError, unexpected};
use crate::output::{Table, clean_line, or_dash};
use clap::Subcommand;
use mfad_protocol::time::utc;
use mfad_protocol::{DeviceInfo, Request, Response};

#[derive(Debug, Subcommand)]
pub enum DevicesCommand {
    /// List the devices trusted for your account (or, as an admin, another one)
    #[command(
        after_long_help = "A device is the SSH public key that passed the first factor of a \
login (AuthenticationMethods publickey,keyboard-interactive). When a policy rule allows it, \
mfad asks after the second factor whether to trust the key; a later login with the same key \
skips the second factor until the trust expires or is revoked. mfad keeps only a keyed hash \
of the key, with its type, fingerprint, first source address and time."
    )]
    List {
        /// The account (root and mfad admins only)
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
    },
    /// Stop trusting a device: its next login asks for the second factor; audited
    Revoke {
        /// The device id from `mfactl devices list`
        #[arg(value_name = "ID")]
        id: i64,
        /// The account (root and mfad admins only)
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
    },
}

pub fn request(cmd: &DevicesCommand) -> Request {
    match cmd {
        DevicesCommand::List { user } => Request::DeviceList { user: user.clone() },
        DevicesCommand::Revoke { id, user } => Request::DeviceRevoke {
            user: user.clone(),
            id: *id,
        },
    }
}

pub fn run(ctx: &mut Ctx, cmd: DevicesCommand) -> Result<(), CliError> {
    let resp = ctx.call(&request(&cmd))?;
    match cmd {
        DevicesCommand::List { .. } => match &resp {
            Response::Devices { user, devices } => ctx.show(&resp, || render(user, devices)),
            other => Err(unexpected(other)),
        },
        DevicesCommand::Revoke { .. } => show_done(ctx, &resp),
    }
}

pub fn render(user: &str, devices: &[DeviceInfo]) -> String {
    if devices.is_empty() {
        return format!("No trusted devices for {}.\n", clean_line(user));
    }
    let mut table = Table::new(&[
        "ID",
        "KEY",
        "FINGERPRINT",
        "FIRST FROM",
        "TRUSTED",
        "UNTIL",
        "LAST USED",
    ]);
    for d in devices {
        table.row(vec![
            d.id.to_string(),
            d.key_type.clone(),
            d.fingerprint.clone(),
            or_dash(d.first_ip.as_deref()),
            utc(d.created_at),
            utc(d.expires_at),
            d.last_used.map_or_else(|| "never".to_owned(), utc),
        ]);
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::testing::{done, mfactl};
    use serde_json::json;

    #[test]
    fn list_and_revoke() {
        let device = DeviceInfo {
            id: 3,
            key_type: "ssh-ed25519".into(),
            fingerprint: "SHA256:abc".into(),
            first_ip: Some("192.0.2.7".into()),
            created_at: 0,
            expires_at: 86_400,
            last_used: None,
        };
        let out = mfactl(
            &["devices", "list", "--user", "bob"],
            vec![Response::Devices {
                user: "bob".into(),
                devices: vec![device],
            }],
            "",
            false,
        );
        assert_eq!(
            out.requests,
            vec![json!({"type": "device_list", "user": "bob"})]
        );
        assert_eq!(
            out.stdout,
            "ID  KEY          FINGERPRINT  FIRST FROM  TRUSTED               UNTIL                 LAST USED\n\
             3   ssh-ed25519  SHA256:abc   192.0.2.7   1970-01-01 00:00:00Z  1970-01-02 00:00:00Z  never\n"
        );
        let out = mfactl(
            &["devices", "revoke", "3"],
            vec![done("revoked")],
            "",
            false,
        );
        assert_eq!(
            out.requests,
            vec![json!({"type": "device_revoke", "user": null, "id": 3})]
        );
        assert_eq!(render("bob", &[]), "No trusted devices for bob.\n");
    }
}
