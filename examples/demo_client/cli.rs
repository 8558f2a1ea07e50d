//! The command line: clap's derive, durations by humantime, checked before anything is sent.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use clap::{Parser, ValueEnum};
use http::header::{AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION};
use http::{HeaderName, HeaderValue, Method, Uri};
use serde::Serialize;
use tower_tenacity::retry::Jitter;

/// Sends HTTP requests through tower-tenacity's resilient stack. With no URL, runs a
/// reproducible demo against an embedded flaky server on a simulated clock: a bare client, the
/// preset's defaults, the defaults with hedging, and with hedging and a circuit breaker.
#[derive(Debug, Clone, Parser, Serialize)]
#[command(name = "demo_client", version)]
pub struct Args {
    /// URLs to send to, http:// or https:// (none: the embedded demo)
    #[arg(value_name = "URL", value_parser = parse_url)]
    #[serde(serialize_with = "as_strings")]
    pub urls: Vec<Uri>,
    /// Requests per URL [default: 1; the demo: 2000]
    #[arg(short = 'n', long, value_parser = clap::value_parser!(u64).range(1..))]
    pub requests: Option<u64>,
    /// Send for this long instead of a count (like 10s, 1m)
    #[arg(short = 'z', long, value_parser = humantime::parse_duration, conflicts_with = "requests")]
    #[serde(with = "humantime_serde_opt")]
    pub duration: Option<Duration>,
    /// Requests started per second, whatever the answers (default: as fast as -c allows; the demo: 100)
    #[arg(short = 'q', long, value_parser = positive)]
    pub rate: Option<f64>,
    /// Requests in flight at most [default: 16; the demo: 64]
    #[arg(short = 'c', long, value_parser = clap::value_parser!(u64).range(1..))]
    pub concurrency: Option<u64>,
    /// HTTP method
    #[arg(short = 'X', long, default_value = "GET", value_parser = parse_method)]
    #[serde(serialize_with = "as_string")]
    pub method: Method,
    /// A header to send, "Name: value" (repeatable)
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
    #[serde(serialize_with = "headers_as_strings")]
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The request body
    #[arg(short = 'd', long)]
    #[serde(serialize_with = "body_len")]
    pub data: Option<Bytes>,
    /// Trust the CA certificates in this PEM file too (for https:// with a private CA)
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Attempts per request, the first included
    #[arg(long, default_value_t = 3)]
    pub attempts: u32,
    /// Timeout of each attempt
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    #[serde(with = "humantime_serde")]
    pub attempt_timeout: Duration,
    /// Total time per request, retries and hedges included
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// First backoff delay
    #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
    #[serde(with = "humantime_serde")]
    pub backoff: Duration,
    /// Longest backoff delay
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    /// Backoff jitter: none, full, equal, decorrelated, spread or spread=SHARE (0.0..=1.0)
    #[arg(long, default_value = "full", value_parser = parse_jitter)]
    #[serde(serialize_with = "debug")]
    pub jitter: Jitter,
    /// Longest Retry-After (or open circuit) waited out
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    #[serde(with = "humantime_serde")]
    pub max_retry_after: Duration,
    /// Retries as a share of requests (plus 10 a second)
    #[arg(long, default_value_t = 0.2)]
    pub budget: f64,
    /// No retry budget
    #[arg(long)]
    pub no_budget: bool,
    /// Retry POST and PATCH too
    #[arg(long)]
    pub retry_unsafe: bool,
    /// Longest wait between response body frames
    #[arg(long, value_parser = humantime::parse_duration)]
    #[serde(with = "humantime_serde_opt")]
    pub body_idle_timeout: Option<Duration>,
    /// Send a hedge after this long without an answer: a duration, or pNN for a learned percentile
    #[arg(long, value_name = "DELAY|pNN", value_parser = parse_hedge)]
    pub hedge: Option<HedgeDelay>,
    /// Attempts in flight at most when hedging, the first included
    #[arg(long, default_value_t = 2)]
    pub hedge_max: u32,
    /// Turn the circuit breaker on
    #[arg(long)]
    pub breaker: bool,
    /// The failure ratio over the window that opens the circuit
    #[arg(long, default_value_t = 0.5)]
    pub breaker_ratio: f64,
    /// Calls the window needs before the ratio counts
    #[arg(long, default_value_t = 20)]
    pub breaker_min_calls: u32,
    /// The breaker's sliding window
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    #[serde(with = "humantime_serde")]
    pub breaker_window: Duration,
    /// Open after this many failures in a row instead of on the ratio
    #[arg(long, value_name = "N")]
    pub breaker_consecutive: Option<u32>,
    /// Calls let through while half-open
    #[arg(long, default_value_t = 1)]
    pub breaker_probes: u32,
    /// How long an opened circuit stays open (it grows on repeated failures)
    #[arg(long = "break", default_value = "2s", value_parser = humantime::parse_duration)]
    #[serde(with = "humantime_serde")]
    pub break_duration: Duration,
    /// Seeds the embedded server's faults and the clients' jitter [the demo: 1]
    #[arg(long)]
    pub seed: Option<u64>,
    /// Which client to run (the demo runs all four)
    #[arg(long, value_enum)]
    pub client: Option<ClientKind>,
    /// A bare hyper-util client (the same as --client bare)
    #[arg(long)]
    pub no_resilience: bool,
    /// Write a latency CDF of the runs to this SVG file
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// One JSON object on stdout, nothing else (the schema is in the example's docs)
    #[arg(long)]
    pub json: bool,
    /// The embedded demo runs (no URL was given).
    #[arg(skip)]
    pub demo: bool,
}

