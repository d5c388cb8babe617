//! The settings file (TOML). Every table is optional and every field has a default, so an
//! empty file is the embedded default run; unknown fields are errors naming the field.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::TrainError;

/// All settings of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// `[env]`: stepping and episode ends.
    pub env: zelda::EnvConfig,
    /// `[reward]`: heuristic reward weights.
    pub reward: zelda::RewardConfig,
    /// `[segments]`: segment length and keyframes.
    pub segments: rollout::RecorderConfig,
    /// `[train]`: sizes of the run.
    pub train: TrainSection,
    /// `[ppo]`: PPO hyper-parameters.
    pub ppo: ppo::PpoConfig,
    /// `[reward_model]`: the learned reward.
    pub reward_model: RewardModelSection,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            env: zelda::EnvConfig::default(),
            reward: zelda::RewardConfig::default(),
            segments: rollout::RecorderConfig::default(),
            train: TrainSection::default(),
            ppo: ppo::PpoConfig {
                learning_rate: 2.5e-4,
                gamma: 0.995,
                num_minibatches: 4,
                update_epochs: 3,
                ent_coef: 0.01,
                ..Default::default()
            },
            reward_model: RewardModelSection::default(),
        }
    }
}

/// `[train]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainSection {
    /// Environments stepped together (`ENVS_PER_WORKER`).
    pub envs: usize,
    /// Env steps per PPO update, over all envs (`BATCH_SIZE`); a multiple of `envs`.
    pub batch_size: usize,
    /// Env steps per burst, over all envs (rounded up to whole updates).
    pub steps_per_burst: u64,
    /// Training bursts (rollouts + updates, then evaluate, then reward model).
    pub bursts: u32,
    /// Seed of everything random in the run.
    pub seed: u64,
    /// Threads stepping the envs (default: all cores).
    pub threads: Option<usize>,
    /// Write a checkpoint every this many PPO updates (0: only at burst ends and on
    /// stop requests), so a killed process loses at most that much work.
    pub checkpoint_every: u64,
}

impl Default for TrainSection {
    fn default() -> Self {
        Self {
            envs: 8,
            batch_size: 512,
            steps_per_burst: 16_384,
            bursts: 3,
            seed: 0,
            threads: None,
            checkpoint_every: 8,
        }
    }
}

/// Values given on a command line (`zelda-rl train`, the Ray driver) that replace the
/// `[train]` table's.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `train.envs`.
    pub envs: Option<usize>,
    /// `train.batch_size`.
    pub batch_size: Option<usize>,
    /// `train.steps_per_burst`.
    pub steps_per_burst: Option<u64>,
    /// `train.bursts`.
    pub bursts: Option<u32>,
    /// `train.seed`.
    pub seed: Option<u64>,
    /// `train.threads`.
    pub threads: Option<usize>,
}

/// `[reward_model]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RewardModelSection {
    /// Train a reward model after each burst and add its reward in the next.
    pub enabled: bool,
    /// Scored segments needed before a model is trained.
    pub min_samples: usize,
    /// How the learned reward mixes with the heuristic one (Motif).
    pub shaping: reward_model::ShapingConfig,
    /// Training settings.
    pub train: reward_model::TrainConfig,
}

impl Default for RewardModelSection {
    fn default() -> Self {
        Self {
            enabled: true,
            min_samples: 16,
            // The heuristic reward keeps its scale (so PPO's value function does not see a
            // jump when the first model arrives); the learned term is a small, thresholded,
            // count-damped bonus on top, as in Motif.
            shaping: reward_model::ShapingConfig {
                heuristic_weight: 1.0,
                learned_weight: 0.02,
                ..Default::default()
            },
            train: reward_model::TrainConfig {
                epochs: 8,
                ..Default::default()
            },
        }
    }
}

