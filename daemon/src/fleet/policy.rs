//! One policy for the fleet: pushed, picked up by every host with its own
//! `[host]` table, and which version each host has in force.

use crate::admin::Refusal;
use crate::audit::Decision;
use crate::config::{Config, StoreConfig};
use crate::peer::Peer;
use crate::policy::{Diagnostic, Host, Policy};
use crate::reevaluate::{self, Trigger};
use crate::store::Store;
use crate::{Daemon, LoadedPolicy, Reload, clock, files, policy_event};
use mfad_protocol::{ErrorCode, Response};
use std::sync::Mutex;

const NO_FLEET: &str = "policy push needs the fleet store ([store] backend = \"postgres\"); \
     this mfad keeps its own policy: edit its policy file and run `mfactl policy reload`";

const HOST_IGNORED: &str = "warning: the [host] table of a pushed policy is not used: each host's \
     class, tags and device_services come from the [host] table of its own policy file";

/// This host's own `[host]` table (class, tags, device services), from its
/// policy file, which a pushed policy does not replace. A file that is
/// unsafe or invalid gives none, loudly.
fn local_host(config: &Config, groups: &dyn crate::policy::Directory) -> Host {
    let loaded = files::check_trusted_if_present(&config.policy_file, files::Reading::Anyone)
        .map_err(|e| e.to_string())
        .and_then(|()| Policy::load(&config.policy_file, groups).map_err(|e| e.to_string()));
    match loaded {
        Ok((policy, _)) => policy.host,
        Err(e) => {
            log::error!(
                "{e}\nthis host's class and tags come from the [host] table of that file: none apply until it is fixed"
            );
            Host::default()
        }
    }
}

/// A pushed text as this host enforces it: its rules, this host's `[host]`.
fn load_pushed(
    config: &Config,
    text: &str,
    groups: &dyn crate::policy::Directory,
) -> Result<Policy, Vec<Diagnostic>> {
    let (mut policy, _) = Policy::from_text(text, groups)?;
    policy.host = local_host(config, groups);
    Ok(policy)
}

/// At start-up: the latest pushed version, if there is one and it loads.
pub(crate) fn startup_policy(
    config: &Config,
    store: &dyn Store,
    groups: &dyn crate::policy::Directory,
) -> Option<LoadedPolicy> {
    let fleet = store.fleet()?;
    let (record, text) = match fleet.pushed_policy() {
        Ok(pushed) => pushed?,
        Err(e) => {
            log::error!("fleet: cannot read the pushed policy: {e}; using the policy file");
            return None;
        }
    };
    match load_pushed(config, &text, groups) {
        Ok(policy) => {
            log::info!(
                "policy version {} (pushed to the fleet by {}) in force; the rules of {} are not used \
                 while the fleet has a pushed policy, only its [host] table (class, tags)",
                record.version,
                record.loaded_by,
                config.policy_file.display()
            );
            let event = policy_event(
                Decision::Done,
                &format!(
                    "policy version {} in force (pushed to the fleet; loaded at startup)",
                    record.version
                ),
                record.version,
            );
            if let Err(e) = store.audit(&event) {
                log::error!("cannot write an audit row: {e}");
            }
            event.log();
            Some(LoadedPolicy {
                policy,
                version: record.version,
            })
        }
        Err(problems) => {
            log::error!(
                "the fleet's pushed policy version {} does not load on this host ({}); using the policy file",
                record.version,
                list(&problems)
            );
            None
        }
    }
}

/// Records that this host has `version` in force (a fleet store only).
pub(crate) fn in_force(store: &dyn Store, version: i64) {
    if let Some(fleet) = store.fleet()
        && let Err(e) = fleet.policy_in_force(version, clock::now())
    {
        log::error!("fleet: cannot record the policy version in force here: {e}");
    }
}

/// One pick-up at a time: a notice and a periodic check may race.
static PICKING_UP: Mutex<()> = Mutex::new(());

/// Puts the latest pushed version in force here if it is not already (or
/// again with `force`, to read this host's `[host]` table again). Returns
/// the version in force after it, or `None` when nothing was pushed.
pub(super) fn pick_up(d: &Daemon, by: &str, force: bool) -> Option<i64> {
    let fleet = d.store.fleet()?;
    let _one = PICKING_UP.lock().unwrap_or_else(|p| p.into_inner());
    let (record, text) = match fleet.pushed_policy() {
        Ok(pushed) => pushed?,
        Err(e) => {
            log::error!("fleet: cannot read the pushed policy: {e}");
            return Some(d.policy().version);
        }
    };
    let current = d.policy();
    if current.version == record.version && !force {
        return Some(current.version);
    }
    let policy = match load_pushed(&d.config, &text, &d.groups()) {
        Ok(policy) => policy,
        Err(problems) => {
            log::error!(
                "the fleet's pushed policy version {} does not load on this host ({}); keeping version {}",
                record.version,
                list(&problems),
                current.version
            );
            d.record(&policy_event(
                Decision::Refused,
                &format!(
                    "pushed policy version {} does not load here; version {} stays in force",
                    record.version, current.version
                ),
                current.version,
            ));
            return Some(current.version);
        }
    };
    let version = record.version;
    d.put_in_force(LoadedPolicy { policy, version }, &current.policy);
    let reason =
        format!("policy version {version} in force (pushed to the fleet; picked up on {by})");
    log::info!("{reason}");
    d.record(&policy_event(Decision::Done, &reason, version));
    if version != current.version {
        reevaluate::run(d, &Trigger::Policy { version }, 0, Some(&current.policy));
    }
    Some(version)
}

