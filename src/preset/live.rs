//! Settings swapped on a running stack: what a preset's `reload` writes and its services read.
//!
//! A preset layer and its clones share one [`Live`] cell: a generation number and, after the
//! first reload, the layer to build from. Each service a preset makes ([`Reloading`]) keeps the
//! client it was given, the stack it built over it, and the generation that stack was built
//! at. Before each call it reads the generation, one atomic load; only when a reload has bumped
//! it does it load the latest layer (no lock) and build a new stack over its client. A call
//! in flight is a future of the stack it started on, so it keeps that stack's settings to its
//! end; state that a reload carries over (budgets, circuits) is shared by the old stack and the
//! new one.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use arc_swap::ArcSwapOption;
use tower_service::Service;

/// Carries the state a reload keeps (budgets, circuits) from the layer in force to the one
/// that replaces it, where their settings are the same.
pub trait Carry {
    /// Takes over `old`'s state where this layer's settings for it are the same as `old`'s.
    fn carry_state(&mut self, old: &Self);
}

/// Builds a preset's stack over a client, from the settings of the layer at hand. Not
/// nameable outside the crate: each preset's `Layer` implementation wraps what it builds in a
/// [`Reloading`].
pub trait Build<S> {
    /// The stack over `S`.
    type Stack;

    /// The stack over `client`, with these settings.
    fn build(&self, client: S) -> Self::Stack;
}

/// A preset layer that a reload can replace: the cell it shares with its clones.
pub trait Reload: Carry + Sized {
    /// This layer's cell.
    fn cell(&mut self) -> &mut Live<Self>;
}

/// The cell that a preset layer and its clones share. Not nameable outside the crate.
pub struct Live<L> {
    shared: Arc<Shared<L>>,
}

struct Shared<L> {
    generation: AtomicU64,
    // `None` until the first reload: services build from the layer that made them.
    current: ArcSwapOption<L>,
    // Held by a reload from the state it reads to the swap, so that two reloads at once do
    // not both carry the same old state (and lose one of them). Never taken by a call.
    reloading: Mutex<()>,
}

impl<L> Live<L> {
    pub(crate) fn new() -> Self {
        Live {
            shared: Arc::new(Shared {
                generation: AtomicU64::new(0),
                current: ArcSwapOption::empty(),
                reloading: Mutex::new(()),
            }),
        }
    }

    fn generation(&self) -> u64 {
        self.shared.generation.load(Ordering::Acquire)
    }

    /// The layer of the latest reload, if there was one: a lock-free load that takes no
    /// reference count, so that a layer that makes a service per request (the reqwest
    /// middleware) pays no more than that for it.
    pub(crate) fn current(&self) -> arc_swap::Guard<Option<Arc<L>>> {
        self.shared.current.load()
    }

    /// Makes `next` the layer that every service of this cell builds from, from its next call.
    pub(crate) fn swap(&self, next: L) {
        // A service that reads the new generation loads the layer after this store, and so
        // finds `next` (or a later layer).
        self.shared.current.store(Some(Arc::new(next)));
        self.shared.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Makes `next` the settings of every service of this cell, carrying over the state of
    /// the layer in force (the latest reload's, or `layer`, the one the cell was built with)
    /// where the settings are the same.
    pub(crate) fn reload(&self, layer: &L, mut next: L)
    where
        L: Reload,
    {
        // `next` may be a clone of a layer of this cell: it gets a cell of its own, so that the
        // cell it is stored in is not one it holds (a cycle of `Arc`s, never freed).
        *next.cell() = Live::new();
        let _one_at_a_time = (self.shared.reloading.lock()).unwrap_or_else(PoisonError::into_inner);
        match &*self.current() {
            Some(current) => next.carry_state(current),
            None => next.carry_state(layer),
        }
        self.swap(next);
    }

    /// The stack over `client` with the latest settings (`layer`'s, or the latest reload's),
    /// for one call only (the reqwest middleware's), or for a reloading service to hold.
    pub(crate) fn build_now<S>(&self, layer: &L, client: S) -> L::Stack
    where
        L: Build<S>,
    {
        match &*self.current() {
            Some(current) => current.build(client),
            None => layer.build(client),
        }
    }

    /// A service of this cell over `client`, built from the latest settings: `layer`'s, or
    /// the latest reload's.
    pub(crate) fn service<S: Clone>(&self, layer: &L, client: S) -> Reloading<L, S, L::Stack>
    where
        L: Build<S>,
    {
        // The generation first: a reload after this read is seen at the first call.
        let seen = self.generation();
        let stack = self.build_now(layer, client.clone());
        Reloading {
            live: self.clone(),
            seen,
            client,
            stack,
        }
    }
}

impl<L> Clone for Live<L> {
    fn clone(&self) -> Self {
        Live {
            shared: self.shared.clone(),
        }
    }
}

impl<L> fmt::Debug for Live<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Live")
            .field("generation", &self.generation())
            .finish()
    }
}

/// The service a preset makes: its stack over the client, rebuilt from the latest settings
/// when a reload has happened since it was built. Reached as the preset's `Service` type.
pub struct Reloading<L, S, T> {
    live: Live<L>,
    seen: u64,
    client: S,
    stack: T,
}

impl<L, S: Clone, T: Clone> Clone for Reloading<L, S, T> {
    fn clone(&self) -> Self {
        Reloading {
            live: self.live.clone(),
            seen: self.seen,
            client: self.client.clone(),
            stack: self.stack.clone(),
        }
    }
}

impl<L, S, T: fmt::Debug> fmt::Debug for Reloading<L, S, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reloading")
            .field("generation", &self.seen)
            .field("stack", &self.stack)
            .finish()
    }
}

impl<L, S, T, R> Service<R> for Reloading<L, S, T>
where
    L: Build<S, Stack = T>,
    S: Clone,
    T: Service<R>,
{
    type Response = T::Response;
    type Error = T::Error;
    type Future = T::Future;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let generation = self.live.generation();
        if generation != self.seen {
            self.reload(generation);
        }
        self.stack.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, request: R) -> Self::Future {
        self.stack.call(request)
    }
}

impl<L, S, T> Reloading<L, S, T>
where
    L: Build<S, Stack = T>,
    S: Clone,
{
    /// Builds the stack again from the latest layer: out of line, since it happens once per
    /// reload and service.
    #[cold]
    #[inline(never)]
    fn reload(&mut self, generation: u64) {
        if let Some(layer) = &*self.live.current() {
            self.stack = layer.build(self.client.clone());
        }
        self.seen = generation;
    }
}
