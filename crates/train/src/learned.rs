//! The learned reward: training it from the evaluator's scores, and adding it to the
//! heuristic reward during rollouts (Motif: normalise, threshold, damp by visit count,
//! weight).

use episodes::{Segment, Store};
use evaluator::{PreferenceLine, ScoreLine};
use reward_model::{
    Dataset, ModelIdentity, Pair, Requirement, RewardModel, RewardNetConfig, Sample, Shaper,
    ShapingConfig,
};
use rollout::VecEnv;
use zelda::obs::{FRAME_PIXELS, STATE_FEATURES, downscale, write_state_features};

use crate::TrainError;

/// Key under which the model trained after `burst` is stored.
pub fn model_key(run: &str, burst: u32) -> String {
    format!("{run}/reward-models/b{burst:04}.rm")
}

/// What training produced.
#[derive(Debug, Clone)]
pub struct Trained {
    /// Store key of the model.
    pub key: String,
    /// Scored samples used.
    pub samples: usize,
    /// Explicit (compare-mode) pairs used.
    pub pairs: usize,
    /// Held-out pair accuracy (NaN without held-out strict pairs).
    pub val_pair_accuracy: f64,
}

/// Builds the dataset from the run's `scores.jsonl` (and `preferences.jsonl` when present):
/// one sample per scored segment, its last keyframe and the state there.
pub async fn dataset(store: &Store, run: &str) -> Result<Dataset, TrainError> {
    let mut data = Dataset::default();
    let mut index_of = std::collections::HashMap::new();
    let scores_key = format!("{run}/scores/scores.jsonl");
    let Some(scores) = store.get_opt(&scores_key).await? else {
        return Ok(data);
    };
    for (n, line) in scores.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let l: ScoreLine = serde_json::from_slice(line)
            .map_err(|e| TrainError::Scores(format!("{scores_key} line {}: {e}", n + 1)))?;
        let Some(combined) = &l.combined else {
            continue;
        };
        let sample = sample_of(store, &l.segment.key).await?;
        index_of.insert(l.segment.segment.clone(), data.samples.len());
        data.samples.push(Sample {
            score: Some(combined.score as f32),
            ..sample
        });
    }
    let prefs_key = format!("{run}/scores/preferences.jsonl");
    if let Some(prefs) = store.get_opt(&prefs_key).await? {
        for (n, line) in prefs.split(|b| *b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let l: PreferenceLine = serde_json::from_slice(line)
                .map_err(|e| TrainError::Scores(format!("{prefs_key} line {}: {e}", n + 1)))?;
            let Some(label) = &l.label else { continue };
            let a = sample_index(store, &l.first, &mut data, &mut index_of).await?;
            let b = sample_index(store, &l.second, &mut data, &mut index_of).await?;
            data.pairs.push(Pair {
                a,
                b,
                label: label.first_wins as f32,
            });
        }
    }
    Ok(data)
}

/// The index of a segment's sample, loading it the first time it is referenced.
async fn sample_index(
    store: &Store,
    r: &evaluator::SegmentRef,
    data: &mut Dataset,
    index_of: &mut std::collections::HashMap<String, usize>,
) -> Result<usize, TrainError> {
    if let Some(&i) = index_of.get(&r.segment) {
        return Ok(i);
    }
    data.samples.push(sample_of(store, &r.key).await?);
    index_of.insert(r.segment.clone(), data.samples.len() - 1);
    Ok(data.samples.len() - 1)
}

/// The sample of one segment: its last keyframe (72x80 grey) and the state features there.
async fn sample_of(store: &Store, key: &str) -> Result<Sample, TrainError> {
    let bytes = store.get(key).await.map_err(|e| match e {
        episodes::StoreError::NotFound { .. } => TrainError::Scores(format!(
            "scores reference segment `{key}`, which is not in the store"
        )),
        other => TrainError::Store(other),
    })?;
    let seg = Segment::decode(&bytes, key)?;
    let kf = seg
        .keyframes
        .last()
        .ok_or_else(|| TrainError::Scores(format!("segment {key} has no keyframe")))?;
    let shades = episodes::frames::decode_png(&kf.png)
        .map_err(|e| TrainError::Scores(format!("segment {key} keyframe {}: {e}", kf.step)))?;
    let mut frames = vec![0u8; FRAME_PIXELS];
    downscale(&shades, &mut frames);
    let mut features = vec![0f32; STATE_FEATURES];
    write_state_features(&seg.states[kf.step as usize], &mut features);
    Ok(Sample {
        frames,
        features,
        score: None,
    })
}

/// The network the reward model uses: one 72x80 frame plus the state features.
pub fn net_config() -> RewardNetConfig {
    RewardNetConfig::small(1, STATE_FEATURES)
}

/// The identity a model must have to be used on `cartridge_sha1`.
pub fn identity(cartridge_sha1: &str) -> ModelIdentity {
    ModelIdentity {
        cartridge_sha1: cartridge_sha1.to_ascii_lowercase(),
        feature_layout_version: zelda::obs::FEATURES_VERSION,
    }
}

/// What a stored model must be to be used on `cartridge_sha1`: any layout whose state
/// features are this build's.
pub fn requirement(cartridge_sha1: &str) -> Requirement {
    Requirement {
        oldest_layout: zelda::obs::STATE_FEATURES_SINCE,
        ..identity(cartridge_sha1).into()
    }
}

/// A reward model in use during rollouts, with scratch buffers for batched inference.
pub struct LearnedReward {
    model: RewardModel,
    shaper: Shaper,
    frames: Vec<u8>,
    features: Vec<f32>,
    raw: Vec<f32>,
    /// Store key it was loaded from.
    pub key: String,
}

