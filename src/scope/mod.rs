//! State kept per key: one retry budget and one circuit per host, bounded in memory.
//!
//! One client often talks to many hosts. A budget or a circuit shared by all of them lets one
//! host that is down open the circuit, or drain the retry budget, for every other. A key says
//! which part of a request its state belongs to (the HTTP and gRPC presets use the request's
//! scheme and authority, [`http::ByAuthority`](crate::http::ByAuthority));
//! each key gets its own state, made from the layer's settings the first time the key is seen.
//!
//! The set of keys is bounded: past the cap (1024 by default), making room for a new key drops
//! the state of a key that has not been used since the last time room was made and has no call
//! in flight, so that a caller that talks to endless hosts cannot grow memory without limit.
//! Reading the state of a known key takes no lock: the map is a fixed table of buckets (as many
//! as the cap allows keys, up to 65 536), each an atomic pointer (`arc-swap`) to its short chain
//! of keys. Adding a key copies only its own chain, under a lock among writers only, and making
//! room sweeps on from where the last sweep stopped: a new key costs the same with ten keys or a
//! thousand. Keys are hashed with `foldhash`, seeded per map; keys that share a hash are told
//! apart by comparing them.
//!
//! A key is made of a closure with [`key_fn`] (its value is `Hash + Eq + Debug`, and its
//! `Debug` form names the scope in events), or is the HTTP presets' `ByAuthority`:
//!
//! ```
//! use tower_tenacity::retry::RetryLayer;
//! use tower_tenacity::scope::key_fn;
//!
//! struct Job { tenant: String }
//! // One retry budget per tenant, for at most 100 tenants.
//! let layer = RetryLayer::new().budget_per_key(key_fn(|job: &Job| job.tenant.clone()), 100);
//! # let _ = layer;
//! ```

use std::any::Any;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwapOption;

mod key;

pub use self::key::key_fn;
// The trait a key implements and the default of one state for every request: named by the
// layers' bounds and type parameters, not by users, who make keys with `key_fn`.
pub(crate) use self::key::{ScopeKey, Unscoped};

/// How many keys a layer keeps state for unless told otherwise.
pub(crate) const DEFAULT_MAX_KEYS: usize = 1024;

/// One key's state in a [`Scopes`] map.
pub(crate) struct Slot<V> {
    hash: u64,
    key: Box<dyn Any + Send + Sync>,
    name: Box<str>,
    used: AtomicBool,
    // The key's metric handles, made at its first record: a success then records with no
    // allocation (a key's labels would otherwise be built for every call).
    #[cfg(feature = "metrics")]
    metrics: std::sync::OnceLock<crate::metrics::ScopeMetrics>,
    value: V,
}

impl<V> Slot<V> {
    fn new(hash: u64, key: Box<dyn Any + Send + Sync>, name: Box<str>, value: V) -> Self {
        Slot {
            hash,
            key,
            name,
            used: AtomicBool::new(true),
            #[cfg(feature = "metrics")]
            metrics: std::sync::OnceLock::new(),
            value,
        }
    }

    /// The key as its `Debug` form, for events; empty for the single scope.
    pub(crate) fn name(&self) -> Option<&str> {
        (!self.name.is_empty()).then_some(&*self.name)
    }

    /// The key, for events and metrics; `None` for the single scope.
    pub(crate) fn scope(&self) -> Option<Scope<'_>> {
        Some(Scope {
            name: self.name()?,
            #[cfg(feature = "metrics")]
            metrics: &self.metrics,
        })
    }
}

/// A key's name and what its metrics keep, as events carry them.
#[derive(Clone, Copy)]
pub(crate) struct Scope<'a> {
    pub(crate) name: &'a str,
    #[cfg(feature = "metrics")]
    pub(crate) metrics: &'a std::sync::OnceLock<crate::metrics::ScopeMetrics>,
}

impl<V> Deref for Slot<V> {
    type Target = V;

    fn deref(&self) -> &V {
        &self.value
    }
}

/// The keys whose hashes fall in one bucket. Replaced whole when one is added or dropped, so
/// that readers never lock: with as many buckets as the cap allows keys, a chain holds one key
/// or two, and adding a key copies only its own chain.
type Chain<V> = Vec<Arc<Slot<V>>>;

/// The most buckets a map has: 65 536 (512 KiB of pointers), reached with a cap of as many keys.
/// Past it chains grow with the cap, not with the keys seen.
const MAX_BUCKETS: usize = 1 << 16;

/// Per-key state: one value for every request, or a value of `V` per key, made by `make` when
/// the key is first seen, at most `cap` keys. Reads of known keys are lock-free.
pub(crate) enum Scopes<V> {
    Single(Arc<Slot<V>>),
    PerKey(PerKey<V>),
}

