//! The gRPC preset's innermost service: a channel takes `tonic::body::Body`, the stack above it
//! sends the replayable body.

use std::task::{Context, Poll};

use http::Request;
use tower_service::Service;

use crate::error::BoxError;
use crate::http::ReplayBody;

/// Hands a channel the `tonic::body::Body` it takes, made of the replayable body.
#[derive(Debug, Clone)]
pub struct TonicBody<S> {
    inner: S,
}

impl<S> TonicBody<S> {
    pub(super) fn new(inner: S) -> Self {
        TonicBody { inner }
    }
}

impl<S, B> Service<Request<ReplayBody<B>>> for TonicBody<S>
where
    S: Service<Request<tonic::body::Body>>,
    B: http_body::Body + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReplayBody<B>>) -> Self::Future {
        self.inner.call(request.map(tonic::body::Body::new))
    }
}
