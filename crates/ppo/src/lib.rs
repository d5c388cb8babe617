//! PPO learner for zelda-rl, following CleanRL's `ppo_atari.py` step by step.
//!
//! - [`PolicyConfig`] / [`BurnPolicy`]: Nature-CNN over stacked u8 frames, concatenated with an
//!   MLP embedding of the feature vector, a shared hidden layer, policy and value heads
//!   (CleanRL orthogonal init, seeded). The network sits behind the [`PolicyNet`] trait; the burn
//!   implementation runs on `flex` (default, pure Rust CPU) or, with the `tch` feature, LibTorch.
//! - [`RolloutBuffer`]: `[T][N]` storage with u8 frames, GAE with terminated vs truncated.
//! - [`Ppo`]: the update (clipped surrogate, value clipping, entropy bonus, global-norm gradient
//!   clipping, seeded minibatch shuffles, advantage normalisation, LR schedule, target-KL stop).
//! - Checkpoints ([`Ppo::checkpoint_bytes`]): one safetensors file with weights, Adam state, the
//!   run config and counters; resuming continues bit-exactly.
//!
//! Determinism: all randomness is drawn on the host from `(seed, stream, counter)` ChaCha8
//! streams; see [`rng`]. On flex, results are bit-identical across runs for a fixed rayon thread
//! count; see the crate README for the thread-count caveat.

#![warn(missing_docs)]

pub mod buffer;
pub mod checkpoint;
pub mod container;
mod learner;
pub mod nn;
pub mod policy;
pub mod rng;

use serde::{Deserialize, Serialize};

pub use buffer::{RolloutBuffer, StepEnd, StepRecord, gae};
pub use checkpoint::{
    CHECKPOINT_KIND, CHECKPOINT_VERSION, POLICY_KIND, POLICY_VERSION, load_policy,
    read_checkpoint_config,
};
pub use container::{ContainerError, HostTensor};
pub use learner::{Counters, Ppo, UpdateStats};
pub use nn::{AdamConfig, Backend, ConvLayer, EncoderConfig};
pub use policy::{
    ActMode, ActOutput, BurnPolicy, Forward, Minibatch, MinibatchStats, NetState, ObsBatch,
    PolicyConfig, PolicyNet,
};
pub use rng::mix_seed;

/// Errors of the PPO crate.
#[derive(Debug, thiserror::Error)]
pub enum PpoError {
    /// A configuration value is unusable.
    #[error("invalid config: {0}")]
    Config(String),
    /// Input slices do not match the configured shapes.
    #[error("bad input: {0}")]
    Input(String),
    /// Misuse of the rollout buffer.
    #[error("rollout buffer: {0}")]
    Buffer(String),
    /// The requested backend is not usable in this build or on this machine.
    #[error("backend: {0}")]
    Backend(String),
    /// The checkpoint container is unreadable or corrupted.
    #[error("checkpoint: {0}")]
    Container(#[from] ContainerError),
    /// The checkpoint does not fit the model (shapes, tensor names, config JSON).
    #[error("checkpoint does not fit: {0}")]
    Checkpoint(String),
    /// The checkpoint was written with a different run config than the caller expects.
    #[error("checkpoint config differs from the requested config at: {}", .0.join(", "))]
    ConfigMismatch(Vec<String>),
}

/// Learning-rate schedule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LrSchedule {
    /// Fixed learning rate.
    Constant,
    /// CleanRL's annealing: `lr * (1 - update / total_updates)`, floored at 0.
    Linear {
        /// Number of updates over which the rate reaches 0.
        total_updates: u64,
    },
}

/// PPO hyper-parameters (defaults: CleanRL `ppo_atari.py`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PpoConfig {
    /// Adam learning rate at update 0.
    pub learning_rate: f64,
    /// Schedule applied to `learning_rate`.
    pub lr_schedule: LrSchedule,
    /// Discount.
    pub gamma: f32,
    /// GAE lambda.
    pub gae_lambda: f32,
    /// Minibatches per epoch (the batch T*N must divide evenly).
    pub num_minibatches: usize,
    /// Passes over the batch per update.
    pub update_epochs: usize,
    /// Normalise advantages per minibatch.
    pub norm_adv: bool,
    /// Surrogate clipping (and value clipping) coefficient.
    pub clip_coef: f32,
    /// Clip the value loss around the rollout values.
    pub clip_vloss: bool,
    /// Entropy bonus coefficient.
    pub ent_coef: f32,
    /// Value loss coefficient.
    pub vf_coef: f32,
    /// Global gradient norm limit (None = no clipping).
    pub max_grad_norm: Option<f32>,
    /// Stop the update after an epoch whose last minibatch's approx-KL exceeds this.
    pub target_kl: Option<f32>,
}

impl Default for PpoConfig {
    fn default() -> Self {
        Self {
            learning_rate: 2.5e-4,
            lr_schedule: LrSchedule::Constant,
            gamma: 0.99,
            gae_lambda: 0.95,
            num_minibatches: 4,
            update_epochs: 4,
            norm_adv: true,
            clip_coef: 0.1,
            clip_vloss: true,
            ent_coef: 0.01,
            vf_coef: 0.5,
            max_grad_norm: Some(0.5),
            target_kl: None,
        }
    }
}

impl PpoConfig {
    /// Checks ranges.
    pub fn validate(&self) -> Result<(), PpoError> {
        let bad = |m: &str| Err(PpoError::Config(format!("ppo.{m}")));
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad("learning_rate must be > 0");
        }
        if !(0.0..=1.0).contains(&self.gamma) || !(0.0..=1.0).contains(&self.gae_lambda) {
            return bad("gamma and gae_lambda must be in [0, 1]");
        }
        if self.num_minibatches == 0 || self.update_epochs == 0 {
            return bad("num_minibatches and update_epochs must be >= 1");
        }
        if self.clip_coef <= 0.0 {
            return bad("clip_coef must be > 0");
        }
        if let LrSchedule::Linear { total_updates: 0 } = self.lr_schedule {
            return bad("lr_schedule.total_updates must be >= 1");
        }
        if self.max_grad_norm.is_some_and(|m| m <= 0.0) {
            return bad("max_grad_norm must be > 0");
        }
        Ok(())
    }
}

/// Everything that defines a run's learner: stored in every checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Master seed (init, shuffles, act seeds).
    pub seed: u64,
    /// Network shapes.
    pub policy: PolicyConfig,
    /// PPO hyper-parameters.
    #[serde(default)]
    pub ppo: PpoConfig,
    /// Adam settings.
    #[serde(default)]
    pub adam: AdamConfig,
}

impl TrainConfig {
    /// Checks every part.
    pub fn validate(&self) -> Result<(), PpoError> {
        self.policy.validate()?;
        self.ppo.validate()
    }
}
