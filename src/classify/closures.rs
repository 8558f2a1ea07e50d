//! Classifiers made of closures: [`classify_fn`] and [`outcome_fn`]. Their types are named by
//! what they implement ([`Classify`], [`ClassifyOutcome`]), not by path.

use std::fmt;

use super::{Classification, Classify, ClassifyOutcome};
use crate::error::BoxError;

/// A classifier of outcomes alone, made of a closure; see [`outcome_fn`].
#[derive(Clone, Copy)]
pub struct OutcomeFn<F>(F);

/// Makes a classifier of a closure `Fn(Result<&Res, &BoxError>) -> Classification`: a
/// [`ClassifyOutcome`] for a breaker, and a [`Classify`] (of any request) for retry.
///
/// ```
/// use tower_tenacity::classify::{outcome_fn, Classification, ClassifyOutcome, Reason};
/// use tower::BoxError;
///
/// let classifier = outcome_fn(|outcome: Result<&u16, &BoxError>| match outcome {
///     Ok(503) => Classification::retryable(Reason::Status(503)),
///     Ok(_) => Classification::Success,
///     Err(err) => tower_tenacity::classify::classify_error(err.as_ref()),
/// });
/// assert!(classifier.classify_outcome(Ok(&503)).is_retryable());
/// ```
pub fn outcome_fn<F>(f: F) -> OutcomeFn<F> {
    OutcomeFn(f)
}

impl<F> fmt::Debug for OutcomeFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutcomeFn").finish_non_exhaustive()
    }
}

impl<Res, F> ClassifyOutcome<Res> for OutcomeFn<F>
where
    F: Fn(Result<&Res, &BoxError>) -> Classification,
{
    fn classify_outcome(&self, outcome: Result<&Res, &BoxError>) -> Classification {
        (self.0)(outcome)
    }
}

impl<Req, Res, F> Classify<Req, Res> for OutcomeFn<F>
where
    F: Fn(Result<&Res, &BoxError>) -> Classification,
{
    fn classify(&self, _request: &Req, outcome: Result<&Res, &BoxError>) -> Classification {
        (self.0)(outcome)
    }
}

/// A classifier made of a closure; see [`classify_fn`].
#[derive(Clone, Copy)]
pub struct ClassifyFn<F>(F);

/// Makes a classifier of a closure `Fn(&Req, Result<&Res, &BoxError>) -> Classification`.
pub fn classify_fn<F>(f: F) -> ClassifyFn<F> {
    ClassifyFn(f)
}

impl<F> fmt::Debug for ClassifyFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClassifyFn").finish_non_exhaustive()
    }
}

impl<Req, Res, F> Classify<Req, Res> for ClassifyFn<F>
where
    F: Fn(&Req, Result<&Res, &BoxError>) -> Classification,
{
    fn classify(&self, request: &Req, outcome: Result<&Res, &BoxError>) -> Classification {
        (self.0)(request, outcome)
    }
}