/// A reload (SIGHUP, `mfactl policy reload`) while the fleet has a pushed
/// policy: the pushed version again, with this host's `[host]` table read
/// again; `None` when nothing was pushed (the file is loaded as usual).
pub(crate) fn reload(d: &Daemon) -> Option<Reload> {
    let before = d.policy().version;
    let version = pick_up(d, "a reload", true)?;
    Some(Reload {
        version,
        changed: version != before,
        rejected: false,
        diagnostics: vec![format!(
            "the fleet's pushed policy is in force: the rules of {} are not used (only its [host] \
             table, read again); to change the rules, `mfactl policy push FILE`",
            d.config.policy_file.display()
        )],
    })
}

fn list(problems: &[Diagnostic]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// `policy push`: checked as a reload checks a file, stored as the fleet's
/// version, then put in force here and (through the notice) everywhere.
pub(crate) fn push(d: &Daemon, peer: &Peer, text: &str) -> Result<Response, Refusal> {
    let Some(fleet) = d.store.fleet() else {
        return Err(Refusal::new(ErrorCode::NotConfigured, NO_FLEET));
    };
    let by = format!("uid {} on {}", peer.uid, fleet.host());
    let current = d.policy().version;
    let (policy, warnings) = match Policy::from_text(text, &d.groups()) {
        Ok(loaded) => loaded,
        Err(problems) => {
            d.record(&policy_event(
                Decision::Refused,
                &format!(
                    "pushed policy rejected ({} problems; push by {by}), version {current} stays in force",
                    problems.len()
                ),
                current,
            ));
            return Ok(Response::PolicyLoaded {
                version: current,
                changed: false,
                rejected: true,
                diagnostics: problems.iter().map(ToString::to_string).collect(),
            });
        }
    };
    let mut diagnostics: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    if policy.host.class.is_some()
        || !policy.host.tags.is_empty()
        || policy.host.device_services != Host::default().device_services
    {
        diagnostics.push(HOST_IGNORED.to_owned());
    }
    let (version, new) = fleet.push_policy(
        &policy.sha256,
        &policy.text,
        clock::now(),
        &format!("push by {by}"),
    )?;
    if new {
        d.record(&policy_event(
            Decision::Done,
            &format!("policy version {version} pushed to the fleet by {by}"),
            version,
        ));
    }
    pick_up(d, &format!("a push by {by}"), false);
    Ok(Response::PolicyLoaded {
        version,
        changed: d.policy().version != current,
        rejected: false,
        diagnostics,
    })
}

/// `policy status`: each host and the version in force there.
pub(crate) fn status(d: &Daemon) -> Result<Response, Refusal> {
    let wire = |h: crate::store::HostPolicy| mfad_protocol::HostPolicy {
        host: h.host,
        version: h.version,
        since: h.since,
    };
    match d.store.fleet() {
        Some(fleet) => Ok(Response::PolicyStatus {
            hosts: fleet.policy_hosts()?.into_iter().map(wire).collect(),
            pushed: fleet.pushed_policy()?.map(|(r, _)| r.version),
        }),
        None => {
            let version = d.policy().version;
            let since = d
                .store
                .policy_text(Some(version))?
                .map_or(0, |(r, _)| r.loaded_at);
            Ok(Response::PolicyStatus {
                hosts: vec![mfad_protocol::HostPolicy {
                    host: d.config.host_name.clone(),
                    version,
                    since,
                }],
                pushed: None,
            })
        }
    }
}

/// `--check-config`: what happens to the policy file in a fleet (`None`
/// for a store of one host).
pub fn describe(config: &Config) -> Result<Option<String>, crate::store::StoreError> {
    let StoreConfig::Postgres(p) = &config.store else {
        return Ok(None);
    };
    let store = crate::store::PgStore::open(p, &config.host_name, false)?;
    let pushed = crate::store::Fleet::pushed_policy(&store)?;
    let path = config.policy_file.display();
    Ok(Some(match pushed {
        Some((record, _)) => format!(
            "policy: the fleet's pushed version {} is in force; the rules of {path} are not \
             used, only its [host] table (class, tags, device_services)",
            record.version
        ),
        None => format!(
            "policy: no version pushed to the fleet yet, so {path} is in force; once one is \
             pushed (`mfactl policy push`), only its [host] table is used"
        ),
    }))
}
