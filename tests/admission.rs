//! The server-side admission limit in a real axum app and a real tonic server on 127.0.0.1:
//! with the limit taken, a request is answered at once (503 with `x-envoy-overloaded`, or gRPC's
//! `UNAVAILABLE` with a negative pushback: do not retry) without reaching the handler, and once a
//! place is free the next one is served.

mod grpc_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use bytes::Bytes;
use grpc_support::serve_health;
use http::{Request, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::Notify;
use tonic::Code;
use tonic::transport::Endpoint;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tower::{Layer, ServiceExt};
use tower_tenacity::ResilienceLayer;
use tower_tenacity::admission::{AdaptiveLimit, AdmissionLayer};
use tower_tenacity::grpc::GrpcDeadlineLayer;
use tower_tenacity::http::{Attempts, ReplayBody};

/// One call in flight at most.
fn one_at_a_time() -> AdaptiveLimit {
    AdaptiveLimit::aimd(Duration::from_secs(5))
        .initial(1)
        .bounds(1, 1)
}

#[derive(Default)]
struct Handler {
    entered: AtomicU32,
    release: Notify,
    started: Notify,
}

#[tokio::test]
async fn an_axum_app_answers_503_while_its_limit_is_taken() {
    let handler = Arc::new(Handler::default());
    let app = Router::new()
        .route(
            "/",
            get(|State(handler): State<Arc<Handler>>| async move {
                handler.entered.fetch_add(1, Ordering::SeqCst);
                handler.started.notify_one();
                handler.release.notified().await;
                "served"
            }),
        )
        .with_state(handler.clone())
        .layer(AdmissionLayer::http(one_at_a_time()).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let get = || {
        let request = Request::get(format!("http://{addr}/"))
            .body(Full::default())
            .unwrap();
        client.request(request)
    };
    let first = tokio::spawn(get());
    handler.started.notified().await;
    let turned_away = get().await.unwrap();
    assert_eq!(turned_away.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(turned_away.headers()["retry-after"], "1");
    assert_eq!(turned_away.headers()["x-envoy-overloaded"], "true");
    // Through the HTTP preset, a GET it would retry on a 503: it is not sent again, as a call
    // turned away in-process is not, so that the load being shed does not come back.
    let preset = ResilienceLayer::http()
        .build()
        .unwrap()
        .hyper(Client::builder(TokioExecutor::new()).build_http::<ReplayBody<Full<Bytes>>>());
    let request = Request::get(format!("http://{addr}/"))
        .body(Full::default())
        .unwrap();
    let shed = preset.oneshot(request).await.unwrap();
    assert_eq!(shed.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(shed.extensions().get::<Attempts>(), None, "one attempt");
    assert_eq!(
        handler.entered.load(Ordering::SeqCst),
        1,
        "the handler never saw them"
    );
    handler.release.notify_one();
    assert_eq!(first.await.unwrap().unwrap().status(), StatusCode::OK);
    // A place is free again.
    let next = tokio::spawn(get());
    handler.started.notified().await;
    handler.release.notify_one();
    assert_eq!(next.await.unwrap().unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn a_tonic_server_answers_unavailable_not_to_be_retried_while_its_limit_is_taken() {
    // The first call is held inside the limit until the test lets it go; the others are not.
    let gate = Arc::new(Handler::default());
    let first_call = Arc::new(AtomicBool::new(true));
    let hold = gate.clone();
    // The server's stack under overload, as the tonic guide has it: admission, then the
    // deadline (whose body type the admission's answer must be able to make).
    let arrived = Arc::new(AtomicU32::new(0));
    let count = arrived.clone();
    let stall = tower::ServiceBuilder::new()
        .map_request(move |request| {
            count.fetch_add(1, Ordering::SeqCst);
            request
        })
        .layer(AdmissionLayer::http(one_at_a_time()).unwrap())
        .layer(GrpcDeadlineLayer::new().min_remaining(Duration::from_millis(20)))
        .map_future(move |future| {
            let first = first_call.swap(false, Ordering::SeqCst);
            let hold = hold.clone();
            async move {
                if first {
                    hold.started.notify_one();
                    hold.release.notified().await;
                }
                future.await
            }
        })
        .into_inner();
    let addr = serve_health(stall).await;
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    let check = || {
        let mut client = HealthClient::new(channel.clone());
        async move {
            let request = tonic::Request::new(HealthCheckRequest {
                service: String::new(),
            });
            client.check(request).await
        }
    };
    let first = tokio::spawn(check());
    gate.started.notified().await;
    let status = check().await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(status.message(), "overloaded");
    assert_eq!(
        status.metadata().get("grpc-retry-pushback-ms").unwrap(),
        "-1",
        "do not retry"
    );
    // Through the gRPC preset, which retries UNAVAILABLE: sent once, not again.
    let before = arrived.load(Ordering::SeqCst);
    let preset = ResilienceLayer::grpc().build().unwrap();
    let mut client = HealthClient::new(preset.layer(channel.clone()));
    let request = tonic::Request::new(HealthCheckRequest {
        service: String::new(),
    });
    let status = client.check(request).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(arrived.load(Ordering::SeqCst) - before, 1, "one attempt");
    gate.release.notify_one();
    assert!(first.await.unwrap().is_ok());
    assert!(check().await.is_ok(), "a place is free again");
}
