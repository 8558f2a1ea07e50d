//! The clients (bare, or inside tower-tenacity's stack) and the loop that sends requests:
//! a count or a duration, at most `-c` in flight, at `-q` a second if asked.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use http::{Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::rt::TokioExecutor;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::time::Instant;
use tower::BoxError;
use tower::{Layer, Service, ServiceExt};
use tower_http::timeout::TimeoutBody;
use tower_tenacity::GiveUp;
use tower_tenacity::breaker::{BreakerConfig, CircuitState, Transition};
use tower_tenacity::classify::Classify;
use tower_tenacity::http::{Attempts, HttpClassifier, HttpResilienceLayer, ReplayBody};
use tower_tenacity::retry::{Event, ExponentialBackoff, Hedge, RetryBudget};
use tower_tenacity::{Error, ResilienceLayer};

use crate::cli::{Args, ClientKind, HedgeDelay, redacted};
use crate::report::{Counts, Outcome, chain_text, foreign_cause};

/// The body of a response from either client.
type ResponseBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

type Requester = Box<
    dyn FnMut(Request<Full<Bytes>>) -> BoxFuture<'static, Result<Response<ResponseBody>, BoxError>>
        + Send,
>;

/// Hedging after 100 ms, unless `--hedge` says otherwise: the demo's answers take 5 to 40 ms.
const DEFAULT_HEDGE: HedgeDelay = HedgeDelay::After(Duration::from_millis(100));

/// What a client of `kind` turns on: the circuit breaker, and hedging after which delay. The
/// demo's "defaults" are the preset's; against URLs they take the flags.
pub fn features(kind: ClientKind, args: &Args) -> (bool, Option<HedgeDelay>) {
    match kind {
        ClientKind::Bare => (false, None),
        ClientKind::Defaults if args.demo => (false, None),
        ClientKind::Defaults => (args.breaker, args.hedge),
        ClientKind::Hedging => (false, Some(args.hedge.unwrap_or(DEFAULT_HEDGE))),
        ClientKind::BreakerHedging => (true, Some(args.hedge.unwrap_or(DEFAULT_HEDGE))),
    }
}

/// The preset with the flags' settings for a client of `kind`, or the first setting it refuses.
fn preset(
    kind: ClientKind,
    args: &Args,
    counts: &Arc<Mutex<Counts>>,
) -> Result<HttpResilienceLayer, String> {
    let backoff =
        ExponentialBackoff::new(args.backoff, 2.0, args.backoff_max).with_jitter(args.jitter);
    let tally = counts.clone();
    let mut builder = ResilienceLayer::http()
        .total_timeout(args.timeout)
        .attempt_timeout(args.attempt_timeout)
        .max_attempts(args.attempts)
        .backoff(backoff)
        .max_retry_after(args.max_retry_after)
        .observer(move |event: &Event| {
            let mut counts = tally.lock().unwrap();
            match event {
                Event::Attempt { .. } => counts.attempts += 1,
                Event::Hedge { .. } => counts.hedges += 1,
                Event::GiveUp { why, .. } if *why != GiveUp::Fatal => {
                    *counts.give_ups.entry(why.to_string()).or_default() += 1;
                }
                _ => {}
            }
        });
    if let Some(seed) = args.seed {
        builder = builder.seed(seed);
    }
    builder = if args.no_budget {
        builder.no_budget()
    } else {
        let budget = RetryBudget::new(args.budget, 10, Duration::from_secs(1));
        builder.budget(budget.map_err(|e| e.to_string())?)
    };
    if args.retry_unsafe {
        builder = builder.retry_unsafe_methods();
    }
    let (with_breaker, hedging) = features(kind, args);
    if let Some(delay) = hedging {
        builder = builder.hedge(hedge(delay, args));
    }
    let built = if with_breaker {
        builder.circuit_breaker(breaker(args, counts)).build()
    } else {
        builder.build()
    };
    built.map_err(|e| e.to_string())
}

fn breaker(args: &Args, counts: &Arc<Mutex<Counts>>) -> BreakerConfig {
    let tally = counts.clone();
    let config = match args.breaker_consecutive {
        Some(failures) => BreakerConfig::new()
            .no_failure_ratio()
            .consecutive_failures(failures),
        None => BreakerConfig::new()
            .failure_ratio(args.breaker_ratio)
            .min_calls(args.breaker_min_calls)
            .window(args.breaker_window),
    };
    let config = match args.seed {
        Some(seed) => config.seed(seed),
        None => config,
    };
    config
        .break_duration(args.break_duration)
        .probes(args.breaker_probes)
        .observer(move |transition: &Transition<'_>| {
            if transition.to == CircuitState::Open {
                tally.lock().unwrap().circuit_opened += 1;
            }
        })
}

