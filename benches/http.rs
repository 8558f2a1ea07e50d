//! Throughput of a hyper-util client against a hyper server on 127.0.0.1, 64 requests in
//! flight, bare and through `ResilienceLayer::http()`, in one run.
//!
//! `cargo bench --bench http`; compare the two `thrpt` figures.

#[path = "../examples/demo_client/server.rs"]
mod server;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::StreamExt;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower::{Layer, Service, ServiceExt};
use tower_tenacity::ResilienceLayer;
use tower_tenacity::http::ReplayBody;

const REQUESTS: usize = 512;
const IN_FLIGHT: usize = 64;

fn throughput(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(server::FlakyServer::start()).unwrap();
    let url: http::Uri = server.url("/ok").parse().unwrap();

    let bare: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let resilient = ResilienceLayer::http()
        .build()
        .unwrap()
        .layer(Client::builder(TokioExecutor::new()).build_http::<ReplayBody<Full<Bytes>>>());

    let mut group = c.benchmark_group("http_64_in_flight");
    group.throughput(Throughput::Elements(REQUESTS as u64));
    group.sample_size(30);
    group.bench_function("bare_hyper_util", |b| {
        b.iter(|| {
            rt.block_on(async {
                futures_util::stream::iter(0..REQUESTS)
                    .map(|_| {
                        let bare = bare.clone();
                        let request = Request::get(url.clone()).body(Full::default()).unwrap();
                        async move {
                            let response = bare.request(request).await.unwrap();
                            response.into_body().collect().await.unwrap();
                        }
                    })
                    .buffer_unordered(IN_FLIGHT)
                    .collect::<()>()
                    .await
            })
        })
    });
    group.bench_function("tenacity_http_preset", |b| {
        b.iter(|| {
            rt.block_on(async {
                futures_util::stream::iter(0..REQUESTS)
                    .map(|_| {
                        let mut svc = resilient.clone();
                        let request = Request::get(url.clone()).body(Full::default()).unwrap();
                        async move {
                            let response = svc.ready().await.unwrap().call(request).await.unwrap();
                            response.into_body().collect().await.unwrap();
                        }
                    })
                    .buffer_unordered(IN_FLIGHT)
                    .collect::<()>()
                    .await
            })
        })
    });
    group.finish();
}

criterion_group!(benches, throughput);
criterion_main!(benches);
