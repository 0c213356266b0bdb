//! A PAM login. `plan.rs` decides what it must prove, `machine.rs` runs it
//! as a value, `checks.rs` and `send.rs` are what it reads, records and
//! sends, and [`run`] here is the one async driver: read an answer, hand it
//! to the machine, do what it says. The state lives in the connection and
//! dies with it: no flow ids to guess.

mod cached;
pub mod checks;
pub mod ending;
pub mod latency;
pub mod machine;
pub mod pending;
pub mod plan;
mod send;
mod stepup;
#[cfg(test)]
mod tests;

pub(crate) use send::{
    contact, destination, directory_contact, failure_message as delivery_failure,
    profile as code_profile,
};

use crate::audit::Decision as Audit;
use crate::device;
use crate::io::{FrameIo, ReadError};
use crate::peer::Peer;
use crate::policy::{Facts, Rule, Signals};
use crate::reevaluate::{self, Trigger};
use crate::store::{NewTicket, Succeeded, crypto::CryptoError};
use crate::{Daemon, clock, risk, validate};
pub(crate) use cached::policy_changed;
use checks::{Attempt, Gathered};
use ending::{Ending, Outcome};
use machine::{Login, Say, Settings};
use mfad_protocol::{AuthStart, ErrorCode, Request, Response, SecretString};
use std::sync::{Mutex, PoisonError};

/// How long a ticket waits for its session hook (sshd opens the session
/// right after authentication).
const TICKET_SECS: i64 = 300;

/// The shapes of codes in this login: the user's TOTP length, or for one
/// who enrolls at login, the length of the rule's profile.
pub fn settings(d: &Daemon, rule: Option<&Rule>, gathered: &Gathered) -> Settings {
    let profile = d
        .config
        .totp
        .profile(rule.and_then(|r| r.totp_profile.as_deref()));
    let digits = gathered
        .totp
        .as_ref()
        .map(|t| t.params.digits)
        .or(profile.map(|p| p.digits))
        .unwrap_or(d.config.totp.digits);
    Settings {
        totp_digits: usize::try_from(digits).unwrap_or(6),
        backup_length: d.config.backup.length,
    }
}

/// Runs the login `start` on `io`. `router::admit` authorized the caller
/// already (a non-root peer for its own uid only).
pub async fn run(d: &Daemon, peer: &Peer, io: &mut FrameIo, start: AuthStart) {
    if let Err(problem) = validate::auth_start(&start) {
        io.send_error(ErrorCode::BadRequest, problem).await;
        return;
    }
    let loaded = d.policy();
    let place = risk::place(d, start.rhost.as_deref());
    let signals = match loaded.policy.uses_signals() || loaded.policy.uses_on_risk() {
        true => risk::signals(d, &start.user, &place).0,
        false => Default::default(),
    };
    let facts = Facts {
        user: &start.user,
        service: &start.service,
        rhost: start.rhost.as_deref(),
        signals,
    };
    let rule = loaded.policy.decide(facts, &d.groups());
    // Only sshd (the services the policy's [host] device_services names),
    // running as root, vouches for the key of its first method: a key named
    // by any other caller or service is ignored.
    let vouched = peer.uid == 0 && loaded.policy.host.vouches_for_devices(&start.service);
    let key = match vouched {
        true => start
            .ssh_auth_info
            .as_deref()
            .and_then(device::from_auth_info),
        false => None,
    };
    let source = failure_source(&start, peer);
    let session = stepup::session_of(d, peer, &start);
    let session_id = session.as_ref().map(|s| s.id);
    let mut att = Attempt {
        d,
        peer,
        start: &start,
        rule,
        version: loaded.version,
        source: &source,
        key,
        offered: None,
        cached: false,
        totp: None,
        totp_locked: None,
        place: Some(&place),
        session: session_id,
        recorded: Mutex::new(None),
    };
    let now = clock::now();
    // The shared database unreachable: the rule may let this host's cache
    // check a TOTP code.
    let gathered = checks::gather(
        d,
        &start.user,
        rule,
        att.key.as_ref(),
        session,
        now,
        Some(&source),
    )
    .or_else(|e| cached::fallback(&mut att, &e).ok_or(e));
    let ending = match gathered {
        Ok(gathered) => {
            let plan = plan::plan(&gathered.inputs(rule, now));
            let settings = settings(d, rule, &gathered);
            att.totp = gathered.totp;
            att.totp_locked = gathered.totp_locked;
            if att.cached {
                // A client gone is found, and audited, at the first prompt.
                let text = cached::NOTICE.to_owned();
                let _ = io.send(Response::Info { text }).await;
            }
            converse(&mut att, io, plan, settings, now).await
        }
        Err(e) => broke(&att, &e),
    };
    let allow = matches!(ending.outcome, Outcome::Allow | Outcome::Pass);
    // A new login (not a step-up inside a session) from a new place. The
    // sessions it re-evaluates are those open before its verdict: the one
    // it opens itself may be recorded before the re-evaluation runs.
    let new_place = (allow && session_id.is_none() && loaded.policy.uses_on_risk())
        .then(|| new_place(d, &place, signals))
        .flatten();
    finish(&att, io, ending).await;
    if let Some(p) = new_place {
        let trigger = Trigger::NewPlace {
            user: &start.user,
            rhost: &p.rhost,
            what: &p.what,
            up_to: p.up_to,
        };
        reevaluate::run(d, &trigger, peer.uid, None);
    }
}

