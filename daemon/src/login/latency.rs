//! How real sends of a code went, per channel: how long each took and
//! whether it reached the provider, so that a decoy send (a user without
//! the factor) takes as long and fails as often: a decoy that answered at
//! once while a real send waits for the provider, or went out while the
//! provider is down, would tell enrolled from unenrolled.

use mfad_protocol::Channel;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

/// Real sends remembered per channel: enough to follow the provider's
/// current speed and health, few enough that a slow hour is soon forgotten.
const KEPT: usize = 16;

/// What a decoy waits before any real send was timed: a typical answer
/// time of an SMS API or a mail relay.
pub const DEFAULT: Duration = Duration::from_millis(500);

/// How a real send ended, as the person waiting for the code is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Sent,
    /// The provider did not answer in time.
    Timeout,
    /// The provider could not be reached.
    Unreachable,
    /// The provider refused the message.
    Refused,
}

/// The last [`KEPT`] real sends, per channel: how long each took, and how
/// it ended.
#[derive(Default)]
pub struct Latencies {
    sms: Mutex<VecDeque<(Duration, Ending)>>,
    email: Mutex<VecDeque<(Duration, Ending)>>,
}

impl Latencies {
    fn of(&self, channel: Channel) -> &Mutex<VecDeque<(Duration, Ending)>> {
        match channel {
            Channel::Sms => &self.sms,
            Channel::Email => &self.email,
        }
    }

    /// A real send on `channel` took `took` and ended as `ending`.
    pub fn record(&self, channel: Channel, took: Duration, ending: Ending) {
        let mut kept = self.of(channel).lock().unwrap_or_else(|p| p.into_inner());
        if kept.len() == KEPT {
            kept.pop_front();
        }
        kept.push_back((took, ending));
    }

    /// How long a decoy on `channel` waits and how it ends: one of the
    /// recent real sends, the one `pick` (a random number) chooses, so
    /// decoys spread as real sends do rather than all taking one telltale
    /// time; [`DEFAULT`] and sent before any real send.
    pub fn draw(&self, channel: Channel, pick: u64) -> (Duration, Ending) {
        let kept = self.of(channel).lock().unwrap_or_else(|p| p.into_inner());
        let len = u64::try_from(kept.len()).unwrap_or(u64::MAX);
        match pick.checked_rem(len).and_then(|i| usize::try_from(i).ok()) {
            Some(i) => kept.get(i).copied().unwrap_or((DEFAULT, Ending::Sent)),
            None => (DEFAULT, Ending::Sent),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_decoy_waits_the_default_until_a_real_send_was_timed() {
        let l = Latencies::default();
        assert_eq!(l.draw(Channel::Sms, 7), (DEFAULT, Ending::Sent));
        l.record(Channel::Email, ms(900), Ending::Sent);
        assert_eq!(
            l.draw(Channel::Sms, 7),
            (DEFAULT, Ending::Sent),
            "channels are apart"
        );
        assert_eq!(l.draw(Channel::Email, 7), (ms(900), Ending::Sent));
    }

    #[test]
    fn a_decoy_waits_one_of_the_recent_real_durations() {
        let l = Latencies::default();
        for n in 1..=3 {
            l.record(Channel::Sms, ms(n * 100), Ending::Sent);
        }
        let drawn: Vec<_> = (0..6).map(|pick| l.draw(Channel::Sms, pick).0).collect();
        assert_eq!(
            drawn,
            [ms(100), ms(200), ms(300), ms(100), ms(200), ms(300)]
        );
        assert_eq!(l.draw(Channel::Sms, u64::MAX).0, ms(100));
    }

    #[test]
    fn only_the_last_sends_count() {
        let l = Latencies::default();
        l.record(Channel::Sms, ms(4000), Ending::Unreachable);
        for _ in 0..KEPT {
            l.record(Channel::Sms, ms(300), Ending::Sent);
        }
        assert!((0..100).all(|pick| l.draw(Channel::Sms, pick) == (ms(300), Ending::Sent)));
    }

    #[test]
    fn while_real_sends_fail_decoys_fail_as_often() {
        let l = Latencies::default();
        l.record(Channel::Sms, ms(300), Ending::Sent);
        l.record(Channel::Sms, ms(5000), Ending::Timeout);
        let drawn: Vec<_> = (0..4).map(|pick| l.draw(Channel::Sms, pick)).collect();
        assert_eq!(
            drawn,
            [
                (ms(300), Ending::Sent),
                (ms(5000), Ending::Timeout),
                (ms(300), Ending::Sent),
                (ms(5000), Ending::Timeout)
            ]
        );
    }
}
