//! Training data: scored samples, preference pairs, pairs derived from scores, and the split.

use serde::{Deserialize, Serialize};

use ppo::rng::{HostRng, STREAM_DATA};

use crate::RewardModelError;

/// One judged segment: keyframe(s), state features and an optional judge score in [0, 1].
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// `[stack][H][W]` greyscale bytes.
    pub frames: Vec<u8>,
    /// `[D]` state features.
    pub features: Vec<f32>,
    /// Judge score in [0, 1] (None when the sample only appears in compare-mode pairs).
    pub score: Option<f32>,
}

/// A preference between two samples (indices into the sample list).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pair {
    /// First sample.
    pub a: usize,
    /// Second sample.
    pub b: usize,
    /// Probability that `a` is better: 1 (a), 0 (b) or 0.5 (tie / "no preference"), as Motif.
    pub label: f32,
}

/// Samples plus explicit (compare-mode) pairs.
#[derive(Clone, Debug, Default)]
pub struct Dataset {
    /// All samples.
    pub samples: Vec<Sample>,
    /// Explicit preference pairs.
    pub pairs: Vec<Pair>,
}

/// How preference pairs are derived from judge scores.
///
/// Rule: among scored samples, take every unordered pair if there are at most `max_pairs` of them,
/// otherwise `max_pairs` random pairs (seeded, distinct samples). With `d = score(a) - score(b)`:
/// `|d| > margin` gives label 1 (d > 0) or 0; `|d| <= tie_margin` gives 0.5 when `tie_margin` is
/// set; anything in between is dropped as ambiguous. The pair's orientation is random so labels
/// are balanced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PairRule {
    /// Minimum score difference for a strict preference.
    pub margin: f32,
    /// Maximum difference for a tie (None: no derived ties).
    pub tie_margin: Option<f32>,
    /// Cap on derived pairs.
    pub max_pairs: usize,
}

impl Default for PairRule {
    fn default() -> Self {
        Self {
            margin: 0.1,
            tie_margin: None,
            max_pairs: 20_000,
        }
    }
}

impl PairRule {
    /// Checks ranges.
    pub fn validate(&self) -> Result<(), RewardModelError> {
        if self.margin.is_nan() || self.margin < 0.0 {
            return Err(RewardModelError::Config(
                "pair_rule.margin must be >= 0".into(),
            ));
        }
        if let Some(t) = self.tie_margin
            && !(t >= 0.0 && t <= self.margin)
        {
            return Err(RewardModelError::Config(
                "pair_rule.tie_margin must be in [0, margin]".into(),
            ));
        }
        Ok(())
    }
}

fn label_for(rule: &PairRule, d: f32) -> Option<f32> {
    if d.abs() > rule.margin {
        Some(if d > 0.0 { 1.0 } else { 0.0 })
    } else {
        match rule.tie_margin {
            Some(t) if d.abs() <= t => Some(0.5),
            _ => None,
        }
    }
}

/// Derives pairs from the scores of `candidates` (sample indices) following `rule`.
pub fn derive_pairs(
    samples: &[Sample],
    candidates: &[usize],
    rule: &PairRule,
    seed: u64,
) -> Vec<Pair> {
    let scored: Vec<usize> = candidates
        .iter()
        .copied()
        .filter(|&i| samples[i].score.is_some())
        .collect();
    let n = scored.len();
    let mut rng = HostRng::derived(seed, STREAM_DATA, 1);
    let total = n * n.saturating_sub(1) / 2;
    let mut raw: Vec<(usize, usize)> = Vec::new();
    if total <= rule.max_pairs {
        for i in 0..n {
            for j in i + 1..n {
                raw.push((scored[i], scored[j]));
            }
        }
    } else {
        let mut seen = std::collections::HashSet::new();
        while raw.len() < rule.max_pairs {
            let i = rng.below(n);
            let j = rng.below(n);
            if i == j {
                continue;
            }
            let key = (i.min(j), i.max(j));
            if seen.insert(key) {
                raw.push((scored[key.0], scored[key.1]));
            }
        }
    }
    let mut pairs = Vec::with_capacity(raw.len());
    for (x, y) in raw {
        let (a, b) = if rng.below(2) == 0 { (x, y) } else { (y, x) };
        let d = samples[a].score.expect("scored") - samples[b].score.expect("scored");
        if let Some(label) = label_for(rule, d) {
            pairs.push(Pair { a, b, label });
        }
    }
    pairs
}

