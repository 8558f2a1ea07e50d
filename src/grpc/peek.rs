//! Reading a unary gRPC response's trailers before deciding on it: [`PeekTrailersLayer`].

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

/// The trailers of a response, read early by [`PeekTrailersLayer`]; a response extension.
#[derive(Debug, Clone, Default)]
pub struct PeekedTrailers(pub HeaderMap);

/// Reads each response up to its trailers, within `max_bytes`.
///
/// A gRPC status usually comes in the trailers, after the message, so a classifier that only
/// sees headers cannot tell an `UNAVAILABLE` from an `OK`. [`PeekTrailersLayer`] reads the
/// frames of a response up to its trailers, holding them, and hands the response on with the
/// trailers as a [`PeekedTrailers`] extension and a body that yields the frames it read and then
/// the rest. It reads at most `max_bytes` of messages: past that (a long stream) it stops
/// peeking and the response goes on as a success, its status left to its own trailers.
#[derive(Debug, Clone, Copy)]
pub struct PeekTrailersLayer {
    max_bytes: usize,
}

impl PeekTrailersLayer {
    /// Peeks through at most `max_bytes` of message data.
    pub const fn new(max_bytes: usize) -> Self {
        PeekTrailersLayer { max_bytes }
    }
}

impl<S> Layer<S> for PeekTrailersLayer {
    type Service = PeekTrailers<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PeekTrailers {
            inner,
            max_bytes: self.max_bytes,
        }
    }
}

/// Reads responses up to their trailers; see [`PeekTrailersLayer`].
#[derive(Debug, Clone)]
pub struct PeekTrailers<S> {
    inner: S,
    max_bytes: usize,
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
            max_bytes: self.max_bytes,
        }
    }
}

/// A response being read up to its trailers.
struct Peeking<B> {
    head: http::response::Parts,
    body: B,
    frames: VecDeque<Frame<Bytes>>,
    read: usize,
}

pin_project! {
    /// The future of a [`PeekTrailers`] call.
    pub struct PeekFuture<F, B> {
        #[pin]
        inner: F,
        peeking: Option<Peeking<B>>,
        max_bytes: usize,
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
                    read: 0,
                })
            }
        };
        loop {
            if peeking.read > *this.max_bytes {
                break;
            }
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
                    if let Some(data) = frame.data_ref() {
                        peeking.read += data.remaining();
                    }
                    peeking.frames.push_back(frame);
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
    async fn the_trailers_are_read_ahead_and_the_body_is_intact() {
        let inner = tower::service_fn(|_: ()| async {
            Ok::<_, BoxError>(unary("14", b"\x00\x00\x00\x00\x02hi"))
        });
        let mut svc = PeekTrailersLayer::new(1024).layer(inner);
        let response = tower::ServiceExt::oneshot(&mut svc, ()).await.unwrap();
        let peeked = response.extensions().get::<PeekedTrailers>().unwrap();
        assert_eq!(peeked.0["grpc-status"], "14");
        assert_eq!(
            crate::grpc::response_status(&response),
            Some(tonic::Code::Unavailable)
        );
        let collected = response.into_body().collect().await.unwrap();
        assert_eq!(collected.trailers().unwrap()["grpc-status"], "14");
        assert_eq!(&collected.to_bytes()[..], b"\x00\x00\x00\x00\x02hi");
    }

    #[tokio::test]
    async fn a_long_stream_is_not_held_past_the_limit() {
        let inner = tower::service_fn(|_: ()| async { Ok::<_, BoxError>(unary("0", &[7u8; 64])) });
        let mut svc = PeekTrailersLayer::new(16).layer(inner);
        let response = tower::ServiceExt::oneshot(&mut svc, ()).await.unwrap();
        assert!(response.extensions().get::<PeekedTrailers>().is_none());
        assert_eq!(crate::grpc::response_status(&response), None);
        let collected = response.into_body().collect().await.unwrap();
        assert_eq!(collected.to_bytes().len(), 64, "nothing lost");
    }
}
