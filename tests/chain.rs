//! The call chain of `examples/chain/net.rs` over real hyper and axum, on the paused clock:
//! retry at one hop, and the deadline carried down the chain.

#[path = "../examples/chain/net.rs"]
mod net;
#[path = "../examples/demo_client/pipe.rs"]
mod pipe;

use http::StatusCode;
use net::{Hops, late, lone, steady};

#[tokio::test(start_paused = true)]
async fn a_lone_request_reaches_a_failing_leaf_three_times_not_twenty_seven() {
    assert_eq!(
        lone(Hops::Presets).await,
        3,
        "only B, next to the leaf, retried"
    );
    // The same graph with every hop retrying and nothing to say it already did: 3 × 3 × 3.
    assert_eq!(lone(Hops::Naive).await, 27);
}

#[tokio::test(start_paused = true)]
async fn under_a_steady_outage_the_leaf_gets_at_most_1_3_times_the_requests() {
    let requests = 300;
    let calls = steady(Hops::Presets, requests).await;
    assert!(
        calls as f64 <= 1.3 * requests as f64,
        "{calls} attempts reached the leaf for {requests} requests"
    );
}

/// With the deadline read at each hop and handed to its own calls, no leaf work starts after
/// the caller's deadline, and the caller gets a 504 at it; with no hop reading it, B's retries
/// go on after the caller's deadline.
#[tokio::test(start_paused = true)]
async fn no_leaf_work_starts_after_its_caller_gave_up() {
    let (late_calls, calls, statuses) = late(Hops::Presets, 10).await;
    assert!(calls >= 10, "every request reached the leaf once at least");
    assert!(
        late_calls * 100 <= calls,
        "{late_calls} of {calls} leaf calls started after their caller's deadline"
    );
    // The answer comes by the deadline: 504 where B's own deadline cut its retry, 503 (marked
    // as retried already) where B gave up first.
    assert!(
        (statuses.iter())
            .all(|s| [StatusCode::GATEWAY_TIMEOUT, StatusCode::SERVICE_UNAVAILABLE].contains(s)),
        "{statuses:?}"
    );
    // Not vacuous: deaf to the deadline, the same chain starts leaf work nobody waits for.
    let (late_calls, calls, _) = late(Hops::Deaf, 10).await;
    assert!(
        late_calls * 10 >= calls,
        "deaf: {late_calls} of {calls} late"
    );
}
