//! [`FaultService`], the service a [`FaultLayer`](super::FaultLayer) makes.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tower_service::Service;

use super::plan::{Fault, Plan};
use crate::error::BoxError;

/// A service with faults injected; see [`FaultLayer`](super::FaultLayer).
pub struct FaultService<S, Res> {
    inner: S,
    plan: Arc<Plan<Res>>,
}

impl<S, Res> FaultService<S, Res> {
    pub(super) fn new(inner: S, plan: Arc<Plan<Res>>) -> Self {
        FaultService { inner, plan }
    }
}

impl<S: Clone, Res> Clone for FaultService<S, Res> {
    fn clone(&self) -> Self {
        FaultService {
            inner: self.inner.clone(),
            plan: self.plan.clone(),
        }
    }
}

impl<S: fmt::Debug, Res> fmt::Debug for FaultService<S, Res> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, Req, Res> Service<Req> for FaultService<S, Res>
where
    S: Service<Req, Response = Res> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    Req: Send + 'static,
    Res: Send + 'static,
{
    type Response = Res;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Res, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let plan = self.plan.clone();
        let counts = &plan.counts;
        let count = |n: &AtomicU64| {
            n.fetch_add(1, Ordering::Relaxed);
        };
        match plan.draw() {
            (Some(Fault::Error(kind)), _) => {
                count(&counts.errors);
                Box::pin(std::future::ready(Err(io::Error::from(kind).into())))
            }
            (Some(Fault::Respond(make)), _) => {
                count(&counts.responses);
                Box::pin(std::future::ready(Ok(make())))
            }
            (Some(Fault::Stall), _) => {
                count(&counts.stalled);
                Box::pin(std::future::pending())
            }
            (Some(Fault::Latency(min, max)), spread) => {
                count(&counts.delayed);
                count(&counts.passed);
                let delay = min + (max - min).mul_f64(spread);
                // The service was made ready for this call: the delayed call uses a clone
                // readied when its delay is over.
                let mut inner = self.inner.clone();
                std::mem::swap(&mut inner, &mut self.inner);
                Box::pin(async move {
                    tokio::time::sleep(delay).await;
                    inner.call(request).await.map_err(Into::into)
                })
            }
            (None, _) => {
                count(&counts.passed);
                let future = self.inner.call(request);
                Box::pin(async move { future.await.map_err(Into::into) })
            }
        }
    }
}
