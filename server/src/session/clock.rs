//! A live session's deadlines on one timer: the next ping, the end of the client's allowed
//! silence, and the sign-in's expiry. A tokio timer is over a hundred bytes in every session's
//! task (an `Interval` boxes another); one timer set to the nearest deadline does the work of
//! three.

use std::time::Duration;

use tokio::time::Instant;

/// The deadlines, and what is due when the timer fires.
pub(super) struct Clock {
    ping_interval: Duration,
    peer_timeout: Duration,
    next_ping: Instant,
    /// When the client was last heard from (any frame, a pong included).
    heard: Instant,
    /// When the person's sign-in runs out (`None`: a guest, or a token without expiry).
    expires: Option<Instant>,
}

/// What the timer found due, most pressing first.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Due {
    /// The sign-in has expired.
    Expired,
    /// The client has been silent past the peer timeout.
    Silent,
    /// Time for a ping.
    Ping,
    /// Nothing (a deadline moved since the timer was set).
    Nothing,
}

impl Clock {
    pub(super) fn new(
        now: Instant,
        ping_interval: Duration,
        peer_timeout: Duration,
        expires: Option<Instant>,
    ) -> Self {
        Clock {
            ping_interval,
            peer_timeout,
            next_ping: now + ping_interval,
            heard: now,
            expires,
        }
    }

    /// The client was heard from at `now`. The timer is not moved (that takes the timer's lock,
    /// at every frame); when it fires, [`Clock::due`] finds the silence not over.
    pub(super) fn heard(&mut self, now: Instant) {
        self.heard = now;
    }

    /// When the timer should fire next.
    pub(super) fn next(&self) -> Instant {
        let next = self.next_ping.min(self.heard + self.peer_timeout);
        self.expires.map_or(next, |expires| expires.min(next))
    }

    /// What is due at `now`; a ping due is counted as sent (the next one an interval later).
    pub(super) fn due(&mut self, now: Instant) -> Due {
        if self.expires.is_some_and(|expires| expires <= now) {
            return Due::Expired;
        }
        if self.heard + self.peer_timeout <= now {
            return Due::Silent;
        }
        if self.next_ping <= now {
            self.next_ping = now + self.ping_interval;
            return Due::Ping;
        }
        Due::Nothing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn pings_at_each_interval_while_the_client_answers() {
        let start = Instant::now();
        let mut clock = Clock::new(start, 20 * SECOND, 45 * SECOND, None);
        assert_eq!(clock.next(), start + 20 * SECOND);
        assert_eq!(clock.due(start + 20 * SECOND), Due::Ping);
        clock.heard(start + 21 * SECOND);
        assert_eq!(clock.next(), start + 40 * SECOND);
        assert_eq!(clock.due(start + 40 * SECOND), Due::Ping);
        assert_eq!(
            clock.due(start + 40 * SECOND),
            Due::Nothing,
            "one ping per interval"
        );
        assert_eq!(clock.next(), start + 60 * SECOND);
    }

    #[test]
    fn a_silent_client_is_due_at_the_peer_timeout_and_not_before() {
        let start = Instant::now();
        let mut clock = Clock::new(start, 20 * SECOND, 45 * SECOND, None);
        assert_eq!(clock.due(start + 20 * SECOND), Due::Ping);
        assert_eq!(clock.due(start + 40 * SECOND), Due::Ping);
        assert_eq!(clock.next(), start + 45 * SECOND);
        clock.heard(start + 44 * SECOND);
        assert_eq!(
            clock.due(start + 45 * SECOND),
            Due::Nothing,
            "heard just in time"
        );
        assert_eq!(clock.next(), start + 60 * SECOND);
        assert_eq!(clock.due(start + 60 * SECOND), Due::Ping);
        assert_eq!(clock.next(), start + 80 * SECOND);
        assert_eq!(clock.due(start + 80 * SECOND), Due::Ping);
        assert_eq!(clock.next(), start + 89 * SECOND);
        assert_eq!(clock.due(start + 89 * SECOND), Due::Silent);
    }

    #[test]
    fn an_expiry_comes_first() {
        let start = Instant::now();
        let mut clock = Clock::new(start, 20 * SECOND, 45 * SECOND, Some(start + 5 * SECOND));
        assert_eq!(clock.next(), start + 5 * SECOND);
        assert_eq!(clock.due(start + 4 * SECOND), Due::Nothing);
        assert_eq!(
            clock.due(start + 90 * SECOND),
            Due::Expired,
            "before silence or a ping"
        );
        let past = Clock::new(start, 20 * SECOND, 45 * SECOND, Some(start)).next();
        assert_eq!(past, start, "an expiry already past fires at once");
    }
}
