//! The fault-injection kit (`testing::FaultLayer`) on a paused clock: rates, windows,
//! latency, stalls and made responses are what they say, reproducible from a seed, and counted.

use std::io;
use std::time::Duration;

use http::{Request, Response};
use tokio::time::Instant;
use tower::BoxError;
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_tenacity::classify::{Classify, Reason};
use tower_tenacity::http::HttpClassifier;
use tower_tenacity::retry::RetryLayer;
use tower_tenacity::testing::{FaultLayer, http_status};

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

fn echo()
-> impl Service<u32, Response = u32, Error = BoxError, Future = impl Send> + Clone + Send + 'static
{
    service_fn(|n: u32| async move { Ok::<_, BoxError>(n) })
}

/// What each of `n` calls came to, polled once each (a stall shows as `None`).
async fn outcomes(layer: &FaultLayer<u32>, n: u32) -> Vec<Option<Result<u32, io::ErrorKind>>> {
    let mut svc = layer.layer(echo());
    let mut seen = Vec::new();
    for i in 0..n {
        let call = svc.ready().await.unwrap().call(i);
        let outcome = tokio::time::timeout(ms(1), call).await.ok();
        seen.push(
            outcome.map(|result| {
                result.map_err(|err| err.downcast_ref::<io::Error>().unwrap().kind())
            }),
        );
    }
    seen
}

#[tokio::test(start_paused = true)]
async fn rates_hold_and_the_seed_makes_them_reproducible() {
    let plan = |seed| {
        FaultLayer::<u32>::builder()
            .seed(seed)
            .error(0.2, io::ErrorKind::ConnectionReset)
            .stall(0.1)
            .build()
            .unwrap()
    };
    let layer = plan(7);
    let first = outcomes(&layer, 2000).await;
    let counts = layer.counts();
    let (passed, errors, stalled) = (counts.passed, counts.errors, counts.stalled);
    assert_eq!(passed + errors + stalled, 2000);
    assert!((360..=440).contains(&errors), "{errors} errors at 20%");
    assert!((160..=240).contains(&stalled), "{stalled} stalls at 10%");
    let resets = first.iter().filter(|o| matches!(o, Some(Err(_)))).count() as u64;
    assert_eq!(resets, errors);
    assert_eq!(first.iter().filter(|o| o.is_none()).count() as u64, stalled);
    assert_eq!(
        outcomes(&plan(7), 2000).await,
        first,
        "the same seed, the same faults"
    );
    assert_ne!(outcomes(&plan(8), 2000).await, first);
}

#[tokio::test(start_paused = true)]
async fn an_outage_and_a_brown_out_hold_only_in_their_windows() {
    let layer = FaultLayer::<u32>::builder()
        .error(1.0, io::ErrorKind::ConnectionRefused)
        .during(ms(1000), ms(2000))
        .error(0.5, io::ErrorKind::ConnectionReset)
        .during(ms(3000), ms(4000))
        .build()
        .unwrap();
    let start = Instant::now();
    let mut svc = layer.layer(echo());
    let mut refused = 0;
    let mut reset = 0;
    for offset in (0..5000).step_by(10) {
        tokio::time::sleep_until(start + ms(offset)).await;
        let result = svc.ready().await.unwrap().call(0).await;
        let in_outage = (1000..2000).contains(&offset);
        let in_brown_out = (3000..4000).contains(&offset);
        match result {
            Ok(_) => assert!(!in_outage, "a call passed the outage at {offset} ms"),
            Err(err) => match err.downcast_ref::<io::Error>().unwrap().kind() {
                io::ErrorKind::ConnectionRefused => {
                    assert!(in_outage, "refused at {offset} ms");
                    refused += 1;
                }
                _ => {
                    assert!(in_brown_out, "reset at {offset} ms");
                    reset += 1;
                }
            },
        }
    }
    assert_eq!(refused, 100);
    assert!(
        (30..=70).contains(&reset),
        "{reset} of 100 in the brown-out"
    );
}

#[tokio::test(start_paused = true)]
async fn latency_delays_the_call_by_what_was_drawn() {
    let fixed = FaultLayer::<u32>::builder()
        .latency(1.0, ms(250))
        .build()
        .unwrap();
    let start = Instant::now();
    assert_eq!(fixed.layer(echo()).oneshot(3).await.unwrap(), 3);
    assert_eq!(start.elapsed(), ms(250));
    let spread = FaultLayer::<u32>::builder()
        .latency_between(1.0, ms(100), ms(200))
        .build()
        .unwrap();
    let mut delays = Vec::new();
    for _ in 0..50 {
        let start = Instant::now();
        spread.layer(echo()).oneshot(1).await.unwrap();
        delays.push(start.elapsed());
    }
    assert!(
        delays.iter().all(|d| (ms(100)..=ms(201)).contains(d)),
        "{delays:?}"
    );
    assert!(delays.iter().any(|d| *d < ms(150)) && delays.iter().any(|d| *d > ms(150)));
    assert_eq!(spread.counts().delayed, 50);
    assert_eq!(spread.counts().passed, 50);
}

