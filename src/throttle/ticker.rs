//! The ticker: one task per layer that slides every window of the layer once a slice.
//!
//! A window over time must be slid as time passes. Sliding it from the calls would make each
//! call read the clock, and a clock reading costs a call more than the rest of the throttle
//! together (`BENCHMARKS.md`). So the time is read here instead, once a slice (a second by
//! default) for all the layer's windows, and a call touches only the slice being filled.
//!
//! The task is started by a call that finds its window with no headroom, as every window is
//! until a ticker slides it: the layer's first call made in a tokio runtime, or the first after
//! a ticker stopped. It holds the windows weakly: it ends once the layer and its services are
//! dropped, or with its runtime (a layer used in a later runtime starts a new task there).
//! Outside a tokio runtime no window slides, and the throttle counts every call since the layer
//! was made; in a runtime without timers the task cannot arm its first, and it is not started
//! again. It finds that out by tokio's panic on arming a timer there, which tokio catches for
//! the task; built with `panic = "abort"`, that ends the process, so a throttle needs
//! `enable_time` as every timeout of this crate does.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::time::Instant;

use super::Throttler;
use super::admit::Formula;
use super::window::SLICES;
use crate::scope::Scopes;

/// A layer's windows (one, or one per key), and whether a ticker is sliding them.
pub(crate) struct Windows<C> {
    pub(super) scopes: Scopes<Throttler<C>>,
    pub(super) formula: Formula,
    slice: Duration,
    ticking: AtomicBool,
}

impl<C> Windows<C> {
    /// `scopes`, whose windows are `window` long.
    pub(super) fn new(scopes: Scopes<Throttler<C>>, formula: Formula, window: Duration) -> Self {
        Windows {
            scopes,
            formula,
            slice: window / SLICES,
            ticking: AtomicBool::new(false),
        }
    }
}

#[cfg(test)]
impl<C> Windows<C> {
    /// Whether a ticker has been started and not stopped.
    pub(super) fn ticking(&self) -> bool {
        self.ticking.load(Ordering::Relaxed)
    }
}

impl<C: Send + Sync + 'static> Windows<C> {
    /// Starts the ticker if none is running: asked by every call that finds its window with no
    /// headroom, which every window has none until a ticker slides it (outside a tokio runtime,
    /// where none can start, each call also looks for a runtime).
    #[inline]
    pub(super) fn keep_sliding(self: &Arc<Self>) {
        if !self.ticking.load(Ordering::Relaxed) {
            self.start();
        }
    }

    #[cold]
    fn start(self: &Arc<Self>) {
        let Ok(runtime) = Handle::try_current() else {
            return;
        };
        if !self.ticking.swap(true, Ordering::Relaxed) {
            // The first slice began with this call, not when the task first runs.
            let first_end = Instant::now() + self.slice;
            let stopped = Stopped {
                windows: Arc::downgrade(self),
                arming: false,
            };
            runtime.spawn(tick(stopped, self.slice, first_end));
        }
    }
}

/// Slides the windows at the end of each slice, the first ending at `next`, while they are in
/// use. The guard is an argument, so that it is dropped with the task even if the task is never
/// polled (a runtime dropped right after the call that spawned it).
async fn tick<C>(mut stopped: Stopped<C>, slice: Duration, mut next: Instant) {
    loop {
        stopped.arming = true;
        let end_of_slice = tokio::time::sleep_until(next);
        stopped.arming = false;
        end_of_slice.await;
        let Some(live) = stopped.windows.upgrade() else {
            return;
        };
        // The slices that ended while this task waited for its turn (one, unless the runtime
        // was busy, or a paused clock was advanced past several): each is slid, up to a whole
        // window, which empties it.
        let now = Instant::now();
        let late = (now - next).as_nanos();
        let ended = 1 + late / slice.as_nanos();
        let into_next = Duration::from_nanos((late % slice.as_nanos()) as u64);
        next = now + (slice - into_next);
        for _ in 0..ended.min(u128::from(SLICES)) {
            live.scopes
                .for_each(|throttler| throttler.window.slide(|| live.formula.k_fixed()));
        }
    }
}

/// Lets the next call start a ticker once this one has stopped, with its runtime, even if it
/// never ran. Not if it could not arm its timer (a runtime without `enable_time` panics there,
/// the one place `arming` is left set): each call would only start one more, to fail the same
/// way.
struct Stopped<C> {
    windows: Weak<Windows<C>>,
    arming: bool,
}

impl<C> Drop for Stopped<C> {
    fn drop(&mut self) {
        if !self.arming
            && let Some(windows) = self.windows.upgrade()
        {
            // The windows no longer slide, so no headroom is left to admit calls on: the next
            // call reads its whole window, and starts a ticker if it can.
            windows
                .scopes
                .for_each(|throttler| throttler.window.unslid());
            windows.ticking.store(false, Ordering::Relaxed);
        }
    }
}
