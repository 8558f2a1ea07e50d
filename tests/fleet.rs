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
    let base = f64::from(fleet.clients * fleet.rate);
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
        let outcome = run(setup);
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

/// The budget's floor is per client: 100 clients sending 4 requests a second each (the same
/// 400 a second) may retry 10 times a second each whatever their own traffic, 1 000 retries a
/// second in all, and the defaults no longer keep the server out of a metastable failure. The
/// bound still holds (it is that loose); a budget with no floor, or a breaker, recovers.
#[test]
fn a_fleet_of_small_clients_outgrows_the_default_floor() {
    let fleet = Fleet {
        clients: 100,
        rate: 4,
        ..Fleet::default()
    };
    let defaults = run_fleet(fleet, Setup::Defaults);
    assert!(defaults.peak_load() <= bound(&fleet));
    assert_eq!(
        defaults.recovery(&fleet),
        None,
        "the floors add up to a retry storm"
    );
    let no_floor = run_fleet(fleet, Setup::BudgetWithoutFloor);
    assert!(no_floor.peak_load() <= 1.21, "{}", no_floor.peak_load());
    assert!(no_floor.recovery(&fleet).is_some());
    let breaker = run_fleet(fleet, Setup::DefaultsWithBreaker);
    assert!(breaker.recovery(&fleet).is_some());
}
