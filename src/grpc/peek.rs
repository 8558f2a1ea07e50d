//! Reading a gRPC status that comes before any message: [`PeekTrailersLayer`].

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use http::{HeaderMap, Response};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::error::BoxError;

/// The trailers of a response that ended before its first message, read early by
/// [`PeekTrailersLayer`]; a response extension.
#[derive(Debug, Clone, Default)]
pub struct PeekedTrailers(pub HeaderMap);

/// Holds each response until its first message or its end, so that a status sent before any
/// message can be classified (gRFC A6).
///
/// A failed RPC usually answers with its status in the headers (Trailers-Only), which needs no
/// peeking; but a server may also send headers and then trailers that end the body with no
/// message. [`PeekTrailersLayer`] reads the frames of a response up to the first message or
/// the trailers, whichever comes first, and hands the response on with a body that yields them
/// again and then the rest. Trailers that came before any message are put on the response as a
/// [`PeekedTrailers`] extension. Once a message arrives the RPC is committed: the response goes
/// on at once (never held for its trailers, so a stream flows as it comes), and its status
/// reaches the caller as the server sent it. No message is ever buffered beyond the one frame
/// that ended the peek.
#[derive(Debug, Clone, Copy, Default)]
pub struct PeekTrailersLayer {
    _private: (),
}

impl PeekTrailersLayer {
    /// Peeks up to the first message.
    pub const fn new() -> Self {
        PeekTrailersLayer { _private: () }
    }
}

impl<S> Layer<S> for PeekTrailersLayer {
    type Service = PeekTrailers<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PeekTrailers { inner }
    }
}

/// Reads responses up to their first message; see [`PeekTrailersLayer`].
#[derive(Debug, Clone)]
pub struct PeekTrailers<S> {
    inner: S,
}

impl<S, Req, B> Service<Req> for PeekTrailers<S>
where
    S: Service<Req, Response = Response<B>>,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Response = Response<PeekedBody<B>>;
    type Error = BoxError;
    type Future = PeekFuture<S::Future, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        PeekFuture {
            inner: self.inner.call(request),
            peeking: None,
        }
    }
}

/// A response being read up to its first message.
struct Peeking<B> {
    head: http::response::Parts,
    body: B,
    // Frames that carry no message (empty data, unknown kinds), then the one that ended the peek.
    frames: VecDeque<Frame<Bytes>>,
}

pin_project! {
    /// The future of a [`PeekTrailers`] call.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct PeekFuture<F, B> {
        #[pin]
        inner: F,
        peeking: Option<Peeking<B>>,
    }
}

impl<F, B, E> Future for PeekFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<BoxError>,
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Output = Result<Response<PeekedBody<B>>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let peeking = match this.peeking.as_mut() {
            Some(peeking) => peeking,
            None => {
                let response = ready!(this.inner.poll(cx)).map_err(Into::into)?;
                let (head, body) = response.into_parts();
                // A trailers-only response, or one with nothing more to read, needs no peeking.
                if head.headers.contains_key("grpc-status") || body.is_end_stream() {
                    let body = PeekedBody::new(VecDeque::new(), Some(body));
                    return Poll::Ready(Ok(Response::from_parts(head, body)));
                }
                this.peeking.insert(Peeking {
                    head,
                    body,
                    frames: VecDeque::new(),
                })
            }
        };
        loop {
            match ready!(Pin::new(&mut peeking.body).poll_frame(cx)) {
                None => break,
                Some(Err(err)) => return Poll::Ready(Err(err.into())),
                Some(Ok(frame)) => {
                    if let Some(trailers) = frame.trailers_ref() {
                        peeking
                            .head
                            .extensions
                            .insert(PeekedTrailers(trailers.clone()));
                        peeking.frames.push_back(frame);
                        break;
                    }
                    // The first message commits the RPC: it goes on with the response now.
                    let message = frame.data_ref().is_some_and(Buf::has_remaining);
                    peeking.frames.push_back(frame);
                    if message {
                        break;
                    }
                }
            }
        }
        let Some(Peeking {
            head, body, frames, ..
        }) = this.peeking.take()
        else {
            unreachable!("set just above");
        };
        Poll::Ready(Ok(Response::from_parts(
            head,
            PeekedBody::new(frames, Some(body)),
        )))
    }
}

