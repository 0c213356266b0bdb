//! A login while the shared database is unreachable, under a rule with
//! `store_unreachable = "cached"`: the user's TOTP code is checked against
//! this host's cache (`fleet/cache.rs`), each step once on this host, and
//! every row of its audit goes to the cache's spool until the database is
//! back. Anyone else, any other factor, enrollment and trusted devices
//! are denied as before. The machine runs unchanged: only [`Attempt`]
//! knows where its checks go.

use super::checks::{Attempt, CheckError, Gathered};
use crate::Daemon;
use crate::audit::Event;
use crate::fleet::cache::Cache;
use crate::policy::{Factor, Policy, StoreUnreachable};
use crate::store::crypto::Sealed;
use crate::store::{Counter, FailureState, LockRule, StoreError, TotpRecord};

/// What the user is told before the code is asked.
pub const NOTICE: &str =
    "The central database is unreachable: your code is checked against this host's cache.";

/// Added to the reason of every audit row of such a login.
pub const REASON: &str = "checked against this host's cache: the central database was unreachable";

/// When reading the store for a plan failed with `e`: what the plan can be
/// made of instead, if this login may fall back to the cache. It then
/// marks `att` as cached.
pub fn fallback(att: &mut Attempt<'_>, e: &CheckError) -> Option<Gathered> {
    let CheckError::Store(e) = e else { return None };
    let rule = att.rule?;
    if !e.unreachable()
        || rule.store_unreachable != StoreUnreachable::Cached
        || !rule.require.factors().contains(&Factor::Totp)
    {
        return None;
    }
    let record = totp(att.d, att.user())
        .inspect_err(|e| log::error!("cannot read the TOTP cache: {e}"))
        .ok()??;
    att.cached = true;
    log::warn!(
        "the shared database is unreachable ({e}): the TOTP code of {:?} is checked against this host's cache",
        att.user()
    );
    Some(Gathered {
        enrolled: vec![Factor::Totp],
        session: None,
        device: None,
        totp: Some(record),
        totp_locked: None,
    })
}

/// The user's TOTP factor in this host's cache; the login checks its code
/// against it (`Gathered::totp`).
fn totp(d: &Daemon, user: &str) -> Result<Option<TotpRecord>, StoreError> {
    match &d.cache {
        Some(cache) => cache.totp(user),
        None => Ok(None),
    }
}

fn cache(d: &Daemon) -> Result<&Cache, CheckError> {
    d.cache
        .as_ref()
        .ok_or(CheckError::Broken("no TOTP cache on this host"))
}

/// Accepts `step` once on this host, its audit row spooled with it.
pub fn accept(
    att: &Attempt<'_>,
    counter: Counter<'_>,
    step: i64,
    allowed: &Event,
) -> Result<bool, CheckError> {
    Ok(cache(att.d)?.accept_step(att.user(), counter, step, allowed)?)
}

/// Until when failures on this host lock `counter`.
pub fn locked(
    d: &Daemon,
    user: &str,
    counter: Counter<'_>,
    now: i64,
) -> Result<Option<i64>, CheckError> {
    Ok(cache(d)?.locked_until(user, counter, now)?)
}

/// After a code of `user` passed in the shared store (a fleet host only),
/// while a rule in force may use the cache.
pub fn remember(d: &Daemon, user: &str, record: &TotpRecord, step: i64) {
    if !in_use(d) {
        return;
    }
    if let Some(Err(e)) = d.cache.as_ref().map(|c| c.remember(user, record, step)) {
        log::error!("cannot keep the TOTP of {user:?} in this host's cache: {e}");
    }
}

/// Whether a rule of the policy in force has `store_unreachable = "cached"`.
fn in_use(d: &Daemon) -> bool {
    d.cache.is_some() && uses_cache(&d.policy().policy)
}

fn uses_cache(policy: &Policy) -> bool {
    policy
        .rules
        .iter()
        .any(|r| r.store_unreachable == StoreUnreachable::Cached)
}

/// A policy was put in force (`before`: the one it replaced; `None` at
/// start-up). Logins keep the cache only while a rule may use it, so it is
/// emptied when no rule may, and when one may again: an entry from before
/// would carry a step or secret that logins meanwhile did not update.
pub fn policy_changed(d: &Daemon, before: Option<&Policy>) {
    let Some(cache) = &d.cache else { return };
    let now = uses_cache(&d.policy().policy);
    if (!now || before.is_some_and(|b| !uses_cache(b)))
        && let Err(e) = cache.clear()
    {
        log::error!("cannot empty this host's TOTP cache: {e}");
    }
}

/// The shared store holds `sealed` as the user's secret (`None`: no TOTP):
/// a cached copy of another secret goes.
pub fn forget(d: &Daemon, user: &str, sealed: Option<&Sealed>) {
    if !in_use(d) {
        return;
    }
    if let Some(Err(e)) = d.cache.as_ref().map(|c| c.forget_unless(user, sealed)) {
        log::error!("cannot drop {user:?} from this host's TOTP cache: {e}");
    }
}

/// Writes `event` to the spool and to syslog.
pub fn spool(d: &Daemon, event: &Event) {
    if let Some(Err(e)) = d.cache.as_ref().map(|c| c.spool(event)) {
        log::error!("cannot spool an audit row in this host's TOTP cache: {e}");
    }
    event.log();
}

/// A wrong code: counted on this host only (the store's table and rules,
/// in the cache) and spooled; the database's counters never hear of it.
pub fn failed(
    d: &Daemon,
    user: &str,
    counter: Counter<'_>,
    now: i64,
    rule: LockRule,
    event: &Event,
) -> Result<FailureState, CheckError> {
    let state = cache(d)?.record_failure(user, counter, now, rule, event)?;
    event.log();
    Ok(state)
}