/// A login from a network or country new for the user, and the newest
/// session open before it.
struct NewPlace {
    rhost: String,
    what: String,
    up_to: i64,
}

fn new_place(d: &Daemon, place: &risk::Place, signals: Signals) -> Option<NewPlace> {
    let ip = place.ip?;
    let what = match (&place.country, place.network) {
        (Some(country), _) if signals.new_country => format!("a new country ({country})"),
        (_, Some(network)) if signals.new_network => format!("a new network ({network})"),
        _ => return None,
    };
    let up_to = match d.store.sessions(&d.boot_id) {
        Ok(all) => all.iter().map(|s| s.id).max().unwrap_or(0),
        Err(e) => {
            log::error!("cannot read the sessions to re-evaluate them: {e}");
            return None;
        }
    };
    Some(NewPlace {
        rhost: ip.to_string(),
        what,
        up_to,
    })
}

/// The conversation: the machine says, the driver does.
async fn converse(
    att: &mut Attempt<'_>,
    io: &mut FrameIo,
    plan: plan::Plan,
    settings: Settings,
    now: i64,
) -> Ending {
    let (mut login, mut say) = Login::start(plan, settings, att, now);
    // Read at `now`: good for the lock check the start made, not for later.
    att.totp_locked = None;
    loop {
        say = match say {
            Say::End(ending) => return ending,
            Say::Send {
                channel,
                resend,
                decoy,
            } => match send::deliver(att, io, channel, resend, decoy).await {
                Ok(sent) => login.sent(sent),
                Err(e) => return broke(att, &e),
            },
            Say::Prompt {
                info,
                echo,
                text,
                pause,
            } => {
                pause_for(pause).await;
                if !info.is_empty() && io.send(Response::Info { text: info }).await.is_err() {
                    return login.abandon("conversation aborted", att);
                }
                if io.send(Response::Prompt { echo, text }).await.is_err() {
                    return login.abandon("conversation aborted", att);
                }
                match io.read().await {
                    Ok(Request::Answer { text }) => login.answer(&text, att, clock::now()),
                    Ok(_) => {
                        io.send_error(ErrorCode::BadRequest, "expected an answer to the prompt")
                            .await;
                        return login.abandon("protocol error", att);
                    }
                    Err(err) => {
                        io.report(&err).await;
                        return login.abandon(reason_for(&err), att);
                    }
                }
            }
        };
    }
}

