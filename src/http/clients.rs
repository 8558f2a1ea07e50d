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

    /// The preset around a hyper-util client whose requests have `ReplayBody<B>` bodies. Its
    /// type, for a field or a state type, is the one written here:
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body_util::Full;
    /// use hyper_util::client::legacy::{Client, connect::HttpConnector};
    /// use hyper_util::rt::TokioExecutor;
    /// use tower_tenacity::http::{HttpResilience, HttpResilienceLayer, ReplayBody};
    ///
    /// struct AppState {
    ///     upstream: HttpResilience<Client<HttpConnector, ReplayBody<Full<Bytes>>>>,
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
    ) -> HttpResilience<hyper_util::client::legacy::Client<C, ReplayBody<B>>>
    where
        C: Clone,
    {
        self.layer(client)
    }

    /// The preset around a `reqwest::Client` (feature `reqwest`), through [`Reqwest`].
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body_util::Full;
    /// use tower_tenacity::http::{HttpResilience, HttpResilienceLayer, ReplayBody, Reqwest};
    ///
    /// let resilient: HttpResilience<Reqwest<ReplayBody<Full<Bytes>>>> =
    ///     HttpResilienceLayer::new().reqwest(reqwest::Client::new());
    /// # let _ = resilient;
    /// ```
    #[cfg(feature = "reqwest")]
    pub fn reqwest<B>(&self, client: reqwest::Client) -> HttpResilience<Reqwest<ReplayBody<B>>> {
        self.layer(Reqwest::new(client))
    }
}
