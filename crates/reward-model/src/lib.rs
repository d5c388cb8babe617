//! Learned reward model for zelda-rl (Motif-style).
//!
//! - [`data`]: judged samples (keyframes + features + score), preference pairs (compare mode, or
//!   derived from score differences by [`PairRule`]) and a seeded train/validation split.
//! - [`model`]: a small CNN+MLP scalar model trained by regression on scores and/or
//!   Bradley-Terry on pairs; exported as safetensors with normalisation statistics, the
//!   cartridge SHA-1 and the feature layout version, all checked on load.
//! - [`shaping`]: rollout-time mixing with the heuristic reward (normalise, threshold, count
//!   damping, weights from a TOML-friendly [`ShapingConfig`]).
//!
//! Pure learning code: bytes in, bytes out; the caller does file and store I/O.

#![warn(missing_docs)]

pub mod data;
pub mod model;
pub mod shaping;

pub use data::{Dataset, Pair, PairRule, Sample, Split, derive_pairs};
pub use model::{
    EvalStats, ModelIdentity, NormStats, Objective, REWARD_MODEL_KIND, REWARD_MODEL_VERSION,
    Requirement, RewardModel, RewardNetConfig, TrainConfig, TrainReport, train,
};
pub use ppo::nn::Backend;
pub use shaping::{EpisodeCounts, Shaped, Shaper, ShapingConfig, Threshold};

/// Errors of the reward-model crate.
#[derive(Debug, thiserror::Error)]
pub enum RewardModelError {
    /// A configuration value is unusable.
    #[error("invalid reward-model config: {0}")]
    Config(String),
    /// The training data is inconsistent (names the sample or pair).
    #[error("reward-model dataset: {0}")]
    Dataset(String),
    /// Inference inputs do not match the model's shapes.
    #[error("reward-model input: {0}")]
    Input(String),
    /// The backend cannot be used.
    #[error("backend: {0}")]
    Backend(String),
    /// The file is unreadable or corrupted.
    #[error("reward-model file: {0}")]
    Container(#[from] ppo::ContainerError),
    /// The file is readable but its content does not fit (metadata, tensor shapes).
    #[error("reward-model file does not fit: {0}")]
    Format(String),
    /// The model was trained on segments of another cartridge.
    #[error("reward model was trained for cartridge SHA-1 {model}, but the run uses {requested}")]
    WrongCartridge {
        /// SHA-1 stored in the model.
        model: String,
        /// SHA-1 the caller plays.
        requested: String,
    },
    /// The model expects a feature layout the caller cannot give it.
    #[error(
        "reward model uses feature layout version {model}, the env provides {requested} (it reads models of layouts {oldest} to {requested})"
    )]
    FeatureLayout {
        /// Layout version stored in the model.
        model: u32,
        /// Layout version of the env.
        requested: u32,
        /// The oldest layout whose model inputs the env's equal.
        oldest: u32,
    },
}
