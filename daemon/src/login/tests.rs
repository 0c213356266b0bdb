//! The login core in process: no root, no socket, no store. A fake
//! [`Checks`] in memory, rules built in code, scripted answers and a fixed
//! clock. Modelled on `pam-module/src/flow/tests/harness.rs`.

mod explain_agrees;
mod machine;
mod plan_table;
mod props;

use super::ending::{Ending, Outcome};
use super::machine::{Checks, CodeCheck, Failure, Login, Offer, Say, Sent, Settings};
use super::plan::{Device, Inputs, Plan, Session, Step, plan};
use crate::audit::Decision as Audit;
use crate::policy::{Conditions, Factor, OnRisk, Requirement, Rule, TrustedDevices, Unenrolled};
use crate::store::Passed;
use mfad_protocol::{Channel, SecretString};
use std::collections::HashMap;
use std::time::Duration;

pub const NOW: i64 = 1_800_000_000;
pub const TOTP: &str = "123456";
pub const BACKUP: &str = "abcde-fghij";
pub const SENT: &str = "654321";
pub const SETTINGS: Settings = Settings {
    totp_digits: 6,
    backup_length: 10,
};

pub fn rule(require: Requirement) -> Rule {
    Rule {
        name: "r".to_owned(),
        line: 1,
        when: Conditions {
            all: true,
            ..Default::default()
        },
        require,
        fresh: Vec::new(),
        trusted_devices: TrustedDevices::Forbidden,
        unenrolled: Unenrolled::Deny,
        on_risk: OnRisk::None,
        store_unreachable: Default::default(),
        totp_profile: None,
    }
}

pub fn any(f: &[Factor]) -> Rule {
    rule(Requirement::Any(f.to_vec()))
}

pub fn chain(f: &[Factor]) -> Rule {
    rule(Requirement::Chain(f.to_vec()))
}

/// A user's state in memory; every call is counted.
#[derive(Debug, Default)]
pub struct Fake {
    pub enrolled: Vec<Factor>,
    pub locked: HashMap<Factor, i64>,
    /// Codes accepted, in order (a factor accepted twice is a defect).
    pub accepted: Vec<Factor>,
    pub checked: Vec<Step>,
    /// What the last accepted code said it ends the login with.
    pub ended_with: Option<Vec<Passed>>,
    pub failures: u32,
    /// Lock after this many failures.
    pub lock_after: Option<u32>,
    pub device_ok: bool,
    pub trusted: Option<u32>,
    pub audit: Vec<(&'static str, Audit, String)>,
    pub broken: bool,
    pub offered: bool,
}

impl Fake {
    pub fn with(enrolled: &[Factor]) -> Self {
        Self {
            enrolled: enrolled.to_vec(),
            device_ok: true,
            ..Default::default()
        }
    }

    fn right(f: Factor) -> &'static str {
        match f {
            Factor::Totp => TOTP,
            Factor::Backup => BACKUP,
            Factor::Sms | Factor::Email => SENT,
        }
    }
}

impl Checks for Fake {
    type Error = String;

    fn locked(&mut self, factor: Factor, _: i64) -> Result<Option<i64>, String> {
        match self.broken {
            true => Err("the store is broken".to_owned()),
            false => Ok(self.locked.get(&factor).copied()),
        }
    }

    fn check(
        &mut self,
        step: Step,
        code: &SecretString,
        _: i64,
        _: &str,
        ends: Option<&[Passed]>,
    ) -> Result<CodeCheck, String> {
        self.checked.push(step);
        let right = !step.decoy
            && self.enrolled.contains(&step.factor)
            && code.expose() == Self::right(step.factor)
            && !self.accepted.contains(&step.factor);
        if right {
            self.accepted.push(step.factor);
            self.ended_with = ends.map(<[Passed]>::to_vec);
            return Ok(CodeCheck::Accepted(String::new()));
        }
        Ok(CodeCheck::Rejected {
            message: "Wrong code.".to_owned(),
            reason: "wrong code".to_owned(),
            retry: step.factor.channel().is_some(),
        })
    }

