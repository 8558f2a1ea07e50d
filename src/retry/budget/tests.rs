//! The budget's own tests: the settings, the floor's pause, and threads racing across windows.

use std::sync::atomic::AtomicBool;

use std::sync::atomic::Ordering;

use super::*;

#[test]
fn retries_are_a_share_of_requests_plus_the_floor() {
    let budget = RetryBudget::new(0.5, 2, Duration::from_secs(3600)).unwrap();
    for _ in 0..10 {
        budget.deposit();
    }
    assert_eq!(budget.retries_left(), 7);
    let granted = (0..100).filter(|_| budget.withdraw()).count();
    assert_eq!(granted, 7);
    assert_eq!(budget.retries_left(), 0);
}

#[test]
fn a_zero_ratio_leaves_only_the_floor() {
    let budget = RetryBudget::new(0.0, 1, Duration::from_secs(3600)).unwrap();
    budget.deposit();
    assert!(budget.withdraw());
    assert!(!budget.withdraw());
}

#[tokio::test(start_paused = true)]
async fn the_floor_refills_and_earnings_decay_per_window() {
    let budget = RetryBudget::new(1.0, 1, Duration::from_secs(1)).unwrap();
    for _ in 0..8 {
        budget.deposit();
    }
    // Spend the floor's retry last: earned tokens go first.
    assert_eq!((0..9).filter(|_| budget.withdraw()).count(), 9);
    assert!(!budget.withdraw());
    budget.succeeded();
    tokio::time::advance(Duration::from_millis(1500)).await;
    assert!(budget.withdraw(), "a new window brings the floor back");
    assert!(!budget.withdraw());
    for _ in 0..8 {
        budget.deposit();
    }
    budget.succeeded();
    tokio::time::advance(Duration::from_secs(2)).await;
    // Two windows later the 8 earned tokens are down to 2, plus the floor.
    assert_eq!((0..10).filter(|_| budget.withdraw()).count(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_floor_spent_without_a_success_pauses_until_one() {
    let second = Duration::from_secs(1);
    let budget = RetryBudget::new(0.0, 2, second).unwrap();
    // A quiet service keeps its floor, window after window.
    tokio::time::advance(second * 3).await;
    assert_eq!((0..5).filter(|_| budget.withdraw()).count(), 2);
    // One window drew on the floor and nothing succeeded: the floor is still there.
    tokio::time::advance(second).await;
    assert_eq!((0..5).filter(|_| budget.withdraw()).count(), 2);
    // Two did: no floor in the next ones.
    for _ in 0..3 {
        tokio::time::advance(second).await;
        assert!(!budget.withdraw());
    }
    budget.succeeded();
    tokio::time::advance(second).await;
    assert_eq!((0..5).filter(|_| budget.withdraw()).count(), 2);
    // Spent beside a success, the floor comes back.
    budget.succeeded();
    tokio::time::advance(second).await;
    assert_eq!((0..5).filter(|_| budget.withdraw()).count(), 2);
}

#[test]
fn bad_settings_are_refused() {
    let err = RetryBudget::new(f64::NAN, 1, Duration::from_secs(1)).unwrap_err();
    assert_eq!(err.field(), "budget.ratio");
    let err = RetryBudget::new(-0.1, 1, Duration::from_secs(1)).unwrap_err();
    assert_eq!(err.field(), "budget.ratio");
    let err = RetryBudget::new(0.1, 1, Duration::ZERO).unwrap_err();
    assert_eq!(err.field(), "budget.window");
}

/// Waits, spinning, until `threads` threads have arrived for `round` (counted from 0): a burst
/// released this way starts within a few instructions on every thread, where a
/// `std::sync::Barrier` wakes them one by one, microseconds apart. `false` if a thread panicked
/// (the others would wait for it for ever).
fn spin_until_all_arrive(arrived: &AtomicU64, gone: &AtomicBool, threads: u64, round: u64) -> bool {
    arrived.fetch_add(1, Ordering::AcqRel);
    while arrived.load(Ordering::Acquire) < threads * (round + 1) {
        if gone.load(Ordering::Acquire) {
            return false;
        }
        std::hint::spin_loop();
    }
    true
}

/// Tells the other threads of a burst, when dropped by a panic, not to wait for this one.
struct LeaveOnPanic<'a>(&'a AtomicBool);

impl Drop for LeaveOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::Release);
        }
    }
}

