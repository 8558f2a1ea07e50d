//! The demo client: tower-tenacity's HTTP stack over a hyper-util client.
//!
//! ```text
//! cargo run --release --example demo_client                  # the embedded demo, seed 1
//! cargo run --release --example demo_client -- --seed 7 --plot latency.svg
//! cargo run --release --example demo_client -- -n 20 -H "Accept: application/json" https://example.com/ --json
//! ```
//!
//! With no URL it runs the embedded demo: a real hyper server with the fault mix of
//! `server.rs` (503s, 429s with `Retry-After`, stalls past the attempt timeout, reset
//! connections, drip-fed bodies and a one-second outage), reached by a real hyper client over
//! in-memory pipes on tokio's paused clock. Four clients send the same requests at the same
//! rate: a bare hyper-util client, `ResilienceLayer::http()`'s defaults, the defaults with
//! hedging, and with hedging and a circuit breaker. A seed gives the same table to the digit, every time, in about a
//! second of real time, whatever the machine. With URLs it is a load tool over real sockets
//! (http:// and https://). Exit code: 0 when every request succeeded (and always for the demo),
//! 1 when some failed, 2 on bad arguments; a closed stdout (`| head`) ends the run quietly, with
//! that code. `--json` prints one object, whose schema is in `report.rs`; against URLs the table
//! is followed by what the client's errors said, by cause.

mod cli;
mod pipe;
mod plot;
mod report;
mod send;
mod server;
mod tls;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;

use cli::{Args, ClientKind};
use report::{Document, Run};

/// Why a run ended before its report was printed in full.
enum Stop {
    /// Something failed (a bad setting, no runtime): said on stderr, exit code 2.
    Failed(String),
    /// Stdout was closed (`demo_client … | head`): nothing more to say, and no one to say it to.
    StdoutClosed,
}

impl From<String> for Stop {
    fn from(message: String) -> Stop {
        Stop::Failed(message)
    }
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args.resolve(),
        Err(err) => {
            let code = if err.use_stderr() { 2 } else { 0 };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    let ran = send::check(&args).map_err(Stop::from).and_then(|()| {
        if args.demo {
            demo(&args).map(|_| ExitCode::SUCCESS)
        } else {
            urls(&args)
        }
    });
    match ran {
        Ok(code) => code,
        Err(Stop::StdoutClosed) => ExitCode::SUCCESS,
        Err(Stop::Failed(message)) => {
            // Not `eprintln!`: a closed stderr is no reason to panic either.
            let _ = writeln!(io::stderr(), "error: {message}");
            ExitCode::from(2)
        }
    }
}

/// Prints `text` on stdout. A closed stdout stops the run ([`Stop::StdoutClosed`]) where
/// `println!` would panic.
fn say(text: &str) -> Result<(), Stop> {
    let mut stdout = io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Err(Stop::StdoutClosed),
        Err(err) => Err(Stop::Failed(format!("writing to stdout: {err}"))),
    }
}

/// The embedded demo: each client on a runtime of its own, on a paused clock, against a fresh
/// server with the same seed.
fn demo(args: &Args) -> Result<Vec<Run>, Stop> {
    let seed = args.seed.unwrap_or(1);
    if !args.json {
        say(&format!(
            "Embedded flaky server (seed {seed}; in memory, on a simulated clock): {}.\n",
            server::DEMO_MIX
        ))?;
        let (_, hedge) = send::features(ClientKind::BreakerHedging, args);
        say(&format!(
            "{} requests, {} a second, at most {} at a time; attempt timeout {}, total {}, {} attempts; \
             breaker at {:.0}% failures, hedging {}.\n",
            args.requests
                .map_or("Sending for a time:".to_owned(), |n| format!("Sending {n}")),
            args.rate.unwrap_or(0.0),
            args.concurrency.unwrap_or(64),
            humantime::format_duration(args.attempt_timeout),
            humantime::format_duration(args.timeout),
            args.attempts,
            args.breaker_ratio * 100.0,
            hedge.map_or(String::new(), |h| h.to_string()),
        ))?;
    }
    let mut runs = Vec::new();
    for kind in args.clients() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .map_err(|e| format!("a runtime: {e}"))?;
        let run = runtime.block_on(async {
            let handler = server::Handler::new(seed);
            let serving = handler.clone();
            let connector = pipe::PipeConnector::new(move |io| serving.serve(io));
            let (results, counts, elapsed) = send::run(kind, args, connector).await?;
            let calls = handler
                .stats
                .requests
                .load(std::sync::atomic::Ordering::Relaxed);
            Ok::<_, String>(Run::new(
                (kind, true),
                results,
                counts,
                elapsed,
                Some(calls),
            ))
        })?;
        runs.push(run);
    }
    finish(args, "simulated", &runs)?;
    Ok(runs)
}

