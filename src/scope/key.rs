//! What a key is: [`ScopeKey`], the default [`Unscoped`], and keys made of closures
//! ([`key_fn`]).

use std::fmt;
use std::hash::Hash;

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

/// A [`ScopeKey`] made of a closure, named by what it implements rather than by path.
mod closure {
    use std::fmt;
    use std::hash::Hash;
    use std::marker::PhantomData;

    use super::ScopeKey;

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
}

pub use self::closure::key_fn;
