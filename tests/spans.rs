//! The HTTP preset's `tracing` spans against a real hyper server on 127.0.0.1 (the demo's flaky
//! server): one span per call with OpenTelemetry's HTTP client attributes (the URL without its
//! query or userinfo), and under it one span per attempt, a resent one counting its resends.

#[path = "../examples/demo_client/server.rs"]
mod server;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use server::FlakyServer;
use tower::{Service, ServiceExt};
use tower_tenacity::ResilienceLayer;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// A span as the test saw it: its name, its parent's name, and its fields.
#[derive(Debug, Clone, Default)]
struct Seen {
    name: String,
    parent: Option<String>,
    fields: HashMap<String, String>,
}

#[derive(Clone, Default)]
struct Spans(Arc<Mutex<HashMap<u64, Seen>>>);

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut seen = Seen {
            name: attrs.metadata().name().to_owned(),
            parent: ctx
                .span(id)
                .and_then(|s| s.parent())
                .map(|p| p.name().to_owned()),
            ..Seen::default()
        };
        attrs.record(&mut Fields(&mut seen.fields));
        self.0.lock().unwrap().insert(id.into_u64(), seen);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        if let Some(seen) = self.0.lock().unwrap().get_mut(&id.into_u64()) {
            values.record(&mut Fields(&mut seen.fields));
        }
    }
}

#[test]
fn a_call_and_its_attempts_are_spans_with_http_attributes() {
    let spans = Spans::default();
    let subscriber = tracing_subscriber::registry().with(spans.clone());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(async {
            let server = FlakyServer::start().await.unwrap();
            let layer = ResilienceLayer::http().no_budget().build().unwrap();
            let mut client = layer.hyper(Client::builder(TokioExecutor::new()).build_http());
            let url = server.url("/fail/spans/1/503") + "?token=s3cret";
            let request = Request::get(url).body(Full::<Bytes>::default()).unwrap();
            let response = client.ready().await.unwrap().call(request).await.unwrap();
            assert_eq!(response.status(), 200);
        })
    });
    let spans: Vec<Seen> = spans.0.lock().unwrap().values().cloned().collect();
    let calls: Vec<&Seen> = spans.iter().filter(|s| s.name == "HTTP request").collect();
    assert_eq!(calls.len(), 1, "{spans:#?}");
    let call = &calls[0].fields;
    assert_eq!(call["http.request.method"], "GET");
    assert_eq!(call["server.address"], "127.0.0.1");
    assert!(call["url.full"].ends_with("/fail/spans/1/503"), "{call:?}");
    assert!(!call["url.full"].contains("s3cret"), "{call:?}");
    assert_eq!(call["http.response.status_code"], "200");
    let attempts: Vec<&Seen> = spans.iter().filter(|s| s.name == "HTTP attempt").collect();
    assert_eq!(attempts.len(), 2, "{spans:#?}");
    assert!(
        attempts
            .iter()
            .all(|a| a.parent.as_deref() == Some("HTTP request"))
    );
    let mut resends: Vec<Option<&String>> = attempts
        .iter()
        .map(|a| a.fields.get("http.request.resend_count"))
        .collect();
    resends.sort();
    assert_eq!(resends, [None, Some(&"1".to_owned())]);
}
