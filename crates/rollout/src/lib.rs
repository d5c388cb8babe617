//! Rollouts: many environments per worker, stepped as one batch on a thread pool, their
//! trajectories cut into segments and exported to the object store in the background.
//!
//! - [`VecEnv`] owns the environments and the contiguous observation buffers.
//! - [`SegmentExporter`] encodes and writes finished segments off the stepping threads,
//!   with a bounded queue so a slow store slows rollouts instead of filling memory.
//! - [`Policy`] picks actions; [`RandomPolicy`] is the seeded baseline.
//! - [`archive::Archive`] keeps states to start episodes from (Go-Explore), when
//!   `env.explore_resets` asks for it; [`ladder::Ladder`] turns its cells into a
//!   backward curriculum towards the goal (`env.explore_ladder`).

pub mod archive;
mod export;
pub mod ladder;
mod policy;
mod recorder;
mod vec_env;

pub use export::{ExportError, ExportStats, SegmentExporter};
pub use policy::{Policy, RandomPolicy};
pub use recorder::{RecorderConfig, SegmentContext};
pub use vec_env::{EpisodeStats, VecEnv, VecEnvError, explore_in_snapshot};

/// Derives a per-use seed from a base seed and ids, so every env and episode gets its own
/// stream and the whole run stays reproducible from one number.
pub fn derive_seed(base: u64, parts: &[u64]) -> u64 {
    let mut x = base ^ 0x5EED_5EED_5EED_5EED;
    for &p in parts {
        x = splitmix(x ^ splitmix(p));
    }
    x
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
