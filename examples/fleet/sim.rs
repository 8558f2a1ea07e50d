//! A fleet of clients over one server with a capacity, on a paused clock: what retries do to a
//! server that is overloaded, and whether it recovers. Shared by `examples/fleet` and
//! `tests/fleet.rs`.
//!
//! The server serves calls one after another, `capacity` of them a second, in the order they
//! came. A call that has to wait behind others waits; a client that gives up on it (its attempt
//! timeout) does not take back the server's work, which is still spent on it. So once the
//! queue is longer than the clients' patience, the server works only on calls nobody waits for
//! any more, and its goodput falls to nothing: overload turns into failure. Clients send at a
//! steady rate (an open loop, as real traffic does), each through a stack of its own, to the
//! server's stack: the model server, behind this crate's admission limit in the setup that has
//! one (in-process, where a turned-away call is an error; an HTTP or gRPC server's answer says
//! the same on the wire, and the presets do not retry it either).
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tower::BoxError;
use tower::{Layer, ServiceExt, service_fn};
use tower_tenacity::ResilienceLayer;
use tower_tenacity::admission::{AdaptiveLimit, AdmissionLayer};
use tower_tenacity::breaker::BreakerConfig;
use tower_tenacity::classify::DefaultClassifier;
use tower_tenacity::deadline::DeadlineLayer;
use tower_tenacity::retry::{Hedge, RetryBudget, RetryLayer};
use tower_tenacity::throttle::{Throttle, ThrottleLayer};
use tower_tenacity::timeout::TimeoutLayer;

/// The fleet and its server.
#[derive(Debug, Clone, Copy)]
pub struct Fleet {
    pub clients: u32,
    /// Requests a second each client sends.
    pub rate: f64,
    /// Calls a second the server serves.
    pub capacity: f64,
    /// From when to when the capacity is cut, and to what share.
    pub trigger: (Duration, Duration, f64),
    /// How long the run lasts.
    pub length: Duration,
}

impl Default for Fleet {
    fn default() -> Self {
        Fleet {
            clients: 10,
            rate: 40.0,
            capacity: 1000.0,
            trigger: (Duration::from_secs(10), Duration::from_secs(20), 0.3),
            length: Duration::from_secs(40),
        }
    }
}

/// How each client's stack is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    NoRetries,
    RetriesWithoutBudget,
    Defaults,
    DefaultsWithBreaker,
    DefaultsWithHedging,
    /// The defaults with no floor in the budget: retries only as a share of requests.
    BudgetWithoutFloor,
    /// The defaults with adaptive throttling between retry and the attempt timeout.
    DefaultsWithThrottle,
    /// The defaults, and the server behind an adaptive concurrency limit (AIMD, 250 ms).
    DefaultsWithAdmission,
}

impl Setup {
    pub const ALL: [Setup; 8] = [
        Setup::NoRetries,
        Setup::RetriesWithoutBudget,
        Setup::Defaults,
        Setup::DefaultsWithBreaker,
        Setup::DefaultsWithHedging,
        Setup::BudgetWithoutFloor,
        Setup::DefaultsWithThrottle,
        Setup::DefaultsWithAdmission,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Setup::NoRetries => "no retries",
            Setup::RetriesWithoutBudget => "retries, no budget",
            Setup::Defaults => "defaults (budget)",
            Setup::DefaultsWithBreaker => "defaults + breaker",
            Setup::DefaultsWithHedging => "defaults + hedging",
            Setup::BudgetWithoutFloor => "budget with no floor",
            Setup::DefaultsWithThrottle => "defaults + throttle",
            Setup::DefaultsWithAdmission => "defaults + admission",
        }
    }
}

/// What one run came to, second by second and in sum.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Calls that reached the server, each second.
    pub offered: Vec<u64>,
    /// Calls answered to a client that still waited, each second.
    pub goodput: Vec<u64>,
    /// The load the clients send, a second.
    pub base: f64,
}

