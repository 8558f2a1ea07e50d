//! Seeded randomness: one random source per draw of a sequence, so that a seeded layer makes
//! the same draws on every run, whatever else draws in between.

/// The random source of draw `n` of the sequence seeded `seed`.
pub(crate) fn nth(seed: u64, n: u64) -> fastrand::Rng {
    fastrand::Rng::with_seed(seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}