/// The floor is bounded by `3 × floor` under a failure however the threads interleave with
/// the window's roll. Each trial readies a budget whose failure began just after a success:
/// window 0's floor spent, window 1 rolled by a retry paid from earned tokens (so its floor is
/// untouched), then threads released together at the start of window 2, where one of them
/// rolls the window while the others draw on the floor. A draw on window 1's floor that the
/// roll did not see would count that window as quiet, and the failure would get a fourth floor.
///
/// Whether a draw lands inside the roll is up to the scheduler, so the test runs many bursts:
/// on the code that refilled the floor after moving the window (a load, then a store), a
/// fourth floor came in 20 to 40 % of them on two busy cores, and the test failed every time.
#[test]
fn threads_racing_a_window_roll_never_get_a_fourth_floor() {
    const TRIALS: u64 = 3000;
    const THREADS: u64 = 2;
    const FLOOR: u32 = 1;
    let window = Duration::from_secs(1);
    let budgets: Vec<RetryBudget> = (0..TRIALS)
        .map(|_| {
            let budget = RetryBudget::new(1.0, FLOOR, window).unwrap();
            let origin = budget.share().origin;
            budget.succeeded();
            assert_eq!(budget.take_at(origin), Some(Taken::Floor));
            budget.deposit();
            budget.deposit();
            assert_eq!(budget.take_at(origin + window), Some(Taken::Earned));
            budget
        })
        .collect();
    let (arrived, gone) = (AtomicU64::new(0), AtomicBool::new(false));
    let floors: Vec<AtomicU64> = budgets.iter().map(|_| AtomicU64::new(1)).collect();
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                let _leave = LeaveOnPanic(&gone);
                for (round, (budget, floors)) in budgets.iter().zip(&floors).enumerate() {
                    if !spin_until_all_arrive(&arrived, &gone, THREADS, round as u64) {
                        return;
                    }
                    let at = budget.share().origin + window * 2;
                    for _ in 0..2 {
                        if budget.take_at(at) == Some(Taken::Floor) {
                            floors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
    });
    let mut over = 0;
    for (budget, floors) in budgets.iter().zip(&floors) {
        let mut floors = floors.load(Ordering::Relaxed);
        for later in 3..8 {
            let at = budget.share().origin + window * later;
            // At most a few, so that a budget that never says no fails rather than hangs.
            let taken = (0..10).map_while(|_| budget.take_at(at));
            floors += taken.filter(|taken| *taken == Taken::Floor).count() as u64;
        }
        over += u64::from(floors > 3 * u64::from(FLOOR));
    }
    assert_eq!(over, 0, "{over} of {TRIALS} bursts drew more than 3 floors");
}

#[test]
fn a_retry_given_back_returns_to_its_store_never_past_its_cap() {
    let budget = RetryBudget::new(1.0, 3, Duration::from_secs(3600)).unwrap();
    let now = budget.share().origin;
    assert_eq!(budget.take_at(now), Some(Taken::Floor));
    assert_eq!(budget.take_at(now), Some(Taken::Floor));
    budget.give_back(Taken::Floor);
    assert_eq!(budget.retries_left(), 2);
    budget.give_back(Taken::Floor);
    budget.give_back(Taken::Floor);
    assert_eq!(budget.retries_left(), 3, "never past the floor");
    (0..3).for_each(|_| assert_eq!(budget.take_at(now), Some(Taken::Floor)));
    budget.give_back(Taken::Floor);
    assert_eq!(budget.retries_left(), 1, "back to an empty floor");

    budget.deposit();
    budget.deposit();
    assert_eq!(budget.take_at(now), Some(Taken::Earned));
    budget.give_back(Taken::Earned);
    assert_eq!(budget.retries_left(), 3);
    // Earnings are capped at the deposits of 1000 requests.
    for _ in 0..998 {
        budget.deposit();
    }
    budget.give_back(Taken::Earned);
    assert_eq!(budget.retries_left(), 1001);
}

#[test]
fn debug_shows_the_settings_and_what_is_left() {
    let budget = RetryBudget::new(0.25, 3, Duration::from_secs(2)).unwrap();
    for _ in 0..8 {
        budget.deposit();
    }
    assert_eq!(
        format!("{budget:?}"),
        "RetryBudget { ratio: 0.25, floor: 3, window: 2s, retries_left: 5 }"
    );
}

#[tokio::test(start_paused = true)]
async fn a_budget_per_key_counts_its_windows_from_its_own_creation() {
    let second = Duration::from_secs(1);
    let template = RetryBudget::new(0.5, 2, second).unwrap();
    for _ in 0..10 {
        template.deposit();
    }
    tokio::time::advance(Duration::from_millis(600)).await;
    let fresh = template.fresh();
    assert_eq!(fresh.retries_left(), 2, "the settings, and nothing earned");
    assert_eq!(fresh.share().deposit, template.share().deposit);
    assert_eq!((0..5).filter(|_| fresh.withdraw()).count(), 2);
    fresh.succeeded();
    // 1.2 s: the template's second window, but still the first of the fresh budget.
    tokio::time::advance(Duration::from_millis(600)).await;
    assert!(!fresh.withdraw());
    tokio::time::advance(Duration::from_millis(400)).await;
    assert_eq!((0..5).filter(|_| fresh.withdraw()).count(), 2);
}
