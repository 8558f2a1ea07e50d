//! The throttle's service and future: admit or reject each request, count its outcome.

use std::sync::Arc;
use std::task::{Context, Poll};

use tower_service::Service;

use super::admit::{Throttler, accepted};
use super::ticker::Windows;
use super::window::{Tally, Window};
use crate::classify::ClassifyOutcome;
use crate::error::{BoxError, Error, ErrorKind};
use crate::gate::{GateFuture, Settle};
use crate::scope::{ScopeKey, Slot};

/// Throttles the calls to `S`; see [`ThrottleLayer`](super::ThrottleLayer).
pub struct Throttled<S, C, K> {
    inner: S,
    windows: Arc<Windows<C>>,
    scope: K,
}

impl<S, C, K> Throttled<S, C, K> {
    pub(super) fn new(inner: S, windows: Arc<Windows<C>>, scope: K) -> Self {
        Throttled {
            inner,
            windows,
            scope,
        }
    }
}

impl<S: Clone, C, K: Clone> Clone for Throttled<S, C, K> {
    fn clone(&self) -> Self {
        Throttled {
            inner: self.inner.clone(),
            windows: self.windows.clone(),
            scope: self.scope.clone(),
        }
    }
}

impl<S: std::fmt::Debug, C, K: std::fmt::Debug> std::fmt::Debug for Throttled<S, C, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttled")
            .field("inner", &self.inner)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl<S, C, K, Req> Service<Req> for Throttled<S, C, K>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    C: ClassifyOutcome<S::Response> + Send + Sync + 'static,
    K: ScopeKey<Req>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, C>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    #[inline(always)]
    fn call(&mut self, request: Req) -> Self::Future {
        let slot = self.windows.scopes.get(&self.scope, &request);
        if !slot.window.has_headroom()
            && let Err(tally) = past_headroom(&self.windows, &slot.window)
        {
            return ResponseFuture::rejected(reject(slot, tally));
        }
        ResponseFuture::admitted(self.inner.call(request), Some(Ticket { slot }))
    }
}

/// A call that the window's headroom does not admit: it starts the ticker if none slides the
/// windows (a window with no ticker has no headroom), and is tested against the whole window.
#[cold]
fn past_headroom<C: Send + Sync + 'static>(
    windows: &Arc<Windows<C>>,
    window: &Window,
) -> Result<(), Tally> {
    windows.keep_sliding();
    windows.formula.admit(window)
}

/// Counts a rejected request (a request all the same) and says why it was rejected.
///
/// Takes the slot by value: given a reference to `call`'s local, this cold function kept the
/// compiler from building the admitted call's future in place, and every call paid three copies
/// of the preset's future for it (135 instructions on the success path, under callgrind).
#[cold]
fn reject<C>(slot: Arc<Slot<Throttler<C>>>, tally: Tally) -> BoxError {
    slot.window.record(false);
    #[cfg(feature = "metrics")]
    crate::metrics::rejected("throttle", slot.name());
    let kind = ErrorKind::Throttled {
        requests: tally.requests,
        accepts: tally.accepts,
    };
    Error::new(kind).into()
}

/// What a call the throttle let through owes its window: its outcome, counted in the slice
/// it comes in.
pub struct Ticket<C> {
    slot: Arc<Slot<Throttler<C>>>,
}

impl<C: ClassifyOutcome<Res>, Res> Settle<Res> for Ticket<C> {
    fn settle(&mut self, outcome: Result<&Res, &BoxError>) {
        let accepted = accepted(self.slot.classifier.classify_outcome(outcome));
        self.slot.window.record(accepted);
    }
}

/// The future of a throttled call: the inner call, whose outcome the window counts, or a
/// rejection, ready at once.
pub type ResponseFuture<F, C> = GateFuture<F, Ticket<C>>;
