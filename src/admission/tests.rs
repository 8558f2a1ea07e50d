use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tower::{Layer, Service, service_fn};

use super::{AdaptiveLimit, AdmissionLayer};
use crate::classify::{Classification, NotSent, Reason, classify_error};
use crate::error::{BoxError, Error, ErrorKind};

fn slow(ms: u64) -> impl Service<(), Response = (), Error = BoxError, Future: Send> + Clone {
    service_fn(move |()| async move {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok::<(), BoxError>(())
    })
}

#[tokio::test(start_paused = true)]
async fn calls_over_the_limit_are_turned_away_at_once_and_not_retried() {
    let limit = AdaptiveLimit::aimd(Duration::from_secs(1))
        .initial(2)
        .bounds(1, 2);
    let layer = AdmissionLayer::new(limit).unwrap();
    let mut svc = layer.layer(slow(100));
    let mut cx = Context::from_waker(Waker::noop());
    let mut first = pin!(svc.call(()));
    let mut second = pin!(svc.call(()));
    assert!(first.as_mut().poll(&mut cx).is_pending());
    assert!(second.as_mut().poll(&mut cx).is_pending());
    let Poll::Ready(Err(err)) = pin!(svc.call(())).poll(&mut cx) else {
        panic!("a third call in flight was let in");
    };
    let error = Error::find(err.as_ref()).unwrap();
    assert_eq!(error.kind(), ErrorKind::Overloaded { limit: 2 });
    assert_eq!(
        classify_error(err.as_ref()),
        Classification::fatal(Reason::NeverSent(NotSent::Overloaded))
    );
    first.await.unwrap();
    // A place is free again.
    svc.call(()).await.unwrap();
    second.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn slow_and_dropped_calls_cut_the_limit_and_quick_busy_ones_raise_it() {
    let limit = AdaptiveLimit::aimd(Duration::from_millis(50)).initial(10);
    let layer = AdmissionLayer::new(limit).unwrap();
    // A slow call cuts it by a tenth.
    layer.layer(slow(60)).call(()).await.unwrap();
    assert_eq!(layer.limit(), 9);
    // A call dropped before its end (its caller gave up) cuts it too.
    drop(layer.layer(slow(60)).call(()));
    assert_eq!(layer.limit(), 8);
    // Quick calls while at least half the limit is in flight raise it by one each; a quick
    // call on an idle server says nothing.
    layer.layer(slow(1)).call(()).await.unwrap();
    assert_eq!(layer.limit(), 8, "idle");
    let mut svc = layer.layer(slow(10));
    let calls: Vec<_> = (0..5).map(|_| svc.call(())).collect();
    for call in calls {
        call.await.unwrap();
    }
    assert!(layer.limit() >= 10, "busy and quick: {}", layer.limit());
}

#[tokio::test(start_paused = true)]
async fn an_http_server_answers_503_and_a_grpc_one_unavailable() {
    let limit = AdaptiveLimit::aimd(Duration::from_secs(1))
        .initial(1)
        .bounds(1, 1);
    let layer = AdmissionLayer::http(limit).unwrap();
    let mut svc = layer.layer(service_fn(|_: http::Request<()>| async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok::<_, Infallible>(http::Response::new(String::from("served")))
    }));
    let mut cx = Context::from_waker(Waker::noop());
    let mut busy = pin!(svc.call(http::Request::new(())));
    assert!(busy.as_mut().poll(&mut cx).is_pending());
    let answer = svc.call(http::Request::new(())).await.unwrap();
    assert_eq!(answer.status(), 503);
    assert_eq!(answer.headers()["retry-after"], "1");
    assert_eq!(answer.headers()["x-envoy-overloaded"], "true");
    let grpc = http::Request::builder()
        .header("content-type", "application/grpc+proto")
        .body(())
        .unwrap();
    let answer = svc.call(grpc).await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["grpc-status"], "14");
    assert_eq!(answer.headers()["grpc-retry-pushback-ms"], "-1");
    assert_eq!(busy.await.unwrap().into_body(), "served");
}

/// Behind a balancer, a server may ask for the retry that might reach a replica with room.
#[tokio::test(start_paused = true)]
async fn a_server_among_replicas_can_ask_for_a_retry_after_a_delay() {
    let limit = AdaptiveLimit::aimd(Duration::from_secs(1))
        .initial(1)
        .bounds(1, 1);
    let layer = AdmissionLayer::http(limit)
        .unwrap()
        .retry_after(Duration::from_millis(1_500));
    let mut svc = layer.layer(service_fn(|_: http::Request<()>| async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok::<_, Infallible>(http::Response::new(String::new()))
    }));
    let mut cx = Context::from_waker(Waker::noop());
    let mut busy = pin!(svc.call(http::Request::new(())));
    assert!(busy.as_mut().poll(&mut cx).is_pending());
    let answer = svc.call(http::Request::new(())).await.unwrap();
    assert_eq!(answer.status(), 503);
    assert_eq!(
        answer.headers()["retry-after"],
        "2",
        "whole seconds, rounded up"
    );
    assert!(answer.headers().get("x-envoy-overloaded").is_none());
    let grpc = http::Request::builder()
        .header("content-type", "application/grpc")
        .body(())
        .unwrap();
    let answer = svc.call(grpc).await.unwrap();
    assert_eq!(answer.headers()["grpc-retry-pushback-ms"], "1500");
}

#[test]
fn bad_settings_name_their_field() {
    let field = |limit: AdaptiveLimit| AdmissionLayer::new(limit).unwrap_err().field();
    let aimd = AdaptiveLimit::aimd(Duration::from_millis(100));
    assert_eq!(field(aimd.bounds(0, 10)), "admission.min");
    assert_eq!(field(aimd.initial(50).bounds(1, 10)), "admission.initial");
    assert_eq!(field(aimd.backoff(1.0)), "admission.backoff");
    assert_eq!(
        field(AdaptiveLimit::aimd(Duration::ZERO)),
        "admission.latency"
    );
    // The HTTP server's form checks the same, and does not panic.
    let err = AdmissionLayer::http(aimd.backoff(1.0)).unwrap_err();
    assert_eq!(err.field(), "admission.backoff");
}
