//! The embedded demo: a seed gives the same report to the digit, and the report says what the
//! documented schema says.

use super::{document, run};

/// The demo's text table for `seed`, with fewer requests than the README's run.
async fn table(seed: &str) -> String {
    let output = run(&["--seed", seed, "-n", "400"]).await;
    assert_eq!(output.status.code(), Some(0));
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn the_same_seed_gives_the_same_table() {
    let first = table("7").await;
    assert_eq!(first, table("7").await);
    assert_ne!(first, table("8").await, "another seed, other faults");
    for row in [
        "success rate",
        "server calls per request",
        "latency p99.9",
        "latency histogram",
    ] {
        assert!(first.contains(row), "{row}: {first}");
    }
    assert!(first.contains("seed 7"), "{first}");
}

#[tokio::test]
async fn the_json_report_follows_its_schema() {
    let output = run(&["--json", "--seed", "3", "-n", "300"]).await;
    assert_eq!(output.status.code(), Some(0));
    let document = document(&output);
    assert_eq!(document["clock"], "simulated");
    assert_eq!(document["settings"]["seed"], 3);
    assert_eq!(document["settings"]["attempt_timeout"], "2s");
    let runs = document["runs"].as_array().unwrap();
    let clients: Vec<&str> = runs.iter().map(|r| r["client"].as_str().unwrap()).collect();
    assert_eq!(clients, ["bare", "defaults", "hedging", "breaker-hedging"]);
    for run in runs {
        assert_eq!(run["requests"], 300);
        let count = |key: &str| run[key].as_u64().unwrap_or_else(|| panic!("{key}: {run}"));
        assert_eq!(count("succeeded") + count("failed"), 300);
        let outcomes: u64 = run["outcomes"]
            .as_object()
            .unwrap()
            .values()
            .map(|n| n.as_u64().unwrap())
            .sum();
        assert_eq!(outcomes, 300);
        assert_eq!(run["outcomes"]["success"], run["succeeded"]);
        assert!(count("server_calls") >= 300);
        assert!(run["give_ups"].is_object());
        assert!(run["circuit_opened"].is_u64());
        assert!(run["wall_time_ms"].as_f64().unwrap() > 0.0);
        assert!(run["requests_per_second"].as_f64().unwrap() > 0.0);
        let latency = &run["latency_ms"];
        let p = |key: &str| latency[key].as_f64().unwrap_or_else(|| panic!("{key}"));
        assert!(p("p50") <= p("p90") && p("p90") <= p("p99"));
        assert!(p("p99") <= p("p99_9") && p("p99_9") <= p("max"));
        let results = run["results"].as_array().unwrap();
        assert_eq!(results.len(), 300);
        for key in [
            "url",
            "method",
            "status",
            "attempts",
            "elapsed_ms",
            "reason",
            "error",
        ] {
            assert!(results[0].get(key).is_some(), "results[].{key}");
        }
    }
    assert_eq!(runs[0]["retries"], 0, "the bare client does not retry");
    assert_eq!(runs[0]["server_calls"], 300);
    // The attempts the stack's events counted are the calls the server saw: every one, for the
    // first 300 requests (before the outage, so the circuit stays closed).
    for run in runs {
        assert_eq!(run["attempts"], run["server_calls"], "{}", run["client"]);
        assert!(run["retries"].as_u64().unwrap() > 0 || run["client"] == "bare");
    }
    assert!(
        runs[2]["hedges"].as_u64().unwrap() > 0,
        "stalls were hedged"
    );
}

#[tokio::test]
async fn a_duration_at_a_rate_sends_that_many_on_the_simulated_clock() {
    let output = run(&["--json", "-z", "3s", "-q", "50", "--client", "defaults"]).await;
    assert_eq!(output.status.code(), Some(0));
    let document = document(&output);
    assert_eq!(document["runs"].as_array().unwrap().len(), 1);
    assert_eq!(document["runs"][0]["requests"], 150);
}

#[tokio::test]
async fn the_plot_is_an_svg_of_every_run() {
    let dir = std::env::temp_dir().join(format!("demo-plot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("latency.svg");
    let output = run(&["-n", "200", "--plot", path.to_str().unwrap()]).await;
    assert_eq!(output.status.code(), Some(0));
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..100.min(svg.len())]);
    for label in ["bare client", "defaults", "+ hedging", "+ hedging, breaker"] {
        assert!(svg.contains(&format!("{label} (")), "{label}");
    }
    // Each series says what share failed (the curves are successes only), and each has a
    // colour and a dash of its own.
    assert_eq!(svg.matches("% failed)").count(), 4);
    let mut colours: Vec<&str> = (svg.match_indices("stroke=\"#"))
        .map(|(i, _)| &svg[i + 8..i + 15])
        .filter(|c| *c != "#000000")
        .collect();
    colours.sort_unstable();
    colours.dedup();
    assert_eq!(colours.len(), 4, "{colours:?}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// The README shows the output of the README's first command, exactly.
#[tokio::test]
async fn the_readme_shows_what_the_demo_prints() {
    let readme = include_str!("../../README.md");
    let (_, after) = readme
        .split_once("this is its output:\n\n```text\n")
        .expect("the README's demo output");
    let (shown, _) = after.split_once("```").unwrap();
    let output = run(&[]).await;
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&output.stdout), shown);
}