/// Train/validation partition of a dataset.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Split {
    /// Training sample indices (sorted).
    pub train_samples: Vec<usize>,
    /// Validation sample indices (sorted).
    pub val_samples: Vec<usize>,
    /// Training pairs (explicit plus derived).
    pub train_pairs: Vec<Pair>,
    /// Validation pairs (explicit plus derived).
    pub val_pairs: Vec<Pair>,
    /// Explicit pairs dropped because they straddle the split.
    pub dropped_pairs: usize,
}

impl Dataset {
    /// Checks shapes, score ranges and pair indices against the model's input sizes.
    pub fn validate(&self, frame_len: usize, features: usize) -> Result<(), RewardModelError> {
        for (i, s) in self.samples.iter().enumerate() {
            if s.frames.len() != frame_len {
                return Err(RewardModelError::Dataset(format!(
                    "sample {i}: frames has {} bytes, expected {frame_len}",
                    s.frames.len()
                )));
            }
            if s.features.len() != features {
                return Err(RewardModelError::Dataset(format!(
                    "sample {i}: features has {} values, expected {features}",
                    s.features.len()
                )));
            }
            if let Some(x) = s.score
                && !(0.0..=1.0).contains(&x)
            {
                return Err(RewardModelError::Dataset(format!(
                    "sample {i}: score {x} is outside [0, 1]"
                )));
            }
            if let Some(bad) = s.features.iter().find(|v| !v.is_finite()) {
                return Err(RewardModelError::Dataset(format!(
                    "sample {i}: non-finite feature {bad}"
                )));
            }
        }
        for (k, p) in self.pairs.iter().enumerate() {
            let n = self.samples.len();
            if p.a >= n || p.b >= n {
                return Err(RewardModelError::Dataset(format!(
                    "pair {k} references sample {} but there are only {n}",
                    p.a.max(p.b)
                )));
            }
            if p.a == p.b {
                return Err(RewardModelError::Dataset(format!(
                    "pair {k} compares sample {} with itself",
                    p.a
                )));
            }
            if ![0.0, 0.5, 1.0].contains(&p.label) {
                return Err(RewardModelError::Dataset(format!(
                    "pair {k} has label {}, expected 0, 0.5 or 1",
                    p.label
                )));
            }
        }
        Ok(())
    }

