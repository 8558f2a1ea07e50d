//! [`Retry`], the service a [`RetryLayer`](super::RetryLayer) makes.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tower_service::Service;

use super::future::ResponseFuture;
use super::{CloneReplay, Config, Replay, RetryBudget, Shared};
use crate::classify::{Classify, DefaultClassifier};
use crate::error::BoxError;
use crate::scope::{ScopeKey, Scopes, Unscoped};

/// Retries calls to the inner service as its classifier and limits allow; see [`RetryLayer`](super::RetryLayer).
///
/// Retries go out through a clone of the inner service made when the layer wrapped it, shared
/// by all clones of this `Retry` (and readied with `poll_ready` before each retry): a call that
/// succeeds at once clones nothing. Clones of a client (hyper-util, tonic, tower's `Buffer`)
/// all reach the same place, which is what retrying needs.
pub struct Retry<S, C = DefaultClassifier, P = CloneReplay, K = Unscoped> {
    inner: S,
    shared: Arc<Shared<S, C, P>>,
    scope: K,
}

impl<S: Clone, C, P, K: Clone> Clone for Retry<S, C, P, K> {
    fn clone(&self) -> Self {
        Retry {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
            scope: self.scope.clone(),
        }
    }
}

impl<S: fmt::Debug, C: fmt::Debug, P: fmt::Debug, K> fmt::Debug for Retry<S, C, P, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("inner", &self.inner)
            .field("classifier", &self.shared.classifier)
            .field("replay", &self.shared.replay)
            .field("config", &self.shared.config)
            .finish()
    }
}

impl<S: Clone, C, P, K> Retry<S, C, P, K> {
    pub(crate) fn new(
        inner: S,
        classifier: C,
        replay: P,
        config: Arc<Config>,
        (scope, keyed): (K, Option<Arc<Scopes<RetryBudget>>>),
    ) -> Self {
        Retry {
            shared: Arc::new(Shared {
                config,
                classifier,
                replay,
                keyed,
                spare: Mutex::new(inner.clone()),
            }),
            inner,
            scope,
        }
    }
}

impl<S, C, P, K> Retry<S, C, P, K> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably. Retries go out through the clone made when the layer
    /// wrapped it, so what is changed here reaches first attempts only.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, Req, C, P, K> Service<Req> for Retry<S, C, P, K>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    C: Classify<Req, S::Response>,
    P: Replay<Req, S::Response>,
    K: ScopeKey<Req>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, Req, C, P>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    // Always inlined into the layer above it: called through, the retry future (hundreds of
    // bytes) is built apart and copied into its caller's (callgrind: 258 instructions more on
    // the retry path of `cargo bench --bench instructions`, most of them `memcpy`).
    #[inline(always)]
    fn call(&mut self, request: Req) -> Self::Future {
        let keyed = match &self.shared.keyed {
            Some(keyed) if K::PER_KEY => Some(keyed.get(&self.scope, &request)),
            _ => None,
        };
        if let Some(budget) = self.shared.config.budget(keyed.as_ref()) {
            budget.deposit();
        }
        let kept = self.shared.replay.keep(&request);
        let attempt = self.shared.config.attempt(1);
        let future = self.shared.config.send(&mut self.inner, request, attempt);
        ResponseFuture::new(future, kept, self.shared.clone(), keyed)
    }
}
