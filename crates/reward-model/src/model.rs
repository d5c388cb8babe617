//! The reward network, its training (regression + Bradley-Terry) and its file format.

use burn::tensor::activation::{log_sigmoid, sigmoid};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use ppo::container::{self, Container};
use ppo::nn::{
    AdamConfig, Backend, ConvLayer, ConvMlp, EncoderConfig, HeadSpec, ParamSet, Trainable,
    download, features_tensor, upload,
};
use ppo::policy::frames_tensor;
use ppo::rng::{HostRng, STREAM_DATA, STREAM_INIT};

use crate::RewardModelError;
use crate::data::{Dataset, Pair, PairRule, Split};

/// `kind` of an exported reward model.
pub const REWARD_MODEL_KIND: &str = "zelda-rl/reward-model";
/// Reward-model format version this build reads and writes.
pub const REWARD_MODEL_VERSION: u64 = 1;
/// Number of stored output quantiles (0%, 5%, ..., 100%).
pub const QUANTILES: usize = 21;

/// Network shapes of the reward model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewardNetConfig {
    /// Trunk: keyframe stack + features -> hidden. The head is one linear unit.
    pub encoder: EncoderConfig,
}

impl RewardNetConfig {
    /// A small default: `stack` keyframes of 72x80, conv 8/4 -> 16, 4/2 -> 32, 3/1 -> 32, a
    /// 32-wide feature embedding and a 128 hidden layer.
    pub fn small(stack: usize, features: usize) -> Self {
        Self {
            encoder: EncoderConfig {
                frame_stack: stack,
                height: 72,
                width: 80,
                convs: vec![
                    ConvLayer {
                        out_channels: 16,
                        kernel: 8,
                        stride: 4,
                    },
                    ConvLayer {
                        out_channels: 32,
                        kernel: 4,
                        stride: 2,
                    },
                    ConvLayer {
                        out_channels: 32,
                        kernel: 3,
                        stride: 1,
                    },
                ],
                features,
                feature_hidden: 32,
                hidden: 128,
            },
        }
    }

    fn net(&self) -> ConvMlp {
        ConvMlp {
            encoder: self.encoder.clone(),
            heads: vec![HeadSpec {
                name: "reward".into(),
                size: 1,
                gain: 1.0,
            }],
        }
    }
}

/// Which losses to train with and how much each counts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Objective {
    /// Weight of the regression loss `MSE(sigmoid(r), score)` on scored samples.
    pub regression: f32,
    /// Weight of the Bradley-Terry loss on pairs (soft-label cross-entropy of
    /// `softmax(r_a, r_b)`, as Motif).
    pub bradley_terry: f32,
}

impl Default for Objective {
    fn default() -> Self {
        Self {
            regression: 1.0,
            bradley_terry: 1.0,
        }
    }
}

/// Training settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Seed for init, split, pair derivation and shuffles.
    pub seed: u64,
    /// Loss weights.
    pub objective: Objective,
    /// Passes over the data.
    pub epochs: usize,
    /// Samples and pairs per step (each).
    pub batch_size: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Adam settings.
    pub adam: AdamConfig,
    /// Global gradient norm limit.
    pub max_grad_norm: Option<f32>,
    /// Fraction of samples held out for validation.
    pub val_fraction: f32,
    /// How pairs are derived from scores.
    pub pair_rule: PairRule,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            objective: Objective::default(),
            epochs: 10,
            batch_size: 64,
            learning_rate: 1e-3,
            adam: AdamConfig::default(),
            max_grad_norm: Some(1.0),
            val_fraction: 0.2,
            pair_rule: PairRule::default(),
        }
    }
}

/// What the model is valid for; checked on load.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelIdentity {
    /// SHA-1 (hex, lower case) of the cartridge the training segments came from.
    pub cartridge_sha1: String,
    /// Version of the env's feature layout the features follow.
    pub feature_layout_version: u32,
}