impl Outcome {
    /// The most calls the server saw in a second, against the clients' own load.
    pub fn peak_load(&self) -> f64 {
        *self.offered.iter().max().unwrap_or(&0) as f64 / self.base
    }

    fn mean(values: &[u64]) -> f64 {
        values.iter().sum::<u64>() as f64 / values.len().max(1) as f64
    }

    /// Goodput while the capacity is cut, against the load.
    pub fn goodput_during(&self, fleet: &Fleet) -> f64 {
        let (from, to, _) = fleet.trigger;
        Self::mean(&self.goodput[from.as_secs() as usize..to.as_secs() as usize]) / self.base
    }

    /// Goodput over the last ten seconds, against the load.
    pub fn goodput_after(&self) -> f64 {
        Self::mean(&self.goodput[self.goodput.len() - 10..]) / self.base
    }

    /// Seconds from the capacity's return until the goodput is back at 95% of the load and
    /// stays there; `None` if it never is.
    pub fn recovery(&self, fleet: &Fleet) -> Option<u64> {
        let back = fleet.trigger.1.as_secs() as usize;
        let good = |s: &u64| *s as f64 >= 0.95 * self.base;
        (back..self.goodput.len())
            .find(|&s| self.goodput[s..].iter().all(good))
            .map(|s| (s - back) as u64)
    }
}

/// The server: a queue served at its capacity (cut during the trigger), counting what it was
/// offered and what it answered in time, per second.
#[derive(Clone)]
struct Server {
    fleet: Fleet,
    start: Instant,
    busy_until: Arc<Mutex<Instant>>,
    offered: Arc<Vec<AtomicU64>>,
    goodput: Arc<Vec<AtomicU64>>,
}

impl Server {
    fn new(fleet: Fleet) -> Server {
        let seconds = fleet.length.as_secs() as usize + 1;
        let counters = || Arc::new((0..seconds).map(|_| AtomicU64::new(0)).collect());
        let start = Instant::now();
        Server {
            fleet,
            start,
            busy_until: Arc::new(Mutex::new(start)),
            offered: counters(),
            goodput: counters(),
        }
    }

    fn second(&self, at: Instant) -> usize {
        let s = at.duration_since(self.start).as_secs() as usize;
        s.min(self.offered.len() - 1)
    }

    /// When a call that arrives now is done: after every call before it, at the capacity of
    /// the moment it starts.
    fn schedule(&self, now: Instant) -> Instant {
        let mut busy_until = self.busy_until.lock().unwrap();
        let begin = (*busy_until).max(now);
        let (from, to, share) = self.fleet.trigger;
        let elapsed = begin.duration_since(self.start);
        let capacity = if elapsed >= from && elapsed < to {
            self.fleet.capacity * share
        } else {
            self.fleet.capacity
        };
        *busy_until = begin + Duration::from_secs_f64(1.0 / capacity);
        *busy_until
    }