fn hedge(delay: HedgeDelay, args: &Args) -> Hedge {
    let hedge = match delay {
        HedgeDelay::After(delay) => Hedge::after(delay),
        HedgeDelay::Percentile(p) => Hedge::learned(p),
    };
    hedge.max_in_flight(args.hedge_max)
}

/// Builds every client `args` asks for without sending anything: the settings' errors, early.
pub fn check(args: &Args) -> Result<(), String> {
    for kind in args.clients() {
        client(kind, args, HttpConnector::new()).map(drop)?;
    }
    Ok(())
}

/// A client of `kind` over `connector`, and the counts its events keep.
fn client<C>(
    kind: ClientKind,
    args: &Args,
    connector: C,
) -> Result<(Requester, Arc<Mutex<Counts>>), String>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let counts = Arc::new(Mutex::new(Counts::default()));
    if kind == ClientKind::Bare {
        let client: Client<C, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
        let tally = counts.clone();
        return Ok((
            Box::new(move |request| {
                tally.lock().unwrap().attempts += 1;
                let client = client.clone();
                Box::pin(async move {
                    let response = client.request(request).await?;
                    Ok(response.map(|body| body.map_err(BoxError::from).boxed_unsync()))
                })
            }),
            counts,
        ));
    }
    let client: Client<C, ReplayBody<Full<Bytes>>> =
        Client::builder(TokioExecutor::new()).build(connector);
    let requester = boxed(preset(kind, args, &counts)?.layer(client));
    Ok((requester, counts))
}

fn boxed<S, B>(stack: S) -> Requester
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>, Error = BoxError>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes, Error = BoxError> + Send + 'static,
{
    Box::new(move |request| {
        let stack = stack.clone();
        Box::pin(async move {
            let response = stack.oneshot(request).await?;
            Ok(response.map(BodyExt::boxed_unsync))
        })
    })
}

/// Sends what `args` asks to its URLs through a client of `kind`; returns the results in the
/// order sent, what the events counted, and how long it all took on tokio's clock.
pub async fn run<C>(
    kind: ClientKind,
    args: &Args,
    connector: C,
) -> Result<(Vec<Outcome>, Counts, Duration), String>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let (mut send, counts) = client(kind, args, connector)?;
    let reading = Reading {
        classifier: HttpClassifier::new().retry_unsafe_methods(args.retry_unsafe),
        body_idle_timeout: args.body_idle_timeout,
    };
    let total = match args.duration {
        Some(_) => None,
        None => Some(args.requests.unwrap_or(1) * args.urls.len() as u64),
    };
    let progress = progress(args, kind, total);
    let start = Instant::now();
    let mut results: Vec<(u64, Outcome)> = Vec::new();
    let mut in_flight = futures_util::stream::FuturesUnordered::new();
    let mut index = 0u64;
    loop {
        let due = args
            .rate
            .map(|rate| start + Duration::from_secs_f64(index as f64 / rate));
        let more = match (total, args.duration) {
            (Some(total), _) => index < total,
            (None, Some(duration)) => due.unwrap_or_else(Instant::now) < start + duration,
            (None, None) => false,
        };
        let can_send = more && (in_flight.len() as u64) < args.concurrency.unwrap_or(16);
        if can_send && due.is_none_or(|due| due <= Instant::now()) {
            in_flight.push(send_one(&mut send, args, index, reading.clone())?);
            index += 1;
            continue;
        }
        if in_flight.is_empty() && !more {
            break;
        }
        // `biased`: which branch goes first must not be left to chance, or a seed would not
        // give the same run twice.
        tokio::select! {
            biased;
            Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                results.push(done);
                progress.inc(1);
            }
            () = tokio::time::sleep_until(due.unwrap_or(start)), if can_send => {}
        }
    }
    let elapsed = start.elapsed();
    progress.finish();
    results.sort_by_key(|(index, _)| *index);
    let counts = counts.lock().unwrap().clone();
    Ok((
        results.into_iter().map(|(_, o)| o).collect(),
        counts,
        elapsed,
    ))
}

