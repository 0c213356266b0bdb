//! A fleet of hosts on one PostgreSQL store: what one host does for
//! another. A session on another host is ended by that host (only it can
//! signal its processes): the asking host records a request, the holding
//! host is told at once and ends it as a local kill does. A policy pushed
//! on any host is put in force on every host, each with its own `[host]`
//! table (class, tags) from its own policy file, which is otherwise not
//! used once a version has been pushed.
//!
//! Hosts are told through `LISTEN`/`NOTIFY` (`store/postgres/listen.rs`);
//! a notice lost while the listening connection was down is made up for
//! after it reconnects, and by periodic checks.

use crate::admin::Refusal;
use crate::audit::{Decision, Event};
use crate::config::{Config, StoreConfig};
use crate::peer::Peer;
use crate::policy::{Diagnostic, Host, Policy};
use crate::reevaluate::{self, Trigger};
use crate::store::postgres::listen::{self, Notice};
use crate::store::{SessionRequest, Store, StoredSession};
use crate::{Daemon, LoadedPolicy, Reload, clock, files, policy_event, sessions};
use mfad_protocol::{ErrorCode, Response};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often pending requests to end this host's sessions, and the pushed
/// policy, are looked at in case a notice was missed (notices are lost
/// only while the listening connection is down, and it looks on every
/// reconnection): rare enough that a fleet of thousands of hosts costs the
/// database little.
const CHECK: Duration = Duration::from_secs(30);
/// How long `sessions kill` waits for another host to end its session.
const REMOTE_WAIT: Duration = Duration::from_secs(3);

pub(crate) const NO_FLEET: &str = "policy push needs the fleet store ([store] backend = \"postgres\"); \
     this mfad keeps its own policy: edit its policy file and run `mfactl policy reload`";

const HOST_IGNORED: &str = "warning: the [host] table of a pushed policy is not used: each host's \
     class, tags and device_services come from the [host] table of its own policy file";

/// Starts acting on what other hosts tell this one (a fleet store only).
pub(crate) fn start(d: &Arc<Daemon>) -> Option<tokio::task::JoinHandle<()>> {
    let StoreConfig::Postgres(p) = &d.config.store else {
        return None;
    };
    let notices = listen::spawn(p, &d.config.host_name)
        .inspect_err(|e| {
            log::error!(
                "fleet: cannot listen for other hosts' notices ({e}); checking every 30 s instead"
            );
        })
        .ok();
    Some(tokio::spawn(serve(Arc::clone(d), notices)))
}

async fn serve(d: Arc<Daemon>, mut notices: Option<tokio::sync::mpsc::UnboundedReceiver<Notice>>) {
    let mut tick = tokio::time::interval(CHECK);
    loop {
        tokio::select! {
            notice = async { match notices.as_mut() {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            } } => match notice {
                Some(Notice::Sessions) => end_requested(&d),
                Some(Notice::Policy) => {
                    pick_up(&d, "a push", false);
                }
                Some(Notice::Connected) => {
                    end_requested(&d);
                    pick_up(&d, "a reconnection", false);
                }
                None => notices = None,
            },
            _ = tick.tick() => {
                end_requested(&d);
                pick_up(&d, "a periodic check", false);
            }
        }
    }
}

/// Ends the sessions other hosts asked this one to end, each in a task of
/// its own (a kill may wait out its grace period), as a local kill does.
fn end_requested(d: &Arc<Daemon>) {
    let Some(fleet) = d.store.fleet() else { return };
    let requests = match fleet.take_session_requests() {
        Ok(requests) => requests,
        Err(e) => {
            log::error!("fleet: cannot read the requests to end sessions: {e}");
            return;
        }
    };
    for r in requests {
        match d.store.session(&d.boot_id, r.session) {
            Ok(Some(s)) => {
                let mut event = Event::admin(
                    &s.user,
                    &format!("killed by uid {} on {}", r.by_uid, r.by_host),
                    Decision::Done,
                    r.by_uid,
                    clock::now(),
                );
                event.service = s.service.clone();
                event.rhost = s.rhost.clone();
                let store = Arc::clone(&d.store);
                tokio::spawn(async move {
                    let _ = sessions::end(store.as_ref(), &s, event).await;
                });
            }
            Ok(None) => log::info!(
                "fleet: session {} (end asked by uid {} on {}) has ended already",
                r.session,
                r.by_uid,
                r.by_host
            ),
            Err(e) => log::error!("fleet: cannot read session {}: {e}", r.session),
        }
    }
}

/// `sessions kill` of a session on another host: asks that host to end it
/// and waits (briefly) until it has.
pub(crate) async fn end_remote(
    d: &Daemon,
    peer: &Peer,
    host: &str,
    s: &StoredSession,
) -> Result<Response, Refusal> {
    let Some(fleet) = d.store.fleet() else {
        return Err(Refusal::new(ErrorCode::Internal, "no fleet store"));
    };
    let request = SessionRequest {
        session: s.id,
        by_uid: peer.uid,
        by_host: fleet.host().to_owned(),
        requested_at: clock::now(),
    };
    fleet.request_session_end(host, &request)?;
    let mut event = Event::admin(
        &s.user,
        &format!("session {}: end asked of {host} by uid {}", s.id, peer.uid),
        Decision::Done,
        peer.uid,
        request.requested_at,
    );
    event.service = s.service.clone();
    event.rhost = s.rhost.clone();
    d.record(&event);
    let waited = tokio::time::timeout(REMOTE_WAIT, async {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            match fleet.fleet_session(&d.boot_id, s.id) {
                Ok(Some(_)) => {}
                Ok(None) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    })
    .await;
    match waited {
        Ok(Ok(())) => Ok(Response::Done {
            message: format!("Session {} of {} on {host} ended.", s.id, s.user),
        }),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(Refusal::new(
            ErrorCode::Timeout,
            format!(
                "{host} was asked to end session {} but has not within {} s: is mfad running there? \
                 The request stays recorded; {host} carries it out when its mfad next checks",
                s.id,
                REMOTE_WAIT.as_secs()
            ),
        )),
    }
}

/// `sessions stepup` of a session on another host: the session's proof
/// lives in the shared database, so it is cleared there at once, as the
/// holding host would; its next sudo asks every factor.
pub(crate) fn stepup_remote(
    d: &Daemon,
    peer: &Peer,
    host: &str,
    s: &StoredSession,
) -> Result<Response, Refusal> {
    let mut event = Event::admin(
        &s.user,
        &format!(
            "freshness cleared on {host}: {}",
            Trigger::Admin { session: s.id }.reason()
        ),
        Decision::Done,
        peer.uid,
        clock::now(),
    );
    event.service = s.service.clone();
    event.rhost = s.rhost.clone();
    event.tty = s.tty.clone();
    event.channel = "session";
    d.store.clear_session_proof(s.id, &event)?;
    event.log();
    Ok(Response::Done {
        message: format!(
            "Session {} of {} on {host} must step up again: its next sudo asks every factor.",
            s.id, s.user
        ),
    })
}

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
fn pick_up(d: &Daemon, by: &str, force: bool) -> Option<i64> {
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
    *d.policy.write().unwrap_or_else(|p| p.into_inner()) =
        Arc::new(LoadedPolicy { policy, version });
    in_force(d.store.as_ref(), version);
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
