//! reqwest as it is used: a `RequestBuilder` in and a `reqwest::Response` out
//! ([`ReqwestResilience::send`](super::ReqwestResilience)), and, with the `reqwest-middleware`
//! feature, the preset's layer itself as a `reqwest_middleware::Middleware`.

use std::future::poll_fn;

use tower_service::Service;

use super::ReqwestResilience;
use crate::error::BoxError;

impl ReqwestResilience<reqwest::Body> {
    /// Sends what `request` builds through the stack, as `RequestBuilder::send` would: a
    /// `reqwest::Response` comes back (`.json()`, `.text()`, `.error_for_status()` as usual),
    /// after the retries, hedges and deadline of the preset. The body is replayed up to the
    /// preset's cap; a streaming body larger than that is sent once.
    ///
    /// ```no_run
    /// use tower_tenacity::http::{HttpResilienceLayer, ReqwestResilience};
    ///
    /// # async fn run() -> Result<(), tower::BoxError> {
    /// let http = reqwest::Client::new();
    /// let resilient: ReqwestResilience<reqwest::Body> = HttpResilienceLayer::new().reqwest(http.clone());
    /// let status = resilient
    ///     .send(http.get("http://127.0.0.1:8080/health"))
    ///     .await?
    ///     .error_for_status()?
    ///     .status();
    /// # let _ = status;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// The builder's own client is not used: only the request it builds (its timeout, if set,
    /// bounds each attempt, as reqwest applies it).
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, BoxError> {
        let request = http::Request::<reqwest::Body>::try_from(request.build()?)?;
        let mut stack = self.clone();
        poll_fn(|cx| Service::<http::Request<reqwest::Body>>::poll_ready(&mut stack, cx)).await?;
        let response = stack.call(request).await?;
        Ok(reqwest::Response::from(response.map(reqwest::Body::wrap)))
    }
}

#[cfg(feature = "reqwest-middleware")]
mod middleware {
    use std::future::{Future, poll_fn};
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use bytes::Bytes;
    use http::Extensions;
    use reqwest_middleware::{Middleware, Next};
    use tower_service::Service;

    use crate::error::BoxError;
    use crate::http::HttpResilienceLayer;

    /// The HTTP preset's layer is a `reqwest_middleware::Middleware` (feature
    /// `reqwest-middleware`), so that a `ClientWithMiddleware` adopts the whole stack in one
    /// line. Every attempt runs the middlewares after this one and then the client, with a copy
    /// of the request's extensions; retry budgets and circuits are shared by every request
    /// through it. Keep a clone of the layer to [`reload`](HttpResilienceLayer::reload) it: each
    /// request builds its stack from the latest settings.
    ///
    /// ```
    /// use reqwest_middleware::ClientBuilder;
    /// use tower_tenacity::ResilienceLayer;
    ///
    /// # fn main() -> Result<(), tower_tenacity::ConfigError> {
    /// let layer = ResilienceLayer::http().build()?;
    /// let client = ClientBuilder::new(reqwest::Client::new())
    ///     .with(layer.clone())
    ///     .build();
    /// // Later, from a settings file read again:
    /// layer.reload(ResilienceLayer::http().max_attempts(5).build()?);
    /// # let _ = client;
    /// # Ok(())
    /// # }
    /// ```
    #[async_trait::async_trait]
    impl Middleware for HttpResilienceLayer {
        async fn handle(
            &self,
            request: reqwest::Request,
            extensions: &mut Extensions,
            next: Next<'_>,
        ) -> reqwest_middleware::Result<reqwest::Response> {
            let downstream = Downstream {
                next,
                extensions: extensions.clone(),
            };
            let mut stack = self.stack_for_one_call(downstream);
            let request = http::Request::<reqwest::Body>::try_from(request)?;
            poll_fn(|cx| Service::<http::Request<reqwest::Body>>::poll_ready(&mut stack, cx))
                .await
                .map_err(failed)?;
            let response = stack.call(request).await.map_err(failed)?;
            Ok(reqwest::Response::from(response.map(reqwest::Body::wrap)))
        }
    }

    /// What the stack's error becomes: reqwest's own error as it is, any other as the
    /// middleware's.
    fn failed(err: BoxError) -> reqwest_middleware::Error {
        match err.downcast::<reqwest::Error>() {
            Ok(err) => reqwest_middleware::Error::Reqwest(*err),
            Err(err) => reqwest_middleware::Error::Middleware(anyhow::Error::from_boxed(err)),
        }
    }

    /// The rest of the middleware chain as the stack's client: each attempt runs it.
    #[derive(Clone)]
    struct Downstream<'a> {
        next: Next<'a>,
        extensions: Extensions,
    }

    impl<'a, B> Service<http::Request<B>> for Downstream<'a>
    where
        B: http_body::Body + Send + Sync + 'static,
        B::Data: Into<Bytes>,
        B::Error: Into<BoxError>,
    {
        type Response = http::Response<reqwest::Body>;
        type Error = BoxError;
        type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send + 'a>>;

        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: http::Request<B>) -> Self::Future {
            let next = self.next.clone();
            let mut extensions = self.extensions.clone();
            let request = reqwest::Request::try_from(request.map(reqwest::Body::wrap));
            Box::pin(async move {
                let sent = next.run(request?, &mut extensions).await;
                // reqwest's error itself, not the middleware error's transparent wrapper, so
                // that the classifier finds it in the chain.
                let response = sent.map_err(|err| match err {
                    reqwest_middleware::Error::Reqwest(err) => BoxError::from(err),
                    reqwest_middleware::Error::Middleware(err) => err.into(),
                })?;
                Ok(crate::http::reqwest::with_url(response))
            })
        }
    }
}