impl Settings {
    /// Reads a settings file (or the defaults) and validates every section; errors name the
    /// file and the field.
    pub fn load(path: Option<&Path>) -> Result<Self, TrainError> {
        match path {
            None => Self::parse("", "default settings"),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    TrainError::Settings(format!("reading {}: {e}", path.display()))
                })?;
                Self::parse(&text, &path.display().to_string())
            }
        }
    }

    /// Reads settings from TOML text and validates them; `name` (a file name) leads errors.
    pub fn parse(text: &str, name: &str) -> Result<Self, TrainError> {
        let settings: Settings =
            toml::from_str(text).map_err(|e| TrainError::Settings(format!("{name}: {e}")))?;
        settings
            .validate()
            .map_err(|e| TrainError::Settings(format!("{name}: {e}")))?;
        Ok(settings)
    }

    /// Applies command-line overrides and validates the result.
    pub fn with_overrides(mut self, o: &Overrides) -> Result<Self, TrainError> {
        let t = &mut self.train;
        if let Some(v) = o.envs {
            t.envs = v;
        }
        if let Some(v) = o.batch_size {
            t.batch_size = v;
        }
        if let Some(v) = o.steps_per_burst {
            t.steps_per_burst = v;
        }
        if let Some(v) = o.bursts {
            t.bursts = v;
        }
        if let Some(v) = o.seed {
            t.seed = v;
        }
        if o.threads.is_some() {
            t.threads = o.threads;
        }
        self.validate().map_err(|e| {
            TrainError::Settings(format!("settings after command-line overrides: {e}"))
        })?;
        Ok(self)
    }

    /// Checks every section.
    pub fn validate(&self) -> Result<(), String> {
        self.env.validate()?;
        self.reward.validate()?;
        self.segments.validate()?;
        self.ppo.validate().map_err(|e| e.to_string())?;
        self.reward_model
            .shaping
            .validate()
            .map_err(|e| format!("reward_model.shaping: {e}"))?;
        let t = &self.train;
        if t.envs == 0 {
            return Err("train.envs must be at least 1".into());
        }
        if t.batch_size == 0 || !t.batch_size.is_multiple_of(t.envs) {
            return Err(format!(
                "train.batch_size ({}) must be a positive multiple of train.envs ({})",
                t.batch_size, t.envs
            ));
        }
        if !t.batch_size.is_multiple_of(self.ppo.num_minibatches) {
            return Err(format!(
                "train.batch_size ({}) must divide into ppo.num_minibatches ({})",
                t.batch_size, self.ppo.num_minibatches
            ));
        }
        if t.bursts == 0 || t.steps_per_burst == 0 {
            return Err("train.bursts and train.steps_per_burst must be at least 1".into());
        }
        Ok(())
    }

    /// Steps per env between updates.
    pub fn horizon(&self) -> usize {
        self.train.batch_size / self.train.envs
    }

    /// PPO updates per burst.
    pub fn updates_per_burst(&self) -> u64 {
        self.train
            .steps_per_burst
            .div_ceil(self.train.batch_size as u64)
    }

    /// Hash of the settings that change what an env does (recorded in segments).
    pub fn env_hash(&self) -> String {
        episodes::segment::config_hash(&(&self.env, &self.reward))
    }

    /// Hash of everything but `train.bursts` (a resumed run must use the same settings;
    /// it may be extended by more bursts).
    pub fn hash(&self) -> String {
        let mut s = self.clone();
        s.train.bursts = 0;
        episodes::segment::config_hash(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_empty_file_is_default() {
        Settings::default().validate().unwrap();
        let s: Settings = toml::from_str("").unwrap();
        assert_eq!(s, Settings::default());
    }

    #[test]
    fn errors_name_the_field() {
        let e = toml::from_str::<Settings>("[train]\nenvz = 3\n").unwrap_err();
        assert!(e.to_string().contains("envz"), "{e}");
        let s: Settings = toml::from_str("[train]\nenvs = 3\nbatch_size = 512\n").unwrap();
        assert!(s.validate().unwrap_err().contains("train.batch_size"));
        let s: Settings = toml::from_str("[env]\npress_frames = 99\n").unwrap();
        assert!(s.validate().unwrap_err().contains("env.press_frames"));
    }
}