#[tokio::test(start_paused = true)]
async fn a_stall_never_answers() {
    let layer = FaultLayer::<u32>::builder().stall(1.0).build().unwrap();
    let call = layer.layer(echo()).oneshot(1);
    assert!(
        tokio::time::timeout(Duration::from_secs(3600), call)
            .await
            .is_err()
    );
    assert_eq!(layer.counts().stalled, 1);
}

/// A made HTTP status with `Retry-After` reaches the classifier as a server's would: retried
/// after the hint.
#[tokio::test(start_paused = true)]
async fn a_made_status_is_classified_as_a_servers() {
    let busy = http_status::<String>(503, Some(Duration::from_secs(2)));
    let classifier = HttpClassifier::new();
    let request = Request::get("http://127.0.0.1/").body(()).unwrap();
    let verdict = classifier.classify(&request, Ok(&busy()));
    assert_eq!(verdict.reason(), Some(Reason::Status(503)));
    assert!(verdict.is_retryable());

    // The first call gets the 503, the retry 2 s later reaches the service.
    let faults = FaultLayer::builder()
        .respond(1.0, busy)
        .during(Duration::ZERO, ms(1))
        .build()
        .unwrap();
    let inner = service_fn(|_: Request<String>| async {
        Ok::<_, BoxError>(Response::new("ok".to_string()))
    });
    let svc = RetryLayer::builder()
        .classifier(HttpClassifier::new())
        .build()
        .unwrap()
        .layer(faults.layer(inner));
    let start = Instant::now();
    let request = Request::get("http://127.0.0.1/")
        .body(String::new())
        .unwrap();
    let response = svc.oneshot(request).await.unwrap();
    assert_eq!(response.body(), "ok");
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert_eq!(faults.counts().responses, 1);
    assert_eq!(faults.counts().passed, 1);
}

#[test]
fn bad_plans_are_config_errors() {
    let field = |b: tower_tenacity::testing::FaultBuilder<u32>| b.build().unwrap_err().field();
    let b = FaultLayer::<u32>::builder;
    assert_eq!(field(b().stall(1.5)), "fault.rate");
    assert_eq!(
        field(b().stall(0.6).error(0.6, io::ErrorKind::Other)),
        "fault.rate"
    );
    assert_eq!(field(b().stall(0.1).during(ms(2), ms(1))), "fault.during");
    assert_eq!(
        field(b().latency_between(0.1, ms(2), ms(1))),
        "fault.latency"
    );
}

/// A cut body arrives whole up to the cut, then fails with a reset connection; the others are
/// untouched.
#[tokio::test]
async fn a_body_is_cut_after_its_bytes_and_the_rest_pass() {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use tower_tenacity::testing::ResetBodyLayer;

    let big = Bytes::from(vec![7u8; 10_000]);
    let inner = service_fn(move |_: Request<()>| {
        let big = big.clone();
        async move { Ok::<_, BoxError>(Response::new(Full::new(big))) }
    });
    let cut = ResetBodyLayer::new(1.0, 1000);
    let response = cut
        .layer(inner.clone())
        .oneshot(Request::new(()))
        .await
        .unwrap();
    let mut body = response.into_body();
    let mut read = 0;
    let err = loop {
        match body.frame().await {
            Some(Ok(frame)) => read += frame.into_data().unwrap().len(),
            Some(Err(err)) => break err,
            None => panic!("the body ended whole"),
        }
    };
    assert_eq!(read, 1000);
    assert_eq!(
        err.downcast_ref::<io::Error>().unwrap().kind(),
        io::ErrorKind::ConnectionReset
    );
    assert_eq!(cut.cut(), 1);

    let none = ResetBodyLayer::new(0.0, 1000);
    let response = none.layer(inner).oneshot(Request::new(())).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body.len(), 10_000);
    assert_eq!(none.cut(), 0);
}

