//! Changes to one's own factors that need a fresh proof (`self_change`):
//! replacing the TOTP secret (a lost phone) and turning MFA off, each only
//! where `[self_service]` in mfad.toml allows it.
//!
//! Threat: someone at a terminal the user left unlocked, or a process
//! running as the user. `mfactl` asks for the account password through PAM
//! first, but it runs as the user, so mfad cannot tell whether it did: a
//! process of the user can speak the protocol itself. The password step
//! slows down a person at an unlocked terminal, nothing more. What mfad
//! checks here is the real gate: the current code of a factor the user
//! still holds (TOTP) or one of their backup codes, checked, consumed and
//! counted exactly as a login's (the same lockouts, the same growing delay,
//! each code once), so that a session of the user alone can neither take
//! over the account's second factor nor remove it.

use crate::admin::{self, Refusal};
use crate::audit::{Decision, Event};
use crate::login::checks::{Attempt, enrolled_in};
use crate::login::machine::{Checks, CodeCheck, locked_message};
use crate::login::plan::Step;
use crate::peer::Peer;
use crate::policy::Factor;
use crate::{Daemon, clock, login};
use mfad_protocol::{AuthStart, ErrorCode, Response, SecretString, SelfChange};

/// Carries out `change` on `user` (the caller's own account, as `router`
/// admitted it) after checking `proof`.
pub(crate) async fn change(
    d: &Daemon,
    peer: &Peer,
    user: &str,
    change: SelfChange,
    proof: &SecretString,
) -> Result<Response, Refusal> {
    let (what, allowed) = match change {
        SelfChange::ReplaceTotp => ("replace totp", d.config.self_service.replace_totp),
        SelfChange::Disable => ("disable mfa", d.config.self_service.disable),
    };
    // Refused before the proof is looked at: a refusal costs no backup code.
    if !allowed {
        let key = match change {
            SelfChange::ReplaceTotp => "replace_totp",
            SelfChange::Disable => "disable",
        };
        let why = format!(
            "{what}: not allowed on this machine ([self_service] {key} = false in mfad.toml)"
        );
        refuse(d, peer, user, &why);
        return Err(Refusal::new(
            ErrorCode::PermissionDenied,
            format!("{why}; an administrator can do it for you"),
        ));
    }
    // A new secret computes codes as the lost one did.
    let replacing = match change {
        SelfChange::ReplaceTotp => match d.store.totp_summary(user)? {
            Some(current) => Some(current.params),
            None => {
                return Err(Refusal::new(
                    ErrorCode::NotEnrolled,
                    format!("{what}: {user} has no active TOTP factor to replace"),
                ));
            }
        },
        SelfChange::Disable => None,
    };
    let proved = prove(d, peer, user, what, proof).await?;
    // Only what mfad checked: a password step, if any, was the client's.
    let note = format!("{what}: proved with a {proved}");
    match replacing {
        Some(params) => {
            d.record(&Event::admin(
                user,
                &format!("{note}; the old secret works until the new one is confirmed"),
                Decision::Done,
                peer.uid,
                clock::now(),
            ));
            admin::enroll_begin(d, peer, user, true, false, params)
        }
        None => {
            let event = Event::admin(
                user,
                &format!("{note}; all factors and counters removed"),
                Decision::Done,
                peer.uid,
                clock::now(),
            );
            d.store.reset_user(user, &event)?;
            event.log();
            Ok(admin::done(format!(
                "Multi-factor authentication is off for {user}: every factor, contact and \
                 trusted device was removed. What a login asks now is up to the policy."
            )))
        }
    }
}

/// Audits a refused change.
fn refuse(d: &Daemon, peer: &Peer, user: &str, why: &str) {
    d.record(&Event::admin(
        user,
        why,
        Decision::Refused,
        peer.uid,
        clock::now(),
    ));
}

/// Checks `proof` as a login would: a TOTP code when it has the shape of
/// one, a backup code otherwise. Returns what it was.
async fn prove(
    d: &Daemon,
    peer: &Peer,
    user: &str,
    what: &str,
    proof: &SecretString,
) -> Result<&'static str, Refusal> {
    let totp = d.store.totp(user)?;
    let digits = match &totp {
        Some(t) => t.params.digits,
        None => d.config.totp.digits,
    };
    let factor = shape(digits, proof.expose());
    let start = AuthStart {
        user: user.to_owned(),
        service: "mfactl".to_owned(),
        ..AuthStart::default()
    };
    let source = login::failure_source(&start, peer);
    let mut att = Attempt {
        d,
        peer,
        start: &start,
        rule: None,
        version: d.policy().version,
        source: &source,
        key: None,
        offered: None,
        cached: false,
        totp,
        totp_locked: None,
        place: None,
        session: None,
        recorded: Default::default(),
    };
    let now = clock::now();
    if let Some(until) = att.locked(factor, now)? {
        refuse(
            d,
            peer,
            user,
            &format!("{what}: {} is locked", factor.name()),
        );
        return Err(Refusal::new(
            ErrorCode::PermissionDenied,
            locked_message(until),
        ));
    }
    // A factor the user does not hold is checked all the same, as a login
    // checks it, and fails like a wrong code.
    let step = Step {
        factor,
        decoy: !enrolled_in(d, user, factor)?,
    };
    let note = format!(" (proof for {what})");
    let (message, reason) = match att.check(step, proof, now, &note, None)? {
        CodeCheck::Accepted(_) => return Ok(factor_words(factor)),
        CodeCheck::Rejected {
            message, reason, ..
        } => (message, reason),
    };
    let failure = att.failed(factor, &format!("{reason}{note}"), now)?;
    if !failure.pause.is_zero() {
        tokio::time::sleep(failure.pause).await;
    }
    Err(Refusal::new(
        ErrorCode::WrongCode,
        match failure.locked_until {
            Some(until) => locked_message(until),
            None => format!("{what}: {message} Nothing was changed."),
        },
    ))
}

/// Digits of the user's TOTP length are an authenticator code; any other
/// answer is taken as a backup code.
fn shape(digits: u32, typed: &str) -> Factor {
    let digits = usize::try_from(digits).unwrap_or(6);
    match typed.len() == digits && typed.bytes().all(|b| b.is_ascii_digit()) {
        true => Factor::Totp,
        false => Factor::Backup,
    }
}

fn factor_words(factor: Factor) -> &'static str {
    match factor {
        Factor::Totp => "TOTP code",
        _ => "backup code",
    }
}