/// What a loader accepts: the cartridge it plays, and the feature layouts whose model
/// inputs equal its own (a layout version can change only features the model does not read).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    /// SHA-1 (hex) of the cartridge being played.
    pub cartridge_sha1: String,
    /// The oldest accepted layout version.
    pub oldest_layout: u32,
    /// The env's own layout version (the newest accepted).
    pub layout: u32,
}

impl From<ModelIdentity> for Requirement {
    /// Exactly that identity's cartridge and layout.
    fn from(id: ModelIdentity) -> Self {
        Self {
            cartridge_sha1: id.cartridge_sha1,
            oldest_layout: id.feature_layout_version,
            layout: id.feature_layout_version,
        }
    }
}

/// Mean and standard deviation of the raw output over the training samples (Motif normalises
/// the reward with them), plus raw-output quantiles for quantile thresholds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NormStats {
    /// Mean raw output.
    pub mean: f32,
    /// Standard deviation of the raw output (floored at 1e-6).
    pub std: f32,
    /// Raw-output quantiles at 0, 5, ..., 100 %.
    pub quantiles: Vec<f32>,
}

impl NormStats {
    /// Raw output at quantile `q` in [0, 1], linearly interpolated.
    pub fn raw_quantile(&self, q: f32) -> f32 {
        let q = q.clamp(0.0, 1.0) * (self.quantiles.len() - 1) as f32;
        let lo = q.floor() as usize;
        let hi = q.ceil() as usize;
        let t = q - lo as f32;
        self.quantiles[lo] * (1.0 - t) + self.quantiles[hi] * t
    }
}

/// Held-out (or training-set) quality figures.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalStats {
    /// Pairs with a strict label (0 or 1) evaluated.
    pub strict_pairs: usize,
    /// Fraction of strict pairs ordered correctly (`r_a > r_b` iff label 1).
    pub pair_accuracy: f64,
    /// Mean Bradley-Terry loss over all pairs (ties included).
    pub bt_loss: f64,
    /// Scored samples evaluated.
    pub scored_samples: usize,
    /// Mean squared error of `sigmoid(r)` against the score.
    pub mse: f64,
}

/// Summary of a training run, stored with the model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    /// Training samples.
    pub train_samples: usize,
    /// Validation samples.
    pub val_samples: usize,
    /// Training pairs.
    pub train_pairs: usize,
    /// Validation pairs.
    pub val_pairs: usize,
    /// Explicit pairs dropped because they straddled the split.
    pub dropped_pairs: usize,
    /// Optimiser steps.
    pub steps: u64,
    /// Mean training loss per epoch.
    pub epoch_losses: Vec<f64>,
    /// Metrics on the training split after training.
    pub train: EvalStats,
    /// Metrics on the validation split after training.
    pub val: EvalStats,
}

/// A trained reward model ready for inference.
pub struct RewardModel {
    config: RewardNetConfig,
    identity: ModelIdentity,
    norm: NormStats,
    report: TrainReport,
    net: ConvMlp,
    params: ParamSet,
    device: Device,
}

const INFER_CHUNK: usize = 256;

fn forward_raw(
    net: &ConvMlp,
    params: &[Tensor<1>],
    device: &Device,
    frames: &[u8],
    features: &[f32],
    batch: usize,
) -> Tensor<1> {
    let e = &net.encoder;
    let x = frames_tensor(frames, [batch, e.frame_stack, e.height, e.width], device);
    let f = features_tensor(features, batch, e.features, device);
    net.forward(params, x, f)
        .pop()
        .expect("reward head")
        .reshape([batch])
}

fn gather(ds: &Dataset, idx: &[usize], fl: usize, dl: usize) -> (Vec<u8>, Vec<f32>) {
    let mut frames = Vec::with_capacity(idx.len() * fl);
    let mut feats = Vec::with_capacity(idx.len() * dl);
    for &i in idx {
        frames.extend_from_slice(&ds.samples[i].frames);
        feats.extend_from_slice(&ds.samples[i].features);
    }
    (frames, feats)
}

