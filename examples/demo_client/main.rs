//! The demo client: tower-tenacity's HTTP stack over a hyper-util client.
//!
//! ```text
//! cargo run --release --example demo_client                  # embedded flaky server, before/after
//! cargo run --release --example demo_client -- -n 20 http://127.0.0.1:8080/x --json
//! ```
//!
//! With no URL it starts a flaky hyper server on 127.0.0.1 (503s, 429s with `Retry-After`,
//! stalls past the attempt timeout, reset connections, drip-fed bodies), sends the same requests
//! twice, first with a bare hyper-util client and then through the resilient stack, and prints a
//! before/after table. With URLs it sends to them. Exit code: 0 when every request succeeded,
//! 1 when some failed, 2 on bad arguments.

mod server;

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Arg, ArgAction, ArgMatches, Command};
use http::{Method, Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use tower::{Layer, Service, ServiceExt};
use tower_tenacity::classify::{Classification, Classify};
use tower_tenacity::http::{Attempts, BodyTimeoutLayer, HttpClassifier, ReplayBody};
use tower_tenacity::retry::{Event, ExponentialBackoff, GiveUp, Jitter, RetryBudget};
use tower_tenacity::{BoxError, Error, ResilienceLayer};

/// Everything the command line says.
#[derive(Debug, Clone)]
struct Options {
    urls: Vec<Uri>,
    requests: usize,
    concurrency: usize,
    method: Method,
    data: Option<Bytes>,
    attempts: u32,
    attempt_timeout: Duration,
    timeout: Duration,
    backoff: Duration,
    backoff_max: Duration,
    jitter: Jitter,
    max_retry_after: Duration,
    budget: Option<f64>,
    retry_unsafe: bool,
    body_idle_timeout: Option<Duration>,
    resilience: bool,
    json: bool,
}

fn command() -> Command {
    let value = |name: &'static str, short: Option<char>, help: &'static str| {
        let arg = Arg::new(name).long(name).help(help).action(ArgAction::Set);
        match short {
            Some(short) => arg.short(short),
            None => arg,
        }
    };
    let flag = |name: &'static str, help: &'static str| {
        Arg::new(name)
            .long(name)
            .help(help)
            .action(ArgAction::SetTrue)
    };
    Command::new("demo_client")
        .about("Sends HTTP requests through tower-tenacity's resilient stack; with no URL, runs a before/after demo against an embedded flaky server")
        .arg(Arg::new("urls").value_name("URL").num_args(0..).help("URLs to send to (none: the embedded demo)"))
        .arg(value("requests", Some('n'), "requests per URL [1]"))
        .arg(value("concurrency", Some('c'), "requests in flight [16]"))
        .arg(value("method", Some('X'), "HTTP method [GET]"))
        .arg(value("data", Some('d'), "request body"))
        .arg(value("attempts", None, "attempts per request, the first included [3]"))
        .arg(value("attempt-timeout", None, "timeout of each attempt [2s]"))
        .arg(value("timeout", None, "total time per request [10s]"))
        .arg(value("backoff", None, "first backoff delay [100ms]"))
        .arg(value("backoff-max", None, "longest backoff delay [5s]"))
        .arg(value("jitter", None, "none|full|equal|decorrelated|spread[=SHARE] [full]"))
        .arg(value("max-retry-after", None, "longest Retry-After honoured [60s]"))
        .arg(value("budget", None, "retries as a share of requests [0.2]"))
        .arg(flag("no-budget", "no retry budget"))
        .arg(flag("retry-unsafe", "retry POST and PATCH too"))
        .arg(value("body-idle-timeout", None, "longest wait between response body frames"))
        .arg(flag("no-resilience", "a bare hyper-util client"))
        .arg(flag("json", "one JSON object on stdout, nothing else"))
}

/// `250ms`, `2s`, `1.5s`, `1m`.
fn parse_duration(name: &str, text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("--{name}: `{text}` is not a duration (like 250ms, 2s, 1m)"))?;
    let seconds = match unit {
        "ms" => number / 1000.0,
        "s" => number,
        "m" => number * 60.0,
        _ => return Err(format!("--{name}: `{text}` needs a unit: ms, s or m")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("--{name}: `{text}` is out of range"))
}

fn options(matches: &ArgMatches) -> Result<Options, String> {
    let text = |name: &str| matches.get_one::<String>(name).map(String::as_str);
    let duration = |name: &str, default: &str| parse_duration(name, text(name).unwrap_or(default));
    let count = |name: &str, default: usize| -> Result<usize, String> {
        match text(name) {
            None => Ok(default),
            Some(value) => value
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("--{name}: `{value}` must be a whole number of at least 1")),
        }
    };
    let urls = matches
        .get_many::<String>("urls")
        .into_iter()
        .flatten()
        .map(|url| {
            let uri: Uri = url.parse().map_err(|e| format!("bad URL `{url}`: {e}"))?;
            match (uri.scheme_str(), uri.host()) {
                (Some("http"), Some(_)) => Ok(uri),
                _ => Err(format!(
                    "bad URL `{url}`: only http://host… URLs are supported"
                )),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let method = match text("method") {
        None => Method::GET,
        Some(m) => Method::from_bytes(m.to_ascii_uppercase().as_bytes())
            .map_err(|_| format!("--method: `{m}` is not an HTTP method"))?,
    };
    let jitter = match text("jitter").unwrap_or("full") {
        "none" => Jitter::None,
        "full" => Jitter::Full,
        "equal" => Jitter::Equal,
        "decorrelated" => Jitter::Decorrelated,
        "spread" => Jitter::Spread(0.5),
        other => match other.strip_prefix("spread=").map(str::parse::<f64>) {
            Some(Ok(share)) if (0.0..=1.0).contains(&share) => Jitter::Spread(share),
            _ => {
                return Err(format!(
                    "--jitter: unknown `{other}`; use none, full, equal, decorrelated or spread[=0.0..1.0]"
                ));
            }
        },
    };
    let attempts = match text("attempts") {
        None => 3,
        Some(value) => value
            .parse::<u32>()
            .map_err(|_| format!("--attempts: `{value}` is not a whole number"))?,
    };
    let budget = if matches.get_flag("no-budget") {
        None
    } else {
        let value = text("budget").unwrap_or("0.2");
        Some(
            value
                .parse::<f64>()
                .map_err(|_| format!("--budget: `{value}` is not a number"))?,
        )
    };
    Ok(Options {
        urls,
        requests: count("requests", 1)?,
        concurrency: count("concurrency", 16)?,
        method,
        data: text("data").map(|d| Bytes::copy_from_slice(d.as_bytes())),
        attempts,
        attempt_timeout: duration("attempt-timeout", "2s")?,
        timeout: duration("timeout", "10s")?,
        backoff: duration("backoff", "100ms")?,
        backoff_max: duration("backoff-max", "5s")?,
        jitter,
        max_retry_after: duration("max-retry-after", "60s")?,
        budget,
        retry_unsafe: matches.get_flag("retry-unsafe"),
        body_idle_timeout: text("body-idle-timeout")
            .map(|d| parse_duration("body-idle-timeout", d))
            .transpose()?,
        resilience: !matches.get_flag("no-resilience"),
        json: matches.get_flag("json"),
    })
}

/// What one request came to.
#[derive(Debug, Clone)]
struct Outcome {
    url: String,
    method: Method,
    status: Option<u16>,
    attempts: u32,
    elapsed: Duration,
    error: Option<String>,
    classification: Classification,
}

/// What a run came to.
#[derive(Debug, Default)]
struct Report {
    outcomes: Vec<Outcome>,
    attempts: u64,
    /// Why the retry loop stopped on failures, from its events.
    give_ups: BTreeMap<String, usize>,
}

impl Report {
    fn succeeded(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| o.classification.is_success())
            .count()
    }

    fn by_reason(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for outcome in &self.outcomes {
            let key = match outcome.classification.reason() {
                None => "success".to_owned(),
                Some(reason) => reason.to_string(),
            };
            *counts.entry(key).or_default() += 1;
        }
        counts
    }

    /// p50, p99 and max latency in milliseconds.
    fn latency(&self) -> (f64, f64, f64) {
        let mut ms: Vec<f64> = self
            .outcomes
            .iter()
            .map(|o| o.elapsed.as_secs_f64() * 1000.0)
            .collect();
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| {
            if ms.is_empty() {
                return 0.0;
            }
            let index = ((ms.len() as f64 * q).ceil() as usize).clamp(1, ms.len()) - 1;
            ms[index]
        };
        (at(0.50), at(0.99), ms.last().copied().unwrap_or(0.0))
    }

    fn json(&self) -> serde_json::Value {
        let (p50, p99, max) = self.latency();
        let requests = self.outcomes.len();
        json!({
            "requests": requests,
            "succeeded": self.succeeded(),
            "failed": requests - self.succeeded(),
            "attempts": self.attempts,
            "retries": self.attempts.saturating_sub(requests as u64),
            "outcomes": self.by_reason(),
            "latency_ms": { "p50": round(p50), "p99": round(p99), "max": round(max) },
            "results": self.outcomes.iter().map(|o| json!({
                "url": o.url,
                "method": o.method.as_str(),
                "status": o.status,
                "attempts": o.attempts,
                "elapsed_ms": round(o.elapsed.as_secs_f64() * 1000.0),
                "error": o.error,
            })).collect::<Vec<_>>(),
        })
    }
}

fn round(ms: f64) -> f64 {
    (ms * 10.0).round() / 10.0
}

/// The body of a response from either sender.
type ResponseBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

type Requester = Box<
    dyn FnMut(
            Request<Full<Bytes>>,
        )
            -> futures_util::future::BoxFuture<'static, Result<Response<ResponseBody>, BoxError>>
        + Send,
>;

/// What the resilient stack's events said.
#[derive(Debug, Default)]
struct Tally {
    attempts: AtomicU64,
    give_ups: std::sync::Mutex<BTreeMap<String, usize>>,
}

/// A sender of requests: the bare client, or the client inside the resilient stack.
fn sender(options: &Options, tally: Arc<Tally>) -> Result<Requester, String> {
    if !options.resilience {
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        return Ok(Box::new(move |request| {
            tally.attempts.fetch_add(1, Ordering::Relaxed);
            let client = client.clone();
            Box::pin(async move {
                let response = client.request(request).await?;
                Ok(response.map(|body| body.map_err(BoxError::from).boxed_unsync()))
            })
        }));
    }
    let client: Client<HttpConnector, ReplayBody<Full<Bytes>>> =
        Client::builder(TokioExecutor::new()).build_http();
    let backoff = ExponentialBackoff::new(options.backoff, 2.0, options.backoff_max)
        .with_jitter(options.jitter);
    let mut builder = ResilienceLayer::http()
        .total_timeout(options.timeout)
        .attempt_timeout(options.attempt_timeout)
        .max_attempts(options.attempts)
        .backoff(backoff)
        .max_retry_after(options.max_retry_after)
        .observer(move |event: &Event| match event {
            Event::Attempt { .. } => {
                tally.attempts.fetch_add(1, Ordering::Relaxed);
            }
            Event::GiveUp { why, .. } if *why != GiveUp::Fatal => {
                *tally
                    .give_ups
                    .lock()
                    .unwrap()
                    .entry(why.to_string())
                    .or_default() += 1;
            }
            _ => {}
        });
    builder = match options.budget {
        None => builder.no_budget(),
        Some(ratio) => builder.budget(
            RetryBudget::new(ratio, 10, Duration::from_secs(1)).map_err(|e| e.to_string())?,
        ),
    };
    if options.retry_unsafe {
        builder = builder.retry_unsafe_methods();
    }
    let stack = builder.build().map_err(|e| e.to_string())?.layer(client);
    Ok(Box::new(move |request| {
        let mut stack = stack.clone();
        Box::pin(async move {
            let response = stack.ready().await?.call(request).await?;
            Ok(response.map(BodyExt::boxed_unsync))
        })
    }))
}

/// Sends `options.requests` requests to each URL, `options.concurrency` at a time.
async fn run(options: &Options, progress: Option<&str>) -> Result<Report, String> {
    let tally = Arc::new(Tally::default());
    let mut send = sender(options, tally.clone())?;
    let classifier = if options.retry_unsafe {
        HttpClassifier::new().retry_unsafe_methods(true)
    } else {
        HttpClassifier::new()
    };
    let jobs: Vec<(usize, Uri)> = options
        .urls
        .iter()
        .flat_map(|url| std::iter::repeat_n(url.clone(), options.requests))
        .enumerate()
        .collect();
    let total = jobs.len();
    let body_timeout = BodyTimeoutLayer::new().idle(options.body_idle_timeout);
    let done = Arc::new(AtomicU64::new(0));
    let mut outcomes: Vec<(usize, Outcome)> = Vec::with_capacity(total);
    let mut in_flight = futures_util::stream::FuturesUnordered::new();
    let mut pending = jobs.into_iter();
    loop {
        while in_flight.len() < options.concurrency {
            let Some((index, url)) = pending.next() else {
                break;
            };
            // The demo's requests each get their own path, so that the server rolls anew.
            let url = demo_url(&url, index);
            let request = Request::builder()
                .method(options.method.clone())
                .uri(url.clone())
                .body(Full::new(options.data.clone().unwrap_or_default()))
                .map_err(|e| format!("bad request for {url}: {e}"))?;
            let head = Request::builder()
                .method(options.method.clone())
                .uri(url.clone())
                .body(())
                .map_err(|e| e.to_string())?;
            let response = send(request);
            let classifier = classifier.clone();
            in_flight.push(async move {
                let started = Instant::now();
                let result = async {
                    let response = response.await?;
                    let (parts, body) = response.into_parts();
                    let attempts = parts.extensions.get::<Attempts>().map_or(1, |a| a.0);
                    // Read to the end, like `response.json()`, within the body timeouts.
                    let body = body_timeout.wrap(body).collect().await?;
                    let _ = body.to_bytes();
                    Ok::<_, BoxError>((Response::from_parts(parts, String::new()), attempts))
                }
                .await;
                let elapsed = started.elapsed();
                let outcome = match result {
                    Ok((response, attempts)) => Outcome {
                        url: url.to_string(),
                        method: head.method().clone(),
                        status: Some(response.status().as_u16()),
                        attempts,
                        elapsed,
                        error: None,
                        classification: Classify::classify(&classifier, &head, Ok(&response)),
                    },
                    Err(err) => Outcome {
                        url: url.to_string(),
                        method: head.method().clone(),
                        status: None,
                        attempts: Error::find(err.as_ref())
                            .and_then(Error::attempts)
                            .unwrap_or(1),
                        elapsed,
                        error: Some(error_text(&err)),
                        classification: Classify::<_, Response<String>>::classify(
                            &classifier,
                            &head,
                            Err(&err),
                        ),
                    },
                };
                (index, outcome)
            });
        }
        let Some(finished) = futures_util::StreamExt::next(&mut in_flight).await else {
            break;
        };
        outcomes.push(finished);
        let count = done.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(label) = progress {
            draw_progress(label, count as usize, total);
        }
    }
    outcomes.sort_by_key(|(index, _)| *index);
    let give_ups = std::mem::take(&mut *tally.give_ups.lock().unwrap());
    Ok(Report {
        outcomes: outcomes.into_iter().map(|(_, o)| o).collect(),
        attempts: tally.attempts.load(Ordering::Relaxed),
        give_ups,
    })
}

/// `/demo` URLs of the embedded server get the request's number, so every request is its own.
fn demo_url(url: &Uri, index: usize) -> Uri {
    if url.path() == "/demo" {
        let authority = url.authority().map(|a| a.as_str()).unwrap_or("127.0.0.1");
        if let Ok(numbered) = format!("http://{authority}/demo/{index}").parse() {
            return numbered;
        }
    }
    url.clone()
}

/// An error and its causes on one line.
fn error_text(err: &BoxError) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn draw_progress(label: &str, done: usize, total: usize) {
    const WIDTH: usize = 30;
    let filled = done * WIDTH / total.max(1);
    let mut stderr = std::io::stderr();
    let _ = write!(
        stderr,
        "\r{label:<10} [{}{}] {done}/{total}",
        "#".repeat(filled),
        ".".repeat(WIDTH - filled)
    );
    if done == total {
        let _ = writeln!(stderr);
    }
    let _ = stderr.flush();
}

fn print_summary(report: &Report) {
    let (p50, p99, max) = report.latency();
    let requests = report.outcomes.len();
    println!(
        "{requests} requests: {} succeeded, {} failed; {} attempts; latency p50 {}, p99 {}, max {}",
        report.succeeded(),
        requests - report.succeeded(),
        report.attempts,
        ms(p50),
        ms(p99),
        ms(max),
    );
    for (reason, count) in report.by_reason() {
        println!("  {reason:<24} {count}");
    }
    for (why, count) in &report.give_ups {
        println!("  gave up: {why:<15} {count}");
    }
}

/// A latency for people: a tenth of a millisecond below 10 ms (loopback answers take less than
/// one), whole milliseconds above.
fn ms(millis: f64) -> String {
    if millis < 10.0 {
        format!("{millis:.1} ms")
    } else {
        format!("{millis:.0} ms")
    }
}

fn print_comparison(before: &Report, after: &Report, budget: Option<f64>) {
    let row = |name: &str, b: String, a: String| println!("{name:<26} {b:>14} {a:>14}");
    let pct = |r: &Report| {
        format!(
            "{:.1}%",
            100.0 * r.succeeded() as f64 / r.outcomes.len().max(1) as f64
        )
    };
    let (b50, b99, bmax) = before.latency();
    let (a50, a99, amax) = after.latency();
    println!();
    row("", "bare client".into(), "tower-tenacity".into());
    row("success rate", pct(before), pct(after));
    row(
        "succeeded / requests",
        format!("{}/{}", before.succeeded(), before.outcomes.len()),
        format!("{}/{}", after.succeeded(), after.outcomes.len()),
    );
    row(
        "attempts",
        before.attempts.to_string(),
        after.attempts.to_string(),
    );
    let retries = |r: &Report| {
        r.attempts
            .saturating_sub(r.outcomes.len() as u64)
            .to_string()
    };
    row("retries", retries(before), retries(after));
    row("latency p50", ms(b50), ms(a50));
    row("latency p99", ms(b99), ms(a99));
    row("latency max", ms(bmax), ms(amax));
    println!("outcomes by reason:");
    let (b, a) = (before.by_reason(), after.by_reason());
    let mut reasons: Vec<&String> = b.keys().chain(a.keys()).collect();
    // Success first, then the failures by name.
    reasons.sort_by_key(|reason| (reason.as_str() != "success", reason.to_string()));
    reasons.dedup();
    for reason in reasons {
        row(
            &format!("  {reason}"),
            b.get(reason).copied().unwrap_or(0).to_string(),
            a.get(reason).copied().unwrap_or(0).to_string(),
        );
    }
    if !after.give_ups.is_empty() {
        println!("why tower-tenacity stopped retrying a failure:");
        for (why, count) in &after.give_ups {
            row(&format!("  {why}"), "-".into(), count.to_string());
        }
        if after.give_ups.contains_key(&GiveUp::Budget.to_string()) {
            let share = budget.map_or(String::new(), |ratio| format!("{}%", ratio * 100.0));
            println!(
                "(the retry budget caps retries at {share} of requests plus 10 a second, so that a failing server is not buried in retries; --no-budget lifts it)"
            );
        }
    }
}

async fn demo(mut options: Options) -> Result<ExitCode, String> {
    let server = server::FlakyServer::start()
        .await
        .map_err(|e| format!("could not start the demo server on 127.0.0.1: {e}"))?;
    options.urls = vec![
        server
            .url("/demo")
            .parse()
            .map_err(|e| format!("demo URL: {e}"))?,
    ];
    if options.requests == 1 {
        options.requests = 300;
    }
    options.concurrency = options.concurrency.max(32);
    let show_progress = !options.json && std::io::stderr().is_terminal();
    if !options.json {
        println!(
            "Embedded flaky server on http://{}: 60% fine, 12% 503, 8% 429 + Retry-After, 6% stall 3 s, 8% reset, 6% drip-fed body.",
            server.addr
        );
        println!(
            "Sending {} requests, {} at a time: first a bare hyper-util client, then tower-tenacity (attempt timeout {:?}, total {:?}, {} attempts).",
            options.requests,
            options.concurrency,
            options.attempt_timeout,
            options.timeout,
            options.attempts
        );
    }
    let bare = Options {
        resilience: false,
        ..options.clone()
    };
    let before = run(&bare, show_progress.then_some("bare")).await?;
    let after = run(&options, show_progress.then_some("resilient")).await?;
    if options.json {
        println!(
            "{}",
            json!({ "before": before.json(), "after": after.json() })
        );
    } else {
        print_comparison(&before, &after, options.budget);
    }
    // The demo ran: that is its success, whatever the flaky server did.
    Ok(ExitCode::SUCCESS)
}

fn exit_code(report: &Report) -> ExitCode {
    if report.succeeded() == report.outcomes.len() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn check(options: &Options) -> Result<(), String> {
    let mut builder = ResilienceLayer::http()
        .total_timeout(options.timeout)
        .attempt_timeout(options.attempt_timeout)
        .max_attempts(options.attempts)
        .backoff(
            ExponentialBackoff::new(options.backoff, 2.0, options.backoff_max)
                .with_jitter(options.jitter),
        );
    if let Some(ratio) = options.budget {
        builder = builder.budget(
            RetryBudget::new(ratio, 10, Duration::from_secs(1)).map_err(|e| e.to_string())?,
        );
    }
    builder.build().map(|_| ()).map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    let matches = match command().try_get_matches() {
        Ok(matches) => matches,
        Err(err) if err.use_stderr() => {
            let _ = err.print();
            return ExitCode::from(2);
        }
        Err(err) => {
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
    };
    let options = match options(&matches).and_then(|o| check(&o).map(|()| o)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let result = if options.urls.is_empty() {
        demo(options).await
    } else {
        let progress = (!options.json && std::io::stderr().is_terminal()).then_some("requests");
        match run(&options, progress).await {
            Ok(report) => {
                if options.json {
                    println!("{}", report.json());
                } else {
                    print_summary(&report);
                }
                Ok(exit_code(&report))
            }
            Err(message) => Err(message),
        }
    };
    result.unwrap_or_else(|message| {
        eprintln!("error: {message}");
        ExitCode::from(2)
    })
}
