//! A fault that `FaultLayer` cannot make, since it changes the body's type: HTTP response
//! bodies cut short by a reset connection.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use tower_layer::Layer;
use tower_service::Service;

use crate::error::BoxError;

/// Cuts HTTP response bodies short: a share `rate` of the responses (drawn from `seed`, per
/// response in order) fail with a reset connection (`io::ErrorKind::ConnectionReset`) after
/// `after` bytes of their body, as a server that dies mid-response does. The head arrives
/// whole, so the call succeeds and the body fails while it is read.
///
/// ```
/// use tower_tenacity::testing::ResetBodyLayer;
///
/// let layer = ResetBodyLayer::new(0.1, 1024).seed(3);
/// # let _ = layer;
/// ```
#[derive(Debug, Clone)]
pub struct ResetBodyLayer {
    rate: f64,
    after: usize,
    seed: u64,
    drawn: Arc<AtomicU64>,
    cut: Arc<AtomicU64>,
}

impl ResetBodyLayer {
    /// Cuts a share `rate` (clamped to `0.0..=1.0`) of the bodies after `after` bytes.
    pub fn new(rate: f64, after: usize) -> Self {
        ResetBodyLayer {
            rate: if rate.is_nan() {
                0.0
            } else {
                rate.clamp(0.0, 1.0)
            },
            after,
            seed: 0,
            drawn: Arc::default(),
            cut: Arc::default(),
        }
    }

    /// Seeds the draws (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// How many bodies were cut so far: reset after their bytes, not only chosen to be (a body
    /// shorter than the cut, or one never read that far, is not counted).
    pub fn cut(&self) -> u64 {
        self.cut.load(Ordering::Relaxed)
    }
}

impl<S> Layer<S> for ResetBodyLayer {
    type Service = ResetBody<S>;

    fn layer(&self, inner: S) -> ResetBody<S> {
        ResetBody {
            inner,
            layer: self.clone(),
        }
    }
}

/// A service whose response bodies may be cut short; see [`ResetBodyLayer`]. Reached as the
/// layer's `Service` type, not by path.
#[derive(Debug, Clone)]
pub struct ResetBody<S> {
    inner: S,
    layer: ResetBodyLayer,
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for ResetBody<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
{
    type Response = Response<CutBody<ResB>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<ReqB>) -> Self::Future {
        let layer = &self.layer;
        let n = layer.drawn.fetch_add(1, Ordering::Relaxed);
        let draw = super::plan::nth_rng(layer.seed, SALT, n).f64();
        let cut_after = (draw < layer.rate).then_some(layer.after);
        let counter = cut_after.map(|_| layer.cut.clone());
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await.map_err(Into::into)?;
            Ok(response.map(|inner| CutBody {
                inner,
                left: cut_after,
                counter,
            }))
        })
    }
}

/// What this layer's draws add to the seed, so that stacked under a `FaultLayer` with the
/// same seed it does not pick the very requests that layer picks (and cut only bodies of
/// requests that had already failed).
const SALT: u64 = 0xC0DE_B0D1_E5C0_7700;

pin_project_lite::pin_project! {
    /// A response body that may fail with a reset connection after some bytes; see
    /// [`ResetBodyLayer`].
    #[derive(Debug)]
    pub struct CutBody<B> {
        #[pin]
        inner: B,
        // Bytes still to pass before the cut, if this body is cut.
        left: Option<usize>,
        // The layer's count, taken when the body is reset (once).
        counter: Option<Arc<AtomicU64>>,
    }
}

impl<B> Body for CutBody<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        if *this.left == Some(0) {
            if let Some(counter) = this.counter.take() {
                counter.fetch_add(1, Ordering::Relaxed);
            }
            return Poll::Ready(Some(Err(
                io::Error::from(io::ErrorKind::ConnectionReset).into()
            )));
        }
        let frame = match ready!(this.inner.poll_frame(cx)) {
            None => return Poll::Ready(None),
            Some(Err(err)) => return Poll::Ready(Some(Err(err.into()))),
            Some(Ok(frame)) => frame,
        };
        let frame = frame.map_data(|mut data| data.copy_to_bytes(data.remaining()));
        let Some(left) = this.left.as_mut() else {
            return Poll::Ready(Some(Ok(frame)));
        };
        match frame.into_data() {
            Ok(mut data) => {
                if data.len() > *left {
                    data.truncate(*left);
                }
                *left -= data.len();
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            // Trailers come after the whole body: a body shorter than the cut (a gRPC answer,
            // say) arrived whole, and keeps them.
            Err(trailers) => Poll::Ready(Some(Ok(trailers))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.left != Some(0) && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        match self.left {
            Some(_) => SizeHint::default(),
            None => self.inner.size_hint(),
        }
    }
}
