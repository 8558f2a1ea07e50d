//! A fleet of clients over one server whose capacity is cut for ten seconds, on a paused clock
//! (it runs in a few seconds of real time): the load each client setup puts on the server, the
//! goodput while the capacity is cut and after, and how long the server takes to recover.
//!
//! ```text
//! cargo run --release --example fleet
//! ```
//!
//! The server serves 1 000 calls a second in order; 10 clients send 40 requests a second each
//! (400 a second); from 10 s to 20 s the server serves only 300 a second. A call that waits in
//! its queue longer than the client's 500 ms attempt timeout is abandoned by the client, but
//! still costs the server its work: overload turns into failure. See `sim.rs`.

mod sim;

use sim::{Fleet, Setup, simulate};

fn main() {
    // FLEET_CLIENTS=1000 spreads the same load over that many clients.
    let mut fleet = Fleet::default();
    if let Some(clients) = std::env::var("FLEET_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        fleet.rate = fleet.rate * f64::from(fleet.clients) / f64::from(clients);
        fleet.clients = clients;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime");
    println!(
        "{} clients × {} requests/s = {} requests/s; server capacity {}/s, cut to {}% from {:?} to {:?}\n",
        fleet.clients,
        fleet.rate,
        f64::from(fleet.clients) * fleet.rate,
        fleet.capacity,
        fleet.trigger.2 * 100.0,
        fleet.trigger.0,
        fleet.trigger.1
    );
    println!(
        "{:<22} {:>10} {:>15} {:>14} {:>12}",
        "setup", "peak load", "goodput during", "goodput after", "recovery"
    );
    for setup in Setup::ALL {
        let outcome = runtime.block_on(simulate(fleet, setup));
        let recovery = match outcome.recovery(&fleet) {
            Some(secs) => format!("{secs} s"),
            None => "never".to_string(),
        };
        println!(
            "{:<22} {:>9.2}× {:>14.0}% {:>13.0}% {:>12}",
            setup.name(),
            outcome.peak_load(),
            outcome.goodput_during(&fleet) * 100.0,
            outcome.goodput_after() * 100.0,
            recovery
        );
    }
}