/// A response body whose first frames were read ahead; see [`PeekTrailersLayer`].
#[derive(Debug)]
pub struct PeekedBody<B> {
    frames: VecDeque<Frame<Bytes>>,
    rest: Option<B>,
}

impl<B> PeekedBody<B> {
    fn new(frames: VecDeque<Frame<Bytes>>, rest: Option<B>) -> Self {
        PeekedBody { frames, rest }
    }
}

impl<B> Body for PeekedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(frame) = self.frames.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        match self.rest.as_mut() {
            Some(rest) => Pin::new(rest).poll_frame(cx).map_err(Into::into),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty() && self.rest.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        let buffered: u64 = self
            .frames
            .iter()
            .filter_map(|f| f.data_ref().map(|d| d.remaining() as u64))
            .sum();
        let rest = self
            .rest
            .as_ref()
            .map(Body::size_hint)
            .unwrap_or_else(|| SizeHint::with_exact(0));
        let mut hint = SizeHint::new();
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper.saturating_add(buffered));
        }
        hint.set_lower(rest.lower().saturating_add(buffered));
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    type Frames = StreamBody<
        futures_util::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, std::io::Error>>>,
    >;

    fn unary(status: &'static str, message: &'static [u8]) -> Response<Frames> {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", status.parse().unwrap());
        let frames = vec![
            Ok(Frame::data(Bytes::from_static(message))),
            Ok(Frame::trailers(trailers)),
        ];
        Response::new(StreamBody::new(futures_util::stream::iter(frames)))
    }

    #[tokio::test]
    async fn the_trailers_of_a_response_with_no_message_are_read_ahead() {
        let inner = tower::service_fn(|_: ()| async { Ok::<_, BoxError>(unary("14", b"")) });
        let mut svc = PeekTrailersLayer::new().layer(inner);
        let response = tower::ServiceExt::oneshot(&mut svc, ()).await.unwrap();
        assert_eq!(
            crate::grpc::classify::response_status(&response),
            Some(tonic::Code::Unavailable)
        );
        let collected = response.into_body().collect().await.unwrap();
        assert_eq!(collected.trailers().unwrap()["grpc-status"], "14");
    }

    #[tokio::test]
    async fn the_first_message_commits_the_response_and_is_not_held() {
        // One message, then a stream that never ends: the response comes with the message.
        let inner = tower::service_fn(|_: ()| async {
            let first = futures_util::stream::iter([Ok::<_, std::io::Error>(Frame::data(
                Bytes::from_static(b"\x00\x00\x00\x00\x01x"),
            ))]);
            let stream = futures_util::StreamExt::chain(first, futures_util::stream::pending());
            Ok::<_, BoxError>(Response::new(StreamBody::new(stream)))
        });
        let mut svc = PeekTrailersLayer::new().layer(inner);
        let response = tower::ServiceExt::oneshot(&mut svc, ()).await.unwrap();
        assert!(response.extensions().get::<PeekedTrailers>().is_none());
        assert_eq!(crate::grpc::classify::response_status(&response), None);
        let mut body = response.into_body();
        let frame = body.frame().await.unwrap().unwrap();
        assert_eq!(&frame.into_data().unwrap()[..], b"\x00\x00\x00\x00\x01x");
    }

    #[tokio::test]
    async fn a_status_after_a_message_is_left_to_the_caller() {
        let inner = tower::service_fn(|_: ()| async {
            Ok::<_, BoxError>(unary("14", b"\x00\x00\x00\x00\x01x"))
        });
        let mut svc = PeekTrailersLayer::new().layer(inner);
        let response = tower::ServiceExt::oneshot(&mut svc, ()).await.unwrap();
        assert_eq!(
            crate::grpc::classify::response_status(&response),
            None,
            "committed"
        );
        let collected = response.into_body().collect().await.unwrap();
        assert_eq!(
            collected.trailers().unwrap()["grpc-status"],
            "14",
            "as sent"
        );
        assert_eq!(
            &collected.to_bytes()[..],
            b"\x00\x00\x00\x00\x01x",
            "intact"
        );
    }
}
