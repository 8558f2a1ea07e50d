//! The HTTP preset over a client: constructors that take the client, and [`HttpClient`], the
//! bound a client must meet, with a diagnostic that says what to do when it does not.

use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use super::preset::{HttpResilience, HttpResilienceLayer};
use super::replay::ReplayBody;
#[cfg(feature = "reqwest")]
use super::reqwest::Reqwest;
use crate::error::BoxError;

/// A client the HTTP preset can drive: a `Clone` service of `http::Request<ReplayBody<B>>`
/// that answers `http::Response<_>` (the preset wraps the caller's body `B` so that it can be
/// sent again). Implemented for every such service; it exists to say what is missing when a
/// client does not fit (see [`HttpResilienceLayer::client`]).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an HTTP client the HTTP preset can drive",
    label = "not a `Clone` service of `http::Request<ReplayBody<{B}>>` answering `http::Response<_>`",
    note = "give the preset a hyper-util `Client<_, ReplayBody<B>>` (through `HttpResilienceLayer::hyper`), a `reqwest::Client` through `HttpResilienceLayer::reqwest` (feature `reqwest`), or any `Clone` service of `http::Request<ReplayBody<B>>` whose error converts into `BoxError`"
)]
pub trait HttpClient<B>:
    Service<Request<ReplayBody<B>>, Response = Response<Self::ResponseBody>> + Clone
{
    /// The body of the client's responses.
    type ResponseBody;
}

impl<S, B, ResB> HttpClient<B> for S
where
    S: Service<Request<ReplayBody<B>>, Response = Response<ResB>> + Clone,
    S::Error: Into<BoxError>,
{
    type ResponseBody = ResB;
}

/// The HTTP preset over hyper-util's legacy client, by name: what
/// [`HttpResilienceLayer::hyper`] returns, for a field or a state type.
#[cfg(feature = "hyper")]
pub type HyperResilience<
    B = http_body_util::Full<bytes::Bytes>,
    C = hyper_util::client::legacy::connect::HttpConnector,
> = HttpResilience<hyper_util::client::legacy::Client<C, ReplayBody<B>>>;

/// The HTTP preset over a `reqwest::Client`, by name: what [`HttpResilienceLayer::reqwest`]
/// returns; with `reqwest::Body` bodies, its `send` takes a `reqwest::RequestBuilder` and gives
/// back a `reqwest::Response`.
#[cfg(feature = "reqwest")]
pub type ReqwestResilience<B = http_body_util::Full<bytes::Bytes>> =
    HttpResilience<Reqwest<ReplayBody<B>>>;

impl HttpResilienceLayer {
    /// The preset around `client`: the same as [`Layer::layer`], with the bound a client must
    /// meet written where a wrong client meets it. A client fits when it is a `Clone` service of
    /// `http::Request<ReplayBody<B>>` (the caller's body `B`, made replayable by the preset)
    /// that answers `http::Response<_>`, and its error converts into `tower::BoxError`; one that
    /// does not is told so here, with what to do instead:
    ///
    /// ```compile_fail
    /// use tower_tenacity::http::HttpResilienceLayer;
    ///
    /// struct NotAClient;
    /// // error[E0277]: `NotAClient` is not an HTTP client the HTTP preset can drive
    /// let _ = HttpResilienceLayer::new().client::<_, String>(NotAClient);
    /// ```
    pub fn client<S, B>(&self, client: S) -> HttpResilience<S>
    where
        S: HttpClient<B>,
    {
        self.layer(client)
    }

    /// The preset around a hyper-util client whose requests have `ReplayBody<B>` bodies.
    ///
    /// ```
    /// use hyper_util::client::legacy::Client;
    /// use hyper_util::rt::TokioExecutor;
    /// use tower_tenacity::http::{HttpResilienceLayer, HyperResilience};
    ///
    /// struct AppState {
    ///     upstream: HyperResilience,
    /// }
    ///
    /// let client = Client::builder(TokioExecutor::new()).build_http();
    /// let state = AppState { upstream: HttpResilienceLayer::new().hyper(client) };
    /// # let _ = state.upstream;
    /// ```
    #[cfg(feature = "hyper")]
    pub fn hyper<C, B>(
        &self,
        client: hyper_util::client::legacy::Client<C, ReplayBody<B>>,
    ) -> HyperResilience<B, C>
    where
        C: Clone,
    {
        self.layer(client)
    }

    /// The preset around a `reqwest::Client` (feature `reqwest`): each request is made a
    /// `reqwest::Request`, each response an `http::Response<reqwest::Body>` that keeps its URL.
    ///
    /// ```
    /// use tower_tenacity::http::{HttpResilienceLayer, ReqwestResilience};
    ///
    /// let resilient: ReqwestResilience = HttpResilienceLayer::new().reqwest(reqwest::Client::new());
    /// # let _ = resilient;
    /// ```
    #[cfg(feature = "reqwest")]
    pub fn reqwest<B>(&self, client: reqwest::Client) -> ReqwestResilience<B> {
        self.layer(Reqwest::new(client))
    }
}
