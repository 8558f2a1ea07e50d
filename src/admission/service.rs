//! The admission layer, its service and future, for any tower service and for HTTP servers.

#[cfg(feature = "http")]
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::{AdaptiveLimit, Limiter, Permit};
use crate::error::{BoxError, ConfigError, Error, ErrorKind};

/// Keeps a service's calls in flight under an adaptive limit and turns the rest away at once;
/// see [the module](super). Clones share the limit: put one layer on a server.
pub struct AdmissionLayer<M = Plain> {
    limiter: Arc<Limiter>,
    mode: M,
}

/// An [`AdmissionLayer`] for any tower service ([`AdmissionLayer::new`]): turned-away calls
/// fail with [`ErrorKind::Overloaded`].
#[derive(Debug, Clone, Copy)]
pub struct Plain;

/// An [`AdmissionLayer`] for an HTTP server ([`AdmissionLayer::http`]): turned-away requests
/// are answered, 503 or gRPC's `UNAVAILABLE`, marked not to be retried (or, with
/// [`retry_after`](AdmissionLayer::retry_after), to be retried after a delay).
#[derive(Debug, Clone, Copy)]
pub struct Http {
    retry_after: Option<Duration>,
}

impl AdmissionLayer {
    /// For any tower service: a turned-away call fails with [`ErrorKind::Overloaded`].
    pub fn new(limit: AdaptiveLimit) -> Result<Self, ConfigError> {
        limit.check()?;
        Ok(AdmissionLayer {
            limiter: Arc::new(Limiter::new(limit)),
            mode: Plain,
        })
    }

    /// For an HTTP server (axum, tonic): a turned-away request is answered at once, and the
    /// handler keeps its `Infallible` error type. Settings out of range are an error naming the
    /// field, as with [`AdmissionLayer::new`].
    pub fn http(limit: AdaptiveLimit) -> Result<AdmissionLayer<Http>, ConfigError> {
        limit.check()?;
        Ok(AdmissionLayer {
            limiter: Arc::new(Limiter::new(limit)),
            mode: Http { retry_after: None },
        })
    }
}

impl AdmissionLayer<Http> {
    /// Tells a client whose request is turned away to send it again after `after`, rather than
    /// not at all: for a server that is one of several replicas behind a balancer, where the
    /// retry may reach one with room. The answer is then 503 with `Retry-After` (whole seconds,
    /// rounded up) and no `x-envoy-overloaded`, or `UNAVAILABLE` with a pushback of `after`,
    /// and the presets retry it, within their budgets. Against one server, as in the fleet
    /// simulation, retried rejections come back when the capacity does (a peak of 1.12× to
    /// 1.21× the steady load, where not retrying them kept it at 1.00×): the default is not to.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_tenacity::admission::{AdaptiveLimit, AdmissionLayer};
    ///
    /// let limit = AdaptiveLimit::aimd(Duration::from_millis(250));
    /// let layer = AdmissionLayer::http(limit)?.retry_after(Duration::from_millis(500));
    /// # let _ = layer;
    /// # Ok::<(), tower_tenacity::ConfigError>(())
    /// ```
    pub fn retry_after(mut self, after: Duration) -> Self {
        self.mode.retry_after = Some(after);
        self
    }
}

impl<M> AdmissionLayer<M> {
    /// The limit now, in calls in flight.
    pub fn limit(&self) -> u64 {
        self.limiter.limit()
    }
}

impl<M: Clone> Clone for AdmissionLayer<M> {
    fn clone(&self) -> Self {
        AdmissionLayer {
            limiter: self.limiter.clone(),
            mode: self.mode.clone(),
        }
    }
}

impl<M: fmt::Debug> fmt::Debug for AdmissionLayer<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdmissionLayer")
            .field("limit", &self.limit())
            .field("mode", &self.mode)
            .finish()
    }
}

impl<S, M: Clone> Layer<S> for AdmissionLayer<M> {
    type Service = Admission<S, M>;

    fn layer(&self, inner: S) -> Self::Service {
        Admission {
            inner,
            limiter: self.limiter.clone(),
            mode: self.mode.clone(),
        }
    }
}

/// Admits calls under the limit; see [`AdmissionLayer`].
#[derive(Clone)]
pub struct Admission<S, M> {
    inner: S,
    limiter: Arc<Limiter>,
    // What a turned-away request is answered with: read by the HTTP mode only.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    mode: M,
}

impl<S: fmt::Debug, M> fmt::Debug for Admission<S, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admission")
            .field("inner", &self.inner)
            .field("limit", &self.limiter.limit())
            .finish()
    }
}

