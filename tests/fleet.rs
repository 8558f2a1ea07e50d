//! A fleet of clients over one overloaded server, on a paused clock (see
//! `examples/fleet/sim.rs`): with this crate's defaults the load the server sees stays within
//! the retry budget's bound, and the server recovers once its capacity is back; with retries
//! and no budget it does not (a metastable failure).

#[path = "../examples/fleet/sim.rs"]
mod sim;

use sim::{Fleet, Setup, simulate};

fn run(setup: Setup) -> sim::Outcome {
    run_fleet(Fleet::default(), setup)
}

fn run_fleet(fleet: Fleet, setup: Setup) -> sim::Outcome {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(simulate(fleet, setup))
}

/// The budget's bound on what the server sees in a second: every request, a share `ratio`
/// (0.2) more, and each client's floor (10 a second).
fn bound(fleet: &Fleet) -> f64 {
    let base = f64::from(fleet.clients) * fleet.rate;
    (1.2 * base + 10.0 * f64::from(fleet.clients)) / base
}

#[test]
fn with_the_defaults_the_load_stays_bounded_and_the_server_recovers() {
    let fleet = Fleet::default();
    for setup in [
        Setup::Defaults,
        Setup::DefaultsWithBreaker,
        Setup::DefaultsWithHedging,
    ] {
        bounded_and_recovers(fleet, setup);
    }
}

/// The load stays within the budget's bound, and the server recovers within 10 s of its
/// capacity's return, for good.
fn bounded_and_recovers(fleet: Fleet, setup: Setup) {
    let outcome = run_fleet(fleet, setup);
    assert!(
        outcome.peak_load() <= bound(&fleet),
        "{}: peak {:.3}× over the budget's {:.3}×",
        setup.name(),
        outcome.peak_load(),
        bound(&fleet)
    );
    let recovery = outcome.recovery(&fleet);
    assert!(
        recovery.is_some_and(|s| s <= 10),
        "{}: {recovery:?}",
        setup.name()
    );
    assert!(outcome.goodput_after() >= 0.95, "{}", setup.name());
}

#[test]
fn without_retries_it_recovers_and_without_a_budget_it_does_not() {
    let fleet = Fleet::default();
    let none = run(Setup::NoRetries);
    assert!(none.peak_load() <= 1.01);
    assert!(none.recovery(&fleet).is_some());
    let unbudgeted = run(Setup::RetriesWithoutBudget);
    assert!(unbudgeted.peak_load() > 2.5, "{}", unbudgeted.peak_load());
    assert_eq!(unbudgeted.recovery(&fleet), None, "a metastable failure");
    assert!(unbudgeted.goodput_after() < 0.1);
}

/// The same 400 requests a second from 1 000 clients of 0.4 a second each. The floor is per
/// client, so the floors of the fleet could carry 10 000 retries a second; each pauses once two
/// windows have drawn on it with no success, and the defaults recover. With no floor at all, a client this small never
/// earns a whole retry.
#[test]
fn a_fleet_of_a_thousand_small_clients_recovers_with_the_defaults() {
    let fleet = Fleet {
        clients: 1000,
        rate: 0.4,
        ..Fleet::default()
    };
    for setup in [Setup::Defaults, Setup::DefaultsWithHedging] {
        bounded_and_recovers(fleet, setup);
    }
    let no_floor = run_fleet(fleet, Setup::BudgetWithoutFloor);
    assert!(no_floor.peak_load() <= 1.01, "{}", no_floor.peak_load());
}

/// The server behind an adaptive concurrency limit (`AdmissionLayer`, AIMD with a 250 ms
/// target): it turns away what it cannot serve in time instead of queueing it, so that while
/// its capacity is cut to 300 a second it spends it on calls someone still waits for. Goodput
/// stays near the 75 % a 300-a-second server can give 400 requests a second, the load it sees
/// stays within 1.1× what the clients send (a turned-away call is not retried: the clients do
/// not add to the load being shed), and it recovers at once.
#[test]
fn a_server_that_admits_what_it_can_serve_keeps_its_goodput_through_the_cut() {
    for (clients, rate, peak) in [(10, 40.0, 1.1), (1000, 0.4, 1.1)] {
        let fleet = Fleet {
            clients,
            rate,
            ..Fleet::default()
        };
        let outcome = run_fleet(fleet, Setup::DefaultsWithAdmission);
        let during = outcome.goodput_during(&fleet);
        assert!(
            during >= 0.65,
            "{clients} clients: goodput {during:.2} during the cut"
        );
        assert!(
            outcome.peak_load() <= peak,
            "{clients} clients: peak {:.2}",
            outcome.peak_load()
        );
        assert!(
            outcome.recovery(&fleet).is_some_and(|s| s <= 1),
            "{clients} clients"
        );
        // The defaults alone, for comparison: the queue of calls nobody waits for.
        let queued = run_fleet(fleet, Setup::Defaults);
        assert!(queued.goodput_during(&fleet) < 0.3);
    }
}
