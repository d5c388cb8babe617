//! Seeded host-side randomness.
//!
//! Every random choice in the learner (weight init, minibatch shuffles, action sampling) is drawn
//! on the host from ChaCha8 streams derived from `(seed, stream, counter)`. Nothing depends on a
//! backend RNG, so the same seed gives the same bytes on every backend and thread count, and a
//! resumed run needs no RNG state beyond its counters.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

/// Stream id for weight initialisation.
pub const STREAM_INIT: u64 = 1;
/// Stream id for minibatch shuffling (counter = update index).
pub const STREAM_SHUFFLE: u64 = 2;
/// Stream id for action sampling when the learner picks seeds itself (counter = act call index).
pub const STREAM_ACT: u64 = 3;
/// Stream id for dataset splits and pair derivation in the reward model.
pub const STREAM_DATA: u64 = 4;

/// SplitMix64 finaliser: a cheap bijective mixer with good avalanche.
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Derives an independent seed from a base seed, a stream id and a counter.
pub fn mix_seed(seed: u64, stream: u64, counter: u64) -> u64 {
    splitmix(splitmix(splitmix(seed) ^ stream.rotate_left(17)) ^ counter.rotate_left(41))
}

/// Deterministic host RNG (ChaCha8) with the few draws the learner needs.
pub struct HostRng {
    inner: ChaCha8Rng,
    spare_normal: Option<f64>,
}

impl HostRng {
    /// Creates a generator from a 64-bit seed.
    pub fn new(seed: u64) -> Self {
        Self {
            inner: ChaCha8Rng::seed_from_u64(seed),
            spare_normal: None,
        }
    }

    /// Creates a generator for `(seed, stream, counter)`.
    pub fn derived(seed: u64, stream: u64, counter: u64) -> Self {
        Self::new(mix_seed(seed, stream, counter))
    }

    /// Next raw 64-bit value.
    pub fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }

    /// Uniform f64 in [0, 1) with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.inner.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in [0, n) without modulo bias (Lemire's method with rejection).
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "below(0)");
        let n = n as u64;
        loop {
            let x = self.inner.next_u64();
            let m = (x as u128) * (n as u128);
            let low = m as u64;
            if low >= n.wrapping_neg() % n {
                return (m >> 64) as usize;
            }
        }
    }

    /// Standard normal draw (Box-Muller, caching the second value).
    pub fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare_normal.take() {
            return z;
        }
        // 1 - uniform() lies in (0, 1], so the log is finite.
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = 2.0 * std::f64::consts::PI * u2;
        self.spare_normal = Some(r * theta.sin());
        r * theta.cos()
    }

    /// Fisher-Yates shuffle in place.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_differ_and_repeat() {
        let a: Vec<u64> = (0..4)
            .map(|_| HostRng::derived(7, 1, 0).next_u64())
            .collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(mix_seed(7, 1, 0), mix_seed(7, 1, 1));
        assert_ne!(mix_seed(7, 1, 0), mix_seed(7, 2, 0));
        assert_ne!(mix_seed(7, 1, 0), mix_seed(8, 1, 0));
    }

    #[test]
    fn below_is_in_range_and_covers() {
        let mut rng = HostRng::new(3);
        let mut seen = [0u32; 5];
        for _ in 0..5000 {
            seen[rng.below(5)] += 1;
        }
        assert!(seen.iter().all(|&c| c > 800 && c < 1200), "{seen:?}");
    }

    #[test]
    fn normal_has_unit_moments() {
        let mut rng = HostRng::new(11);
        let n = 20000;
        let xs: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "var {var}");
    }
}