/// How an answer is read: its body within the idle timeout between frames (tower-http's), its
/// outcome by the classifier.
#[derive(Clone)]
struct Reading {
    classifier: HttpClassifier,
    body_idle_timeout: Option<Duration>,
}

/// Sends request number `index` (to the URLs in turn); the future ends with its outcome.
fn send_one(
    send: &mut Requester,
    args: &Args,
    index: u64,
    Reading {
        classifier,
        body_idle_timeout,
    }: Reading,
) -> Result<impl Future<Output = (u64, Outcome)> + use<>, String> {
    let url = &args.urls[(index % args.urls.len() as u64) as usize];
    let request = request(args, &demo_url(url, index))?;
    let head = head_of(&request);
    let response = send(request);
    Ok(async move {
        let started = Instant::now();
        let result = read(response, body_idle_timeout).await;
        (index, outcome(&classifier, head, result, started.elapsed()))
    })
}

/// A progress bar on stderr (indicatif draws it only on a terminal), none for `--json`.
fn progress(args: &Args, kind: ClientKind, total: Option<u64>) -> ProgressBar {
    let target = if args.json {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    };
    ProgressBar::with_draw_target(total, target)
        .with_style(style(total.is_some()))
        .with_prefix(kind.label(args.demo))
}

fn style(counted: bool) -> ProgressStyle {
    let template = if counted {
        "{prefix:>20} [{bar:30}] {pos}/{len}, {per_sec}, {elapsed}"
    } else {
        "{prefix:>20} {spinner} {pos} done, {per_sec}, {elapsed}"
    };
    ProgressStyle::with_template(template)
        .expect("a valid progress template")
        .progress_chars("#>.")
}

fn request(args: &Args, url: &Uri) -> Result<Request<Full<Bytes>>, String> {
    let mut builder = Request::builder().method(args.method.clone()).uri(url);
    for (name, value) in &args.headers {
        builder = builder.header(name, value);
    }
    builder
        .body(Full::new(args.data.clone().unwrap_or_default()))
        .map_err(|e| format!("bad request for {}: {e}", redacted(url)))
}

/// The request's head, for classifying its outcome.
fn head_of(request: &Request<Full<Bytes>>) -> Request<()> {
    let mut head = Request::new(());
    *head.method_mut() = request.method().clone();
    *head.uri_mut() = request.uri().clone();
    *head.headers_mut() = request.headers().clone();
    head
}

/// Waits for the response and reads its body to the end, like `response.json()`, within the
/// idle timeout between frames.
async fn read(
    response: BoxFuture<'static, Result<Response<ResponseBody>, BoxError>>,
    idle_timeout: Option<Duration>,
) -> Result<(Response<String>, u32), BoxError> {
    let (parts, body) = response.await?.into_parts();
    let attempts = parts.extensions.get::<Attempts>().map_or(1, |a| a.0);
    match idle_timeout {
        Some(idle) => drop(TimeoutBody::new(idle, body).collect().await?),
        None => drop(body.collect().await?),
    }
    Ok((Response::from_parts(parts, String::new()), attempts))
}

fn outcome(
    classifier: &HttpClassifier,
    head: Request<()>,
    result: Result<(Response<String>, u32), BoxError>,
    elapsed: Duration,
) -> Outcome {
    let (classification, status, attempts, error) = match &result {
        Ok((response, attempts)) => (
            classifier.classify(&head, Ok(response)),
            Some(response.status().as_u16()),
            *attempts,
            None,
        ),
        Err(err) => (
            Classify::<_, Response<String>>::classify(classifier, &head, Err(err)),
            None,
            Error::find(err.as_ref())
                .and_then(Error::attempts)
                .unwrap_or(1),
            Some(err),
        ),
    };
    Outcome {
        url: redacted(head.uri()),
        method: head.method().to_string(),
        status,
        attempts,
        elapsed_ms: elapsed.as_secs_f64() * 1000.0,
        reason: classification
            .reason()
            .map_or_else(|| "success".to_owned(), |r| r.to_string()),
        error: error.map(|err| chain_text(err.as_ref())),
        cause: error.and_then(|err| foreign_cause(err.as_ref())),
    }
}

/// `/demo` URLs of the embedded server get the request's number, so every request is its own.
fn demo_url(url: &Uri, index: u64) -> Uri {
    if url.path() == "/demo" {
        let authority = url.authority().map_or("127.0.0.1", |a| a.as_str());
        if let Ok(numbered) = format!("http://{authority}/demo/{index}").parse() {
            return numbered;
        }
    }
    url.clone()
}