/// Requests to real URLs, on the real clock.
fn urls(args: &Args) -> Result<ExitCode, Stop> {
    // A closed stdout does not stop the run: its exit code still says how the requests went.
    if !args.json
        && let Err(Stop::Failed(err)) = say(&target_line(args))
    {
        return Err(Stop::Failed(err));
    }
    let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("a runtime: {e}"))?;
    let connector = tls::connector(args.cacert.as_deref())?;
    let mut runs = Vec::new();
    for kind in args.clients() {
        let (results, counts, elapsed) =
            runtime.block_on(send::run(kind, args, connector.clone()))?;
        runs.push(Run::new((kind, false), results, counts, elapsed, None));
    }
    let all_succeeded = runs.iter().all(|r| r.failed == 0);
    let code = if all_succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    };
    // The exit code says how the requests went, whoever reads the report (or no one).
    match finish(args, "real", &runs) {
        Ok(()) | Err(Stop::StdoutClosed) => Ok(code),
        Err(stop) => Err(stop),
    }
}

/// Prints the report (JSON or the table) and writes the plot if asked.
fn finish(args: &Args, clock: &'static str, runs: &[Run]) -> Result<(), Stop> {
    if args.json {
        let document = Document {
            schema: 1,
            clock,
            settings: args,
            runs,
        };
        let text = serde_json::to_string(&document).map_err(|e| e.to_string())?;
        say(&format!("{text}\n"))?;
    } else {
        say(&report::table(runs, clock))?;
        if !args.demo {
            say(&report::causes(runs))?;
        }
        if runs
            .iter()
            .any(|r| r.give_ups.contains_key("retry budget exhausted"))
        {
            let budget = format!("{}%", args.budget * 100.0);
            say(&format!(
                "(the retry budget caps retries and hedges at {budget} of requests plus 10 a second, \
                 so that a failing server is not buried in retries; --no-budget lifts it)\n"
            ))?;
        }
    }
    if let Some(path) = &args.plot {
        plot::write(path, runs)?;
        if !args.json {
            say(&format!("latency CDF written to {}\n", path.display()))?;
        }
    }
    Ok(())
}

/// The first line of a run against URLs: what is called, and the settings in force (the URLs
/// without userinfo or query values).
fn target_line(args: &Args) -> String {
    let first = args.urls.first().map(cli::redacted).unwrap_or_default();
    let more = match args.urls.len() {
        0 | 1 => String::new(),
        n => format!(" and {} more", n - 1),
    };
    let count = match args.requests {
        Some(n) => format!("{n} {} requests", args.method),
        None => format!("{} requests for a time", args.method),
    };
    let clients: Vec<&str> = args.clients().iter().map(|k| k.label(false)).collect();
    let budget = if args.no_budget {
        "no retry budget".to_owned()
    } else {
        format!("retry budget {}%", args.budget * 100.0)
    };
    format!(
        "{count} to {first}{more} with {}; attempt timeout {}, total {}, {} attempts, {budget}.\n",
        clients.join(", "),
        humantime::format_duration(args.attempt_timeout),
        humantime::format_duration(args.timeout),
        args.attempts,
    )
}