/// The clients a run can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientKind {
    /// A bare hyper-util client: one attempt, no timeout
    Bare,
    /// `ResilienceLayer::http()` with the flags' settings
    Defaults,
    /// The same, with hedging on
    Hedging,
    /// The same, with hedging and the circuit breaker on
    BreakerHedging,
}

impl ClientKind {
    /// The column's name; against URLs the one resilient client is just "tower-tenacity".
    pub fn label(self, demo: bool) -> &'static str {
        match self {
            ClientKind::Bare => "bare client",
            ClientKind::Defaults if !demo => "tower-tenacity",
            ClientKind::Defaults => "defaults",
            ClientKind::Hedging => "+ hedging",
            ClientKind::BreakerHedging => "+ hedging, breaker",
        }
    }
}

/// When a hedge is sent.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HedgeDelay {
    /// After a fixed time.
    After(#[serde(with = "humantime_serde")] Duration),
    /// After this percentile of recent latencies.
    Percentile(f64),
}

/// The embedded demo's URL: the in-memory server answers any host.
pub const DEMO_URL: &str = "http://flaky.test/demo";

impl std::fmt::Display for HedgeDelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HedgeDelay::After(delay) => write!(f, "after {}", humantime::format_duration(*delay)),
            HedgeDelay::Percentile(p) => write!(f, "after the p{p} of recent latencies"),
        }
    }
}

impl Args {
    /// Fills in what the flags left to the mode: the demo's URL and its defaults.
    pub fn resolve(mut self) -> Args {
        if self.urls.is_empty() {
            self.urls = vec![Uri::from_static(DEMO_URL)];
            if self.duration.is_none() {
                self.requests.get_or_insert(2000);
            }
            self.rate.get_or_insert(100.0);
            self.concurrency.get_or_insert(64);
            self.seed.get_or_insert(1);
            self.demo = true;
        } else {
            self.requests.get_or_insert(1);
            self.concurrency.get_or_insert(16);
        }
        self
    }

    /// The clients this run uses, in the table's order.
    pub fn clients(&self) -> Vec<ClientKind> {
        if self.no_resilience {
            return vec![ClientKind::Bare];
        }
        match self.client {
            Some(kind) => vec![kind],
            None if self.demo => vec![
                ClientKind::Bare,
                ClientKind::Defaults,
                ClientKind::Hedging,
                ClientKind::BreakerHedging,
            ],
            None => vec![ClientKind::Defaults],
        }
    }
}

fn parse_url(text: &str) -> Result<Uri, String> {
    let uri: Uri = text.parse().map_err(|e| format!("bad URL `{text}`: {e}"))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(_)) => Ok(uri),
        _ => Err(format!(
            "bad URL `{text}`: only http://host… and https://host… URLs are supported"
        )),
    }
}

