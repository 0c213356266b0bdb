//! `mfactl doctor`'s questions to the directory: TLS and the bind, then the
//! user filter with a sample lookup, each step with what it found.

use super::Lookup;
use crate::Daemon;
use crate::admin::Refusal;
use crate::config::DirectoryBind;
use crate::delivery::address;
use mfad_protocol::{Channel, CheckStep, ErrorCode, GroupSource, Response};

/// The most group names one `group_sources` request may name.
const MAX_GROUPS: usize = 256;

fn step(check: &str, status: &str, message: String) -> CheckStep {
    CheckStep {
        check: check.to_owned(),
        status: status.to_owned(),
        message,
    }
}

pub(crate) fn run(d: &Daemon, sample: &str) -> Result<Response, Refusal> {
    let Some(dir) = &d.directory else {
        return Err(Refusal::new(
            ErrorCode::NotConfigured,
            "mfad.toml has no [directory] section",
        ));
    };
    let cfg = dir.config();
    let tls = if cfg.url.starts_with("ldaps://") {
        "TLS from the start (ldaps)"
    } else if cfg.starttls {
        "StartTLS"
    } else {
        "no TLS (allowed to a loopback address only)"
    };
    let mut steps = Vec::new();
    let (bind, lookup) = dir.check(sample);
    let how = match &cfg.bind {
        DirectoryBind::Anonymous => "an anonymous bind".to_owned(),
        DirectoryBind::Simple { dn, .. } => format!("a bind as {dn:?}"),
        DirectoryBind::External { .. } => "SASL EXTERNAL with the client certificate".to_owned(),
    };
    match bind {
        Ok(()) => steps.push(step(
            "directory bind",
            "ok",
            format!("{}: {tls} and {how} succeeded", cfg.url),
        )),
        Err(e) => steps.push(step(
            "directory bind",
            "fail",
            format!("{}: {tls} and {how} failed: {e}", cfg.url),
        )),
    }
    let filter = super::filter::user(&cfg.user_filter, sample);
    match lookup {
        None => {}
        Some(Ok(Lookup::Found(e))) => {
            let show = |channel, v: &Option<String>| match v {
                Some(v) => match address::parse(channel, v) {
                    Ok(to) => address::mask(channel, &to),
                    Err(p) => format!("unusable ({p})"),
                },
                None => "none".to_owned(),
            };
            steps.push(step(
                "directory lookup",
                "ok",
                format!(
                    "{filter} under {:?} found {:?}: phone {}, email {}, groups [{}]",
                    cfg.base,
                    e.dn,
                    show(Channel::Sms, &e.phone),
                    show(Channel::Email, &e.email),
                    e.groups.join(", ")
                ),
            ));
        }
        Some(Ok(_)) => steps.push(step(
            "directory lookup",
            "warn",
            format!(
                "{filter} under {:?} matched no entry: check `user_filter` and `base`, or \
                 name a user the directory has (--directory-user)",
                cfg.base
            ),
        )),
        Some(Err(e)) => steps.push(step(
            "directory lookup",
            "fail",
            format!("{filter} under {:?}: {e}", cfg.base),
        )),
    }
    Ok(Response::DirectoryChecked { steps })
}

/// Which of `groups` NSS and the directory know, for `mfactl policy check`.
pub(crate) fn group_sources(d: &Daemon, groups: &[String]) -> Result<Response, Refusal> {
    if groups.len() > MAX_GROUPS {
        return Err(Refusal::new(
            ErrorCode::BadRequest,
            format!("at most {MAX_GROUPS} groups at a time"),
        ));
    }
    for g in groups {
        crate::validate::user_name(g).map_err(|p| {
            Refusal::new(ErrorCode::BadRequest, p.replace("user name", "group name"))
        })?;
    }
    Ok(Response::GroupSources {
        groups: groups
            .iter()
            .map(|name| GroupSource {
                name: name.clone(),
                nss: crate::policy::Directory::group_exists(&crate::policy::Nss, name),
                directory: d.directory.as_ref().and_then(|dir| dir.group_exists(name)),
            })
            .collect(),
        totp_profiles: Some(d.config.totp.profiles.keys().cloned().collect()),
    })
}
