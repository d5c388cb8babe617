//! Rollout-time mixing of the learned reward with the heuristic reward, as Motif does:
//! normalise by the model's mean/std, zero out below a threshold, damp repeats by a count term,
//! then take a weighted sum.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::RewardModelError;
use crate::model::NormStats;

/// Where the normalised learned reward is cut to zero.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Threshold {
    /// Keep every value.
    None,
    /// Zero values below this quantile (0..=1) of the training-set outputs (Motif's choice).
    Quantile(f32),
    /// Zero normalised values below this number.
    Value(f32),
}

/// Reward mixing weights; TOML-friendly (`configs/reward.toml`, table `[learned]` for example):
///
/// ```toml
/// heuristic_weight = 1.0
/// learned_weight = 0.1
/// threshold = { quantile = 0.5 }   # or "none", or { value = 0.0 }
/// count_exponent = 3.0             # 0 disables count damping
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShapingConfig {
    /// Weight of the game-state (heuristic) reward.
    pub heuristic_weight: f32,
    /// Weight of the learned reward (0 turns it off).
    pub learned_weight: f32,
    /// Threshold on the normalised learned reward.
    pub threshold: Threshold,
    /// Exponent beta of the count damping `r / count^beta` (Motif: 3; 0 disables).
    pub count_exponent: f32,
}

impl Default for ShapingConfig {
    /// Motif's NetHack mix: `0.1 * r_env + 0.1 * r_llm`, median threshold, beta = 3.
    fn default() -> Self {
        Self {
            heuristic_weight: 0.1,
            learned_weight: 0.1,
            threshold: Threshold::Quantile(0.5),
            count_exponent: 3.0,
        }
    }
}

impl ShapingConfig {
    /// Checks ranges.
    pub fn validate(&self) -> Result<(), RewardModelError> {
        let finite = [
            self.heuristic_weight,
            self.learned_weight,
            self.count_exponent,
        ]
        .iter()
        .all(|v| v.is_finite());
        if !finite || self.count_exponent < 0.0 {
            return Err(RewardModelError::Config(
                "shaping weights must be finite and count_exponent >= 0".into(),
            ));
        }
        match self.threshold {
            Threshold::Quantile(q) if !(0.0..=1.0).contains(&q) => Err(RewardModelError::Config(
                format!("threshold quantile {q} is outside [0, 1]"),
            )),
            Threshold::Value(v) if !v.is_finite() => Err(RewardModelError::Config(
                "threshold value must be finite".into(),
            )),
            _ => Ok(()),
        }
    }
}

/// One shaped reward and its parts (for per-component logging).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Shaped {
    /// `heuristic_weight * heuristic`.
    pub heuristic: f32,
    /// `learned_weight * damped thresholded normalised learned reward`.
    pub learned: f32,
    /// Sum of both.
    pub total: f32,
}

/// Applies a [`ShapingConfig`] with a model's normalisation statistics.
#[derive(Clone, Debug)]
pub struct Shaper {
    config: ShapingConfig,
    mean: f32,
    std: f32,
    cut: Option<f32>,
}

impl Shaper {
    /// Resolves the threshold against the model's statistics.
    pub fn new(config: ShapingConfig, norm: &NormStats) -> Result<Self, RewardModelError> {
        config.validate()?;
        let cut = match config.threshold {
            Threshold::None => None,
            Threshold::Value(v) => Some(v),
            Threshold::Quantile(q) => Some((norm.raw_quantile(q) - norm.mean) / norm.std),
        };
        Ok(Self {
            mean: norm.mean,
            std: norm.std,
            cut,
            config,
        })
    }

    /// Normalised threshold in effect (None = no threshold).
    pub fn threshold(&self) -> Option<f32> {
        self.cut
    }

    /// Learned part before weighting: normalise, threshold, damp by `count` (the number of times
    /// this state key has been rewarded so far in the episode, counting this one; 0 = no damping).
    pub fn learned_term(&self, raw: f32, count: u32) -> f32 {
        let n = (raw - self.mean) / self.std;
        if self.cut.is_some_and(|c| n < c) {
            return 0.0;
        }
        if self.config.count_exponent > 0.0 && count > 1 {
            n / (count as f32).powf(self.config.count_exponent)
        } else {
            n
        }
    }