impl LearnedReward {
    /// Loads a stored model; it must have been trained for `cartridge_sha1`.
    pub fn load(
        bytes: &[u8],
        key: &str,
        cartridge_sha1: &str,
        shaping: &ShapingConfig,
        backend: ppo::Backend,
    ) -> Result<Self, TrainError> {
        let model = RewardModel::from_bytes(bytes, backend, &requirement(cartridge_sha1))
            .map_err(|e| TrainError::RewardModel(format!("{key}: {e}")))?;
        let shaper = Shaper::new(shaping.clone(), model.norm())
            .map_err(|e| TrainError::RewardModel(format!("{key}: {e}")))?;
        Ok(Self {
            model,
            shaper,
            frames: Vec::new(),
            features: Vec::new(),
            raw: Vec::new(),
            key: key.to_string(),
        })
    }

    /// Replaces `rewards[i]` (heuristic, per env) with the shaped total, returning the
    /// learned parts. Uses each env's newest frame and state after the step.
    pub fn shape(
        &mut self,
        envs: &VecEnv,
        rewards: &mut [f32],
        learned: &mut [f32],
    ) -> Result<(), TrainError> {
        let n = envs.len();
        let stack = envs.frames_per_env() / FRAME_PIXELS;
        self.frames.resize(n * FRAME_PIXELS, 0);
        self.features.resize(n * STATE_FEATURES, 0.0);
        for i in 0..n {
            let newest = &envs.frames()[i * envs.frames_per_env() + (stack - 1) * FRAME_PIXELS..]
                [..FRAME_PIXELS];
            self.frames[i * FRAME_PIXELS..][..FRAME_PIXELS].copy_from_slice(newest);
            write_state_features(
                envs.state(i),
                &mut self.features[i * STATE_FEATURES..][..STATE_FEATURES],
            );
        }
        self.raw = self
            .model
            .raw(&self.frames, &self.features, n)
            .map_err(|e| TrainError::RewardModel(e.to_string()))?;
        for i in 0..n {
            let visits = envs.env(i).current_cell_visits();
            let shaped = self.shaper.shape(rewards[i], self.raw[i], visits);
            rewards[i] = shaped.total;
            learned[i] = shaped.learned;
        }
        Ok(())
    }
}

/// Trains a model on everything scored in the run so far and stores it; `None` when there
/// are fewer than `min_samples` scored segments.
pub async fn train(
    store: &Store,
    run: &str,
    burst: u32,
    cartridge_sha1: &str,
    section: &crate::settings::RewardModelSection,
    seed: u64,
    backend: ppo::Backend,
) -> Result<Option<Trained>, TrainError> {
    let key = model_key(run, burst);
    // A rerun of this burst (after a resume) reuses the model it already stored.
    if store.exists(&key).await? {
        let data = dataset(store, run).await?;
        let scored = data.samples.iter().filter(|s| s.score.is_some()).count();
        return Ok(Some(Trained {
            key,
            samples: scored,
            pairs: data.pairs.len(),
            val_pair_accuracy: f64::NAN,
        }));
    }
    let data = dataset(store, run).await?;
    let scored = data.samples.iter().filter(|s| s.score.is_some()).count();
    if scored < section.min_samples {
        tracing::info!(
            scored,
            needed = section.min_samples,
            "not enough scored segments for a reward model yet"
        );
        return Ok(None);
    }
    let mut cfg = section.train.clone();
    cfg.seed = ppo::mix_seed(seed, 0x7E3A, u64::from(burst));
    let model = tokio::task::block_in_place(|| {
        reward_model::train(
            &data,
            &net_config(),
            identity(cartridge_sha1),
            &cfg,
            backend,
        )
    })
    .map_err(|e| TrainError::RewardModel(e.to_string()))?;
    store.put_new(&key, model.to_bytes().into()).await?;
    Ok(Some(Trained {
        key,
        samples: scored,
        pairs: data.pairs.len(),
        val_pair_accuracy: model.report().val.pair_accuracy,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CART: &str = "0123456789abcdef0123456789abcdef01234567";

    /// A one-epoch model on noise, recorded as trained for feature layout `layout`.
    fn model_of_layout(layout: u32) -> Vec<u8> {
        let samples = (0..8u8)
            .map(|i| Sample {
                frames: vec![i.wrapping_mul(31); FRAME_PIXELS],
                features: vec![f32::from(i) / 8.0; STATE_FEATURES],
                score: Some(f32::from(i) / 8.0),
            })
            .collect();
        let data = Dataset {
            samples,
            pairs: Vec::new(),
        };
        let cfg = reward_model::TrainConfig {
            epochs: 1,
            batch_size: 4,
            ..Default::default()
        };
        let id = ModelIdentity {
            feature_layout_version: layout,
            ..identity(CART)
        };
        reward_model::train(&data, &net_config(), id, &cfg, ppo::Backend::Flex)
            .unwrap()
            .to_bytes()
    }

    #[test]
    fn models_of_older_layouts_with_the_same_state_features_load() {
        let load = |layout| {
            LearnedReward::load(
                &model_of_layout(layout),
                "rm.safetensors",
                CART,
                &ShapingConfig::default(),
                ppo::Backend::Flex,
            )
        };
        for layout in zelda::obs::STATE_FEATURES_SINCE..=zelda::obs::FEATURES_VERSION {
            assert!(load(layout).is_ok(), "layout {layout} refused");
        }
        let newer = zelda::obs::FEATURES_VERSION + 1;
        let e = load(newer).err().unwrap().to_string();
        assert!(
            e.contains("rm.safetensors") && e.contains(&format!("version {newer}")),
            "{e}"
        );
        if zelda::obs::STATE_FEATURES_SINCE > 1 {
            assert!(load(zelda::obs::STATE_FEATURES_SINCE - 1).is_err());
        }
    }
}
