//! `mfactl key add | rotate | status` (root only): the key ring at work.
//!
//! A rotation records the new key's check value, makes it the sealing key,
//! then re-seals every sealed value in batches of [`BATCH`], each its own
//! transaction: between batches a login opens an old value with the old
//! key (each value names its key) and a new one with the new key. The old
//! keys stay in the key file: the keyed hashes of backup codes, sent codes,
//! trusted devices and tickets are keyed by key 1 for good (a hash cannot
//! be re-keyed without the code it hashes).
//!
//! In a fleet the order keeps every host able to open every value: `key
//! add` on one host, the key file copied to every host and each restarted
//! (a host reads its key file at start), then `key rotate`. A fleet host
//! therefore never rotates to a key it made up on the spot.

use crate::admin::Refusal;
use crate::audit::{Decision, Event};
use crate::config::StoreConfig;
use crate::keys::{self, Verdict};
use crate::peer::{self, Peer};
use crate::store::crypto::{KeyRing, Purpose, check_values};
use crate::store::{SealedPlace, SealedValue};
use crate::{Daemon, clock, files};
use mfad_protocol::{Channel, ErrorCode, KeyInfo, KeyRole, Response};
use std::sync::Mutex;

/// Values re-sealed per transaction: short enough that logins never wait
/// long behind one.
const BATCH: usize = 100;

/// One key operation at a time: two would each write their own ring.
static KEY_OPS: Mutex<()> = Mutex::new(());

pub(crate) fn status(d: &Daemon) -> Result<Response, Refusal> {
    let ring = read_ring(d)?;
    Ok(Response::Keys {
        keys: infos(d, &ring)?,
        message: format!("key file {}", d.config.key_file.display()),
        resealed: None,
    })
}

pub(crate) fn add(d: &Daemon, peer: &Peer) -> Result<Response, Refusal> {
    let _one = KEY_OPS.lock().unwrap_or_else(|p| p.into_inner());
    let mut ring = read_ring(d)?;
    matching(d, &ring)?;
    let id = ring.add_random()?;
    write_ring(d, &ring)?;
    audit(
        d,
        peer,
        &format!("key add: key {id} staged in the key file"),
    );
    let path = d.config.key_file.display();
    Ok(Response::Keys {
        keys: infos(d, &ring)?,
        message: format!(
            "Key {id} added to {path}, staged: nothing uses it yet. Copy {path} to every host that \
             shares this database and restart mfad there, then run `mfactl key rotate`."
        ),
        resealed: None,
    })
}

pub(crate) fn rotate(d: &Daemon, peer: &Peer) -> Result<Response, Refusal> {
    let _one = KEY_OPS.lock().unwrap_or_else(|p| p.into_inner());
    let mut ring = read_ring(d)?;
    let active = matching(d, &ring)?;
    let path = d.config.key_file.display();
    // A rotation that stopped part way is finished before a new one starts.
    let unfinished = d
        .store
        .sealed_per_key()?
        .range(..active)
        .any(|(_, n)| *n > 0);
    let new = match ring.newest() > active {
        true => ring.newest(),
        false if unfinished => active,
        // Other hosts could not open what a key of this host's own sealed.
        false if matches!(d.config.store, StoreConfig::Postgres(_)) => {
            return Err(Refusal::new(
                ErrorCode::BadRequest,
                format!(
                    "no new key is staged in {path}: in a fleet, run `mfactl key add`, copy {path} to \
                     every host and restart mfad there, then run `mfactl key rotate`"
                ),
            ));
        }
        false => {
            let id = ring.add_random()?;
            write_ring(d, &ring)?;
            id
        }
    };
    let checks = check_values(&ring).map_err(|e| internal(&e))?;
    let check = checks
        .get(&new)
        .ok_or_else(|| internal(&format!("no check value for key {new}")))?;
    d.store
        .record_key_checks(&[(new, *check)], false, clock::now())?;
    d.vault.install(&ring, new)?;
    let resealed = reseal_all(d, new);
    let message = match &resealed {
        Ok(n) => format!("key rotate: key {new} seals; {n} values re-sealed"),
        Err((n, why)) => format!("key rotate: key {new} seals; {n} values re-sealed, then {why}"),
    };
    audit(d, peer, &message);
    let n = match resealed {
        Ok(n) => n,
        Err((_, why)) => {
            log::error!("{message} ({why})");
            return Err(Refusal::new(
                ErrorCode::Internal,
                format!(
                    "{message}. Run `mfactl key rotate` again once that is fixed: the rest stay \
                     under their old keys, which still open them"
                ),
            ));
        }
    };
    Ok(Response::Keys {
        keys: infos(d, &ring)?,
        message: match new == active {
            true => format!(
                "Key {new} already sealed; {n} values left under older keys re-sealed with it. \
                 Run `mfactl key rotate` again for a new key."
            ),
            false => format!(
                "Key {new} now seals; {n} values re-sealed with it. The old keys stay in {path}: \
                 every host keeps the whole file."
            ),
        },
        resealed: Some(n),
    })
}

/// A fleet host's part of another host's rotation: seal with the newest
/// key the database records, once this host's key file holds it.
pub(crate) fn follow(d: &Daemon) {
    let newest = match d.store.newest_key() {
        Ok(Some(newest)) => newest,
        Ok(None) => return,
        Err(e) => {
            log::warn!("key ring: cannot read the fleet's newest key: {e}");
            return;
        }
    };
    match d.vault.follow(newest.0, &newest.1) {
        Ok(true) => log::info!(
            "key ring: key {} seals now, as on the host that rotated",
            newest.0
        ),
        Ok(false) => {}
        Err(e) => log::error!(
            "key ring: the fleet seals with key {}, but this host cannot: {e}",
            newest.0
        ),
    }
}