fn raw_outputs(
    net: &ConvMlp,
    params: &[Tensor<1>],
    device: &Device,
    ds: &Dataset,
    idx: &[usize],
) -> Vec<f32> {
    let (fl, dl) = (net.encoder.frame_len(), net.encoder.features);
    let mut out = Vec::with_capacity(idx.len());
    for chunk in idx.chunks(INFER_CHUNK) {
        let (frames, feats) = gather(ds, chunk, fl, dl);
        out.extend(download(forward_raw(
            net,
            params,
            device,
            &frames,
            &feats,
            chunk.len(),
        )));
    }
    out
}

fn evaluate(
    net: &ConvMlp,
    params: &[Tensor<1>],
    device: &Device,
    ds: &Dataset,
    samples: &[usize],
    pairs: &[Pair],
) -> EvalStats {
    let mut needed: Vec<usize> = samples.to_vec();
    needed.extend(pairs.iter().flat_map(|p| [p.a, p.b]));
    needed.sort_unstable();
    needed.dedup();
    let raw = raw_outputs(net, params, device, ds, &needed);
    let r = |i: usize| raw[needed.binary_search(&i).expect("evaluated")] as f64;
    let mut st = EvalStats::default();
    let mut correct = 0usize;
    for p in pairs {
        let d = r(p.a) - r(p.b);
        // -[p log s(d) + (1-p) log s(-d)], with log s(x) = -ln(1 + e^-x) computed stably.
        let log_sig = |x: f64| -((-x.abs()).exp().ln_1p()) + x.min(0.0);
        st.bt_loss -= p.label as f64 * log_sig(d) + (1.0 - p.label as f64) * log_sig(-d);
        if p.label != 0.5 {
            st.strict_pairs += 1;
            if (d > 0.0) == (p.label == 1.0) {
                correct += 1;
            }
        }
    }
    if !pairs.is_empty() {
        st.bt_loss /= pairs.len() as f64;
    }
    if st.strict_pairs > 0 {
        st.pair_accuracy = correct as f64 / st.strict_pairs as f64;
    }
    for &i in samples {
        if let Some(s) = ds.samples[i].score {
            let pred = 1.0 / (1.0 + (-r(i)).exp());
            st.mse += (pred - s as f64).powi(2);
            st.scored_samples += 1;
        }
    }
    if st.scored_samples > 0 {
        st.mse /= st.scored_samples as f64;
    }
    st
}

