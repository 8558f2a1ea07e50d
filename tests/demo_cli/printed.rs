//! What the demo prints against URLs: the causes of its failures under the table, no URL secret
//! in its report, and a quiet end when its stdout is closed (`demo_client … | head`).

use std::process::{Output, Stdio};
use std::time::Duration;

use super::server::FlakyServer;
use super::{demo_client, document, report, run};

/// A port on 127.0.0.1 where nothing listens.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Runs the demo client with its stdout a pipe whose reader is gone before it writes.
async fn run_into_closed_pipe(args: &[&str]) -> Output {
    let mut child = tokio::process::Command::new(demo_client())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the demo client runs");
    drop(child.stdout.take());
    tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the demo client finishes")
        .unwrap()
}

#[tokio::test]
async fn a_closed_stdout_ends_the_run_quietly() {
    let server = FlakyServer::start().await.unwrap();
    let refused = format!("http://127.0.0.1:{}/", closed_port());
    let ok = server.url("/ok");
    let cases: [(&[&str], i32); 4] = [
        (&["-n", "2", &ok], 0),
        (&["--json", &ok], 0),
        (&["--attempts", "1", &refused], 1),
        (&["-n", "50"], 0),
    ];
    for (args, code) in cases {
        let output = run_into_closed_pipe(args).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.contains("Broken pipe"), "{args:?}: {stderr}");
        assert_eq!(output.status.code(), Some(code), "{args:?}: {stderr}");
    }
}

#[tokio::test]
async fn the_causes_of_failures_are_listed_under_the_table() {
    let server = FlakyServer::start().await.unwrap();
    let refused = format!("http://127.0.0.1:{}/", closed_port());
    let output = run(&[
        "-n",
        "2",
        "--backoff",
        "10ms",
        &refused,
        "http://no-such-host.invalid/",
        &server.url("/status/503"),
        &server.url("/ok"),
    ])
    .await;
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let (_, under) = stdout
        .split_once("errors by cause:\n")
        .unwrap_or_else(|| panic!("no causes: {stdout}"));
    let lines: Vec<&str> = under.lines().collect();
    assert_eq!(
        lines.len(),
        2,
        "the 503 is an answer, not an error: {stdout}"
    );
    assert!(
        lines[0].starts_with("       2  could not connect: ")
            && lines[0].contains("tcp connect error")
            && lines[0].contains("Connection refused"),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with("       2  no such host: ") && lines[1].contains("dns error"),
        "{stdout}"
    );
}

#[tokio::test]
async fn the_report_shows_no_userinfo_or_query_value() {
    let server = FlakyServer::start().await.unwrap();
    let port = server.addr.port();
    let ok = format!("http://alice:pw-77@127.0.0.1:{port}/ok?access_token=tok-55&page");
    let refused = format!(
        "http://alice:pw-77@127.0.0.1:{}/x?access_token=tok-55",
        closed_port()
    );
    let output = run(&["--json", "--backoff", "10ms", &ok, &refused]).await;
    assert_eq!(output.status.code(), Some(1));
    for (stream, text) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
        let text = String::from_utf8_lossy(text);
        for secret in ["alice", "pw-77", "tok-55"] {
            assert!(!text.contains(secret), "{secret} on {stream}: {text}");
        }
    }
    let shown = format!("http://(redacted)@127.0.0.1:{port}/ok?access_token=(redacted)&(redacted)");
    assert_eq!(document(&output)["settings"]["urls"][0], shown.as_str());
    let results = &report(&output)["results"];
    assert_eq!(results[0]["url"], shown.as_str());
    assert_eq!(results[0]["status"], 200, "sent as given");
    assert!(
        results[1]["error"]
            .as_str()
            .unwrap()
            .contains("could not connect")
    );
}

/// Against URLs, the first line names the target and the settings in force, without the URL's
/// secrets.
#[tokio::test]
async fn the_first_line_names_the_target_and_the_settings() {
    let server = FlakyServer::start().await.unwrap();
    let ok = server.url("/ok").replace("http://", "http://alice:pw@") + "?token=s3cret";
    let output = run(&[
        "-n",
        "2",
        "--attempts",
        "4",
        "--attempt-timeout",
        "150ms",
        &ok,
    ])
    .await;
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let first = stdout.lines().next().unwrap();
    let host = server.url("/ok").replace("http://", "");
    assert!(first.starts_with("2 GET requests to http://"), "{first}");
    assert!(first.contains(&host), "{first}");
    for setting in [
        "tower-tenacity",
        "attempt timeout 150ms",
        "4 attempts",
        "retry budget",
    ] {
        assert!(first.contains(setting), "{setting}: {first}");
    }
    assert!(
        !stdout.contains("s3cret") && !stdout.contains("alice"),
        "{stdout}"
    );
}
