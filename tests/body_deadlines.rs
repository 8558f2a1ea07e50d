//! Body deadlines hold whatever the body does: frames of any size (empty ones too), a body that
//! is always ready (a server faster than its reader) or one that is pending now and then. Every
//! deadline over a response body — the HTTP preset's `total_timeout_covers_body()` and the gRPC
//! server's `grpc-timeout` — ends the body at its deadline, at most one frame late.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Empty};
use proptest::prelude::*;
use tokio::time::Instant;
use tower::BoxError;
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_tenacity::http::ReplayBody;
use tower_tenacity::{Error, ResilienceLayer, TimeoutScope};

/// One frame of a hostile body: its size (0 for an empty frame), whether the body says
/// `Pending` (and wakes itself at once) before yielding it, and how long the reader then takes.
#[derive(Debug, Clone, Copy)]
struct Step {
    size: usize,
    pending_first: bool,
    read_ms: u64,
}

/// A body that never ends: it cycles through `steps`.
struct Endless {
    steps: Vec<Step>,
    next: usize,
    yielded_pending: bool,
}

impl Body for Endless {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let step = self.steps[self.next % self.steps.len()];
        if step.pending_first && !self.yielded_pending {
            self.yielded_pending = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.yielded_pending = false;
        self.next += 1;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![7; step.size])))))
    }
}

fn endless(steps: &[Step]) -> Endless {
    Endless {
        steps: steps.to_vec(),
        next: 0,
        yielded_pending: false,
    }
}

/// Reads `body` as a slow reader would (each step's `read_ms` on the paused clock after each
/// frame) until it fails or `deadline` is far behind; returns how many frames came after the
/// deadline and the error that ended it.
async fn read_until_cut<B>(body: B, steps: &[Step], deadline: Instant) -> (usize, BoxError)
where
    B: Body<Data = Bytes, Error = BoxError>,
{
    let mut body = std::pin::pin!(body);
    let mut late = 0;
    for step in steps.iter().cycle().take(20_000) {
        match body.frame().await {
            Some(Ok(_)) if Instant::now() >= deadline => late += 1,
            Some(Ok(_)) => {}
            Some(Err(err)) => {
                assert!(Instant::now() >= deadline, "cut before the deadline: {err}");
                return (late, err);
            }
            None => panic!("an endless body ended"),
        }
        assert!(late <= 1, "{late} frames after the deadline");
        tokio::time::advance(Duration::from_millis(step.read_ms)).await;
    }
    panic!("the body was never cut");
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let step = (0usize..3000, proptest::bool::weighted(0.2), 0u64..40).prop_map(
        |(size, pending_first, read_ms)| Step {
            size: if size < 1000 { 0 } else { size },
            pending_first,
            read_ms,
        },
    );
    proptest::collection::vec(step, 1..20).prop_filter("time must move", |steps| {
        steps.iter().any(|step| step.read_ms > 0)
    })
}

fn paused() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

fn scope_of(err: &BoxError) -> Option<TimeoutScope> {
    Error::find(err.as_ref()).and_then(Error::timeout_scope)
}

/// The response of one call through the HTTP preset, whose total timeout of `budget` covers
/// the body, to a service that answers at once with `body`.
async fn through_the_preset(
    body: Endless,
    budget: Duration,
) -> http::Response<impl Body<Data = Bytes, Error = BoxError>> {
    let body = Arc::new(Mutex::new(Some(body)));
    let svc = service_fn(move |_: http::Request<ReplayBody<Empty<Bytes>>>| {
        let body = body.lock().unwrap().take().expect("one call");
        async move { Ok::<_, BoxError>(http::Response::new(body)) }
    });
    let mut svc = ResilienceLayer::http()
        .total_timeout(budget)
        .total_timeout_covers_body()
        .build()
        .unwrap()
        .layer(svc);
    let request = http::Request::new(Empty::new());
    svc.ready().await.unwrap().call(request).await.unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_body_deadline_ends_any_body_at_its_deadline(steps in steps(), budget_ms in 1u64..400) {
        paused().block_on(async {
            let budget = Duration::from_millis(budget_ms);
            let response = through_the_preset(endless(&steps), budget).await;
            let deadline = Instant::now() + budget;
            let (_, err) = read_until_cut(response.into_body(), &steps, deadline).await;
            assert_eq!(scope_of(&err), Some(TimeoutScope::Total), "{err}");
        });
    }
}

/// A body that always has a frame ready, read by a reader that takes 10 ms a frame: the 300 ms
/// deadline of the issue ends it after about 30 frames, not never.
#[tokio::test(start_paused = true)]
async fn an_always_ready_body_is_cut_at_the_deadline() {
    let steps = [Step {
        size: 16,
        pending_first: false,
        read_ms: 10,
    }];
    let response = through_the_preset(endless(&steps), Duration::from_millis(300)).await;
    let mut body = std::pin::pin!(response.into_body());
    let start = Instant::now();
    let mut frames = 0;
    let mut cut = None;
    while frames < 1_000 {
        match body.frame().await.expect("endless") {
            Ok(_) => frames += 1,
            Err(err) => {
                cut = Some(err);
                break;
            }
        }
        tokio::time::advance(Duration::from_millis(10)).await;
    }
    let err = cut.expect("the body was never cut");
    assert_eq!(scope_of(&err), Some(TimeoutScope::Total));
    assert_eq!(frames, 30);
    assert_eq!(start.elapsed(), Duration::from_millis(300));
    assert!(body.frame().await.is_none(), "the body has ended");
}

#[cfg(feature = "grpc")]
mod grpc {
    use super::*;
    use tower_tenacity::grpc::GrpcDeadlineLayer;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// A server's response stream under `grpc-timeout` ends with `DEADLINE_EXCEEDED`
        /// trailers at the deadline, however ready the handler's stream is.
        #[test]
        fn a_grpc_deadline_ends_any_response_stream(steps in steps(), budget_ms in 1u64..400) {
            paused().block_on(async {
                let handler_steps = steps.clone();
                let handler = service_fn(move |_: http::Request<()>| {
                    let body = endless(&handler_steps);
                    async move { Ok::<_, BoxError>(http::Response::new(body)) }
                });
                let mut server = GrpcDeadlineLayer::new().layer(handler);
                let request = http::Request::builder()
                    .header("grpc-timeout", format!("{budget_ms}m"))
                    .body(())
                    .unwrap();
                let response = server.ready().await.unwrap().call(request).await.unwrap();
                let deadline = Instant::now() + Duration::from_millis(budget_ms);
                let mut body = response.into_body();
                let mut late = 0;
                for step in steps.iter().cycle().take(20_000) {
                    let frame = body.frame().await.expect("a frame or the trailers").unwrap();
                    if let Some(trailers) = frame.trailers_ref() {
                        assert!(Instant::now() >= deadline);
                        assert_eq!(trailers["grpc-status"], "4");
                        return;
                    }
                    if Instant::now() >= deadline {
                        late += 1;
                    }
                    assert!(late <= 1, "{late} messages after the deadline");
                    tokio::time::advance(Duration::from_millis(step.read_ms)).await;
                }
                panic!("the stream was never cut");
            });
        }
    }
}