    /// Splits samples (seeded) into train and validation, keeps explicit pairs whose two samples
    /// fall on the same side, and derives score pairs within each side, so no validation pair
    /// shares a sample with training.
    pub fn split(&self, val_fraction: f32, rule: &PairRule, seed: u64) -> Split {
        let n = self.samples.len();
        let mut order: Vec<usize> = (0..n).collect();
        HostRng::derived(seed, STREAM_DATA, 0).shuffle(&mut order);
        let n_val = ((n as f32) * val_fraction).round() as usize;
        let n_val = n_val.min(n);
        let mut is_val = vec![false; n];
        for &i in &order[..n_val] {
            is_val[i] = true;
        }
        let mut split = Split {
            train_samples: (0..n).filter(|&i| !is_val[i]).collect(),
            val_samples: (0..n).filter(|&i| is_val[i]).collect(),
            ..Default::default()
        };
        for p in &self.pairs {
            match (is_val[p.a], is_val[p.b]) {
                (false, false) => split.train_pairs.push(*p),
                (true, true) => split.val_pairs.push(*p),
                _ => split.dropped_pairs += 1,
            }
        }
        split.train_pairs.extend(derive_pairs(
            &self.samples,
            &split.train_samples,
            rule,
            seed ^ 0x7472_6169_6e00,
        ));
        split.val_pairs.extend(derive_pairs(
            &self.samples,
            &split.val_samples,
            rule,
            seed ^ 0x0076_616c_0000,
        ));
        split
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scored(scores: &[f32]) -> Vec<Sample> {
        scores
            .iter()
            .map(|&s| Sample {
                frames: vec![0; 4],
                features: vec![],
                score: Some(s),
            })
            .collect()
    }

    #[test]
    fn derived_pairs_follow_the_rule() {
        let s = scored(&[0.0, 0.05, 0.5, 1.0]);
        let rule = PairRule {
            margin: 0.2,
            tie_margin: Some(0.1),
            max_pairs: 100,
        };
        let pairs = derive_pairs(&s, &[0, 1, 2, 3], &rule, 1);
        // All 6 pairs: (0,1) tie, the rest strict.
        assert_eq!(pairs.len(), 6);
        for p in &pairs {
            let d = s[p.a].score.unwrap() - s[p.b].score.unwrap();
            let want = if d.abs() <= 0.1 {
                0.5
            } else if d > 0.0 {
                1.0
            } else {
                0.0
            };
            assert_eq!(p.label, want, "{p:?}");
        }
        let strict = PairRule {
            tie_margin: None,
            ..rule
        };
        assert_eq!(derive_pairs(&s, &[0, 1, 2, 3], &strict, 1).len(), 5);
    }

    #[test]
    fn derived_pairs_are_capped_and_seeded() {
        let s = scored(&(0..50).map(|i| i as f32 / 49.0).collect::<Vec<_>>());
        let idx: Vec<usize> = (0..50).collect();
        let rule = PairRule {
            margin: 0.0,
            tie_margin: None,
            max_pairs: 100,
        };
        let a = derive_pairs(&s, &idx, &rule, 3);
        assert_eq!(a.len(), 100);
        assert_eq!(a, derive_pairs(&s, &idx, &rule, 3));
        assert_ne!(a, derive_pairs(&s, &idx, &rule, 4));
    }

    #[test]
    fn split_keeps_sides_apart() {
        let mut d = Dataset {
            samples: scored(&(0..20).map(|i| i as f32 / 19.0).collect::<Vec<_>>()),
            pairs: vec![],
        };
        for i in 0..19 {
            d.pairs.push(Pair {
                a: i,
                b: i + 1,
                label: 0.0,
            });
        }
        let sp = d.split(0.25, &PairRule::default(), 9);
        assert_eq!(sp.val_samples.len(), 5);
        let val: std::collections::HashSet<_> = sp.val_samples.iter().collect();
        for p in &sp.train_pairs {
            assert!(!val.contains(&p.a) && !val.contains(&p.b));
        }
        for p in &sp.val_pairs {
            assert!(val.contains(&p.a) && val.contains(&p.b));
        }
        assert_eq!(sp, d.split(0.25, &PairRule::default(), 9));
    }

    #[test]
    fn validate_names_the_problem() {
        let mut d = Dataset {
            samples: scored(&[0.5, 0.7]),
            pairs: vec![Pair {
                a: 0,
                b: 5,
                label: 1.0,
            }],
        };
        let e = d.validate(4, 0).unwrap_err().to_string();
        assert!(e.contains("pair 0") && e.contains("sample 5"), "{e}");
        d.pairs.clear();
        d.samples[1].score = Some(1.5);
        assert!(
            d.validate(4, 0)
                .unwrap_err()
                .to_string()
                .contains("sample 1")
        );
        assert!(d.validate(3, 0).unwrap_err().to_string().contains("frames"));
    }
}
