//! Hedging on a paused clock: the exact instants at which hedges start, win and are cancelled,
//! for fixed and learned delays; the budget bounds them; nothing starts past the deadline; a
//! server's hint stops them; a request that is not safe to send twice is never hedged.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use common::{Reply, StatusClassifier, ms};
use http::{Request, Response};
use tokio::time::Instant;
use tower::BoxError;
use tower::{Layer, Service, ServiceBuilder, ServiceExt};
use tower_tenacity::deadline::DeadlineLayer;
use tower_tenacity::http::HttpClassifier;
use tower_tenacity::retry::{Event, ExponentialBackoff, Hedge, Jitter, RetryBudget, RetryLayer};
use tower_tenacity::{Error, ErrorKind};

/// What one attempt does: answer `status` after `after` (or never).
#[derive(Debug, Clone, Copy)]
struct Answer {
    after: Option<Duration>,
    status: u16,
    hint: Option<Duration>,
}

fn after(ms_: u64, status: u16) -> Answer {
    Answer {
        after: Some(ms(ms_)),
        status,
        hint: None,
    }
}

fn never() -> Answer {
    Answer {
        after: None,
        status: 0,
        hint: None,
    }
}

/// Answers each call with the next of its answers (the last one over and over), recording when
/// each call came and how many are still live (not answered, not dropped).
#[derive(Clone)]
struct Slow {
    answers: Arc<Vec<Answer>>,
    calls: Arc<Mutex<Vec<Instant>>>,
    live: Arc<AtomicUsize>,
    start: Instant,
}

impl Slow {
    fn new(answers: impl IntoIterator<Item = Answer>) -> Self {
        Slow {
            answers: Arc::new(answers.into_iter().collect()),
            calls: Arc::default(),
            live: Arc::default(),
            start: Instant::now(),
        }
    }

    /// When each call came, in ms from the start.
    fn calls(&self) -> Vec<u64> {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .map(|at| (*at - self.start).as_millis() as u64)
            .collect()
    }

    fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }
}

/// Counts itself live until dropped.
struct Live(Arc<AtomicUsize>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Service<()> for Slow {
    type Response = Reply;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Reply, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _req: ()) -> Self::Future {
        let mut calls = self.calls.lock().unwrap();
        let n = calls.len();
        calls.push(Instant::now());
        let answer = self
            .answers
            .get(n)
            .or(self.answers.last())
            .copied()
            .unwrap();
        self.live.fetch_add(1, Ordering::SeqCst);
        let live = Live(self.live.clone());
        Box::pin(async move {
            let _live = live;
            match answer.after {
                Some(after) => tokio::time::sleep(after).await,
                None => std::future::pending().await,
            }
            Ok(Reply {
                status: answer.status,
                retry_after: answer.hint,
            })
        })
    }
}

type Events = Arc<Mutex<Vec<(u64, Event)>>>;

fn retry(hedge: Hedge) -> (RetryLayer<StatusClassifier>, Events) {
    let events: Events = Arc::default();
    let sink = events.clone();
    let start = Instant::now();
    let layer = RetryLayer::builder()
        .classifier(StatusClassifier)
        .no_budget()
        .max_attempts(5)
        .backoff(ExponentialBackoff::new(ms(30), 1.0, ms(30)).with_jitter(Jitter::None))
        .hedge(hedge)
        .observer(move |event: &Event| {
            let at = start.elapsed().as_millis() as u64;
            sink.lock().unwrap().push((at, *event));
        })
        .build()
        .unwrap();
    (layer, events)
}

