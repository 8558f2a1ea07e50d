//! What a run came to, as the JSON report (serde) and as the table people read.
//!
//! The JSON schema (`--json`), version 1: one object,
//!
//! | field | what |
//! |---|---|
//! | `schema` | `1` |
//! | `clock` | `"simulated"` (the embedded demo: a paused tokio clock) or `"real"` |
//! | `settings` | every option the run used, by its long flag's name (`attempt_timeout`, …); `data` is the body's length, and the values of `Authorization`, `Proxy-Authorization` and `Cookie` headers are `(redacted)`, as are the URLs' userinfo and query values |
//! | `runs[]` | one per client, in order: |
//! | `runs[].client` | `"bare"`, `"defaults"`, `"hedging"` or `"breaker-hedging"` |
//! | `runs[].requests`, `succeeded`, `failed` | requests, by their final classification |
//! | `runs[].attempts`, `retries`, `hedges` | attempts sent in all, and of them retries and hedges |
//! | `runs[].server_calls` | calls the embedded server saw (`null` against URLs) |
//! | `runs[].circuit_opened` | times the circuit breaker opened |
//! | `runs[].wall_time_ms`, `requests_per_second` | the run's length and rate on its clock |
//! | `runs[].latency_ms` | `p50`, `p90`, `p99`, `p99_9`, `max`: an HDR histogram's, to 3 digits |
//! | `runs[].outcomes` | requests per final reason (`"success"`, `"HTTP status 503"`, …) |
//! | `runs[].give_ups` | why retrying stopped on failures (`"retry budget exhausted"`, …) |
//! | `runs[].results[]` | per request: `url` (userinfo and query values `(redacted)`), `method`, `status` (or `null`), `attempts`, `elapsed_ms`, `reason`, `error` (or `null`) |

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::cli::{Args, ClientKind};

/// One request's result.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub url: String,
    pub method: String,
    pub status: Option<u16>,
    pub attempts: u32,
    pub elapsed_ms: f64,
    pub reason: String,
    pub error: Option<String>,
    /// What the client's error said, beyond this crate's own errors (`error` has it too).
    #[serde(skip)]
    pub cause: Option<String>,
}

/// An error and its causes on one line.
pub fn chain_text(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = String::new();
    for cause in chain(err) {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&cause_text);
        }
    }
    text
}

/// What the client's own error said, beneath this crate's (which name the request, and whose
/// reason the table has already counted): `None` when the error was all ours.
pub fn foreign_cause(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let foreign = chain(err).find(|cause| !cause.is::<tower_tenacity::Error>())?;
    Some(chain_text(foreign))
}

/// `err` and its chain of sources.
fn chain<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(err), |e| e.source())
}

/// Latency percentiles, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub max: f64,
}

/// One client's run.
#[derive(Debug, Serialize)]
pub struct Run {
    pub client: ClientKind,
    /// The demo's columns are named for what they add; a run against URLs is "tower-tenacity".
    #[serde(skip)]
    pub demo: bool,
    pub requests: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub attempts: u64,
    pub retries: u64,
    pub hedges: u64,
    pub server_calls: Option<u64>,
    pub circuit_opened: u64,
    pub wall_time_ms: f64,
    pub requests_per_second: f64,
    pub latency_ms: Percentiles,
    pub outcomes: BTreeMap<String, u64>,
    pub give_ups: BTreeMap<String, u64>,
    /// Failures per reason and cause (`could not connect: … Connection refused`).
    #[serde(skip)]
    pub causes: BTreeMap<String, u64>,
    pub results: Vec<Outcome>,
    /// Latencies in microseconds.
    #[serde(skip)]
    pub histogram: Histogram<u64>,
}

/// The whole report.
#[derive(Debug, Serialize)]
pub struct Document<'a> {
    pub schema: u32,
    pub clock: &'static str,
    pub settings: &'a Args,
    pub runs: &'a [Run],
}