    fn failed(&mut self, factor: Factor, reason: &str, now: i64) -> Result<Failure, String> {
        self.failures += 1;
        self.audit
            .push((factor.name(), Audit::Deny, reason.to_owned()));
        let locked_until = self
            .lock_after
            .filter(|&n| self.failures >= n)
            .map(|_| now + 600);
        Ok(Failure {
            locked_until,
            pause: Duration::from_millis(250 * u64::from(self.failures)),
        })
    }

    fn use_device(&mut self, _: i64) -> Result<bool, String> {
        Ok(self.device_ok)
    }

    fn trust_device(&mut self, days: u32, now: i64) -> Result<i64, String> {
        self.trusted = Some(days);
        Ok(now + i64::from(days) * 86_400)
    }

    fn audit(&mut self, channel: &'static str, decision: Audit, reason: &str) {
        self.audit.push((channel, decision, reason.to_owned()));
    }

    fn enroll_offer(&mut self, _: i64) -> Result<Offer, String> {
        self.offered = true;
        Ok(Offer {
            qr: Some("[QR]".to_owned()),
            secret: "ABCD EFGH".to_owned(),
            settings: None,
        })
    }

    fn enroll_confirm(
        &mut self,
        code: &SecretString,
        _: i64,
    ) -> Result<Option<Vec<SecretString>>, String> {
        if !self.offered || code.expose() != TOTP {
            return Ok(None);
        }
        self.enrolled.push(Factor::Totp);
        Ok(Some(vec![SecretString::new(BACKUP.to_owned())]))
    }
}

/// What a login showed the user and how it ended.
#[derive(Debug)]
pub struct Run {
    /// Prompts, and `send:<channel>` for each send.
    pub shown: Vec<String>,
    pub ending: Ending,
}

impl Run {
    pub fn outcome(&self) -> &Outcome {
        &self.ending.outcome
    }
}

/// Plans and runs a login: `answers` in order; sends come back as live
/// codes to a masked destination that does not depend on enrollment.
/// Running out of answers abandons the login.
pub fn run(rule: Option<&Rule>, fake: &mut Fake, inputs: Extra<'_>, answers: &[&str]) -> Run {
    let enrolled = fake.enrolled.clone();
    let p = plan(&Inputs {
        rule,
        enrolled: &enrolled,
        session: inputs.session,
        device: inputs.device,
        now: NOW,
    });
    run_plan(p, fake, answers)
}

pub fn run_plan(p: Plan, fake: &mut Fake, answers: &[&str]) -> Run {
    let (mut login, mut say) = Login::start(p, SETTINGS, fake, NOW);
    let mut shown = Vec::new();
    let mut answers = answers.iter();
    loop {
        say = match say {
            Say::End(ending) => return Run { shown, ending },
            Say::Send {
                channel, resend, ..
            } => {
                shown.push(format!(
                    "send:{}{}",
                    channel.name(),
                    if resend { ":again" } else { "" }
                ));
                login.sent(Sent::Live {
                    masked: masked(channel),
                    left: Duration::from_secs(300),
                })
            }
            Say::Prompt { info, text, .. } => {
                if !info.is_empty() {
                    shown.push(info);
                }
                shown.push(text);
                match answers.next() {
                    Some(a) => login.answer(&SecretString::new((*a).to_owned()), fake, NOW),
                    None => {
                        let ending = login.abandon("conversation aborted", fake);
                        return Run { shown, ending };
                    }
                }
            }
        };
    }
}

fn masked(channel: Channel) -> String {
    match channel {
        Channel::Sms => "+44*******123".to_owned(),
        Channel::Email => "y***@example.com".to_owned(),
    }
}

/// Session and device inputs.
#[derive(Debug, Default, Clone, Copy)]
pub struct Extra<'a> {
    pub session: Option<Session<'a>>,
    pub device: Option<Device<'a>>,
}

pub fn passed(factor: Factor, age: i64) -> Passed {
    Passed {
        factor: factor.name().to_owned(),
        at: NOW - age,
    }
}