/// Something in mfad failed outside the machine: audited, and the login
/// fails closed (the log line is written once, in `finish`).
fn broke(att: &Attempt<'_>, e: &checks::CheckError) -> Ending {
    att.record(&att.event("none", Audit::Deny, "internal error"));
    Ending::internal(e.to_string())
}

async fn pause_for(pause: std::time::Duration) {
    // A zero sleep would still wait for tokio's next 1 ms timer tick.
    if !pause.is_zero() {
        tokio::time::sleep(pause).await;
    }
}

/// Tells the client how the login ended; after an allow, hands what it
/// proved to its session and records where it came from.
async fn finish(att: &Attempt<'_>, io: &mut FrameIo, ending: Ending) {
    pause_for(ending.pause).await;
    let decision = match (&ending.outcome, ending.verdict()) {
        (Outcome::Internal(why), _) => {
            log::error!(
                "authentication of {:?} for {:?} failed internally: {why}",
                att.start.user,
                att.start.service
            );
            io.send_error(ErrorCode::Internal, "internal error in mfad; see its log")
                .await;
            return;
        }
        (_, None) => return,
        (_, Some(decision)) => decision,
    };
    let allow = matches!(ending.outcome, Outcome::Allow | Outcome::Pass);
    let recorded = att
        .recorded
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    let written = recorded.is_some();
    let ticket = match allow && !att.cached {
        true => handed_on(att, &ending, recorded),
        false => None,
    };
    let _ = io
        .send(Response::Verdict {
            decision,
            message: ending.message.clone(),
            ticket: ticket.as_ref().map(|t| t.secret.clone()),
        })
        .await;
    if allow && !att.cached && !written {
        // After the verdict: nothing in this login reads these rows, and a
        // session hook redeeming the ticket waits for its row (`pending`).
        record(att, ticket, &ending.proof);
    }
    // A login notice is for new logins, not for a sudo inside one.
    if allow && ending.proved() && !att.peer.inside_login() {
        // After the verdict: the client has its answer and is gone.
        crate::notify::login(att.d, att.start, att.peer.uid).await;
    }
}

/// A ticket handed out with a verdict, its row not yet written.
struct Ticket<'a> {
    secret: SecretString,
    hash: [u8; 32],
    service: &'a str,
    expires: i64,
    /// Held until its row is written: a redemption waits for it.
    writing: Option<pending::Writing<'a>>,
}

/// After an allow, hands what the login proved to its session: straight
/// into the session it comes from (step-up), or as a one-time ticket for
/// the session hook to redeem (the one `recorded` with the login's last
/// code, if it was). Nothing of it can be recorded in an unreachable store
/// (`att.cached`): the session opens without a ticket.
fn handed_on<'a>(
    att: &Attempt<'a>,
    ending: &Ending,
    recorded: Option<Recorded<'a>>,
) -> Option<Ticket<'a>> {
    let d = att.d;
    let proof = &ending.proof;
    if let Some(id) = att.session {
        if !proof.factors.is_empty()
            && let Err(e) = d.store.session_passed(id, &proof.factors)
        {
            log::error!("cannot record the step-up in session {id}: {e}");
        }
        return None;
    }
    match recorded {
        Some(r) => r.ticket,
        None => new_ticket(att, clock::now()),
    }
}

/// A ticket for a new login: root's (sshd, login, a display manager),
/// from a process not yet inside a login (no login uid; pam_loginuid sets
/// it in the session stack). sudo and su run inside a login, and their PAM
/// environment goes on to the command they start. A step-up gets none.
fn new_ticket<'a>(att: &Attempt<'a>, now: i64) -> Option<Ticket<'a>> {
    if att.session.is_some() || att.peer.uid != 0 || att.peer.inside_login() {
        return None;
    }
    let d = att.d;
    let bytes = crate::store::crypto::random_bytes::<32>().ok()?;
    let secret = bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let hash = ticket_hash(d, &secret).ok()?;
    Some(Ticket {
        secret: SecretString::new(secret),
        hash,
        service: &att.start.service,
        expires: now.saturating_add(TICKET_SECS),
        writing: Some(d.tickets.hold(hash)),
    })
}

