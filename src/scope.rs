//! State kept per key: one retry budget and one circuit per host, bounded in memory.
//!
//! One client often talks to many hosts. A budget or a circuit shared by all of them lets one
//! host that is down open the circuit, or drain the retry budget, for every other. A
//! [`ScopeKey`] says which part of a request its state belongs to (the HTTP and gRPC presets
//! use the request's scheme and authority, [`http::ByAuthority`](crate::http::ByAuthority));
//! each key gets its own state, made from the layer's settings the first time the key is seen.
//!
//! The set of keys is bounded: past the cap (1024 by default), making room for a new key drops
//! the state of a key that has not been used since the last time room was made and has no call
//! in flight, so that a caller that talks to endless hosts cannot grow memory without limit.
//! Reading the state of a known key takes no lock: the map is swapped whole when a key is added
//! (which takes a lock among writers only) and read through an atomic pointer (`arc-swap`).
//! Keys are hashed with `foldhash`, seeded per map; keys that share a hash are told apart by
//! comparing them.
//!
//! ```
//! use tower_tenacity::scope::{key_fn, ScopeKey};
//!
//! struct Job { tenant: String }
//! let by_tenant = key_fn(|job: &Job| job.tenant.clone());
//! assert_eq!(by_tenant.key(&Job { tenant: "acme".into() }), "acme");
//! ```

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;

/// Which part of a request its per-key state (budget, circuit) belongs to.
pub trait ScopeKey<Req>: Clone + Send + Sync + 'static {
    /// The key. Its `Debug` form names the scope in events.
    type Key: Hash + Eq + fmt::Debug + Send + Sync + 'static;

    /// The key of `request`.
    fn key(&self, request: &Req) -> Self::Key;

    /// Whether requests have keys at all: `false` only for [`Unscoped`], whose one state
    /// needs no lookup.
    const PER_KEY: bool = true;
}

/// One state for every request: the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unscoped;

impl<Req> ScopeKey<Req> for Unscoped {
    type Key = ();

    const PER_KEY: bool = false;

    fn key(&self, _request: &Req) {}
}

/// A [`ScopeKey`] made of a closure; see [`key_fn`].
pub struct KeyFn<F, K> {
    f: F,
    _key: PhantomData<fn() -> K>,
}

impl<F: Clone, K> Clone for KeyFn<F, K> {
    fn clone(&self) -> Self {
        KeyFn {
            f: self.f.clone(),
            _key: PhantomData,
        }
    }
}

impl<F, K> fmt::Debug for KeyFn<F, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyFn").finish_non_exhaustive()
    }
}

/// Keys requests by a closure `Fn(&Req) -> K`.
pub fn key_fn<Req, K, F>(f: F) -> KeyFn<F, K>
where
    F: Fn(&Req) -> K,
{
    KeyFn {
        f,
        _key: PhantomData,
    }
}

impl<Req, K, F> ScopeKey<Req> for KeyFn<F, K>
where
    F: Fn(&Req) -> K + Clone + Send + Sync + 'static,
    K: Hash + Eq + fmt::Debug + Send + Sync + 'static,
{
    type Key = K;

    fn key(&self, request: &Req) -> K {
        (self.f)(request)
    }
}

/// How many keys a layer keeps state for unless told otherwise.
pub const DEFAULT_MAX_KEYS: usize = 1024;

/// One key's state in a [`Scopes`] map.
pub(crate) struct Slot<V> {
    key: Box<dyn Any + Send + Sync>,
    name: Box<str>,
    used: AtomicBool,
    value: V,
}

impl<V> Slot<V> {
    /// The key as its `Debug` form, for events; empty for the single scope.
    pub(crate) fn name(&self) -> Option<&str> {
        (!self.name.is_empty()).then_some(&*self.name)
    }
}

impl<V> Deref for Slot<V> {
    type Target = V;

    fn deref(&self) -> &V {
        &self.value
    }
}

/// A key's hash is the map's key: hashing it again would be wasted work.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Chains<V> = HashMap<u64, Vec<Arc<Slot<V>>>, BuildHasherDefault<Prehashed>>;

/// Per-key state: one value for every request, or a value of `V` per key, made by `make` when
/// the key is first seen, at most `cap` keys. Reads of known keys are lock-free.
pub(crate) enum Scopes<V> {
    Single(Arc<Slot<V>>),
    PerKey(PerKey<V>),
}

/// The map of [`Scopes::PerKey`].
pub(crate) struct PerKey<V> {
    map: ArcSwap<Chains<V>>,
    hasher: foldhash::quality::RandomState,
    cap: usize,
    make: Box<dyn Fn() -> V + Send + Sync>,
    writer: Mutex<()>,
}

impl<V> Scopes<V> {
    /// State for one key only: every request gets the same value.
    pub(crate) fn single(value: V) -> Self {
        Scopes::Single(Arc::new(Slot {
            key: Box::new(()),
            name: "".into(),
            used: AtomicBool::new(true),
            value,
        }))
    }