/// The map of [`Scopes::PerKey`]: a fixed table of buckets, each an atomic pointer to its chain.
pub(crate) struct PerKey<V> {
    buckets: Box<[ArcSwapOption<Chain<V>>]>,
    hasher: foldhash::quality::RandomState,
    cap: usize,
    make: Box<dyn Fn() -> V + Send + Sync>,
    writer: Mutex<Writer>,
}

/// What the writers share: how many keys there are, and where the eviction's sweep goes on.
#[derive(Default)]
struct Writer {
    keys: usize,
    hand: usize,
}

impl<V> Scopes<V> {
    /// State for one key only: every request gets the same value.
    pub(crate) fn single(value: V) -> Self {
        Scopes::Single(Arc::new(Slot::new(0, Box::new(()), "".into(), value)))
    }

    /// State per key, up to `cap` keys, each made by `make`.
    pub(crate) fn per_key(cap: usize, make: impl Fn() -> V + Send + Sync + 'static) -> Self {
        let cap = cap.max(1);
        let buckets = cap.checked_next_power_of_two().unwrap_or(MAX_BUCKETS);
        Scopes::PerKey(PerKey {
            buckets: (0..buckets.min(MAX_BUCKETS))
                .map(|_| ArcSwapOption::empty())
                .collect(),
            hasher: foldhash::quality::RandomState::default(),
            cap,
            make: Box::new(make),
            writer: Mutex::default(),
        })
    }

    /// The state of `request`'s key, made if the key is new.
    #[inline(always)]
    pub(crate) fn get<Req, K: ScopeKey<Req>>(&self, scope: &K, request: &Req) -> Arc<Slot<V>> {
        match self {
            Scopes::Single(single) => single.clone(),
            Scopes::PerKey(per_key) => per_key.get(scope.key(request)),
        }
    }

    /// The most keys kept: 1 for the single scope.
    pub(crate) fn cap(&self) -> usize {
        match self {
            Scopes::Single(_) => 1,
            Scopes::PerKey(per_key) => per_key.cap,
        }
    }

    /// Runs `f` on every key's slot, for work done away from the calls (a throttle's ticker,
    /// a snapshot).
    pub(crate) fn for_each_slot(&self, mut f: impl FnMut(&Arc<Slot<V>>)) {
        match self {
            Scopes::Single(single) => f(single),
            Scopes::PerKey(per_key) => {
                for chain in per_key.buckets.iter().filter_map(ArcSwapOption::load_full) {
                    chain.iter().for_each(&mut f);
                }
            }
        }
    }

    /// Runs `f` on every key's state.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&V)) {
        self.for_each_slot(|slot| f(slot));
    }

    /// The keys' states, for snapshots.
    pub(crate) fn all(&self) -> Vec<Arc<Slot<V>>> {
        let mut all = Vec::new();
        self.for_each_slot(|slot| all.push(slot.clone()));
        all
    }
}

impl<V> PerKey<V> {
    fn bucket(&self, hash: u64) -> &ArcSwapOption<Chain<V>> {
        // The table's length is a power of two; foldhash's low bits are as good as its high.
        &self.buckets[hash as usize & (self.buckets.len() - 1)]
    }