fn parse_method(text: &str) -> Result<Method, String> {
    Method::from_bytes(text.to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("`{text}` is not an HTTP method"))
}

fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("`{text}` is not a header: use \"Name: value\""))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| format!("`{}` is not a header name", name.trim()))?;
    let value = HeaderValue::from_str(value.trim())
        .map_err(|_| format!("the value of `{name}` is not a header value"))?;
    Ok((name, value))
}

fn parse_jitter(text: &str) -> Result<Jitter, String> {
    Ok(match text {
        "none" => Jitter::None,
        "full" => Jitter::Full,
        "equal" => Jitter::Equal,
        "decorrelated" => Jitter::Decorrelated,
        "spread" => Jitter::Spread(0.5),
        other => match other.strip_prefix("spread=").map(str::parse::<f64>) {
            Some(Ok(share)) if (0.0..=1.0).contains(&share) => Jitter::Spread(share),
            _ => {
                return Err(format!(
                    "unknown `{other}`; use none, full, equal, decorrelated or spread[=0.0..1.0]"
                ));
            }
        },
    })
}

fn parse_hedge(text: &str) -> Result<HedgeDelay, String> {
    if let Some(percentile) = text.strip_prefix('p') {
        return match percentile.parse::<f64>() {
            Ok(p) if p > 0.0 && p < 100.0 => Ok(HedgeDelay::Percentile(p)),
            _ => Err(format!("`{text}`: a percentile is p1 … p99.9")),
        };
    }
    let delay = humantime::parse_duration(text).map_err(|e| format!("`{text}`: {e}"))?;
    Ok(HedgeDelay::After(delay))
}

fn positive(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() && value > 0.0 => Ok(value),
        _ => Err(format!("`{text}` must be a number above 0")),
    }
}

fn as_string<T: std::fmt::Display, S: serde::Serializer>(
    value: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

fn as_strings<S: serde::Serializer>(urls: &[Uri], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(urls.iter().map(redacted))
}

/// `uri` as a report shows it: its userinfo (`user:password@`) and the values of its query
/// (`?access_token=…`) `(redacted)`, as credentials in headers are; they are sent as given.
pub fn redacted(uri: &Uri) -> String {
    let mut text = String::new();
    if let Some(scheme) = uri.scheme_str() {
        text.push_str(scheme);
        text.push_str("://");
    }
    if let Some(authority) = uri.authority() {
        if authority.as_str().contains('@') {
            text.push_str("(redacted)@");
        }
        text.push_str(authority.host());
        if let Some(port) = authority.port() {
            text.push(':');
            text.push_str(port.as_str());
        }
    }
    text.push_str(uri.path());
    if let Some(query) = uri.query() {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) => format!("{name}=(redacted)"),
                None => "(redacted)".to_owned(),
            })
            .collect();
        text.push('?');
        text.push_str(&pairs.join("&"));
    }
    text
}

fn headers_as_strings<S: serde::Serializer>(
    headers: &[(HeaderName, HeaderValue)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    // A report is shared more widely than a command line: credentials stay out of it.
    let secret = [AUTHORIZATION, PROXY_AUTHORIZATION, COOKIE];
    let text = |(name, value): &(HeaderName, HeaderValue)| {
        if secret.contains(name) {
            format!("{name}: (redacted)")
        } else {
            format!("{name}: {}", String::from_utf8_lossy(value.as_bytes()))
        }
    };
    serializer.collect_seq(headers.iter().map(text))
}

fn body_len<S: serde::Serializer>(data: &Option<Bytes>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(data.as_ref().map_or(0, |d| d.len() as u64))
}

fn debug<T: std::fmt::Debug, S: serde::Serializer>(
    value: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&format_args!("{value:?}"))
}

/// Durations in the JSON as humantime writes them (`2s`, `100ms`).
mod humantime_serde {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }
}

mod humantime_serde_opt {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.collect_str(&humantime::format_duration(*d)),
            None => s.serialize_none(),
        }
    }
}
