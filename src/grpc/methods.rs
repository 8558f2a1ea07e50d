//! A gRPC preset's settings per method, from a service config: each entry's own deadline and
//! retry or hedging policy over the preset's stack, and the service that sends each request to
//! the stack of its method.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::Request;
use pin_project_lite::pin_project;
use tower_service::Service;

use super::classify::GrpcClassifier;
use crate::http::{ByAuthority, HttpReplay};
use crate::retry::RetryLayer;

/// One `methodConfig` entry's layers: its deadline, its attempt timeout and its retries.
#[derive(Clone)]
pub(crate) struct MethodLayers {
    pub(crate) total: Option<Duration>,
    pub(crate) attempt: Duration,
    pub(crate) retry: RetryLayer<GrpcClassifier, HttpReplay, ByAuthority>,
}

/// Which entry serves a path, by its position: what a routed call looks up. Hashed with
/// foldhash, as the scopes are.
pub(crate) type PathIndex = HashMap<Box<str>, usize, foldhash::quality::RandomState>;

/// Every entry's layers, and which entry serves a path.
pub(crate) struct Methods {
    pub(crate) index: PathIndex,
    pub(crate) layers: Vec<MethodLayers>,
}

impl fmt::Debug for Methods {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut paths: Vec<_> = self.index.keys().collect();
        paths.sort();
        f.debug_struct("Methods").field("paths", &paths).finish()
    }
}

impl Methods {
    /// The entry for a request to `path` (`/package.Service/Method`): the method's own, its
    /// service's, or the default, the most specific first.
    fn find(&self, path: &str) -> Option<usize> {
        if let Some(&n) = self.index.get(path) {
            return Some(n);
        }
        let service = path
            .get(1..)
            .and_then(|rest| rest.find('/'))
            .map(|end| &path[..end + 2]);
        service
            .and_then(|service| self.index.get(service))
            .or_else(|| self.index.get(""))
            .copied()
    }
}

/// The gRPC preset's stacks over one channel: the preset's own, and one per service-config
/// entry. A request goes to its method's. Only the preset's own stack is readied by
/// `poll_ready` (the one every call without an entry takes); a call to an entry's method
/// readies a clone of that entry's stack in its future, as retry readies a clone for each
/// attempt. Such a call holds two calls' worth of the channel's capacity while it readies
/// (a tonic `Channel` is a buffer: the preset's own stack keeps the slot `poll_ready` took for
/// the next call), and one once it is sent. Reached as the preset's `Service` type.
pub struct Routed<T> {
    default: T,
    methods: Vec<T>,
    index: Option<Arc<Methods>>,
}

impl<T> Routed<T> {
    pub(crate) fn new(default: T, methods: Vec<T>, index: Option<Arc<Methods>>) -> Self {
        Routed {
            default,
            methods,
            index,
        }
    }
}

impl<T: Clone> Clone for Routed<T> {
    fn clone(&self) -> Self {
        Routed {
            default: self.default.clone(),
            methods: self.methods.clone(),
            index: self.index.clone(),
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Routed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Routed")
            .field("default", &self.default)
            .field("methods", &self.index)
            .finish()
    }
}

impl<T, B> Service<Request<B>> for Routed<T>
where
    T: Service<Request<B>> + Clone,
{
    type Response = T::Response;
    type Error = T::Error;
    type Future = RoutedFuture<T, Request<B>>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.default.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, request: Request<B>) -> Self::Future {
        let found = (self.index.as_ref()).and_then(|index| index.find(request.uri().path()));
        match found.and_then(|n| self.methods.get(n)) {
            Some(method) => RoutedFuture::Readying {
                service: method.clone(),
                request: Some(request),
            },
            None => RoutedFuture::Called {
                future: self.default.call(request),
            },
        }
    }
}