/// What the stack's events counted during a run.
#[derive(Debug, Default, Clone)]
pub struct Counts {
    pub attempts: u64,
    pub hedges: u64,
    pub circuit_opened: u64,
    pub give_ups: BTreeMap<String, u64>,
}

impl Run {
    pub fn new(
        (client, demo): (ClientKind, bool),
        results: Vec<Outcome>,
        counts: Counts,
        wall_time: std::time::Duration,
        server_calls: Option<u64>,
    ) -> Run {
        let mut histogram =
            Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds");
        let mut outcomes = BTreeMap::new();
        let mut causes = BTreeMap::new();
        for result in &results {
            histogram.saturating_record((result.elapsed_ms * 1000.0).round().max(1.0) as u64);
            *outcomes.entry(result.reason.clone()).or_default() += 1;
            if let Some(cause) = &result.cause {
                *causes
                    .entry(format!("{}: {cause}", result.reason))
                    .or_default() += 1;
            }
        }
        let requests = results.len() as u64;
        let succeeded = outcomes.get("success").copied().unwrap_or(0);
        let attempts = counts.attempts;
        let at = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
        let latency_ms = Percentiles {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            p99_9: at(0.999),
            max: histogram.max() as f64 / 1000.0,
        };
        let seconds = wall_time.as_secs_f64();
        Run {
            client,
            demo,
            requests,
            succeeded,
            failed: requests - succeeded,
            attempts,
            // Every attempt but each request's first and the hedges.
            retries: attempts.saturating_sub(requests + counts.hedges),
            hedges: counts.hedges,
            server_calls,
            circuit_opened: counts.circuit_opened,
            wall_time_ms: seconds * 1000.0,
            requests_per_second: if seconds > 0.0 {
                requests as f64 / seconds
            } else {
                0.0
            },
            latency_ms,
            outcomes,
            give_ups: counts.give_ups,
            causes,
            results,
            histogram,
        }
    }

    pub fn label(&self) -> &'static str {
        self.client.label(self.demo)
    }

    pub fn success_rate(&self) -> f64 {
        100.0 * self.succeeded as f64 / self.requests.max(1) as f64
    }
}

/// A latency for people: a tenth of a millisecond below 10 ms, whole milliseconds above.
pub fn ms(millis: f64) -> String {
    if millis < 10.0 {
        format!("{millis:.1} ms")
    } else {
        format!("{millis:.0} ms")
    }
}

/// The runs side by side, as printed; `clock` names the clock their times are on.
pub fn table(runs: &[Run], clock: &str) -> String {
    let mut out = Table(String::new());
    let each = |f: &dyn Fn(&Run) -> String| runs.iter().map(f).collect::<Vec<_>>();
    out.line("");
    out.row("", each(&|r| r.label().to_owned()));
    out.row(
        "success rate",
        each(&|r| format!("{:.1}%", r.success_rate())),
    );
    out.row(
        "succeeded / requests",
        each(&|r| format!("{}/{}", r.succeeded, r.requests)),
    );
    out.row(
        "attempts (retry, hedge)",
        each(&|r| format!("{} ({}, {})", r.attempts, r.retries, r.hedges)),
    );
    if runs.iter().any(|r| r.server_calls.is_some()) {
        out.row(
            "server calls per request",
            each(&|r| match r.server_calls {
                Some(calls) => format!("{:.2}", calls as f64 / r.requests.max(1) as f64),
                None => "-".into(),
            }),
        );
    }
    out.row("circuit opened", each(&|r| r.circuit_opened.to_string()));
    out.row(
        "requests per second",
        each(&|r| format!("{:.1}", r.requests_per_second)),
    );
    out.row(
        &format!("time ({clock})"),
        each(&|r| format!("{:.2} s", r.wall_time_ms / 1000.0)),
    );
    let latency = |out: &mut Table, name: &str, pick: fn(&Percentiles) -> f64| {
        out.row(name, each(&|r| ms(pick(&r.latency_ms))));
    };
    latency(&mut out, "latency p50", |p| p.p50);
    latency(&mut out, "latency p90", |p| p.p90);
    latency(&mut out, "latency p99", |p| p.p99);
    latency(&mut out, "latency p99.9", |p| p.p99_9);
    latency(&mut out, "latency max", |p| p.max);
    out.counts(runs, "outcomes by reason:", |r| &r.outcomes);
    if runs.iter().any(|r| !r.give_ups.is_empty()) {
        out.counts(runs, "why retrying stopped on a failure:", |r| &r.give_ups);
    }
    out.histograms(runs);
    out.0
}