    /// Weighted sum of the heuristic reward and the learned reward `raw`.
    pub fn shape(&self, heuristic: f32, raw: f32, count: u32) -> Shaped {
        let h = self.config.heuristic_weight * heuristic;
        let l = if self.config.learned_weight == 0.0 {
            0.0
        } else {
            self.config.learned_weight * self.learned_term(raw, count)
        };
        Shaped {
            heuristic: h,
            learned: l,
            total: h + l,
        }
    }
}

/// Per-episode occurrence counts of state keys (Motif counts messages; here the caller picks the
/// key, e.g. a hash of room id and keyframe).
#[derive(Clone, Debug, Default)]
pub struct EpisodeCounts {
    counts: HashMap<u64, u32>,
}

impl EpisodeCounts {
    /// Records one occurrence of `key` and returns its count including this one.
    pub fn observe(&mut self, key: u64) -> u32 {
        let c = self.counts.entry(key).or_insert(0);
        *c += 1;
        *c
    }

    /// Forgets everything (call at episode start).
    pub fn reset(&mut self) {
        self.counts.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm() -> NormStats {
        NormStats {
            mean: 1.0,
            std: 2.0,
            // Raw quantiles 0..=20 in steps of 1 -> median raw 10 -> normalised 4.5.
            quantiles: (0..21).map(|i| i as f32).collect(),
        }
    }

    #[test]
    fn normalise_threshold_damp_and_weight() {
        let cfg = ShapingConfig {
            heuristic_weight: 0.5,
            learned_weight: 2.0,
            threshold: Threshold::Quantile(0.5),
            count_exponent: 1.0,
        };
        let s = Shaper::new(cfg, &norm()).unwrap();
        assert_eq!(s.threshold(), Some(4.5));
        // raw 9 -> n = 4 < 4.5 -> learned 0.
        assert_eq!(
            s.shape(2.0, 9.0, 1),
            Shaped {
                heuristic: 1.0,
                learned: 0.0,
                total: 1.0
            }
        );
        // raw 11 -> n = 5; count 2 -> 2.5; weighted 5.
        assert_eq!(s.shape(0.0, 11.0, 2).learned, 5.0);
        assert_eq!(s.shape(0.0, 11.0, 1).learned, 10.0);
        let none = Shaper::new(
            ShapingConfig {
                threshold: Threshold::None,
                count_exponent: 0.0,
                ..Default::default()
            },
            &norm(),
        )
        .unwrap();
        assert!((none.learned_term(-3.0, 7) + 2.0).abs() < 1e-6);
    }

    #[test]
    fn config_is_toml_friendly_and_validated() {
        let cfg: ShapingConfig = toml::from_str(
            "heuristic_weight = 1.0\nlearned_weight = 0.2\nthreshold = { value = 0.5 }\ncount_exponent = 0.0\n",
        )
        .unwrap();
        assert_eq!(cfg.threshold, Threshold::Value(0.5));
        let cfg2: ShapingConfig = toml::from_str("threshold = \"none\"").unwrap();
        assert_eq!(cfg2.threshold, Threshold::None);
        assert_eq!(cfg2.learned_weight, 0.1);
        let back = toml::to_string(&ShapingConfig::default()).unwrap();
        assert_eq!(
            toml::from_str::<ShapingConfig>(&back).unwrap(),
            ShapingConfig::default()
        );
        assert!(toml::from_str::<ShapingConfig>("learned_wieght = 1.0").is_err());
        let bad = ShapingConfig {
            threshold: Threshold::Quantile(1.5),
            ..Default::default()
        };
        assert!(Shaper::new(bad, &norm()).is_err());
    }

    #[test]
    fn counts_per_key() {
        let mut c = EpisodeCounts::default();
        assert_eq!(c.observe(5), 1);
        assert_eq!(c.observe(5), 2);
        assert_eq!(c.observe(6), 1);
        c.reset();
        assert_eq!(c.observe(5), 1);
    }
}