/// Re-seals every value not under `new`; the count, or the count so far
/// and why it stopped.
fn reseal_all(d: &Daemon, new: u32) -> Result<u64, (u64, String)> {
    let mut done = 0u64;
    loop {
        let batch = d
            .store
            .sealed_not_under(new, BATCH)
            .map_err(|e| (done, e.to_string()))?;
        if batch.is_empty() {
            return Ok(done);
        }
        let mut pairs = Vec::with_capacity(batch.len());
        for value in batch {
            let purpose = purpose_of(&value).map_err(|why| (done, why))?;
            let resealed = d
                .vault
                .open(&value.user, purpose, &value.sealed)
                .and_then(|plain| d.vault.seal(&value.user, purpose, &plain))
                .map_err(|e| {
                    (
                        done,
                        format!("a secret of {} did not open: {e}", value.user),
                    )
                })?;
            pairs.push((value, resealed));
        }
        let n = d.store.reseal(&pairs).map_err(|e| (done, e.to_string()))?;
        // Every value changed under our feet (a busy fleet): never spin.
        if n == 0 {
            return Err((
                done,
                "no value of a batch could be replaced; try again".to_owned(),
            ));
        }
        done += n;
    }
}

fn purpose_of(value: &SealedValue) -> Result<Purpose, String> {
    let channel = || {
        Channel::ALL
            .into_iter()
            .find(|c| c.name() == value.channel)
            .ok_or_else(|| format!("contact of {} has an unknown channel", value.user))
    };
    Ok(match value.place {
        SealedPlace::Totp => Purpose::TotpSecret,
        SealedPlace::PendingTotp => Purpose::PendingTotpSecret,
        SealedPlace::Address => Purpose::Contact(channel()?),
        SealedPlace::PendingAddress => Purpose::PendingContact(channel()?),
    })
}

/// The key file as it is on disk now (it may hold keys staged since start).
fn read_ring(d: &Daemon) -> Result<KeyRing, Refusal> {
    let found = files::read_ring_if_present(&d.config.key_file).map_err(|e| internal(&e))?;
    found.ok_or_else(|| {
        Refusal::new(
            ErrorCode::Internal,
            format!(
                "the key file {} is gone; restore it from backup before mfad restarts",
                d.config.key_file.display()
            ),
        )
    })
}

fn write_ring(d: &Daemon, ring: &KeyRing) -> Result<(), Refusal> {
    files::write_ring(&d.config.key_file, ring).map_err(|e| internal(&e))
}

/// The sealing key, if the key file on disk still matches the database.
fn matching(d: &Daemon, ring: &KeyRing) -> Result<u32, Refusal> {
    let checks = check_values(ring).map_err(|e| internal(&e))?;
    let state = d.store.key_state()?;
    match keys::judge(&checks, &state) {
        Verdict::Matches { active } => Ok(active),
        Verdict::Mismatch { id } => Err(Refusal::new(
            ErrorCode::Internal,
            format!(
                "key {id} of the key file {} is not the one the database records; restore the key file this mfad started with",
                d.config.key_file.display()
            ),
        )),
        Verdict::Behind { id } => Err(Refusal::new(
            ErrorCode::Internal,
            format!(
                "the key file {} lacks key {id}, which the database records; copy it from the host that rotated",
                d.config.key_file.display()
            ),
        )),
        Verdict::Record { .. } => Ok(d.vault.active()),
    }
}

fn infos(d: &Daemon, ring: &KeyRing) -> Result<Vec<KeyInfo>, Refusal> {
    let counts = d.store.sealed_per_key()?;
    let recorded = d.store.key_state()?.checks;
    // The database's view: in a fleet, what every host seals with.
    let active = recorded.keys().next_back().copied().unwrap_or(0);
    Ok((1..=ring.newest())
        .map(|id| KeyInfo {
            id,
            role: match id {
                _ if id == active => KeyRole::Seals,
                _ if recorded.contains_key(&id) || id < active => KeyRole::Old,
                _ => KeyRole::Staged,
            },
            values: counts.get(&id).copied().unwrap_or(0),
        })
        .collect())
}

fn audit(d: &Daemon, peer: &Peer, action: &str) {
    let who = peer::name_of(peer.uid).unwrap_or_else(|| format!("uid {}", peer.uid));
    d.record(&Event::admin(
        &who,
        action,
        Decision::Done,
        peer.uid,
        clock::now(),
    ));
}

fn internal(err: &dyn std::fmt::Display) -> Refusal {
    log::error!("key operation failed: {err}");
    Refusal::new(ErrorCode::Internal, format!("key operation failed: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::crypto::Sealed;

    #[test]
    fn each_place_opens_with_its_purpose() {
        let value = |place, channel: &str| SealedValue {
            place,
            user: "alice".into(),
            channel: channel.into(),
            sealed: Sealed {
                key: 1,
                bytes: Vec::new(),
            },
        };
        assert_eq!(
            purpose_of(&value(SealedPlace::Totp, "")),
            Ok(Purpose::TotpSecret)
        );
        assert_eq!(
            purpose_of(&value(SealedPlace::PendingAddress, "sms")),
            Ok(Purpose::PendingContact(Channel::Sms))
        );
        assert_eq!(
            purpose_of(&value(SealedPlace::Address, "email")),
            Ok(Purpose::Contact(Channel::Email))
        );
        assert!(purpose_of(&value(SealedPlace::Address, "fax")).is_err());
    }
}
