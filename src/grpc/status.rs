//! What a tonic client sees: this crate's errors as gRPC statuses.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tonic::Status;
use tower_layer::Layer;
use tower_service::Service;

use crate::classify::causes;
use crate::error::{BoxError, Error, ErrorKind, GiveUp};

/// Turns this crate's errors into the [`Status`] a gRPC caller expects, so that a tonic
/// client reports them by code rather than as `UNKNOWN`:
///
/// * a timeout (per attempt or total) is `DEADLINE_EXCEEDED`;
/// * an exhausted retry budget is `UNAVAILABLE`, with a message that says so;
/// * retries that ran out on a status are that status; on a transport error, `UNAVAILABLE`;
/// * anything else is what tonic would make of it.
///
/// The message is the error's own sentence ("… timed out after 2s (attempt 3 of 3)"). Errors
/// of the response body (a stream that outlived the RPC's deadline, say) are mapped the same
/// way, so that the client's stream ends with that status. Outermost in the gRPC preset.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcStatusLayer;

impl<S> Layer<S> for GrpcStatusLayer {
    type Service = GrpcStatus<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcStatus { inner }
    }
}

/// Maps errors to statuses; see [`GrpcStatusLayer`].
#[derive(Debug, Clone)]
pub struct GrpcStatus<S> {
    inner: S,
}

impl<S, B, ResB> Service<Request<B>> for GrpcStatus<S>
where
    S: Service<Request<B>, Response = Response<ResB>>,
    S::Error: Into<BoxError>,
{
    type Response = Response<GrpcStatusBody<ResB>>;
    type Error = BoxError;
    type Future = GrpcStatusFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner
            .poll_ready(cx)
            .map_err(|err| Box::new(to_status(err.into())) as BoxError)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        GrpcStatusFuture {
            inner: self.inner.call(request),
        }
    }
}

pin_project! {
    /// The future of a [`GrpcStatus`] call.
    #[derive(Debug)]
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct GrpcStatusFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F, B, E> Future for GrpcStatusFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<GrpcStatusBody<B>>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().inner.poll(cx).map(|outcome| match outcome {
            Ok(response) => Ok(response.map(|inner| GrpcStatusBody { inner })),
            Err(err) => Err(Box::new(to_status(err.into())) as BoxError),
        })
    }
}

pin_project! {
    /// A response body whose errors are gRPC statuses; see [`GrpcStatusLayer`].
    #[derive(Debug)]
    pub struct GrpcStatusBody<B> {
        #[pin]
        inner: B,
    }
}

impl<B> Body for GrpcStatusBody<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, BoxError>>> {
        self.project().inner.poll_frame(cx).map(|frame| {
            frame.map(|frame| frame.map_err(|err| Box::new(to_status(err.into())) as BoxError))
        })
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The status a gRPC caller should see for `err`.
pub fn to_status(err: BoxError) -> Status {
    let err = match err.downcast::<Status>() {
        Ok(status) => return *status,
        Err(err) => err,
    };
    let Some(ours) = Error::find(err.as_ref()) else {
        return Status::from_error(err);
    };
    let message = ours.to_string();
    if ours.timeout_scope().is_some() {
        return Status::deadline_exceeded(message);
    }
    let status = match ours.kind() {
        ErrorKind::GaveUp {
            why: GiveUp::Budget,
            ..
        } => Status::unavailable(message),
        _ => match causes(err.as_ref()).find_map(|c| c.downcast_ref::<Status>()) {
            Some(last) => Status::new(last.code(), message),
            None => Status::unavailable(message),
        },
    };
    if !crate::http::retried_here(ours) {
        return status;
    }
    // This hop already retried (gRFC A6: a negative pushback means "do not retry"), so that a
    // call graph retries at the hop next to the failure only.
    let mut metadata = tonic::metadata::MetadataMap::new();
    metadata.insert(
        super::classify::PUSHBACK,
        tonic::metadata::MetadataValue::from_static("-1"),
    );
    Status::with_metadata(status.code(), status.message().to_owned(), metadata)
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;
    use crate::classify::Reason;

    fn pushback(status: &Status) -> Option<&str> {
        status
            .metadata()
            .get(crate::grpc::classify::PUSHBACK)?
            .to_str()
            .ok()
    }

    /// A hop that gave up tells its caller not to retry (gRFC A6's negative pushback); one whose
    /// deadline passed, or whose dependency failed for good, does not.
    #[test]
    fn a_hop_that_retried_answers_with_a_negative_pushback() {
        let gave_up = Error::new(ErrorKind::GaveUp {
            attempts: 3,
            why: GiveUp::Attempts,
        })
        .with_reason(Reason::Status(503));
        let status = to_status(gave_up.into());
        assert_eq!(
            (status.code(), pushback(&status)),
            (Code::Unavailable, Some("-1"))
        );
        let throttled = Error::new(ErrorKind::Throttled {
            requests: 10,
            accepts: 1,
        });
        assert_eq!(pushback(&to_status(throttled.into())), Some("-1"));
        // Turned away by the dependency's admission limit, in-process: it is overloaded.
        let turned_away = Error::new(ErrorKind::Overloaded { limit: 8 });
        assert_eq!(pushback(&to_status(turned_away.into())), Some("-1"));
        let late = Error::timeout(
            crate::error::TimeoutScope::Total,
            std::time::Duration::from_secs(1),
        );
        let status = to_status(late.into());
        assert_eq!(
            (status.code(), pushback(&status)),
            (Code::DeadlineExceeded, None)
        );
        let other = to_status("boom".into());
        assert_eq!(pushback(&other), None);
    }
}
