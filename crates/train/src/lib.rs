//! The training loop that `zelda-rl train` (and the Ray driver) runs.
//!
//! A run is a sequence of **bursts**. Each burst steps the vector env with the PPO policy,
//! updates the policy every `batch_size` env steps, and exports segments as it goes; then
//! the evaluator asks the judges about the run's segments; then a reward model is trained
//! on their scores and adds its (Motif-shaped) reward in the next burst. Checkpoints are
//! taken at update boundaries, so `--resume` continues exactly, and a stop request (SIGTERM)
//! writes one before returning.

pub mod checkpoint;
pub mod distributed;
pub mod learned;
pub mod runstate;
pub mod settings;
mod stepper;
pub mod trainer;

pub use settings::Settings;
pub use trainer::{
    BurstSummary, NoObserver, Observer, Outcome, TrainOptions, UpdateReport, run, train_config,
};

/// Errors of a training run; each names the object, file or field involved.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The settings file or a setting is wrong.
    #[error("settings: {0}")]
    Settings(String),
    /// The ROM is unusable.
    #[error("cartridge: {0}")]
    Cartridge(#[from] gameboy::Error),
    /// The environments could not be built.
    #[error(transparent)]
    Envs(#[from] rollout::VecEnvError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] episodes::StoreError),
    /// A segment is unreadable.
    #[error(transparent)]
    Segment(#[from] episodes::SegmentError),
    /// Writing segments failed.
    #[error(transparent)]
    Export(#[from] rollout::ExportError),
    /// The learner failed.
    #[error("learner: {0}")]
    Ppo(#[from] ppo::PpoError),
    /// The evaluator failed.
    #[error("evaluation: {0}")]
    Evaluate(#[from] evaluator::EvaluateError),
    /// The reward model failed or does not fit.
    #[error("reward model: {0}")]
    RewardModel(String),
    /// Scores are unreadable or reference missing segments.
    #[error("scores: {0}")]
    Scores(String),
    /// A checkpoint is unreadable or does not fit.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// Resuming (or not resuming) is impossible as asked.
    #[error("{0}")]
    Resume(String),
    /// Local I/O or runtime failure.
    #[error("{0}")]
    Io(String),
}
