//! The demo client as a user runs it: the built example binary against a local server, its
//! JSON on stdout and its exit codes.

#[path = "../examples/demo_client/server.rs"]
mod server;

#[path = "demo_cli/embedded.rs"]
mod embedded;
#[path = "demo_cli/printed.rs"]
mod printed;
#[path = "common/tls.rs"]
mod self_signed;
#[path = "demo_cli/tls.rs"]
mod tls;

use std::path::PathBuf;
use std::process::Output;

use server::FlakyServer;

/// The example binary that `cargo test` builds beside the test binaries.
fn demo_client() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let path = profile_dir.join("examples").join("demo_client");
    assert!(
        path.exists(),
        "{} is missing: `cargo test` builds the examples first",
        path.display()
    );
    path
}

async fn run(args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(demo_client());
    command.args(args).kill_on_drop(true);
    tokio::time::timeout(std::time::Duration::from_secs(60), command.output())
        .await
        .expect("the demo client finishes")
        .expect("the demo client runs")
}

/// What `--json` printed: exactly one JSON object on stdout, and nothing else there.
fn document(output: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let document: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: not one JSON object: {stdout}"));
    assert!(document.is_object(), "{stdout}");
    assert_eq!(document["schema"], 1);
    document
}

/// The one run of `--json` against URLs, on the real clock.
fn report(output: &Output) -> serde_json::Value {
    let document = document(output);
    assert_eq!(document["clock"], "real");
    let runs = document["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 1, "{document}");
    runs[0].clone()
}

#[tokio::test]
async fn json_output_for_urls_that_recover() {
    let server = FlakyServer::start().await.unwrap();
    let output = run(&[
        "--json",
        "-n",
        "2",
        // One at a time, so that the first request is the one that meets the 503.
        "-c",
        "1",
        "--backoff",
        "10ms",
        &server.url("/fail/cli/1/503"),
        &server.url("/ok"),
    ])
    .await;
    let report = report(&output);
    assert_eq!(output.status.code(), Some(0), "{report}");
    assert_eq!(report["requests"], 4);
    assert_eq!(report["succeeded"], 4);
    assert_eq!(report["failed"], 0);
    assert_eq!(report["attempts"], 5, "one retry for the first 503");
    assert_eq!(report["retries"], 1);
    assert_eq!(report["outcomes"]["success"], 4);
    for key in ["p50", "p99", "max"] {
        assert!(report["latency_ms"][key].is_number(), "latency_ms.{key}");
    }
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    let first = &results[0];
    assert_eq!(first["url"], server.url("/fail/cli/1/503"));
    assert_eq!(first["method"], "GET");
    assert_eq!(first["status"], 200);
    assert_eq!(first["attempts"], 2);
    assert!(first["elapsed_ms"].is_number());
    assert!(first["error"].is_null());
}

#[tokio::test]
async fn failures_exit_with_1_and_are_reported() {
    let server = FlakyServer::start().await.unwrap();
    let output = run(&[
        "--json",
        "--attempts",
        "2",
        "--backoff",
        "10ms",
        "--jitter",
        "spread",
        "--attempt-timeout",
        "100ms",
        &server.url("/stall/3000"),
        &server.url("/status/503"),
    ])
    .await;
    assert_eq!(output.status.code(), Some(1));
    let report = report(&output);
    assert_eq!(report["succeeded"], 0);
    assert_eq!(report["failed"], 2);
    assert_eq!(report["outcomes"]["attempt timed out"], 1);
    assert_eq!(report["outcomes"]["HTTP status 503"], 1);
    let stalled = &report["results"][0];
    assert!(stalled["status"].is_null());
    assert_eq!(stalled["attempts"], 2);
    let error = stalled["error"].as_str().unwrap();
    assert!(
        error.starts_with(&format!(
            "GET {} timed out after 100ms (attempt 2 of 2)",
            server.url("/stall/3000")
        )),
        "{error}"
    );
    assert_eq!(report["results"][1]["status"], 503);
}

#[tokio::test]
async fn the_bare_client_does_not_retry() {
    let server = FlakyServer::start().await.unwrap();
    let output = run(&["--json", "--no-resilience", &server.url("/fail/bare/1/503")]).await;
    assert_eq!(output.status.code(), Some(1));
    let report = report(&output);
    assert_eq!(report["attempts"], 1);
    assert_eq!(report["results"][0]["status"], 503);
}

#[tokio::test]
async fn post_data_is_sent_and_not_retried_unless_allowed() {
    let server = FlakyServer::start().await.unwrap();
    let output = run(&[
        "--json",
        "-X",
        "POST",
        "-d",
        "hello",
        &server.url("/fail/post/1/503"),
    ])
    .await;
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(server.stats.requests_to("/fail/post/1/503"), 1);

    let output = run(&[
        "--json",
        "-X",
        "POST",
        "-d",
        "hello",
        "--retry-unsafe",
        "--backoff",
        "10ms",
        &server.url("/fail/post-unsafe/1/503"),
    ])
    .await;
    assert_eq!(output.status.code(), Some(0));
    let report = report(&output);
    assert_eq!(
        report["results"][0]["attempts"], 2,
        "--retry-unsafe retried the POST"
    );
    assert_eq!(report["results"][0]["status"], 200);
    assert_eq!(server.stats.requests_to("/fail/post-unsafe/1/503"), 2);
}

#[tokio::test]
async fn bad_arguments_exit_with_2_and_say_why() {
    let cases: [(&[&str], &str); 7] = [
        (&["--jitter", "wobbly", "http://127.0.0.1:1/"], "--jitter"),
        (&["--jitter", "spread=2", "http://127.0.0.1:1/"], "spread"),
        (&["--attempts", "0", "http://127.0.0.1:1/"], "max_attempts"),
        (
            &[
                "--attempt-timeout",
                "5s",
                "--timeout",
                "1s",
                "http://127.0.0.1:1/",
            ],
            "attempt_timeout",
        ),
        (&["not a url"], "bad URL"),
        (&["--timeout", "soon", "http://127.0.0.1:1/"], "--timeout"),
        (&["--no-such-flag"], "--no-such-flag"),
    ];
    for (arguments, expected) in cases {
        let output = run(arguments).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{arguments:?}: {stderr}");
        assert!(stderr.contains(expected), "{arguments:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{arguments:?}");
    }
}

#[tokio::test]
async fn headers_are_sent_on_every_attempt() {
    let server = FlakyServer::start().await.unwrap();
    let path = "/fail/headers/1/503";
    let output = run(&[
        "--json",
        "--backoff",
        "10ms",
        "-H",
        "X-Tenant: blue",
        "--header",
        "Accept:application/json",
        "-H",
        "Authorization: Bearer s3cret",
        &server.url(path),
    ])
    .await;
    assert_eq!(output.status.code(), Some(0));
    let settings = &document(&output)["settings"]["headers"];
    assert_eq!(settings[0], "x-tenant: blue");
    assert_eq!(
        settings[2], "authorization: (redacted)",
        "no secret in the report"
    );
    assert_eq!(report(&output)["results"][0]["attempts"], 2);
    let seen = server.stats.last_headers.lock().unwrap()[path].clone();
    assert_eq!(seen["x-tenant"], "blue", "the retry carried the header");
    assert_eq!(seen["accept"], "application/json");
    assert_eq!(seen["authorization"], "Bearer s3cret", "but sent as given");

    let output = run(&["-H", "no colon here", &server.url("/ok")]).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("Name: value"));
}