    fn get<Q: Hash + Eq + fmt::Debug + Send + Sync + 'static>(&self, key: Q) -> Arc<Slot<V>> {
        let hash = self.hasher.hash_one(&key);
        if let Some(slot) = find(self.bucket(hash).load().as_deref(), hash, &key) {
            if !slot.used.load(Ordering::Relaxed) {
                slot.used.store(true, Ordering::Relaxed);
            }
            return slot;
        }
        self.insert(hash, key)
    }

    /// Adds `key`, making room first if the map is full: a copy of one chain, and (past the
    /// cap) a sweep that on average visits a constant number of keys.
    #[cold]
    fn insert<Q: Hash + Eq + fmt::Debug + Send + Sync + 'static>(
        &self,
        hash: u64,
        key: Q,
    ) -> Arc<Slot<V>> {
        let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let bucket = self.bucket(hash);
        if let Some(slot) = find(bucket.load().as_deref(), hash, &key) {
            return slot;
        }
        if writer.keys >= self.cap {
            self.evict(&mut writer);
        }
        let name = format!("{key:?}").into();
        let slot = Arc::new(Slot::new(hash, Box::new(key), name, (self.make)()));
        let mut chain = bucket.load().as_deref().cloned().unwrap_or_default();
        chain.push(slot.clone());
        bucket.store(Some(Arc::new(chain)));
        writer.keys += 1;
        slot
    }

    /// Drops one key's state to make room, by the CLOCK page-replacement algorithm: the hand
    /// sweeps the buckets from where it last stopped, giving each key used since its last
    /// visit a second chance (its mark is cleared), and stops at a key that is unmarked and
    /// idle (no call in flight: only its chain holds it). Two turns of the table at most; if
    /// every key has a call in flight, the next one goes, and its calls finish with the state
    /// they hold.
    fn evict(&self, writer: &mut Writer) {
        let len = self.buckets.len();
        let idle = |slot: &Arc<Slot<V>>| Arc::strong_count(slot) == 1;
        let mut fallback = None;
        for step in 0..2 * len {
            let at = (writer.hand + step) % len;
            let Some(chain) = self.buckets[at].load_full() else {
                continue;
            };
            fallback.get_or_insert(at);
            let victim = chain.iter().position(|slot| {
                let chosen = idle(slot) && !slot.used.load(Ordering::Relaxed);
                slot.used.store(false, Ordering::Relaxed);
                chosen
            });
            if let Some(victim) = victim {
                self.drop_slot(at, &chain, victim, writer);
                return;
            }
        }
        if let Some(at) = fallback
            && let Some(chain) = self.buckets[at].load_full()
        {
            self.drop_slot(at, &chain, 0, writer);
        }
    }

    fn drop_slot(&self, at: usize, chain: &Chain<V>, victim: usize, writer: &mut Writer) {
        let mut rest = chain.clone();
        rest.remove(victim);
        self.buckets[at].store((!rest.is_empty()).then(|| Arc::new(rest)));
        writer.keys -= 1;
        writer.hand = at;
    }
}

fn find<V, Q: Eq + 'static>(chain: Option<&Chain<V>>, hash: u64, key: &Q) -> Option<Arc<Slot<V>>> {
    chain?
        .iter()
        .find(|slot| slot.hash == hash && slot.key.downcast_ref::<Q>() == Some(key))
        .cloned()
}

impl<V> fmt::Debug for Scopes<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scopes::Single(_) => f.write_str("Scopes::Single"),
            Scopes::PerKey(per_key) => {
                let writer = per_key
                    .writer
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                f.debug_struct("Scopes::PerKey")
                    .field("keys", &writer.keys)
                    .field("cap", &per_key.cap)
                    .finish()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    fn counter() -> Scopes<AtomicU32> {
        Scopes::per_key(2, || AtomicU32::new(0))
    }

    #[test]
    fn each_key_has_its_own_state() {
        let scopes = counter();
        let by_name = key_fn(|name: &&str| name.to_string());
        scopes.get(&by_name, &"a").fetch_add(1, Ordering::Relaxed);
        scopes.get(&by_name, &"a").fetch_add(1, Ordering::Relaxed);
        scopes.get(&by_name, &"b").fetch_add(1, Ordering::Relaxed);
        assert_eq!(scopes.get(&by_name, &"a").load(Ordering::Relaxed), 2);
        assert_eq!(scopes.get(&by_name, &"b").load(Ordering::Relaxed), 1);
        assert_eq!(scopes.get(&by_name, &"a").name(), Some("\"a\""));
    }

    #[test]
    fn past_the_cap_an_idle_key_makes_room_and_a_key_in_use_stays() {
        let scopes = counter();
        let by_name = key_fn(|name: &&str| name.to_string());
        let a = scopes.get(&by_name, &"a");
        a.fetch_add(1, Ordering::Relaxed);
        scopes.get(&by_name, &"b").fetch_add(1, Ordering::Relaxed);
        // "a" has a call in flight (`a` is held): "b" goes.
        scopes.get(&by_name, &"c");
        assert_eq!(scopes.all().len(), 2);
        assert_eq!(scopes.get(&by_name, &"a").load(Ordering::Relaxed), 1);
        drop(a);
        for name in ["d", "e", "f", "g"] {
            scopes.get(&by_name, &name);
            assert!(scopes.all().len() <= 2);
        }
        assert_eq!(scopes.get(&by_name, &"b").load(Ordering::Relaxed), 0);
    }

    #[test]
    fn keys_that_share_a_hash_stay_apart() {
        let chain: Chain<u32> = [("x", 1), ("y", 2)]
            .into_iter()
            .map(|(key, value)| {
                let slot = Slot::new(7, Box::new(key), key.into(), value);
                slot.used.store(false, Ordering::Relaxed);
                Arc::new(slot)
            })
            .collect();
        assert_eq!(find(Some(&chain), 7, &"y").map(|s| s.value), Some(2));
        assert_eq!(find(Some(&chain), 7, &"x").map(|s| s.value), Some(1));
        assert!(find(Some(&chain), 7, &"z").is_none());
        assert!(find(Some(&chain), 8, &"x").is_none());
    }
}