/// The lines under the table against URLs: what the client's errors said, by reason, with
/// counts. "could not connect" alone does not tell a refused connection from a reset one.
pub fn causes(runs: &[Run]) -> String {
    let mut out = Table(String::new());
    for run in runs.iter().filter(|r| !r.causes.is_empty()) {
        match runs.len() {
            1 => out.line("errors by cause:"),
            _ => out.line(&format!("errors by cause ({}):", run.label())),
        }
        for (cause, count) in &run.causes {
            out.line(&format!("  {count:>6}  {cause}"));
        }
    }
    out.0
}

/// Text being laid out as lines and columns.
struct Table(String);

impl Table {
    fn line(&mut self, text: &str) {
        self.0.push_str(text);
        self.0.push('\n');
    }

    fn row(&mut self, name: &str, cells: Vec<String>) {
        let cells: String = cells.iter().map(|c| format!("{c:>19}")).collect();
        self.line(&format!("{name:<25}{cells}"));
    }

    fn counts(&mut self, runs: &[Run], title: &str, pick: fn(&Run) -> &BTreeMap<String, u64>) {
        self.line(title);
        let mut keys: Vec<&String> = runs.iter().flat_map(|r| pick(r).keys()).collect();
        // Success first, then the rest by name.
        keys.sort_by_key(|key| (key.as_str() != "success", key.to_string()));
        keys.dedup();
        for key in keys {
            let cells = runs
                .iter()
                .map(|r| pick(r).get(key).copied().unwrap_or(0).to_string())
                .collect();
            self.row(&format!("  {key}"), cells);
        }
    }
}

/// Buckets a decade is cut into, from 1 ms to 10 s.
const PER_DECADE: u32 = 6;
const DECADES: u32 = 4;

impl Table {
    /// One line per run: how many requests took each time, on a log scale of time and of
    /// counts (so that the small hump of stalls shows beside the big one of answers).
    fn histograms(&mut self, runs: &[Run]) {
        const LEVELS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
        self.line("latency histogram (log scale):");
        for run in runs {
            let counts = buckets(&run.histogram);
            let top = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
            let line: String = counts
                .iter()
                .map(|&n| {
                    let level = ((n as f64).ln_1p() / top.ln_1p() * 8.0).ceil() as usize;
                    LEVELS[level.min(8)]
                })
                .collect();
            self.line(&format!("  {:<23}|{line}|", run.label()));
        }
        let width = (PER_DECADE * DECADES) as usize;
        let mut axis = vec![' '; width + 6];
        for (decade, label) in ["1ms", "10ms", "100ms", "1s", "10s"].iter().enumerate() {
            let at = decade * PER_DECADE as usize;
            for (i, c) in label.chars().enumerate() {
                if let Some(slot) = axis.get_mut(at + i) {
                    *slot = c;
                }
            }
        }
        let axis: String = axis.iter().collect();
        self.line(&format!("  {:<23} {}", "", axis.trim_end()));
    }
}

/// Requests per log-spaced bucket from 1 ms to 10 s (the first takes all below, the last all
/// above).
fn buckets(histogram: &Histogram<u64>) -> Vec<u64> {
    let width = PER_DECADE * DECADES;
    let edge = |k: u32| 1000.0 * 10f64.powf(f64::from(k) / f64::from(PER_DECADE));
    (0..width)
        .map(|k| {
            let low = if k == 0 { 0 } else { edge(k) as u64 };
            let high = if k + 1 == width {
                u64::MAX
            } else {
                edge(k + 1) as u64 - 1
            };
            histogram.count_between(low, high.min(histogram.high()))
        })
        .collect()
}