    async fn call(self) -> Result<(), BoxError> {
        let now = Instant::now();
        self.offered[self.second(now)].fetch_add(1, Ordering::Relaxed);
        let done = self.schedule(now);
        tokio::time::sleep_until(done).await;
        // Only a client that still waits gets here: a cancelled call never does.
        self.goodput[self.second(done)].fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// The client stack of `setup` (attempt timeout 500 ms, total 2 s, 3 attempts, seeded).
fn stack(setup: Setup, seed: u64) -> tower_tenacity::ResilienceBuilder {
    let base = ResilienceLayer::builder(DefaultClassifier)
        .attempt_timeout(Duration::from_millis(500))
        .total_timeout(Duration::from_secs(2))
        .seed(seed);
    match setup {
        Setup::NoRetries => base.max_attempts(1),
        Setup::RetriesWithoutBudget => base.no_budget(),
        Setup::Defaults
        | Setup::DefaultsWithBreaker
        | Setup::DefaultsWithHedging
        | Setup::DefaultsWithThrottle
        | Setup::DefaultsWithAdmission => base.budget(RetryBudget::default()),
        Setup::BudgetWithoutFloor => {
            base.budget(RetryBudget::new(0.2, 0, Duration::from_secs(1)).unwrap())
        }
    }
}

/// Runs the fleet with every client set up as `setup`; on a paused clock.
pub async fn simulate(fleet: Fleet, setup: Setup) -> Outcome {
    let server = Server::new(fleet);
    let start = server.start;
    let interval = Duration::from_secs_f64(1.0 / fleet.rate);
    let mut drivers = Vec::new();
    // The server's stack, which every client calls: the model server, behind the admission
    // limit when the setup has one. Turning a call away costs the model server nothing: it takes
    // no place in its queue.
    let target = server.clone();
    let model = service_fn(move |()| target.clone().call());
    let server_stack = tower::util::BoxCloneService::new(match setup {
        Setup::DefaultsWithAdmission => {
            let limit = AdaptiveLimit::aimd(Duration::from_millis(250));
            tower::util::Either::Left(AdmissionLayer::new(limit).unwrap().layer(model))
        }
        _ => tower::util::Either::Right(ServiceExt::map_err(model, BoxError::from)),
    });
    for client in 0..fleet.clients {
        let inner = server_stack.clone();
        let svc = match setup {
            Setup::DefaultsWithBreaker => {
                let breaker = BreakerConfig::new()
                    .failure_ratio(0.5)
                    .min_calls(20)
                    .window(Duration::from_secs(5))
                    .break_duration(Duration::from_secs(1))
                    .seed(u64::from(client));
                let layer = stack(setup, u64::from(client)).circuit_breaker(breaker);
                tower::util::BoxCloneService::new(layer.build().unwrap().layer(inner))
            }
            Setup::DefaultsWithThrottle => {
                // Retry → throttle → attempt timeout, as the presets order admission.
                let seed = u64::from(client);
                let retry = RetryLayer::builder()
                    .classifier(DefaultClassifier)
                    .budget(RetryBudget::default())
                    .seed(seed)
                    .build()
                    .unwrap();
                let throttle =
                    ThrottleLayer::new(Throttle::new().seed(seed), DefaultClassifier).unwrap();
                let svc = tower::ServiceBuilder::new()
                    .layer(DeadlineLayer::new(Duration::from_secs(2)))
                    .layer(retry)
                    .layer(throttle)
                    .layer(TimeoutLayer::new(Duration::from_millis(500)))
                    .service(inner);
                tower::util::BoxCloneService::new(svc)
            }
            Setup::DefaultsWithHedging => {
                let hedge = Hedge::after(Duration::from_millis(100));
                let layer = stack(setup, u64::from(client)).hedge(hedge);
                tower::util::BoxCloneService::new(layer.build().unwrap().layer(inner))
            }
            _ => tower::util::BoxCloneService::new(
                stack(setup, u64::from(client))
                    .build()
                    .unwrap()
                    .layer(inner),
            ),
        };
        // Clients spread their sends over the interval.
        let offset = interval * client / fleet.clients;
        drivers.push(tokio::spawn(async move {
            let mut next = start + offset;
            while next < start + fleet.length {
                tokio::time::sleep_until(next).await;
                let call = svc.clone().oneshot(());
                tokio::spawn(async move {
                    let _ = call.await;
                });
                next += interval;
            }
        }));
    }
    for driver in drivers {
        driver.await.unwrap();
    }
    // Let the last calls end.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let take = |v: &Arc<Vec<AtomicU64>>| {
        let all: Vec<u64> = v.iter().map(|n| n.load(Ordering::Relaxed)).collect();
        all[..fleet.length.as_secs() as usize].to_vec()
    };
    Outcome {
        offered: take(&server.offered),
        goodput: take(&server.goodput),
        base: f64::from(fleet.clients) * fleet.rate,
    }
}
