//! Resilience for a service that has nothing to do with HTTP: a toy async user store that, like
//! a database under load, sometimes drops the connection and sometimes stalls.
//!
//! ```text
//! cargo run --example custom_service
//! ```
//!
//! It looks up 12 users at once through deadline → retry → attempt timeout, logs each retry as
//! it happens (the crate's `tracing` events), then prints what each lookup came to. The store's
//! faults come from the crate's fault-injection kit (`testing::FaultLayer`): 30% of the calls
//! drop the connection and 10% stall, a different draw each run.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tower::BoxError;
use tower::{Layer, Service, ServiceExt};
use tower_tenacity::classify::DefaultClassifier;
use tower_tenacity::retry::{ExponentialBackoff, Jitter};
use tower_tenacity::testing::FaultLayer;
use tower_tenacity::{Error, ResilienceLayer};

/// The store: lookups by id; a missing user is an answer, not a fault.
#[derive(Clone)]
struct UserStore {
    users: Arc<HashMap<u32, &'static str>>,
}

#[derive(Debug)]
struct NotFound(u32);

impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no user {}", self.0)
    }
}

impl std::error::Error for NotFound {}

impl Service<u32> for UserStore {
    type Response = &'static str;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<&'static str, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, id: u32) -> Self::Future {
        let users = self.users.clone();
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(fastrand::u64(5..40))).await;
            users.get(&id).copied().ok_or_else(|| NotFound(id).into())
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_target(false)
        .init();

    let store = UserStore {
        users: Arc::new(HashMap::from([
            (1, "Ada"),
            (2, "Grace"),
            (3, "Edsger"),
            (4, "Barbara"),
            (5, "Donald"),
            (6, "Frances"),
            (7, "Ken"),
            (8, "Radia"),
            (9, "John"),
            (10, "Margaret"),
            (11, "Tony"),
        ])),
    };
    // The faults of a real store: a dropped connection, a lock wait far past any timeout.
    let faults = FaultLayer::builder()
        .seed(fastrand::u64(..))
        .error(0.3, io::ErrorKind::ConnectionReset)
        .stall(0.1)
        .build()?;
    let store = faults.layer(store);
    let resilient = ResilienceLayer::builder(DefaultClassifier)
        .total_timeout(Duration::from_millis(1500))
        .attempt_timeout(Duration::from_millis(200))
        .max_attempts(4)
        .backoff(
            ExponentialBackoff::new(Duration::from_millis(50), 2.0, Duration::from_millis(400))
                .with_jitter(Jitter::Equal),
        )
        .build()?
        .layer(store);

    let lookups = (1..=12).map(|id| {
        let mut svc = resilient.clone();
        async move {
            let started = Instant::now();
            let result = async { svc.ready().await?.call(id).await }.await;
            (id, result, started.elapsed())
        }
    });
    let results = futures_util::future::join_all(lookups).await;

    println!();
    for (id, result, took) in results {
        let took = took.as_millis();
        match result {
            Ok(name) => println!("user {id:>2}: {name} ({took} ms)"),
            Err(err) => match Error::find(err.as_ref()) {
                Some(ours) => println!("user {id:>2}: gave up: {ours} ({took} ms)"),
                None => println!("user {id:>2}: {err} ({took} ms)"),
            },
        }
    }
    let seen = faults.counts();
    println!(
        "\nthe store saw {} calls: {} answered, {} dropped, {} stalled",
        seen.requests(),
        seen.passed,
        seen.errors,
        seen.stalled
    );
    Ok(())
}
