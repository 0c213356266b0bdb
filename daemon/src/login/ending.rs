//! How a login ended: one type for every path, turned into a wire verdict
//! in one place ([`Ending::verdict`]); pam_mfa turns that into a PAM code
//! in one place too (`pam-module/src/flow.rs`).

use crate::store::Passed;
use crate::store::Proof;
use mfad_protocol::Decision;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The user proved what the rule asks (factors, a trusted device, or
    /// factors passed earlier in the session).
    Allow,
    /// Let through without proving anything: the rule requires nothing, or
    /// the user is not enrolled and the rule lets them in.
    Pass,
    Deny,
    Locked,
    /// Something inside mfad failed; the login fails closed.
    Internal(String),
    /// The client left, timed out or broke the protocol: nobody to tell.
    Aborted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    pub outcome: Outcome,
    /// For the user.
    pub message: String,
    /// The deliberate delay before a failure is told.
    pub pause: Duration,
    /// What was proved, for the session this login opens or comes from.
    pub proof: Proof,
}

impl Ending {
    pub fn new(outcome: Outcome, message: &str) -> Self {
        Self {
            outcome,
            message: message.to_owned(),
            pause: Duration::ZERO,
            proof: Proof::default(),
        }
    }

    pub fn internal(why: String) -> Self {
        Self::new(Outcome::Internal(why), "")
    }

    pub fn after(mut self, pause: Duration) -> Self {
        self.pause = pause;
        self
    }

    pub fn with_device(mut self, label: String) -> Self {
        self.proof.device = Some(label);
        self
    }

    pub fn with_factors(mut self, factors: Vec<Passed>) -> Self {
        self.proof.factors = factors;
        self
    }

    /// Whether the login rests on something the user proved now (what a
    /// login notification reports, and what a session records).
    pub fn proved(&self) -> bool {
        !self.proof.factors.is_empty() || self.proof.device.is_some()
    }

    /// The verdict on the wire; `None` when there is none to send (an
    /// internal error is sent as an error, an aborted login gets nothing).
    pub fn verdict(&self) -> Option<Decision> {
        match self.outcome {
            Outcome::Allow => Some(Decision::Allow),
            Outcome::Pass => Some(Decision::Pass),
            Outcome::Deny => Some(Decision::Deny),
            Outcome::Locked => Some(Decision::Locked),
            Outcome::Internal(_) | Outcome::Aborted => None,
        }
    }
}
