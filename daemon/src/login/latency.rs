//! How long real sends of a code take, per channel, so that a decoy send
//! (a user without the factor) takes as long: a decoy that answered at once
//! while a real send waits for the provider would tell enrolled from
//! unenrolled by the time to the prompt alone.

use mfad_protocol::Channel;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

/// Real sends remembered per channel: enough to follow the provider's
/// current speed, few enough that a slow hour is soon forgotten.
const KEPT: usize = 16;

/// What a decoy waits before any real send was timed: a typical answer
/// time of an SMS API or a mail relay.
pub const DEFAULT: Duration = Duration::from_millis(500);

/// The last [`KEPT`] durations of successful real sends, per channel.
#[derive(Default)]
pub struct Latencies {
    sms: Mutex<VecDeque<Duration>>,
    email: Mutex<VecDeque<Duration>>,
}

impl Latencies {
    fn of(&self, channel: Channel) -> &Mutex<VecDeque<Duration>> {
        match channel {
            Channel::Sms => &self.sms,
            Channel::Email => &self.email,
        }
    }

    /// A real send on `channel` took `took`.
    pub fn record(&self, channel: Channel, took: Duration) {
        let mut kept = self.of(channel).lock().unwrap_or_else(|p| p.into_inner());
        if kept.len() == KEPT {
            kept.pop_front();
        }
        kept.push_back(took);
    }

    /// How long a decoy on `channel` waits: one of the recent real
    /// durations, the one `pick` (a random number) chooses, so decoys
    /// spread as real sends do rather than all taking one telltale time;
    /// [`DEFAULT`] before any real send.
    pub fn draw(&self, channel: Channel, pick: u64) -> Duration {
        let kept = self.of(channel).lock().unwrap_or_else(|p| p.into_inner());
        let len = u64::try_from(kept.len()).unwrap_or(u64::MAX);
        match pick.checked_rem(len).and_then(|i| usize::try_from(i).ok()) {
            Some(i) => kept.get(i).copied().unwrap_or(DEFAULT),
            None => DEFAULT,
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
        assert_eq!(l.draw(Channel::Sms, 7), DEFAULT);
        l.record(Channel::Email, ms(900));
        assert_eq!(l.draw(Channel::Sms, 7), DEFAULT, "channels are apart");
        assert_eq!(l.draw(Channel::Email, 7), ms(900));
    }

    #[test]
    fn a_decoy_waits_one_of_the_recent_real_durations() {
        let l = Latencies::default();
        for n in 1..=3 {
            l.record(Channel::Sms, ms(n * 100));
        }
        let drawn: Vec<_> = (0..6).map(|pick| l.draw(Channel::Sms, pick)).collect();
        assert_eq!(
            drawn,
            [ms(100), ms(200), ms(300), ms(100), ms(200), ms(300)]
        );
        assert_eq!(l.draw(Channel::Sms, u64::MAX), ms(100));
    }

    #[test]
    fn only_the_last_sends_count() {
        let l = Latencies::default();
        l.record(Channel::Sms, ms(4000));
        for _ in 0..KEPT {
            l.record(Channel::Sms, ms(300));
        }
        assert!((0..100).all(|pick| l.draw(Channel::Sms, pick) == ms(300)));
    }
}
