//! The global caps on what mfad sends, against SMS pumping: whoever can
//! make mfad send texts to numbers of their choosing (any local user, with
//! `mfactl phone set`; anyone who can start logins of enrolled users) can
//! run up the bill, and premium-rate destinations pay them for it. The
//! per-user hourly cap (`[sms.code] hourly_cap`) does not stop many users,
//! or one user's many numbers. So every send, of every kind, passes here
//! first: a cap per channel in any 60 minutes, one per destination prefix
//! (a number's country calling code, an address's domain), and one per uid
//! on verification messages to destinations a user typed, in any 24 hours.
//! A refused send reaches no provider; the admin is warned once per cap and
//! period, never once per refusal (a flood must not flood the log).

use crate::config::SendCaps;
use crate::store::{DeliveryCaps, Over, Store, StoreError};
use mfad_protocol::Channel;
use mfad_protocol::time::utc;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

/// A send one of the caps held back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capped {
    pub channel: Channel,
    pub scope: Scope,
    pub cap: u32,
    /// When the next send fits under the cap again.
    pub until: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Every destination together.
    All,
    /// One destination prefix.
    Prefix(String),
    /// Verification messages asked for by one uid.
    Uid(u32),
}

fn noun(channel: Channel) -> &'static str {
    match channel {
        Channel::Sms => "text messages",
        Channel::Email => "emails",
    }
}

impl fmt::Display for Capped {
    /// For the audit row and the log: which cap, and until when.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (cap, until, what) = (self.cap, utc(self.until), noun(self.channel));
        let table = self.channel.name();
        match &self.scope {
            Scope::All => write!(
                f,
                "held back by mfad: the cap of {cap} {what} an hour in all ([{table}.cap] hourly) is reached until {until}"
            ),
            Scope::Prefix(p) => write!(
                f,
                "held back by mfad: the cap of {cap} {what} an hour to {p} ([{table}.cap] hourly_per_prefix or prefix) is reached until {until}"
            ),
            Scope::Uid(uid) => write!(
                f,
                "held back by mfad: uid {uid} asked for {cap} verification {what} in 24 hours, the most allowed \
                 ([{table}.cap] verify_daily_per_uid), until {until}"
            ),
        }
    }
}

impl Capped {
    /// What the person waiting for the code is told.
    pub fn tell(&self, masked: &str) -> String {
        let until = utc(self.until);
        match self.scope {
            Scope::Uid(_) => format!(
                "No code was sent to {masked}: no more verification codes can be sent at your \
                 request before {until} (at most {} a day). Try again then, or ask an administrator.",
                self.cap
            ),
            _ => format!(
                "No code was sent to {masked}: this server has sent as many {} as it may for now \
                 (a limit against abuse). Try again after {until}, use another method, or ask an \
                 administrator.",
                noun(self.channel)
            ),
        }
    }

    /// One warning per cap and period.
    fn period(&self) -> i64 {
        match self.scope {
            Scope::Uid(_) => 86_400,
            _ => 3600,
        }
    }
}

/// A send counted against the caps.
pub struct Slot(i64);

pub struct Caps {
    store: Arc<dyn Store>,
    /// When each cap last warned the admin.
    warned: Mutex<HashMap<(Channel, Scope), i64>>,
}