pin_project! {
    /// The future of a [`Routed`] call: an entry's stack being readied, or the call.
    #[project = RoutedProj]
    pub enum RoutedFuture<T, R>
    where
        T: Service<R>,
    {
        Readying { service: T, request: Option<R> },
        Called { #[pin] future: T::Future },
    }
}

impl<T: Service<R>, R> Future for RoutedFuture<T, R> {
    type Output = Result<T::Response, T::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project() {
                RoutedProj::Called { future } => return future.poll(cx),
                RoutedProj::Readying { service, request } => {
                    ready!(service.poll_ready(cx))?;
                    let request = request.take().expect("a request is called once");
                    let future = service.call(request);
                    self.set(RoutedFuture::Called { future });
                }
            }
        }
    }
}

#[cfg(feature = "serde")]
pub(crate) use self::from_config::methods;

#[cfg(feature = "serde")]
mod from_config {
    use std::time::Duration;

    use tonic::Code;

    use super::{MethodLayers, Methods};
    use crate::error::ConfigError;
    use crate::grpc::classify::GrpcClassifier;
    use crate::grpc::service_config::{Policy, ServiceConfig};
    use crate::http::{ByAuthority, HttpReplay};
    use crate::preset::ResilienceLayer;
    use crate::retry::{ExponentialBackoff, Hedge, Jitter, MethodRetry, RetryLayer};

    /// A6's jitter: each delay times a factor from 0.8 to 1.2.
    const SPREAD: f64 = 0.2;

    /// The shortest wait: a `hedgingDelay` of zero ("send them all at once"), and the wait
    /// after a non-fatal failure ("at once"), are the timer's next tick.
    const AT_ONCE: Duration = Duration::from_millis(1);

    /// Each entry's layers, over the preset's `stack` settings and `retry` layer (whose
    /// budgets they share: one per server name, as A6 keeps its tokens).
    pub(crate) fn methods(
        config: &ServiceConfig,
        stack: &ResilienceLayer<GrpcClassifier, HttpReplay>,
        retry: &RetryLayer<GrpcClassifier, HttpReplay, ByAuthority>,
    ) -> Result<Methods, ConfigError> {
        let layers = config
            .methods
            .iter()
            .map(|method| {
                let total = method.timeout.or(stack.total_timeout());
                let attempt = total.map_or(stack.attempt_timeout(), |total| {
                    stack.attempt_timeout().min(total)
                });
                let retry = retry.for_method(method_retry(&method.policy))?;
                Ok(MethodLayers {
                    total,
                    attempt,
                    retry,
                })
            })
            .collect::<Result<_, ConfigError>>()?;
        Ok(Methods {
            index: config.index.clone(),
            layers,
        })
    }

    /// An entry's policy as retry settings: A6's backoff with its jitter, hedges at its
    /// delay, or (with neither) a single attempt.
    fn method_retry(policy: &Policy) -> MethodRetry<GrpcClassifier> {
        match policy {
            Policy::None => MethodRetry {
                classifier: retrying(&[]),
                max_attempts: 1,
                backoff: None,
                hedge: None,
            },
            Policy::Retry {
                max_attempts,
                initial,
                max,
                multiplier,
                codes,
            } => MethodRetry {
                classifier: retrying(codes),
                max_attempts: *max_attempts,
                // A6 caps every delay at the max, the first included.
                backoff: Some(
                    ExponentialBackoff::new((*initial).min(*max), *multiplier, *max)
                        .with_jitter(Jitter::Spread(SPREAD)),
                ),
                hedge: None,
            },
            Policy::Hedging {
                max_attempts,
                delay,
                non_fatal,
            } => MethodRetry {
                classifier: retrying(non_fatal),
                max_attempts: *max_attempts,
                // A non-fatal failure sends the next attempt at once (A6), not after a backoff.
                backoff: Some(
                    ExponentialBackoff::new(AT_ONCE, 1.0, AT_ONCE).with_jitter(Jitter::None),
                ),
                hedge: Some(Hedge::after((*delay).max(AT_ONCE)).max_in_flight(*max_attempts)),
            },
        }
    }

    /// A classifier that retries exactly `codes`.
    fn retrying(codes: &[Code]) -> GrpcClassifier {
        let none = GrpcClassifier::new().no_retry_on(Code::Unavailable);
        codes.iter().fold(none, |c, code| c.retry_on(*code))
    }
}