/// The hedge events: (ms, what, attempt).
fn hedging(events: &Events) -> Vec<(u64, &'static str, u32)> {
    let events = events.lock().unwrap();
    events
        .iter()
        .filter_map(|(at, e)| match e {
            Event::Hedge { attempt } => Some((*at, "hedge", attempt.number)),
            Event::HedgeWon { attempt, .. } => Some((*at, "won", attempt.number)),
            Event::HedgeSkipped { attempt, .. } => Some((*at, "skipped", attempt.number)),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_slow_attempt_is_hedged_and_the_first_answer_wins() {
    let service = Slow::new([never(), after(10, 200)]);
    let (layer, events) = retry(Hedge::after(ms(50)));
    let mut svc = layer.layer(service.clone());
    let start = Instant::now();
    let reply = svc.ready().await.unwrap().call(()).await.unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(start.elapsed(), ms(60));
    assert_eq!(service.calls(), [0, 50]);
    assert_eq!(service.live(), 0, "the first attempt was cancelled");
    assert_eq!(hedging(&events), [(50, "hedge", 2), (60, "won", 2)]);
    let cancelled = events.lock().unwrap().iter().find_map(|(_, e)| match e {
        Event::HedgeWon { cancelled, .. } => Some(*cancelled),
        _ => None,
    });
    assert_eq!(cancelled, Some(1));
}

#[tokio::test(start_paused = true)]
async fn an_answer_before_the_delay_sends_no_hedge() {
    let service = Slow::new([after(40, 200)]);
    let (layer, events) = retry(Hedge::after(ms(50)));
    let mut svc = layer.layer(service.clone());
    let reply = svc.ready().await.unwrap().call(()).await.unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(service.calls(), [0]);
    assert!(hedging(&events).is_empty());
}

#[tokio::test(start_paused = true)]
async fn hedges_go_out_a_delay_apart_up_to_the_limit_in_flight() {
    let service = Slow::new([never(), never(), after(20, 200)]);
    let (layer, events) = retry(Hedge::after(ms(50)).max_in_flight(3));
    let mut svc = layer.layer(service.clone());
    let reply = svc.ready().await.unwrap().call(()).await.unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(service.calls(), [0, 50, 100]);
    assert_eq!(
        hedging(&events),
        [(50, "hedge", 2), (100, "hedge", 3), (120, "won", 3)]
    );
    assert_eq!(service.live(), 0);
}

/// A retryable failure of one attempt ends nothing while another is in flight, and (gRFC A6)
/// the next hedge goes out at once, up to the attempts allowed; the first attempt's success
/// after that wins.
#[tokio::test(start_paused = true)]
async fn a_failure_waits_for_the_other_attempt_in_flight() {
    let service = Slow::new([after(100, 200), after(10, 503)]);
    let (layer, events) = retry(Hedge::after(ms(50)));
    let mut svc = layer.layer(service.clone());
    let reply = svc.ready().await.unwrap().call(()).await.unwrap();
    assert_eq!(reply.status, 200);
    // Each hedge fails 10 ms after it went out and the next follows at once, up to 5 attempts.
    assert_eq!(service.calls(), [0, 50, 60, 70, 80]);
    assert_eq!(
        hedging(&events),
        [
            (50, "hedge", 2),
            (60, "hedge", 3),
            (70, "hedge", 4),
            (80, "hedge", 5),
            (100, "won", 1)
        ]
    );
}

/// gRFC A6: "If a non-fatal status code is received from a hedged request, then the next hedged
/// request in line is sent immediately, shortcutting its hedging delay."
#[tokio::test(start_paused = true)]
async fn a_failed_hedge_sends_the_next_at_once() {
    let service = Slow::new([never(), after(200, 503), after(10, 200)]);
    let (layer, events) = retry(Hedge::after(ms(1000)).max_in_flight(3));
    let mut svc = layer.layer(service.clone());
    let reply = svc.ready().await.unwrap().call(()).await.unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(
        service.calls(),
        [0, 1000, 1200],
        "not at 2000, the timer's time"
    );
    assert_eq!(
        hedging(&events),
        [(1000, "hedge", 2), (1200, "hedge", 3), (1210, "won", 3)]
    );
    assert_eq!(service.live(), 0);
}

/// The shortcut spends the budget like any hedge: with none left, the next waits for nothing.
#[tokio::test(start_paused = true)]
async fn the_shortcut_takes_from_the_budget() {
    let service = Slow::new([after(500, 200), after(10, 503), after(10, 200)]);
    let budget = RetryBudget::new(0.0, 1, Duration::from_secs(3600)).unwrap();
    let layer = RetryLayer::builder()
        .classifier(StatusClassifier)
        .budget(budget)
        .max_attempts(5)
        .hedge(Hedge::after(ms(50)).max_in_flight(3))
        .build()
        .unwrap();
    let mut svc = layer.layer(service.clone());
    let reply = svc.ready().await.unwrap().call(()).await.unwrap();
    assert_eq!(reply.status, 200);
    // The one retry of the budget pays for the hedge at 50; the failed hedge's shortcut at 60
    // finds the budget empty, and attempt 1 answers at 500.
    assert_eq!(service.calls(), [0, 50]);
}

/// When every attempt in flight has failed, retry's own rules go on: a backoff, then the next
/// attempt, which may be hedged in its turn.
#[tokio::test(start_paused = true)]
async fn when_all_fail_the_retry_rules_apply_to_what_is_left() {
    let service = Slow::new([after(70, 503), after(20, 503), after(5, 200)]);
    let (layer, _events) = retry(Hedge::after(ms(50)));
    let mut svc = layer.layer(service.clone());
    let start = Instant::now();
    let reply = svc.ready().await.unwrap().call(()).await.unwrap();
    assert_eq!(reply.status, 200);
    // 1 at 0, its hedge 2 at 50, both failed at 70 (no hedge in flight for the one that failed
    // first to be followed by at once); the 30 ms backoff; 3 at 100, not hedged at once.
    assert_eq!(service.calls(), [0, 50, 100]);
    assert_eq!(start.elapsed(), ms(105));
}

/// A server's hint stops further hedges: the one that came back with it is not followed by
/// another.
#[tokio::test(start_paused = true)]
async fn a_server_hint_stops_further_hedges() {
    let busy = Answer {
        after: Some(ms(5)),
        status: 503,
        hint: Some(ms(1000)),
    };
    let service = Slow::new([after(300, 200), busy, after(1, 200)]);
    let (layer, events) = retry(Hedge::after(ms(50)).max_in_flight(3));
    let mut svc = layer.layer(service.clone());
    let reply = svc.ready().await.unwrap().call(()).await.unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(service.calls(), [0, 50], "no hedge after the hint at 55");
    assert_eq!(hedging(&events), [(50, "hedge", 2), (300, "won", 1)]);
}

/// No hedge starts at or after the deadline: the one due past it is skipped, and says why.
#[tokio::test(start_paused = true)]
async fn nothing_starts_past_the_deadline() {
    let service = Slow::new([never()]);
    let (layer, events) = retry(Hedge::after(ms(50)).max_in_flight(5));
    let mut svc = ServiceBuilder::new()
        .layer(DeadlineLayer::new(ms(120)))
        .layer(layer)
        .service(service.clone());
    let err = svc.ready().await.unwrap().call(()).await.unwrap_err();
    assert!(matches!(
        Error::find(err.as_ref()).unwrap().kind(),
        ErrorKind::Timeout { .. }
    ));
    assert_eq!(service.calls(), [0, 50, 100]);
    assert_eq!(
        hedging(&events),
        [(50, "hedge", 2), (100, "hedge", 3), (100, "skipped", 4)]
    );
    assert_eq!(service.live(), 0, "the deadline cancelled every attempt");
}

/// Under total failure (every attempt stalls) hedges are paid from the budget: with a budget
/// of 3 retries and nothing earned, 10 calls make 10 attempts and 3 hedges.
#[tokio::test(start_paused = true)]
async fn the_budget_bounds_hedges() {
    let service = Slow::new([never()]);
    let budget = RetryBudget::new(0.0, 3, Duration::from_secs(3600)).unwrap();
    let layer = RetryLayer::builder()
        .classifier(StatusClassifier)
        .budget(budget)
        .hedge(Hedge::after(ms(50)))
        .build()
        .unwrap();
    let svc = ServiceBuilder::new()
        .layer(DeadlineLayer::new(ms(200)))
        .layer(layer)
        .service(service.clone());
    for _ in 0..10 {
        let _ = svc.clone().oneshot(()).await;
    }
    assert_eq!(service.calls().len(), 13);
}

/// A learned delay: no hedge until enough latencies were seen; then the hedge goes out at
/// their percentile.
#[tokio::test(start_paused = true)]
async fn a_learned_delay_follows_the_latencies() {
    let mut answers = vec![after(20, 200); 20];
    answers.push(never());
    answers.push(after(1, 200));
    let service = Slow::new(answers);
    let hedge = Hedge::learned(90.0).min_samples(20);
    let (layer, events) = retry(hedge);
    let svc = layer.layer(service.clone());
    for _ in 0..20 {
        svc.clone().oneshot(()).await.unwrap();
    }
    assert!(hedging(&events).is_empty(), "too few samples until now");
    let start = Instant::now();
    svc.clone().oneshot(()).await.unwrap();
    // The 90th percentile of twenty 20 ms latencies is 20 ms (to the histogram's three
    // significant figures, on a timer of whole milliseconds): hedged then, answered 1 ms later.
    let calls = service.calls();
    let hedged_after = calls[21] - calls[20];
    assert!((20..=21).contains(&hedged_after), "{calls:?}");
    assert_eq!(start.elapsed(), ms(hedged_after + 1));
}

/// The HTTP classifier hedges only requests that are safe to send twice: a POST without an
/// `Idempotency-Key` never is, and the event says why.
#[tokio::test(start_paused = true)]
async fn a_post_is_not_hedged() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let service = tower::service_fn(move |_: Request<String>| {
        counter.fetch_add(1, Ordering::SeqCst);
        async {
            tokio::time::sleep(ms(100)).await;
            Ok::<_, BoxError>(Response::new(String::new()))
        }
    });
    let events: Events = Arc::default();
    let sink = events.clone();
    let layer = RetryLayer::builder()
        .classifier(HttpClassifier::new())
        .hedge(Hedge::after(ms(10)))
        .observer(move |event: &Event| sink.lock().unwrap().push((0, *event)))
        .build()
        .unwrap();
    let svc = layer.layer(service);
    let post = Request::post("http://127.0.0.1/")
        .body(String::new())
        .unwrap();
    svc.clone().oneshot(post).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let skipped = events.lock().unwrap().iter().find_map(|(_, e)| match e {
        // Why, by its phrase (one per reason): `NotSafe`'s.
        Event::HedgeSkipped { why, .. } => Some(why.to_string()),
        _ => None,
    });
    assert_eq!(
        skipped.as_deref(),
        Some("the request is not safe to send twice")
    );
    let get = Request::get("http://127.0.0.1/")
        .body(String::new())
        .unwrap();
    svc.clone().oneshot(get).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3, "a GET is hedged");
}

/// An open circuit is not hedged into: a hedge that the breaker turns away never reaches the
/// service, stops further hedges, gives its retry back to the budget, and the attempt in flight
/// still answers.
#[tokio::test(start_paused = true)]
async fn an_open_circuit_is_not_hedged_into() {
    use tower_tenacity::breaker::{BreakerConfig, CircuitBreakerLayer};
    // Call 1 answers at 200 ms; every later call fails at once.
    let service = Slow::new([
        after(200, 200),
        Answer {
            after: Some(ms(0)),
            status: 0,
            hint: None,
        },
    ]);
    let failing = tower::service_fn({
        let service = service.clone();
        move |()| {
            let mut service = service.clone();
            async move {
                let reply = service.call(()).await?;
                if reply.status == 0 {
                    return Err::<Reply, BoxError>(
                        std::io::Error::from(std::io::ErrorKind::ConnectionReset).into(),
                    );
                }
                Ok(reply)
            }
        }
    });
    let breaker = CircuitBreakerLayer::builder(
        BreakerConfig::new()
            .no_failure_ratio()
            .consecutive_failures(1)
            .break_duration(Duration::from_secs(10)),
    )
    .classifier(tower_tenacity::classify::DefaultClassifier)
    .build()
    .unwrap();
    let budget = RetryBudget::new(0.0, 5, Duration::from_secs(3600)).unwrap();
    let events: Events = Arc::default();
    let sink = events.clone();
    let start = Instant::now();
    let layer = RetryLayer::builder()
        .classifier(StatusClassifier)
        .budget(budget.clone())
        .hedge(Hedge::after(ms(50)).max_in_flight(3))
        .observer(move |event: &Event| {
            let at = start.elapsed().as_millis() as u64;
            sink.lock().unwrap().push((at, *event));
        })
        .build()
        .unwrap();
    let svc = layer.layer(breaker.layer(failing.clone()));
    let first = tokio::spawn(svc.clone().oneshot(()));
    tokio::time::sleep(ms(10)).await;
    // A second call, straight through the breaker, fails and opens the circuit.
    assert!(breaker.layer(failing).oneshot(()).await.is_err());
    let reply = first.await.unwrap().unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(
        service.calls(),
        [0, 10],
        "the hedge due at 50 ms never reached the service"
    );
    let hedges = hedging(&events);
    assert!(hedges.contains(&(50, "hedge", 2)), "{hedges:?}");
    assert!(
        !hedges
            .iter()
            .any(|(at, what, _)| *what == "hedge" && *at > 50),
        "{hedges:?}"
    );
    assert_eq!(
        budget.retries_left(),
        5,
        "the turned-away hedge gave its retry back"
    );
}