    /// State per key, up to `cap` keys, each made by `make`.
    pub(crate) fn per_key(cap: usize, make: impl Fn() -> V + Send + Sync + 'static) -> Self {
        Scopes::PerKey(PerKey {
            map: ArcSwap::default(),
            hasher: foldhash::quality::RandomState::default(),
            cap: cap.max(1),
            make: Box::new(make),
            writer: Mutex::new(()),
        })
    }

    /// The state of `request`'s key, made if the key is new.
    #[inline]
    pub(crate) fn get<Req, K: ScopeKey<Req>>(&self, scope: &K, request: &Req) -> Arc<Slot<V>> {
        match self {
            Scopes::Single(single) => single.clone(),
            Scopes::PerKey(per_key) => per_key.get(scope.key(request)),
        }
    }

    /// The keys' states, for snapshots.
    pub(crate) fn all(&self) -> Vec<Arc<Slot<V>>> {
        match self {
            Scopes::Single(single) => vec![single.clone()],
            Scopes::PerKey(per_key) => per_key.map.load().values().flatten().cloned().collect(),
        }
    }
}

impl<V> PerKey<V> {
    fn get<Q: Hash + Eq + fmt::Debug + Send + Sync + 'static>(&self, key: Q) -> Arc<Slot<V>> {
        let hash = self.hasher.hash_one(&key);
        if let Some(slot) = find(&self.map.load(), hash, &key) {
            if !slot.used.load(Ordering::Relaxed) {
                slot.used.store(true, Ordering::Relaxed);
            }
            return slot;
        }
        self.insert(hash, key)
    }

    #[cold]
    fn insert<Q: Hash + Eq + fmt::Debug + Send + Sync + 'static>(
        &self,
        hash: u64,
        key: Q,
    ) -> Arc<Slot<V>> {
        let _writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.map.load_full();
        if let Some(slot) = find(&current, hash, &key) {
            return slot;
        }
        let mut next: Chains<V> = (*current).clone();
        if next.values().map(Vec::len).sum::<usize>() >= self.cap {
            evict(&mut next);
        }
        let slot = Arc::new(Slot {
            name: format!("{key:?}").into(),
            key: Box::new(key),
            used: AtomicBool::new(true),
            value: (self.make)(),
        });
        next.entry(hash).or_default().push(slot.clone());
        self.map.store(Arc::new(next));
        slot
    }
}

fn find<V, Q: Eq + 'static>(chains: &Chains<V>, hash: u64, key: &Q) -> Option<Arc<Slot<V>>> {
    chains
        .get(&hash)?
        .iter()
        .find(|slot| slot.key.downcast_ref::<Q>() == Some(key))
        .cloned()
}

/// Drops one key's state to make room: one not used since the last eviction and with no call
/// in flight (only the map being replaced and its copy hold it), marking the others unused as
/// it passes (a second chance, as the CLOCK page-replacement algorithm gives); failing that, any idle one; failing
/// that (every key has a call in flight), the first one, whose calls finish with the state
/// they hold.
fn evict<V>(chains: &mut Chains<V>) {
    let idle = |slot: &Arc<Slot<V>>| Arc::strong_count(slot) <= 2;
    let mut victim = None;
    for (hash, chain) in chains.iter() {
        for (i, slot) in chain.iter().enumerate() {
            if victim.is_none() && idle(slot) && !slot.used.load(Ordering::Relaxed) {
                victim = Some((*hash, i));
            }
            slot.used.store(false, Ordering::Relaxed);
        }
    }
    let victim = victim
        .or_else(|| {
            chains
                .iter()
                .find_map(|(hash, chain)| chain.iter().position(idle).map(|i| (*hash, i)))
        })
        .or_else(|| chains.keys().next().map(|hash| (*hash, 0)));
    if let Some((hash, i)) = victim
        && let Some(chain) = chains.get_mut(&hash)
    {
        chain.remove(i);
        if chain.is_empty() {
            chains.remove(&hash);
        }
    }
}

impl<V> fmt::Debug for Scopes<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scopes::Single(_) => f.write_str("Scopes::Single"),
            Scopes::PerKey(per_key) => f
                .debug_struct("Scopes::PerKey")
                .field(
                    "keys",
                    &per_key.map.load().values().map(Vec::len).sum::<usize>(),
                )
                .field("cap", &per_key.cap)
                .finish(),
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
        let mut chains: Chains<u32> = HashMap::default();
        for (key, value) in [("x", 1), ("y", 2)] {
            chains.entry(7).or_default().push(Arc::new(Slot {
                key: Box::new(key),
                name: key.into(),
                used: AtomicBool::new(false),
                value,
            }));
        }
        assert_eq!(find(&chains, 7, &"y").map(|s| s.value), Some(2));
        assert_eq!(find(&chains, 7, &"x").map(|s| s.value), Some(1));
        assert!(find(&chains, 7, &"z").is_none());
    }
}