/// A login's success written with the code that ended it (see
/// `with_success`): the ticket to hand out with the verdict.
pub(crate) struct Recorded<'a> {
    ticket: Option<Ticket<'a>>,
}

/// Runs `write` with what the login leaves behind if it ends now with
/// `proved` (its ticket, when one is due, and where it came from), for
/// the store to write it with the login's last code; when `write` says it
/// was written, the ticket waits in `att.recorded` for the verdict.
pub(crate) fn with_success<'a, E>(
    att: &Attempt<'a>,
    proved: &[crate::store::Passed],
    now: i64,
    write: impl FnOnce(&Succeeded<'_>) -> Result<bool, E>,
) -> Result<bool, E> {
    let mut ticket = new_ticket(att, now);
    let proof = crate::store::Proof {
        factors: proved.to_vec(),
        device: None,
    };
    let written = succeeded(att, ticket.as_ref(), &proof, now, write)?;
    if written {
        // Its row is written: a redemption need not wait for it.
        if let Some(t) = ticket.as_mut() {
            t.writing.take();
        }
        *att.recorded.lock().unwrap_or_else(PoisonError::into_inner) = Some(Recorded { ticket });
    }
    Ok(written)
}

/// After an allow: where the login came from, and its ticket's row (a
/// redemption waiting for it goes on once `ticket` is dropped here).
fn record(att: &Attempt<'_>, ticket: Option<Ticket<'_>>, proof: &crate::store::Proof) {
    let user = att.start.user.as_str();
    let stored = succeeded(att, ticket.as_ref(), proof, clock::now(), |what| {
        att.d.store.login_succeeded(user, what)
    });
    if let Err(e) = stored {
        log::error!("cannot record the login of {user:?} (history, ticket): {e}");
    }
}

/// Runs `write` with what a login's success leaves behind: where it came
/// from, and `ticket`'s row with what the login proved.
fn succeeded<R>(
    att: &Attempt<'_>,
    ticket: Option<&Ticket<'_>>,
    proof: &crate::store::Proof,
    now: i64,
    write: impl FnOnce(&Succeeded<'_>) -> R,
) -> R {
    let visit = att.place.and_then(risk::visit);
    let row = ticket.map(|t| NewTicket {
        hash: &t.hash,
        service: t.service,
        proof,
        expires: t.expires,
    });
    write(&Succeeded {
        now,
        visit: visit.as_ref(),
        ticket: row.as_ref(),
    })
}

/// The keyed hash a ticket is stored under.
pub(crate) fn ticket_hash(d: &Daemon, ticket: &str) -> Result<[u8; 32], CryptoError> {
    d.vault.keyed_hash("ticket", "", ticket.as_bytes())
}

/// What failures are counted against besides the account: the remote
/// host, or for a local login the real uid of the program asking (su and
/// sudo run as root for whoever started them), so that one local user
/// cannot lock another out of every local login.
pub(crate) fn failure_source(start: &AuthStart, peer: &Peer) -> String {
    match (
        start.rhost.as_deref().filter(|r| !r.is_empty()),
        peer.real_uid,
    ) {
        (Some(rhost), _) => rhost.to_owned(),
        (None, Some(uid)) => format!("local uid {uid}"),
        (None, None) => "local".to_owned(),
    }
}

/// The audit reason for a conversation that ended without an answer.
pub(crate) fn reason_for(err: &ReadError) -> &'static str {
    match err {
        ReadError::Closed => "conversation aborted",
        ReadError::Timeout => "timed out waiting for the answer",
        _ => "malformed answer",
    }
}
