//! Runs many requests through a stack and reports what each came to: the short way to a
//! deterministic test on a paused clock.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use tokio::time::Instant;
use tower_service::Service;

use crate::error::{BoxError, Error};

/// A call in flight: its index, when it was made, and the call.
type InFlight<'a, Res> = (
    usize,
    Instant,
    Pin<Box<dyn Future<Output = Result<Res, BoxError>> + 'a>>,
);

/// What [`run`] saw: each call's outcome and how long it took, in the order the calls were made.
#[derive(Debug)]
pub struct Report<Res> {
    /// Each call's outcome.
    pub outcomes: Vec<Result<Res, BoxError>>,
    /// How long each call took.
    pub latencies: Vec<Duration>,
}

impl<Res> Report<Res> {
    /// Calls that succeeded.
    pub fn succeeded(&self) -> usize {
        self.outcomes.iter().filter(|o| o.is_ok()).count()
    }

    /// Calls that failed.
    pub fn failed(&self) -> usize {
        self.outcomes.len() - self.succeeded()
    }

    /// How many attempts each call that failed took, as its error says (a call that succeeded,
    /// or whose error says nothing of attempts, shows `None`; an HTTP stack's responses carry
    /// their attempts in the `Attempts` extension).
    pub fn attempts(&self) -> Vec<Option<u32>> {
        (self.outcomes.iter())
            .map(|o| {
                let err = o.as_ref().err()?;
                Error::find(err.as_ref())?.attempts()
            })
            .collect()
    }

    /// Calls whose error is one of this crate's and says `what` (for example
    /// `Error::is_circuit_open`).
    pub fn failed_with(&self, what: impl Fn(&Error) -> bool) -> usize {
        (self.outcomes.iter())
            .filter_map(|o| o.as_ref().err())
            .filter(|err| Error::find(err.as_ref()).is_some_and(&what))
            .count()
    }

    /// The latency at `percentile` (`0.0..=100.0`, nearest rank); zero for no calls.
    pub fn latency(&self, percentile: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let rank = (percentile / 100.0 * sorted.len() as f64).ceil() as usize;
        sorted
            .get(rank.clamp(1, sorted.len().max(1)) - 1)
            .copied()
            .unwrap_or_default()
    }
}

/// Sends `n` requests, made by `request` from their index, through `service`, with at most
/// `concurrency` of them in flight, each on a ready clone, and reports what each came to.
///
/// On a paused clock (`tokio::time::pause()`, or `#[tokio::test(start_paused = true)]`) the
/// run takes no real time and gives the same report every time for a seeded stack.
///
/// ```
/// use std::io;
/// use tower::{service_fn, Layer};
/// use tower_tenacity::testing::{run, FaultLayer};
/// use tower::BoxError;
/// use tower_tenacity::ResilienceLayer;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// tokio::time::pause();
/// let faults = FaultLayer::builder()
///     .seed(1)
///     .error(0.1, io::ErrorKind::ConnectionReset)
///     .build()
///     .unwrap();
/// let server = faults.layer(service_fn(|n: u32| async move { Ok::<_, BoxError>(n) }));
/// let stack = ResilienceLayer::default().layer(server);
/// let report = run(stack, 100, 10, |i| i as u32).await;
/// assert!(report.succeeded() >= 95, "{}", report.succeeded());
/// // The server saw every request once, and the retries: at most 20% more, plus the floor.
/// assert!(faults.counts().requests() <= 100 + 20 + 10);
/// # }
/// ```
pub async fn run<S, Req, F>(
    service: S,
    n: usize,
    concurrency: usize,
    request: F,
) -> Report<S::Response>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    F: Fn(usize) -> Req,
{
    let mut outcomes: Vec<Option<Result<S::Response, BoxError>>> = (0..n).map(|_| None).collect();
    let mut latencies = vec![Duration::ZERO; n];
    let mut in_flight: Vec<InFlight<'_, S::Response>> = Vec::new();
    let mut next = 0;
    let concurrency = concurrency.max(1);
    while next < n || !in_flight.is_empty() {
        while next < n && in_flight.len() < concurrency {
            let mut svc = service.clone();
            let req = request(next);
            let call = async move {
                poll_fn(|cx| svc.poll_ready(cx)).await.map_err(Into::into)?;
                svc.call(req).await.map_err(Into::into)
            };
            in_flight.push((next, Instant::now(), Box::pin(call)));
            next += 1;
        }
        let (index, outcome) = poll_fn(|cx| {
            for (i, (_, _, call)) in in_flight.iter_mut().enumerate() {
                if let Poll::Ready(outcome) = call.as_mut().poll(cx) {
                    return Poll::Ready((i, outcome));
                }
            }
            Poll::Pending
        })
        .await;
        let (number, started, _) = in_flight.swap_remove(index);
        latencies[number] = started.elapsed();
        outcomes[number] = Some(outcome);
    }
    Report {
        outcomes: outcomes.into_iter().flatten().collect(),
        latencies,
    }
}