fn quantiles(mut v: Vec<f32>) -> Vec<f32> {
    v.sort_by(f32::total_cmp);
    (0..QUANTILES)
        .map(|k| {
            let pos = k as f64 / (QUANTILES - 1) as f64 * (v.len() - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            let t = (pos - lo as f64) as f32;
            v[lo] * (1.0 - t) + v[hi] * t
        })
        .collect()
}

/// Trains a reward model on `data` and computes its normalisation statistics.
///
/// Each step takes a minibatch of scored training samples and a minibatch of training pairs (both
/// cycling through shuffled orders) and minimises
/// `w_reg * MSE(sigmoid(r), score) + w_bt * BT(r_a, r_b, label)`. Steps per epoch =
/// `ceil(max(scored, pairs) / batch_size)`.
pub fn train(
    data: &Dataset,
    net_config: &RewardNetConfig,
    identity: ModelIdentity,
    cfg: &TrainConfig,
    backend: Backend,
) -> Result<RewardModel, RewardModelError> {
    net_config
        .encoder
        .validate()
        .map_err(|e| RewardModelError::Config(format!("net.encoder: {e}")))?;
    cfg.pair_rule.validate()?;
    if cfg.batch_size == 0 || cfg.epochs == 0 {
        return Err(RewardModelError::Config(
            "batch_size and epochs must be >= 1".into(),
        ));
    }
    if !(0.0..1.0).contains(&cfg.val_fraction) {
        return Err(RewardModelError::Config(
            "val_fraction must be in [0, 1)".into(),
        ));
    }
    check_sha1(&identity.cartridge_sha1)?;
    let enc = &net_config.encoder;
    data.validate(enc.frame_len(), enc.features)?;
    let device = backend.device().map_err(RewardModelError::Backend)?;
    let net = net_config.net();

    let split: Split = data.split(cfg.val_fraction, &cfg.pair_rule, cfg.seed);
    let scored: Vec<usize> = split
        .train_samples
        .iter()
        .copied()
        .filter(|&i| data.samples[i].score.is_some())
        .collect();
    let use_reg = cfg.objective.regression > 0.0 && !scored.is_empty();
    let use_bt = cfg.objective.bradley_terry > 0.0 && !split.train_pairs.is_empty();
    if !use_reg && !use_bt {
        return Err(RewardModelError::Dataset(format!(
            "nothing to train on: {} scored training samples, {} training pairs",
            scored.len(),
            split.train_pairs.len()
        )));
    }

    let mut init_rng = HostRng::derived(cfg.seed, STREAM_INIT, 0);
    let params = ParamSet::init(net.param_specs(), &mut init_rng, &device);
    let mut tr = Trainable::new(params, cfg.adam.clone());
    let mut rng = HostRng::derived(cfg.seed, STREAM_DATA, 2);
    let bs = cfg.batch_size;
    let n_reg = if use_reg { scored.len() } else { 0 };
    let n_bt = if use_bt { split.train_pairs.len() } else { 0 };
    let steps_per_epoch = n_reg.max(n_bt).div_ceil(bs);
    let mut reg_order = scored.clone();
    let mut bt_order: Vec<usize> = (0..split.train_pairs.len()).collect();
    let (mut reg_pos, mut bt_pos) = (usize::MAX, usize::MAX);
    let (fl, dl) = (enc.frame_len(), enc.features);
    let mut report = TrainReport {
        train_samples: split.train_samples.len(),
        val_samples: split.val_samples.len(),
        train_pairs: split.train_pairs.len(),
        val_pairs: split.val_pairs.len(),
        dropped_pairs: split.dropped_pairs,
        ..Default::default()
    };

    // Takes the next `bs` items of a cyclic shuffled order, reshuffling at each wrap.
    fn next_batch(
        order: &mut [usize],
        pos: &mut usize,
        bs: usize,
        rng: &mut HostRng,
    ) -> Vec<usize> {
        let mut out = Vec::with_capacity(bs);
        while out.len() < bs.min(order.len()) {
            if *pos >= order.len() {
                rng.shuffle(order);
                *pos = 0;
            }
            out.push(order[*pos]);
            *pos += 1;
        }
        out
    }

    for _epoch in 0..cfg.epochs {
        let mut epoch_loss = 0f64;
        for _ in 0..steps_per_epoch {
            // Rows: regression samples, then pair a's, then pair b's; one forward pass.
            let mut rows: Vec<usize> = Vec::new();
            let mut targets = Vec::new();
            if use_reg {
                let b = next_batch(&mut reg_order, &mut reg_pos, bs, &mut rng);
                targets = b
                    .iter()
                    .map(|&i| data.samples[i].score.expect("scored"))
                    .collect();
                rows.extend(b);
            }
            let n_r = rows.len();
            let mut labels = Vec::new();
            if use_bt {
                let b = next_batch(&mut bt_order, &mut bt_pos, bs, &mut rng);
                let pairs: Vec<Pair> = b.iter().map(|&k| split.train_pairs[k]).collect();
                rows.extend(pairs.iter().map(|p| p.a));
                rows.extend(pairs.iter().map(|p| p.b));
                labels = pairs.iter().map(|p| p.label).collect();
            }
            let n_p = labels.len();
            let (frames, feats) = gather(data, &rows, fl, dl);
            let total = rows.len();
            let shape = [total, enc.frame_stack, enc.height, enc.width];
            let x = frames_tensor(&frames, shape, &device).autodiff();
            let f = features_tensor(&feats, total, dl, &device).autodiff();
            let tgt = upload(targets, &device).autodiff();
            let lab = upload(labels, &device).autodiff();
            let (w_reg, w_bt) = (
                cfg.objective.regression as f64,
                cfg.objective.bradley_terry as f64,
            );
            let out = tr.step(cfg.learning_rate, cfg.max_grad_norm.map(f64::from), |p| {
                let r = net.forward(p, x, f).pop().expect("head").reshape([total]);
                let mut loss: Option<Tensor<1>> = None;
                if n_r > 0 {
                    let pred = sigmoid(r.clone().narrow(0, 0, n_r));
                    let mse = (pred - tgt).square().mean().mul_scalar(w_reg);
                    loss = Some(mse);
                }
                if n_p > 0 {
                    let ra = r.clone().narrow(0, n_r, n_p);
                    let rb = r.narrow(0, n_r + n_p, n_p);
                    let d = ra - rb;
                    let one_minus = lab.clone().neg().add_scalar(1.0);
                    let bt = (lab * log_sigmoid(d.clone()) + one_minus * log_sigmoid(d.neg()))
                        .mean()
                        .neg()
                        .mul_scalar(w_bt);
                    loss = Some(match loss {
                        Some(l) => l + bt,
                        None => bt,
                    });
                }
                let loss = loss.expect("at least one objective");
                let value = loss.clone().inner();
                (loss, value)
            });
            let l: f32 = out.aux.into_scalar();
            epoch_loss += l as f64;
            report.steps += 1;
        }
        report
            .epoch_losses
            .push(epoch_loss / steps_per_epoch as f64);
        tracing::debug!(
            epoch = report.epoch_losses.len(),
            loss = report.epoch_losses.last().copied(),
            "reward model epoch"
        );
    }

    let values = &tr.params.values;
    report.train = evaluate(
        &net,
        values,
        &device,
        data,
        &split.train_samples,
        &split.train_pairs,
    );
    report.val = evaluate(
        &net,
        values,
        &device,
        data,
        &split.val_samples,
        &split.val_pairs,
    );
    let raw = raw_outputs(&net, values, &device, data, &split.train_samples);
    let n = raw.len() as f64;
    let mean = raw.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = raw.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    let norm = NormStats {
        mean: mean as f32,
        std: (var.sqrt() as f32).max(1e-6),
        quantiles: quantiles(raw),
    };
    Ok(RewardModel {
        config: net_config.clone(),
        identity,
        norm,
        report,
        net,
        params: tr.params,
        device,
    })
}

fn check_sha1(s: &str) -> Result<(), RewardModelError> {
    if s.len() == 40
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(RewardModelError::Config(format!(
            "cartridge_sha1 `{s}` is not 40 lower-case hex digits"
        )))
    }
}