impl<S, Req> Service<Req> for Admission<S, Plain>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = AdmissionFuture<S::Future, Result<S::Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        match self.limiter.admit() {
            Some(permit) => AdmissionFuture::admitted(self.inner.call(request), permit),
            None => {
                #[cfg(feature = "metrics")]
                crate::metrics::rejected("admission", None);
                let limit = self.limiter.limit();
                let error = Error::new(ErrorKind::Overloaded { limit });
                AdmissionFuture::rejected(Err(error.into()))
            }
        }
    }
}

#[cfg(feature = "http")]
impl<S, B, ResB> Service<http::Request<B>> for Admission<S, Http>
where
    S: Service<http::Request<B>, Response = http::Response<ResB>, Error = Infallible>,
    ResB: Default,
{
    type Response = http::Response<ResB>;
    type Error = Infallible;
    type Future = AdmissionFuture<S::Future, Result<http::Response<ResB>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        match self.limiter.admit() {
            Some(permit) => AdmissionFuture::admitted(self.inner.call(request), permit),
            None => {
                #[cfg(feature = "metrics")]
                crate::metrics::rejected("admission", None);
                AdmissionFuture::rejected(Ok(turned_away(&request, self.mode.retry_after)))
            }
        }
    }
}

#[cfg(feature = "http")]
/// The answer to a request turned away. With no `retry_after`, it tells a client not to retry
/// it, as a call turned away in-process is not retried: gRPC's `UNAVAILABLE` with a negative
/// pushback (gRFC A6: do not retry; as Trailers-Only headers), or HTTP's 503 with
/// `x-envoy-overloaded` (Envoy's mark on the 503s it sheds, which the HTTP classifier does not
/// retry) and `Retry-After: 1` for clients that know neither. No allocation but the map's (and
/// a hint's other than those).
fn turned_away<B, ResB: Default>(
    request: &http::Request<B>,
    retry_after: Option<Duration>,
) -> http::Response<ResB> {
    use crate::http::OVERLOADED;
    use http::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
    let grpc = (request.headers().get(CONTENT_TYPE))
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    let mut response = http::Response::new(ResB::default());
    if !grpc {
        *response.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
    }
    let headers = response.headers_mut();
    if grpc {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert("grpc-status", HeaderValue::from_static("14"));
        headers.insert("grpc-message", HeaderValue::from_static("overloaded"));
        let pushback = match retry_after {
            None => HeaderValue::from_static("-1"),
            Some(after) => HeaderValue::from(u64::try_from(after.as_millis()).unwrap_or(u64::MAX)),
        };
        headers.insert("grpc-retry-pushback-ms", pushback);
    } else {
        let seconds = match retry_after {
            None => HeaderValue::from_static("1"),
            Some(after) => HeaderValue::from(after.as_secs() + u64::from(after.subsec_nanos() > 0)),
        };
        headers.insert(RETRY_AFTER, seconds);
        if retry_after.is_none() {
            headers.insert(OVERLOADED, HeaderValue::from_static("true"));
        }
    }
    response
}

pin_project! {
    /// The future of an [`Admission`] call: the admitted call holding its place, or the answer
    /// to one turned away, ready at once.
    pub struct AdmissionFuture<F, T> {
        #[pin]
        inner: Option<F>,
        permit: Option<Permit>,
        rejected: Option<T>,
    }
}

impl<F, T> AdmissionFuture<F, T> {
    fn admitted(inner: F, permit: Permit) -> Self {
        AdmissionFuture {
            inner: Some(inner),
            permit: Some(permit),
            rejected: None,
        }
    }

    fn rejected(answer: T) -> Self {
        AdmissionFuture {
            inner: None,
            permit: None,
            rejected: Some(answer),
        }
    }
}

impl<F, R, E, E2> Future for AdmissionFuture<F, Result<R, E2>>
where
    F: Future<Output = Result<R, E>>,
    E: Into<E2>,
{
    type Output = Result<R, E2>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(inner) = this.inner.as_pin_mut() else {
            let answer = this.rejected.take();
            return Poll::Ready(answer.expect("an admission future polled after completion"));
        };
        let outcome = ready!(inner.poll(cx));
        // An error is a drop, as a slow answer is; an HTTP server's error type is `Infallible`,
        // so there only the time counts.
        if let Some(permit) = this.permit.take() {
            permit.end(outcome.is_ok());
        }
        Poll::Ready(outcome.map_err(Into::into))
    }
}