impl Caps {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            warned: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one send of `channel` to `to` (asked for by `verify_uid`, for
    /// a verification), or refuses it under the cap that is full.
    pub fn reserve(
        &self,
        channel: Channel,
        caps: &SendCaps,
        to: &str,
        verify_uid: Option<u32>,
        now: i64,
    ) -> Result<Result<Slot, Capped>, StoreError> {
        let prefix = prefix_key(channel, to).unwrap_or_else(|| "?".to_owned());
        let limits = DeliveryCaps {
            hourly: caps.hourly,
            prefix: caps.of_prefix(&prefix),
            verify: verify_uid.map(|uid| (uid, caps.verify_daily_per_uid)),
        };
        let (over, until) =
            match self
                .store
                .reserve_delivery(channel.name(), &prefix, &limits, now)?
            {
                Ok(id) => return Ok(Ok(Slot(id))),
                Err(full) => full,
            };
        let (scope, cap) = match over {
            Over::Hourly => (Scope::All, limits.hourly),
            Over::Prefix => (Scope::Prefix(prefix), limits.prefix),
            Over::Verify => (
                Scope::Uid(verify_uid.unwrap_or_default()),
                caps.verify_daily_per_uid,
            ),
        };
        let capped = Capped {
            channel,
            scope,
            cap,
            until,
        };
        self.warn_once(&capped, now);
        Ok(Err(capped))
    }

    /// Uncounts a send that never reached the provider.
    pub fn release(&self, slot: Slot) {
        if let Err(e) = self.store.release_delivery(slot.0) {
            log::error!("cannot uncount a send that failed: {e}");
        }
    }

    fn warn_once(&self, capped: &Capped, now: i64) {
        let mut warned = self.warned.lock().unwrap_or_else(|p| p.into_inner());
        let key = (capped.channel, capped.scope.clone());
        if warned
            .get(&key)
            .is_some_and(|at| now - at < capped.period())
        {
            return;
        }
        warned.retain(|_, at| now - *at < 86_400);
        warned.insert(key, now);
        log::warn!(
            "{} cap reached: {capped}; further refusals under this cap are not logged for the next {} (each is audited). \
             If this is legitimate traffic, raise [{}.cap] in mfad.toml; if not, someone is making mfad send messages",
            capped.channel.name(),
            if capped.period() == 3600 {
                "hour"
            } else {
                "day"
            },
            capped.channel.name()
        );
    }
}

/// The prefix a destination is counted under: for a number (`+447700…`)
/// its country calling code (`+44`), for an address (or a bare domain) its
/// domain in lower case. `None` for what is neither.
pub fn prefix_key(channel: Channel, to: &str) -> Option<String> {
    match channel {
        Channel::Sms => {
            let digits = to.strip_prefix('+')?.as_bytes();
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) || digits[0] == b'0' {
                return None;
            }
            let len = country_code_len(digits);
            let code = digits.get(..len)?;
            Some(format!("+{}", String::from_utf8_lossy(code)))
        }
        Channel::Email => {
            let domain = to.rsplit_once('@').map_or(to, |(_, d)| d);
            (!domain.is_empty() && !domain.contains(|c: char| c.is_whitespace() || c == '@'))
                .then(|| domain.to_ascii_lowercase())
        }
    }
}

/// The length of the ITU-T E.164 country calling code that `digits` starts
/// with. Codes are prefix-free: 1 and 7 are whole codes; of the two-digit
/// beginnings, these are whole codes and every other is the start of a
/// three-digit code.
fn country_code_len(digits: &[u8]) -> usize {
    match (digits[0], digits.get(1).copied().unwrap_or(0)) {
        (b'1' | b'7', _) => 1,
        (b'2', b'0' | b'7')
        | (b'3', b'0'..=b'4' | b'6' | b'9')
        | (b'4', b'0' | b'1' | b'3'..=b'9')
        | (b'5', b'1'..=b'8')
        | (b'6', b'0'..=b'6')
        | (b'8', b'1' | b'2' | b'4' | b'6')
        | (b'9', b'0'..=b'5' | b'8') => 2,
        _ => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_count_under_their_country_calling_code() {
        for (number, code) in [
            ("+15550001111", "+1"),
            ("+79161234567", "+7"),
            ("+447700900123", "+44"),
            ("+201001234567", "+20"),
            ("+2348012345678", "+234"),
            ("+35312345678", "+353"),
            ("+4930123456", "+49"),
            ("+42012345678", "+420"),
            ("+8613800138000", "+86"),
            ("+85212345678", "+852"),
            ("+9647701234567", "+964"),
            ("+97150123456", "+971"),
            ("+88216123456", "+882"),
        ] {
            assert_eq!(
                prefix_key(Channel::Sms, number).as_deref(),
                Some(code),
                "{number}"
            );
        }
        for bad in ["447700900123", "+", "+0447", "+44a"] {
            assert_eq!(prefix_key(Channel::Sms, bad), None, "{bad}");
        }
        // A configured prefix is valid exactly when it is its own key.
        assert_eq!(prefix_key(Channel::Sms, "+44").as_deref(), Some("+44"));
        assert_eq!(prefix_key(Channel::Sms, "+447").as_deref(), Some("+44"));
        assert_eq!(prefix_key(Channel::Sms, "+4"), None);
        assert_eq!(
            prefix_key(Channel::Email, "Yvonne@Example.COM").as_deref(),
            Some("example.com")
        );
    }

    #[test]
    fn the_warning_names_the_cap_and_the_refusal_tells_when() {
        let c = Capped {
            channel: Channel::Sms,
            scope: Scope::Prefix("+44".into()),
            cap: 5,
            until: 3600,
        };
        assert_eq!(
            c.to_string(),
            "held back by mfad: the cap of 5 text messages an hour to +44 ([sms.cap] hourly_per_prefix or prefix) \
             is reached until 1970-01-01 01:00:00Z"
        );
        assert!(
            c.tell("+44*******123")
                .contains("Try again after 1970-01-01 01:00:00Z")
        );
    }
}