fn meta_field<T: serde::de::DeserializeOwned>(
    c: &Container,
    key: &str,
) -> Result<T, RewardModelError> {
    let v = c
        .meta
        .get(key)
        .ok_or_else(|| RewardModelError::Format(format!("metadata field `{key}` is missing")))?;
    serde_json::from_value(v.clone())
        .map_err(|e| RewardModelError::Format(format!("metadata field `{key}`: {e}")))
}

impl RewardModel {
    /// Network shapes.
    pub fn config(&self) -> &RewardNetConfig {
        &self.config
    }

    /// Cartridge and feature layout the model was trained for.
    pub fn identity(&self) -> &ModelIdentity {
        &self.identity
    }

    /// Normalisation statistics.
    pub fn norm(&self) -> &NormStats {
        &self.norm
    }

    /// Training summary (held-out accuracy etc.).
    pub fn report(&self) -> &TrainReport {
        &self.report
    }

    /// Raw scalar outputs for a batch of `[B][stack][H][W]` frames and `[B][D]` features.
    pub fn raw(
        &self,
        frames: &[u8],
        features: &[f32],
        batch: usize,
    ) -> Result<Vec<f32>, RewardModelError> {
        let e = &self.config.encoder;
        if frames.len() != batch * e.frame_len() || features.len() != batch * e.features {
            return Err(RewardModelError::Input(format!(
                "batch {batch}: got {} frame bytes and {} features, expected {} and {}",
                frames.len(),
                features.len(),
                batch * e.frame_len(),
                batch * e.features
            )));
        }
        let mut out = Vec::with_capacity(batch);
        let (fl, dl) = (e.frame_len(), e.features);
        let mut start = 0;
        while start < batch {
            let n = INFER_CHUNK.min(batch - start);
            out.extend(download(forward_raw(
                &self.net,
                &self.params.values,
                &self.device,
                &frames[start * fl..(start + n) * fl],
                &features[start * dl..(start + n) * dl],
                n,
            )));
            start += n;
        }
        Ok(out)
    }

