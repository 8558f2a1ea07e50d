//! The circuit in states that only a race reaches from outside: a word that changed between
//! a read and the lock, and a hold that a circuit has not followed yet.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Circuit, Pass, Shared};
use crate::breaker::settings::Settings;
use crate::breaker::{BreakerConfig, CircuitState};

fn circuit(config: BreakerConfig) -> Circuit {
    let settings = Settings::new(&config.break_jitter(0.0)).unwrap();
    Circuit::new(Arc::new(Shared::new(settings, None)))
}

fn one_failure_opens() -> BreakerConfig {
    BreakerConfig::new()
        .consecutive_failures(1)
        .break_duration(Duration::from_millis(1))
}

fn fail(circuit: &Circuit, pass: Pass) {
    circuit.on_outcome(pass, true, false, Some(circuit.now_us()), None);
}

fn state(circuit: &Circuit) -> CircuitState {
    circuit.snapshot(None).state
}

#[tokio::test(start_paused = true)]
async fn no_probe_goes_through_a_word_that_changed_since_it_was_read() {
    let circuit = circuit(one_failure_opens());
    let closed = circuit.word.load(Ordering::Relaxed);
    fail(&circuit, circuit.admit(None).unwrap());
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(circuit.probe(closed, None), None);
    assert_eq!(state(&circuit), CircuitState::HalfOpen, "the break is over");
    let open = circuit.word.load(Ordering::Relaxed);
    assert!(circuit.probe(open, None).is_some_and(|pass| pass.probe));
}

#[tokio::test(start_paused = true)]
async fn a_circuit_behind_its_hold_is_not_opened_and_follows_it_at_its_next_call() {
    let circuit = circuit(one_failure_opens());
    let pass = circuit.admit(None).unwrap();
    // Held closed, as a circuit the handle did not reach (made while it went through them).
    circuit.shared.set_hold(CircuitState::HeldClosed);
    fail(&circuit, pass);
    assert_eq!(state(&circuit), CircuitState::Closed);
    assert!(circuit.admit(None).is_ok());
    assert_eq!(state(&circuit), CircuitState::HeldClosed);
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_does_not_open_a_circuit_behind_its_hold() {
    let circuit = circuit(one_failure_opens());
    fail(&circuit, circuit.admit(None).unwrap());
    tokio::time::advance(Duration::from_millis(1)).await;
    let probe = circuit.admit(None).unwrap();
    circuit.shared.set_hold(CircuitState::HeldClosed);
    fail(&circuit, probe);
    assert_eq!(state(&circuit), CircuitState::HalfOpen);
    assert_eq!(circuit.snapshot(None).opens, 1);
}

#[tokio::test(start_paused = true)]
async fn a_circuit_behind_a_release_is_closed_afresh_by_its_next_call() {
    let circuit = circuit(one_failure_opens().consecutive_failures(5).min_calls(10));
    fail(&circuit, circuit.admit(None).unwrap());
    circuit.shared.set_hold(CircuitState::HeldOpen);
    circuit.follow_hold(true, None);
    assert!(circuit.admit(None).is_err());
    // Released, but the release did not reach this circuit.
    circuit.shared.set_hold(CircuitState::Closed);
    assert_eq!(state(&circuit), CircuitState::HeldOpen);
    let pass = circuit.admit(None).unwrap();
    assert!(!pass.probe);
    let snapshot = circuit.snapshot(None);
    assert_eq!(snapshot.state, CircuitState::Closed);
    assert_eq!(snapshot.consecutive_failures, 0);
    assert_eq!(snapshot.counts.calls, 0);
}

#[tokio::test(start_paused = true)]
async fn a_circuit_that_follows_its_hold_is_left_as_it_is() {
    let circuit = circuit(one_failure_opens());
    let word = circuit.word.load(Ordering::Relaxed);
    assert_eq!(circuit.follow_hold(false, None), word);
    circuit.shared.set_hold(CircuitState::HeldOpen);
    let held = circuit.follow_hold(false, None);
    assert_ne!(held, word);
    assert_eq!(circuit.follow_hold(false, None), held);
    // An operator's call changes it all the same.
    assert_ne!(circuit.follow_hold(true, None), held);
}