/// At a rate, the bodies a seed chooses are the same on every run, `cut()` counts those reset,
/// and stacked over a `FaultLayer` of the same seed and rate it still cuts bodies: the two
/// layers do not pick the same requests.
#[tokio::test]
async fn a_seed_chooses_the_cut_bodies_and_a_fault_layer_picks_others() {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use tower_tenacity::testing::ResetBodyLayer;

    let inner = service_fn(|_: Request<()>| async {
        Ok::<_, BoxError>(Response::new(Full::new(Bytes::from(vec![1u8; 100]))))
    });
    // Which of 100 bodies are cut; `None` for a request that failed before any body.
    let run = async |cut: &ResetBodyLayer, faults: Option<FaultLayer<Response<Full<Bytes>>>>| {
        let mut seen = Vec::new();
        for _ in 0..100 {
            let svc = inner;
            let outcome = match &faults {
                Some(faults) => cut.layer(faults.layer(svc)).oneshot(Request::new(())).await,
                None => cut.layer(svc).oneshot(Request::new(())).await,
            };
            seen.push(match outcome {
                Ok(response) => Some(response.into_body().collect().await.is_err()),
                Err(_) => None,
            });
        }
        seen
    };
    let cut = ResetBodyLayer::new(0.5, 10).seed(7);
    let first = run(&cut, None).await;
    let cut_bodies = first.iter().filter(|c| **c == Some(true)).count() as u64;
    assert!(
        (30..=70).contains(&cut_bodies),
        "{cut_bodies} of 100 at 0.5"
    );
    assert_eq!(cut.cut(), cut_bodies);
    assert_eq!(
        run(&ResetBodyLayer::new(0.5, 10).seed(7), None).await,
        first
    );

    let cut = ResetBodyLayer::new(0.5, 10).seed(7);
    let faults = FaultLayer::builder()
        .seed(7)
        .error(0.5, io::ErrorKind::ConnectionReset)
        .build()
        .unwrap();
    let stacked = run(&cut, Some(faults)).await;
    let failed = stacked.iter().filter(|c| c.is_none()).count();
    assert!((30..=70).contains(&failed), "{failed} of 100 failed at 0.5");
    assert!(
        cut.cut() >= 10,
        "{} bodies cut of those that came",
        cut.cut()
    );
}

/// A body shorter than the cut arrives whole, trailers and all, and is not counted as cut.
#[tokio::test]
async fn a_body_shorter_than_the_cut_keeps_its_trailers() {
    use bytes::Bytes;
    use http_body_util::{BodyExt, StreamBody};
    use hyper::body::Frame;
    use tower_tenacity::testing::ResetBodyLayer;

    let inner = service_fn(|_: Request<()>| async {
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", "0".parse().unwrap());
        let frames = [
            Ok::<_, BoxError>(Frame::data(Bytes::from_static(b"short"))),
            Ok(Frame::trailers(trailers)),
        ];
        Ok::<_, BoxError>(Response::new(StreamBody::new(futures_util::stream::iter(
            frames,
        ))))
    });
    let cut = ResetBodyLayer::new(1.0, 1000);
    let response = cut.layer(inner).oneshot(Request::new(())).await.unwrap();
    let collected = response.into_body().collect().await.unwrap();
    assert_eq!(collected.trailers().unwrap()["grpc-status"], "0");
    assert_eq!(collected.to_bytes(), "short");
    assert_eq!(cut.cut(), 0);
}

/// The harness keeps at most `concurrency` calls in flight, reports them in the order they
/// were made, and times them on the paused clock.
#[tokio::test(start_paused = true)]
async fn the_harness_reports_each_call_in_order() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tower_tenacity::testing::run;

    let live = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (now, peak) = (live.clone(), most.clone());
    let svc = service_fn(move |i: u64| {
        let (now, peak) = (now.clone(), peak.clone());
        async move {
            let in_flight = now.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(in_flight, Ordering::SeqCst);
            // Call i takes i ms; every tenth fails.
            tokio::time::sleep(ms(i)).await;
            now.fetch_sub(1, Ordering::SeqCst);
            if i % 10 == 9 {
                return Err::<u64, BoxError>("nope".into());
            }
            Ok(i)
        }
    });
    let start = Instant::now();
    let report = run(svc, 100, 4, |i| i as u64).await;
    assert_eq!(most.load(Ordering::SeqCst), 4);
    assert_eq!((report.succeeded(), report.failed()), (90, 10));
    for (i, outcome) in report.outcomes.iter().enumerate() {
        if i % 10 != 9 {
            assert_eq!(*outcome.as_ref().unwrap(), i as u64);
        }
    }
    assert_eq!(report.latencies[37], ms(37));
    assert!(
        report.attempts().iter().all(Option::is_none),
        "no retry layer here"
    );
    assert_eq!(report.latency(50.0), ms(49));
    assert_eq!(report.latency(100.0), ms(99));
    assert!(start.elapsed() < ms(99 * 100 / 4 + 100), "calls overlapped");
}

/// Through a retry layer, the report says how many attempts each failure took.
#[tokio::test(start_paused = true)]
async fn the_harness_reports_the_attempts_of_failures() {
    use tower_tenacity::ResilienceLayer;
    use tower_tenacity::testing::run;

    let faults = FaultLayer::<u32>::builder()
        .error(1.0, io::ErrorKind::ConnectionReset)
        .build()
        .unwrap();
    let stack = ResilienceLayer::default().layer(faults.layer(echo()));
    let report = run(stack, 5, 1, |i| i as u32).await;
    assert_eq!(report.failed(), 5);
    assert!(report.attempts().iter().all(|a| a.is_some_and(|n| n >= 1)));
    let total: u32 = report.attempts().iter().flatten().sum();
    assert_eq!(
        u64::from(total),
        faults.counts().requests(),
        "every attempt reached the faults"
    );
}
