//! A `reqwest::Client` under the HTTP preset (feature `reqwest`): [`Reqwest`].

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::error::BoxError;

/// The future of a `reqwest::Client` call.
type Sent = <reqwest::Client as Service<reqwest::Request>>::Future;

/// A `reqwest::Client` as a service of `http::Request`s, so that the whole HTTP preset (and any
/// layer of this crate) works over it.
///
/// `reqwest::Client` is a tower service of `reqwest::Request`; the HTTP preset hands the client
/// inside it `http::Request<ReplayBody<B>>`, so that it can replay bodies and read the request
/// it classifies (over a bare `reqwest::Client` the preset fails to build at `.ready()` with
/// E0599, "the method `ready` exists but its trait bounds were not satisfied"). This converts
/// each request (its body streamed through `reqwest::Body::wrap`) and each response
/// (`http::Response<reqwest::Body>`). Its errors are `reqwest::Error`s, which the HTTP
/// classifier reads: a connect error was never sent, reqwest's own timeout is an attempt
/// timeout, a status error is classified by its status. The URL an error carries (and prints)
/// loses its userinfo, query and fragment, where credentials and tokens travel: the request is
/// named as this crate's errors name it.
///
/// ```no_run
/// use std::time::Duration;
/// use bytes::Bytes;
/// use http_body_util::{BodyExt, Full};
/// use tower::{Service, ServiceExt};
/// use tower::BoxError;
/// use tower_tenacity::ResilienceLayer;
///
/// # async fn run() -> Result<(), BoxError> {
/// let client = reqwest::Client::builder().build()?;
/// let mut resilient = ResilienceLayer::http()
///     .total_timeout(Duration::from_secs(10))
///     .build()?
///     .reqwest(client);
/// let request = http::Request::get("http://127.0.0.1:8080/health").body(Full::new(Bytes::new()))?;
/// let response = resilient.ready().await?.call(request).await?;
/// let body = response.into_body().collect().await?.to_bytes();
/// # let _ = body;
/// # Ok(())
/// # }
/// ```
///
/// `B` is the request body it takes (the preset's `ReplayBody` of yours), named in its type so
/// that a call infers it.
pub struct Reqwest<B> {
    client: reqwest::Client,
    _body: PhantomData<fn(B)>,
}

impl<B> Reqwest<B> {
    /// Sends requests through `client`.
    pub fn new(client: reqwest::Client) -> Self {
        Reqwest {
            client,
            _body: PhantomData,
        }
    }

    /// The client inside.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }
}

impl<B> From<reqwest::Client> for Reqwest<B> {
    fn from(client: reqwest::Client) -> Self {
        Reqwest::new(client)
    }
}

impl<B> Clone for Reqwest<B> {
    fn clone(&self) -> Self {
        Reqwest::new(self.client.clone())
    }
}

impl<B> Default for Reqwest<B> {
    fn default() -> Self {
        Reqwest::new(reqwest::Client::default())
    }
}

impl<B> std::fmt::Debug for Reqwest<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Reqwest").field(&self.client).finish()
    }
}

impl<B> Service<Request<B>> for Reqwest<B>
where
    B: http_body::Body + Send + Sync + 'static,
    B::Data: Into<Bytes>,
    B::Error: Into<BoxError>,
{
    type Response = Response<reqwest::Body>;
    type Error = reqwest::Error;
    type Future = ReqwestFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), reqwest::Error>> {
        Service::<reqwest::Request>::poll_ready(&mut self.client, cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let state = match reqwest::Request::try_from(request.map(reqwest::Body::wrap)) {
            Ok(request) => State::Sent {
                inner: self.client.call(request),
            },
            Err(err) => State::Refused {
                err: Some(redacted(err)),
            },
        };
        ReqwestFuture { state }
    }
}

pin_project! {
    /// The future of a [`Reqwest`] call.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct ReqwestFuture {
        #[pin]
        state: State,
    }
}

pin_project! {
    #[project = StateProj]
    enum State {
        // Sent through the client.
        Sent { #[pin] inner: Sent },
        // Not a request reqwest can send (a URI it does not take, say).
        Refused { err: Option<reqwest::Error> },
    }
}

impl std::fmt::Debug for ReqwestFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReqwestFuture")
    }
}

impl Future for ReqwestFuture {
    type Output = Result<Response<reqwest::Body>, reqwest::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Sent { inner } => inner
                .poll(cx)
                .map(|sent| sent.map(with_url).map_err(redacted)),
            StateProj::Refused { err } => match err.take() {
                Some(err) => Poll::Ready(Err(err)),
                None => panic!("ReqwestFuture polled after it completed"),
            },
        }
    }
}

/// `response` as an `http::Response` that keeps its URL, so that it converts back into a
/// `reqwest::Response` whose `url()` and `error_for_status()` name it as reqwest would.
pub(crate) fn with_url(response: reqwest::Response) -> Response<reqwest::Body> {
    use reqwest::ResponseBuilderExt;
    let url = response.url().clone();
    let mut response = Response::from(response);
    // reqwest reads the URL from an extension of its own, which only its builder writes.
    if let Ok(marked) = Response::builder().url(url).body(()) {
        response
            .extensions_mut()
            .extend(marked.into_parts().0.extensions);
    }
    response
}

/// `err` without what its URL may hide in plain sight: userinfo (`user:password@`), query
/// (`?access_token=…`) and fragment. Only failures pay for it.
fn redacted(mut err: reqwest::Error) -> reqwest::Error {
    if let Some(url) = err.url_mut() {
        // These fail only for a URL that cannot have userinfo (no host): it has none.
        let _ = url.set_password(None);
        let _ = url.set_username("");
        url.set_query(None);
        url.set_fragment(None);
    }
    err
}
