//! The retry decision, as a pure function: an attempt failed in a way worth another try; do the
//! limits allow one, and when?
//!
//! The checks that cost nothing come first (attempts, the server's hint against its cap), the
//! backoff schedule next, the clock last: a request whose attempts are spent reads no clock. What
//! needs side effects (making the next request, withdrawing from the budget) is the caller's,
//! after a `Retry` verdict, so that a retry that would not happen anyway spends no budget.

use std::time::Duration;

use tokio::time::Instant;

use super::GiveUp;

/// The per-request limits of a retry layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Limits {
    pub(crate) max_attempts: u32,
    pub(crate) max_elapsed: Option<Duration>,
    pub(crate) max_retry_after: Duration,
}

/// The time, read once for the decision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Clock {
    pub(crate) now: Instant,
    /// When the first attempt started (`now` for one that failed without ever being pending).
    pub(crate) started: Instant,
    /// The enclosing deadline, if any.
    pub(crate) deadline: Option<Instant>,
}

/// What the decision came to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Verdict {
    /// Try again after `delay`, at `at`.
    Retry { delay: Duration, at: Instant },
    /// Stop, for this reason.
    Stop(GiveUp),
}

/// Whether attempt number `attempt`, which failed with server hint `hint`, is followed by
/// another. `next_delay` is the backoff schedule's next delay (`None`: the schedule has ended),
/// asked only when there is no hint; `clock` is read only once the count and the hint allow a
/// retry.
pub(crate) fn decide(
    limits: &Limits,
    attempt: u32,
    hint: Option<Duration>,
    next_delay: impl FnOnce() -> Option<Duration>,
    clock: impl FnOnce() -> Clock,
) -> Verdict {
    if attempt >= limits.max_attempts {
        return Verdict::Stop(GiveUp::Attempts);
    }
    let delay = match hint {
        Some(requested) if requested > limits.max_retry_after => {
            return Verdict::Stop(GiveUp::RetryAfter {
                requested,
                cap: limits.max_retry_after,
            });
        }
        Some(requested) => requested,
        None => match next_delay() {
            Some(delay) => delay,
            None => return Verdict::Stop(GiveUp::Elapsed),
        },
    };
    let clock = clock();
    // A delay beyond any clock (an uncapped hint, an unbounded schedule) waits "for ever"
    // rather than overflowing.
    let at = crate::context::after(clock.now, delay);
    if limits
        .max_elapsed
        .is_some_and(|max| at.saturating_duration_since(clock.started) > max)
    {
        return Verdict::Stop(GiveUp::Elapsed);
    }
    if clock.deadline.is_some_and(|deadline| at >= deadline) {
        return Verdict::Stop(GiveUp::Deadline);
    }
    Verdict::Retry { delay, at }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_attempts: 3,
        max_elapsed: None,
        max_retry_after: Duration::from_secs(60),
    };

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    fn clock(now: Instant) -> Clock {
        Clock {
            now,
            started: now,
            deadline: None,
        }
    }

    #[test]
    fn the_schedule_gives_the_delay_and_the_clock_the_instant() {
        let now = Instant::now();
        let verdict = decide(&LIMITS, 1, None, || Some(ms(100)), || clock(now));
        assert_eq!(
            verdict,
            Verdict::Retry {
                delay: ms(100),
                at: now + ms(100)
            }
        );
    }

    #[test]
    fn spent_attempts_read_neither_schedule_nor_clock() {
        let verdict = decide(
            &LIMITS,
            3,
            None,
            || unreachable!("no delay is needed"),
            || unreachable!("no clock is needed"),
        );
        assert_eq!(verdict, Verdict::Stop(GiveUp::Attempts));
    }

    #[test]
    fn a_hint_replaces_the_schedule_within_its_cap() {
        let now = Instant::now();
        let verdict = decide(
            &LIMITS,
            1,
            Some(ms(250)),
            || unreachable!("the hint decides"),
            || clock(now),
        );
        assert_eq!(
            verdict,
            Verdict::Retry {
                delay: ms(250),
                at: now + ms(250)
            }
        );
        let over = decide(&LIMITS, 1, Some(ms(61_000)), || None, || clock(now));
        assert_eq!(
            over,
            Verdict::Stop(GiveUp::RetryAfter {
                requested: ms(61_000),
                cap: ms(60_000)
            })
        );
    }

    #[test]
    fn an_ended_schedule_stops_as_elapsed() {
        let verdict = decide(&LIMITS, 1, None, || None, || unreachable!());
        assert_eq!(verdict, Verdict::Stop(GiveUp::Elapsed));
    }

    #[test]
    fn nothing_is_planned_at_or_past_the_deadline_or_the_elapsed_limit() {
        let now = Instant::now();
        let at_deadline = Clock {
            deadline: Some(now + ms(100)),
            ..clock(now)
        };
        assert_eq!(
            decide(&LIMITS, 1, None, || Some(ms(100)), || at_deadline),
            Verdict::Stop(GiveUp::Deadline)
        );
        assert!(matches!(
            decide(&LIMITS, 1, None, || Some(ms(99)), || at_deadline),
            Verdict::Retry { .. }
        ));
        let limits = Limits {
            max_elapsed: Some(ms(500)),
            ..LIMITS
        };
        let late = Clock {
            started: now - ms(450),
            ..clock(now)
        };
        assert_eq!(
            decide(&limits, 2, None, || Some(ms(100)), || late),
            Verdict::Stop(GiveUp::Elapsed)
        );
    }

    #[test]
    fn a_retry_may_start_exactly_at_the_elapsed_limit_and_wait_exactly_the_cap() {
        let now = Instant::now();
        let limits = Limits {
            max_elapsed: Some(ms(500)),
            ..LIMITS
        };
        // The first attempt started 400 ms ago: a retry 100 ms from now starts at exactly
        // `max_elapsed`, which is still within it.
        let late = Clock {
            started: now - ms(400),
            ..clock(now)
        };
        assert_eq!(
            decide(&limits, 2, None, || Some(ms(100)), || late),
            Verdict::Retry {
                delay: ms(100),
                at: now + ms(100)
            }
        );
        // A hint of exactly the cap is honoured.
        assert_eq!(
            decide(&LIMITS, 1, Some(ms(60_000)), || None, || clock(now)),
            Verdict::Retry {
                delay: ms(60_000),
                at: now + ms(60_000)
            }
        );
    }

    #[test]
    fn a_delay_beyond_any_clock_saturates() {
        let now = Instant::now();
        let verdict = decide(
            &Limits {
                max_retry_after: Duration::MAX,
                ..LIMITS
            },
            1,
            Some(Duration::MAX),
            || None,
            || clock(now),
        );
        assert!(matches!(verdict, Verdict::Retry { at, .. } if at > now));
    }
}