    /// Outputs normalised by the stored mean and std.
    pub fn normalised(
        &self,
        frames: &[u8],
        features: &[f32],
        batch: usize,
    ) -> Result<Vec<f32>, RewardModelError> {
        let raw = self.raw(frames, features, batch)?;
        Ok(raw
            .into_iter()
            .map(|r| (r - self.norm.mean) / self.norm.std)
            .collect())
    }

    /// Serialises the model (safetensors with identity, norm stats, config and report).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut meta = Map::new();
        meta.insert(
            "net".into(),
            serde_json::to_value(&self.config).expect("JSON"),
        );
        meta.insert(
            "identity".into(),
            serde_json::to_value(&self.identity).expect("JSON"),
        );
        meta.insert(
            "norm".into(),
            serde_json::to_value(&self.norm).expect("JSON"),
        );
        meta.insert(
            "report".into(),
            serde_json::to_value(&self.report).expect("JSON"),
        );
        meta.insert(
            "crate_version".into(),
            Value::from(env!("CARGO_PKG_VERSION")),
        );
        container::encode(
            REWARD_MODEL_KIND,
            REWARD_MODEL_VERSION,
            meta,
            &self.params.to_host("param/"),
        )
    }

    /// Loads a model, requiring it to fit `expected` (the cartridge being played and a
    /// feature layout the env can give it).
    pub fn from_bytes(
        bytes: &[u8],
        backend: Backend,
        expected: &Requirement,
    ) -> Result<Self, RewardModelError> {
        let c = container::decode(bytes, REWARD_MODEL_KIND, REWARD_MODEL_VERSION)?;
        let identity: ModelIdentity = meta_field(&c, "identity")?;
        if !identity
            .cartridge_sha1
            .eq_ignore_ascii_case(&expected.cartridge_sha1)
        {
            return Err(RewardModelError::WrongCartridge {
                model: identity.cartridge_sha1,
                requested: expected.cartridge_sha1.clone(),
            });
        }
        if !(expected.oldest_layout..=expected.layout).contains(&identity.feature_layout_version) {
            return Err(RewardModelError::FeatureLayout {
                model: identity.feature_layout_version,
                requested: expected.layout,
                oldest: expected.oldest_layout,
            });
        }
        let config: RewardNetConfig = meta_field(&c, "net")?;
        config
            .encoder
            .validate()
            .map_err(|e| RewardModelError::Format(format!("stored net config: {e}")))?;
        let norm: NormStats = meta_field(&c, "norm")?;
        let std_ok = norm.std.is_finite() && norm.std > 0.0;
        if norm.quantiles.len() != QUANTILES || !std_ok || !norm.mean.is_finite() {
            return Err(RewardModelError::Format(
                "norm stats are malformed (need std > 0 and 21 quantiles)".into(),
            ));
        }
        let report: TrainReport = meta_field(&c, "report")?;
        let device = backend.device().map_err(RewardModelError::Backend)?;
        let net = config.net();
        let specs = net.param_specs();
        if c.tensors.len() != specs.len() {
            return Err(RewardModelError::Format(format!(
                "file has {} tensors, the model expects {}",
                c.tensors.len(),
                specs.len()
            )));
        }
        let params = ParamSet::from_host(specs, &c.tensors, "param/", &device)
            .map_err(RewardModelError::Format)?;
        Ok(Self {
            config,
            identity,
            norm,
            report,
            net,
            params,
            device,
        })
    }
}
