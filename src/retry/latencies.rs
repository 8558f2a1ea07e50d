//! The latencies a learned hedge delay reads: a histogram over a rotating window.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;

/// Latencies over a rotating window: recorded into the current period, read from the last full
/// one (or the current one, while there is no full one yet), in microseconds.
pub(super) struct Latencies {
    window: Duration,
    periods: Mutex<Periods>,
}

struct Periods {
    started: Instant,
    current: Histogram<u64>,
    last: Option<Histogram<u64>>,
}

impl Latencies {
    pub(super) fn new(window: Duration) -> Self {
        Latencies {
            window,
            periods: Mutex::new(Periods {
                started: Instant::now(),
                current: histogram(),
                last: None,
            }),
        }
    }

    fn periods(&self, now: Instant) -> MutexGuard<'_, Periods> {
        let mut periods = self.periods.lock().unwrap_or_else(PoisonError::into_inner);
        let elapsed = now.saturating_duration_since(periods.started);
        if elapsed >= self.window {
            let fresh = histogram();
            let full = std::mem::replace(&mut periods.current, fresh);
            // A window with no traffic at all leaves nothing to go by.
            periods.last = (elapsed < self.window * 2).then_some(full);
            periods.started = now;
        }
        periods
    }

    pub(super) fn record(&self, now: Instant, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.periods(now).current.saturating_record(micros.max(1));
    }

    pub(super) fn percentile(
        &self,
        now: Instant,
        percentile: f64,
        min_samples: u64,
    ) -> Option<Duration> {
        let periods = self.periods(now);
        let source = match &periods.last {
            Some(last) if last.len() >= min_samples => last,
            _ => &periods.current,
        };
        (source.len() >= min_samples.max(1))
            .then(|| Duration::from_micros(source.value_at_percentile(percentile)))
    }
}

/// Microseconds from 1 to an hour, to three significant figures.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

#[cfg(test)]
mod tests {
    use super::super::Hedge;
    use super::*;

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[tokio::test(start_paused = true)]
    async fn a_learned_delay_waits_for_samples_and_follows_the_recent_window() {
        let hedging = Hedge::learned(90.0)
            .min_samples(10)
            .window(ms(1000))
            .floor(ms(2))
            .build()
            .unwrap();
        let now = Instant::now;
        for i in 1..=9 {
            hedging.record(now(), ms(i));
        }
        assert_eq!(hedging.delay(now()), None, "9 samples are not enough");
        hedging.record(now(), ms(10));
        let p90 = hedging.delay(now()).unwrap();
        assert!((ms(9)..ms(10)).contains(&p90), "{p90:?}");
        // A full window later the first period is what is read; new latencies fill the next.
        tokio::time::advance(ms(1000)).await;
        for _ in 0..10 {
            hedging.record(now(), ms(1));
        }
        assert!((ms(9)..ms(10)).contains(&hedging.delay(now()).unwrap()));
        tokio::time::advance(ms(1000)).await;
        assert_eq!(
            hedging.delay(now()),
            Some(ms(2)),
            "1 ms, raised to the floor"
        );
        // After two quiet windows nothing is left to go by.
        tokio::time::advance(ms(2000)).await;
        assert_eq!(hedging.delay(now()), None);
    }

    #[test]
    fn bad_settings_name_their_field() {
        let field = |hedge: Hedge| hedge.build().unwrap_err().field();
        assert_eq!(field(Hedge::after(Duration::ZERO)), "hedge.delay");
        assert_eq!(
            field(Hedge::after(ms(5)).max_in_flight(1)),
            "hedge.max_in_flight"
        );
        assert_eq!(field(Hedge::learned(100.0)), "hedge.percentile");
        assert_eq!(field(Hedge::learned(f64::NAN)), "hedge.percentile");
        assert_eq!(
            field(Hedge::learned(50.0).window(Duration::ZERO)),
            "hedge.window"
        );
    }
}
