//! A scripted service for the retry tests: each call takes the next step of a script and the
//! instants of the calls are recorded, so that tests can check exactly when attempts started.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::io::Write;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;
use tower::BoxError;
use tower::Service;
use tower_tenacity::classify::{Classification, Classify, Reason, classify_error};

/// What one call of a [`Script`] does.
#[derive(Debug, Clone, Copy)]
pub enum Step {
    /// Answers with this status.
    Reply(u16),
    /// Answers 503 with a server hint.
    Hint(Duration),
    /// Fails with an I/O error of this kind.
    Fail(io::ErrorKind),
    /// Never answers.
    Stall,
}

/// A reply: a status and an optional server hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub retry_after: Option<Duration>,
}

#[derive(Clone)]
pub struct Script {
    steps: Arc<Mutex<VecDeque<Step>>>,
    /// What the script does once its steps are used up.
    then: Step,
    calls: Arc<Mutex<Vec<Instant>>>,
}

impl Script {
    pub fn new(steps: impl IntoIterator<Item = Step>, then: Step) -> Self {
        Script {
            steps: Arc::new(Mutex::new(steps.into_iter().collect())),
            then,
            calls: Arc::default(),
        }
    }

    /// Always does `step`.
    pub fn always(step: Step) -> Self {
        Script::new([], step)
    }

    pub fn calls(&self) -> usize {
        self.calls.lock().unwrap().len()
    }

    /// When each call came, relative to the first.
    pub fn call_offsets(&self) -> Vec<Duration> {
        let calls = self.calls.lock().unwrap();
        calls.iter().map(|at| *at - calls[0]).collect()
    }
}

impl<Req> Service<Req> for Script {
    type Response = Reply;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Reply, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _req: Req) -> Self::Future {
        self.calls.lock().unwrap().push(Instant::now());
        let step = self.steps.lock().unwrap().pop_front().unwrap_or(self.then);
        Box::pin(async move {
            match step {
                Step::Reply(status) => Ok(Reply {
                    status,
                    retry_after: None,
                }),
                Step::Hint(after) => Ok(Reply {
                    status: 503,
                    retry_after: Some(after),
                }),
                Step::Fail(kind) => Err(io::Error::from(kind).into()),
                Step::Stall => std::future::pending().await,
            }
        })
    }
}

/// 2xx is success, 503 retryable (with its hint), other statuses fatal; errors by cause chain.
#[derive(Debug, Clone, Copy)]
pub struct StatusClassifier;

impl<Req> Classify<Req, Reply> for StatusClassifier {
    fn classify(&self, _req: &Req, outcome: Result<&Reply, &BoxError>) -> Classification {
        match outcome {
            Ok(reply) if (200..300).contains(&reply.status) => Classification::Success,
            Ok(Reply {
                status: 503,
                retry_after,
            }) => Classification::Retryable {
                reason: Reason::Status(503),
                after: *retry_after,
            },
            Ok(reply) => Classification::fatal(Reason::Status(reply.status)),
            Err(err) => classify_error(err.as_ref()),
        }
    }
}

/// One call of a service that takes `()`, once it is ready.
pub async fn call<S: Service<()>>(svc: &mut S) -> Result<S::Response, S::Error> {
    use tower::ServiceExt;
    svc.ready().await?.call(()).await
}

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// Every `tracing` event of this test binary. The subscriber is global, not scoped: tracing
/// caches per-callsite interest globally, and a scoped subscriber races with the other tests of
/// the binary.
pub fn global_log() -> &'static Buffer {
    static LOG: std::sync::OnceLock<Buffer> = std::sync::OnceLock::new();
    LOG.get_or_init(|| {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .without_time()
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        buffer
    })
}

/// A log sink for a `tracing` subscriber, readable afterwards.
#[derive(Clone, Default)]
pub struct Buffer(pub Arc<Mutex<Vec<u8>>>);

impl Buffer {
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
