//! A call chain over real hyper and axum (client → hop A → hop B → leaf, the leaf down), every
//! hop through the HTTP preset, on tokio's paused clock: how many attempts reach the leaf, and
//! how much leaf work starts after the caller's deadline. See `net.rs`; `tests/chain.rs`
//! asserts the same.
//!
//! ```text
//! cargo run --release --example chain
//! ```

mod net;
#[path = "../demo_client/pipe.rs"]
mod pipe;

use net::{Hops, late, lone, steady};

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    println!("client → A → B → leaf (always 503), each hop through the HTTP preset\n");
    println!(
        "{:<34} {:>14} {:>18} {:>22}",
        "hops", "lone request", "300 in an outage", "leaf work after deadline"
    );
    for (hops, name) in [
        (Hops::Naive, "every hop retries, no budget"),
        (Hops::Deaf, "presets, deadline not carried"),
        (Hops::Presets, "presets, deadline carried"),
    ] {
        let lone = lone(hops).await;
        let steady = steady(hops, 300).await;
        let (late, calls, _) = late(hops, 20).await;
        println!(
            "{name:<34} {lone:>8} calls {:>15.2}× {:>15} of {calls}",
            steady as f64 / 300.0,
            late
        );
    }
}
