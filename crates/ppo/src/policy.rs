//! The actor-critic network, the backend trait it sits behind, and batched acting.

use std::collections::BTreeMap;

use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::container::HostTensor;
use crate::nn::{AdamConfig, Backend, ConvMlp, EncoderConfig, HeadSpec, ParamSet, Trainable};
use crate::rng::{HostRng, STREAM_INIT};
use crate::{PpoConfig, PpoError};

/// Policy shapes: the trunk plus the number of discrete actions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Trunk (frames, features, hidden sizes).
    pub encoder: EncoderConfig,
    /// Number of discrete actions.
    pub actions: usize,
}

impl PolicyConfig {
    /// The default agent: 4 stacked 72x80 frames, Nature-CNN, `features` RAM features and
    /// `actions` actions.
    pub fn nature(features: usize, actions: usize) -> Self {
        Self {
            encoder: EncoderConfig::nature(4, 72, 80, features),
            actions,
        }
    }

    /// Checks all sizes.
    pub fn validate(&self) -> Result<(), PpoError> {
        self.encoder
            .validate()
            .map_err(|e| PpoError::Config(format!("policy.encoder: {e}")))?;
        if self.actions < 1 {
            return Err(PpoError::Config("policy.actions must be >= 1".into()));
        }
        Ok(())
    }

    /// The network with its two heads (`policy`: logits, gain 0.01; `value`: gain 1).
    pub fn net(&self) -> ConvMlp {
        ConvMlp {
            encoder: self.encoder.clone(),
            heads: vec![
                HeadSpec {
                    name: "policy".into(),
                    size: self.actions,
                    gain: 0.01,
                },
                HeadSpec {
                    name: "value".into(),
                    size: 1,
                    gain: 1.0,
                },
            ],
        }
    }
}

/// A batch of observations, borrowed from the caller.
#[derive(Clone, Copy, Debug)]
pub struct ObsBatch<'a> {
    /// `[B][stack][H][W]` greyscale bytes.
    pub frames: &'a [u8],
    /// `[B][D]` features.
    pub features: &'a [f32],
    /// Batch size B.
    pub batch: usize,
}

/// How actions are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActMode {
    /// Sample from the categorical distribution; row i uses draw i of a ChaCha8 stream seeded by
    /// `seed`, so equal seeds give equal actions.
    Sample {
        /// Seed of this call (derive it with [`crate::mix_seed`] from run seed, worker, step).
        seed: u64,
    },
    /// Most likely action (lowest index on ties).
    Greedy,
}

/// Actions with the log-probabilities and values the learner needs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ActOutput {
    /// Chosen actions.
    pub actions: Vec<u32>,
    /// `log pi(action | obs)`.
    pub log_probs: Vec<f32>,
    /// `V(obs)`.
    pub values: Vec<f32>,
}

/// Raw network outputs for a batch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Forward {
    /// `[B][A]` logits.
    pub logits: Vec<f32>,
    /// `[B]` values.
    pub values: Vec<f32>,
}

/// A gathered minibatch for one optimisation step.
pub struct Minibatch<'a> {
    /// `[M][stack][H][W]` frames (empty when `rows` names rows of a staged batch).
    pub frames: &'a [u8],
    /// `[M][D]` features (likewise).
    pub features: &'a [f32],
    /// Rows of the batch staged by [`PolicyNet::stage`] to train on instead of `frames` and
    /// `features` (empty: use those).
    pub rows: &'a [u32],
    /// Actions taken.
    pub actions: &'a [u32],
    /// Log-probs under the rollout policy.
    pub old_log_probs: &'a [f32],
    /// Values under the rollout policy.
    pub old_values: &'a [f32],
    /// Advantages, already normalised if the config says so.
    pub advantages: &'a [f32],
    /// GAE returns.
    pub returns: &'a [f32],
}

/// Per-minibatch loss statistics (CleanRL's definitions).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MinibatchStats {
    /// Clipped surrogate loss.
    pub policy_loss: f64,
    /// Value loss (0.5 * squared error, clipped if configured).
    pub value_loss: f64,
    /// Mean entropy.
    pub entropy: f64,
    /// `mean((ratio - 1) - log ratio)`.
    pub approx_kl: f64,
    /// `mean(-log ratio)`.
    pub old_approx_kl: f64,
    /// Fraction of samples with `|ratio - 1| > clip`.
    pub clip_fraction: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
}

/// Host copy of everything a network's training state holds.
#[derive(Clone, Debug, PartialEq)]
pub struct NetState {
    /// Parameters by name, `param/<name>`, plus Adam moments `adam_m/<name>`, `adam_v/<name>`.
    pub tensors: BTreeMap<String, HostTensor>,
    /// Adam step count.
    pub adam_step: u64,
}

/// The network behind PPO. Implemented here on burn (flex or LibTorch devices); another
/// framework can implement it and reuse the buffer, GAE, update loop and checkpoints.
pub trait PolicyNet {
    /// Shapes.
    fn config(&self) -> &PolicyConfig;

    /// Backend description for logs and checkpoint metadata.
    fn backend_name(&self) -> String;

    /// Inference without gradients.
    fn forward(&self, obs: &ObsBatch<'_>) -> Result<Forward, PpoError>;

    /// Keeps a whole update batch's observations on the device when that pays (a GPU: the
    /// epochs then gather their minibatches there instead of converting and uploading each
    /// one again); returns whether it did. Minibatches then name its rows
    /// ([`Minibatch::rows`]) until [`PolicyNet::unstage`].
    fn stage(
        &mut self,
        _frames: &[u8],
        _features: &[f32],
        _batch: usize,
    ) -> Result<bool, PpoError> {
        Ok(false)
    }

    /// Frees the staged batch.
    fn unstage(&mut self) {}

    /// One clipped-PPO optimisation step on a minibatch.
    fn train_minibatch(
        &mut self,
        mb: &Minibatch<'_>,
        cfg: &PpoConfig,
        lr: f64,
    ) -> Result<MinibatchStats, PpoError>;

    /// Host copy of parameters and optimiser state.
    fn state(&self) -> NetState;

    /// Restores a state from [`PolicyNet::state`], checking names and shapes.
    fn load_state(&mut self, state: &NetState) -> Result<(), PpoError>;

    /// Parameters only (`param/<name>`), for rollout workers.
    fn params(&self) -> BTreeMap<String, HostTensor>;

    /// Replaces the parameters (e.g. on a worker after the learner's update).
    fn load_params(&mut self, tensors: &BTreeMap<String, HostTensor>) -> Result<(), PpoError>;

    /// Batched acting: forward pass, then seeded categorical sampling or argmax on the host.
    fn act(&self, obs: &ObsBatch<'_>, mode: ActMode) -> Result<ActOutput, PpoError> {
        let fwd = self.forward(obs)?;
        Ok(select_actions(&fwd, self.config().actions, mode))
    }

    /// Value estimates only (e.g. for truncation bootstraps and the GAE tail).
    fn values(&self, obs: &ObsBatch<'_>) -> Result<Vec<f32>, PpoError> {
        Ok(self.forward(obs)?.values)
    }
}

/// Turns logits into actions, log-probs and values.
pub fn select_actions(fwd: &Forward, actions: usize, mode: ActMode) -> ActOutput {
    let batch = fwd.values.len();
    let mut out = ActOutput {
        actions: Vec::with_capacity(batch),
        log_probs: Vec::with_capacity(batch),
        values: fwd.values.clone(),
    };
    let mut rng = match mode {
        ActMode::Sample { seed } => Some(HostRng::new(seed)),
        ActMode::Greedy => None,
    };
    let mut probs = vec![0f64; actions];
    for row in fwd.logits.chunks_exact(actions) {
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x)) as f64;
        let mut total = 0f64;
        for (p, &l) in probs.iter_mut().zip(row) {
            *p = (l as f64 - max).exp();
            total += *p;
        }
        let log_z = max + total.ln();
        let a = match rng.as_mut() {
            Some(rng) => {
                let u = rng.uniform() * total;
                let mut acc = 0f64;
                let mut pick = actions - 1;
                for (i, p) in probs.iter().enumerate() {
                    acc += p;
                    if u < acc {
                        pick = i;
                        break;
                    }
                }
                pick
            }
            None => {
                let mut best = 0;
                for (i, &l) in row.iter().enumerate() {
                    if l > row[best] {
                        best = i;
                    }
                }
                best
            }
        };
        out.actions.push(a as u32);
        out.log_probs.push((row[a] as f64 - log_z) as f32);
    }
    out
}

/// What a frame byte is multiplied by to give a float in [0, 1].
const FRAME_SCALE: f32 = 1.0 / 255.0;

/// Bytes to floats in [0, 1] on the host: [`frames_tensor`]'s values, for callers that need
/// them outside a tensor.
pub fn frames_to_f32(frames: &[u8]) -> Vec<f32> {
    frames.iter().map(|&b| b as f32 * FRAME_SCALE).collect()
}

/// `[batch, stack, height, width]` frame bytes as floats in [0, 1] on `device`. The one
/// conversion used by acting, training and the reward model, so all see identical inputs.
/// On LibTorch the bytes travel as they are and are scaled where the math runs: on a GPU
/// that is a quarter of the host-to-device traffic and no f32 copy on the host (at batch
/// 16384, 377 MB instead of 1.5 GB). On flex one pass on the host is faster than a cast and
/// a multiply. The values are the same either way: an exact cast, then one f32 multiply.
pub fn frames_tensor(frames: &[u8], shape: [usize; 4], device: &Device) -> Tensor<4> {
    if *device == Device::flex() {
        Tensor::<4>::from_data(TensorData::new(frames_to_f32(frames), shape), device)
    } else {
        scaled_on_device(frames, shape, device)
    }
}

fn scaled_on_device(frames: &[u8], shape: [usize; 4], device: &Device) -> Tensor<4> {
    Tensor::<4, Int>::from_data(
        TensorData::new(frames.to_vec(), shape),
        (device, burn::tensor::DType::U8),
    )
    .float()
    .mul_scalar(FRAME_SCALE)
}

/// [`PolicyNet`] on burn: parameters on a flex or LibTorch device.
#[derive(Clone)]
pub struct BurnPolicy {
    config: PolicyConfig,
    net: ConvMlp,
    backend: Backend,
    device: Device,
    train: Trainable,
    /// The update batch's frames and features on the device ([`PolicyNet::stage`]).
    staged: Option<(Tensor<4>, Tensor<2>)>,
}

impl BurnPolicy {
    /// A freshly initialised network (orthogonal init drawn from `seed`).
    pub fn new(
        config: &PolicyConfig,
        adam: AdamConfig,
        backend: Backend,
        seed: u64,
    ) -> Result<Self, PpoError> {
        config.validate()?;
        let device = backend.device().map_err(PpoError::Backend)?;
        let net = config.net();
        let mut rng = HostRng::derived(seed, STREAM_INIT, 0);
        let params = ParamSet::init(net.param_specs(), &mut rng, &device);
        Ok(Self {
            config: config.clone(),
            net,
            backend,
            device,
            train: Trainable::new(params, adam),
            staged: None,
        })
    }

    /// Number of trainable scalars.
    pub fn num_params(&self) -> usize {
        self.train.params.numel()
    }

    fn check_obs(&self, frames: usize, features: usize, batch: usize) -> Result<(), PpoError> {
        let e = &self.config.encoder;
        if batch == 0 {
            return Err(PpoError::Input("empty batch".into()));
        }
        if frames != batch * e.frame_len() {
            return Err(PpoError::Input(format!(
                "frames has {frames} bytes, expected {batch} x {}x{}x{} = {}",
                e.frame_stack,
                e.height,
                e.width,
                batch * e.frame_len()
            )));
        }
        if features != batch * e.features {
            return Err(PpoError::Input(format!(
                "features has {features} values, expected {batch} x {} = {}",
                e.features,
                batch * e.features
            )));
        }
        Ok(())
    }

    fn inputs(&self, frames: &[u8], features: &[f32], batch: usize) -> (Tensor<4>, Tensor<2>) {
        let e = &self.config.encoder;
        let shape = [batch, e.frame_stack, e.height, e.width];
        let x = frames_tensor(frames, shape, &self.device);
        let f = crate::nn::features_tensor(features, batch, e.features, &self.device);
        (x, f)
    }
}

fn upload_vec(v: Vec<f32>, device: &Device) -> Tensor<1> {
    crate::nn::upload(v, device)
}

impl PolicyNet for BurnPolicy {
    fn config(&self) -> &PolicyConfig {
        &self.config
    }

    fn backend_name(&self) -> String {
        self.backend.name()
    }

    fn forward(&self, obs: &ObsBatch<'_>) -> Result<Forward, PpoError> {
        self.check_obs(obs.frames.len(), obs.features.len(), obs.batch)?;
        let (x, f) = self.inputs(obs.frames, obs.features, obs.batch);
        let mut heads = self.net.forward(&self.train.params.values, x, f);
        let value = heads.pop().expect("value head");
        let logits = heads.pop().expect("policy head");
        let a = self.config.actions;
        // One read for both heads.
        let both = Tensor::cat(vec![logits, value], 1);
        let flat = crate::nn::download(both);
        let mut out = Forward {
            logits: Vec::with_capacity(obs.batch * a),
            values: Vec::with_capacity(obs.batch),
        };
        for row in flat.chunks_exact(a + 1) {
            out.logits.extend_from_slice(&row[..a]);
            out.values.push(row[a]);
        }
        Ok(out)
    }

    fn stage(&mut self, frames: &[u8], features: &[f32], batch: usize) -> Result<bool, PpoError> {
        // On the CPU a staged f32 copy of the batch only costs memory (3 GB at the seed's
        // batch of 32768); a GPU saves two of every three conversions and uploads.
        if !matches!(self.backend, Backend::LibTorchCuda(_)) {
            return Ok(false);
        }
        self.check_obs(frames.len(), features.len(), batch)?;
        self.staged = Some(self.inputs(frames, features, batch));
        Ok(true)
    }

    fn unstage(&mut self) {
        self.staged = None;
    }

    fn train_minibatch(
        &mut self,
        mb: &Minibatch<'_>,
        cfg: &PpoConfig,
        lr: f64,
    ) -> Result<MinibatchStats, PpoError> {
        let m = mb.actions.len();
        let staged = if mb.rows.is_empty() {
            None
        } else {
            Some(self.staged.as_ref().ok_or_else(|| {
                PpoError::Input("minibatch names rows but no batch is staged".into())
            })?)
        };
        match staged {
            Some((sx, _)) => {
                let n = sx.dims()[0];
                if mb.rows.len() != m {
                    return Err(PpoError::Input(format!(
                        "minibatch `rows` has length {}, expected {m}",
                        mb.rows.len()
                    )));
                }
                if let Some(&bad) = mb.rows.iter().find(|&&r| r as usize >= n) {
                    return Err(PpoError::Input(format!(
                        "row {bad} is outside the staged batch of {n}"
                    )));
                }
            }
            None => self.check_obs(mb.frames.len(), mb.features.len(), m)?,
        }
        for (what, len) in [
            ("old_log_probs", mb.old_log_probs.len()),
            ("old_values", mb.old_values.len()),
            ("advantages", mb.advantages.len()),
            ("returns", mb.returns.len()),
        ] {
            if len != m {
                return Err(PpoError::Input(format!(
                    "minibatch `{what}` has length {len}, expected {m}"
                )));
            }
        }
        if let Some(&bad) = mb
            .actions
            .iter()
            .find(|&&a| a as usize >= self.config.actions)
        {
            return Err(PpoError::Input(format!(
                "action {bad} out of range (policy has {} actions)",
                self.config.actions
            )));
        }
        let dev = self.device.clone();
        let (x, f) = match staged {
            Some((sx, sf)) => {
                let rows = Tensor::<1, Int>::from_data(
                    TensorData::new(mb.rows.iter().map(|&r| i64::from(r)).collect(), [m]),
                    &dev,
                );
                (
                    sx.clone().select(0, rows.clone()),
                    sf.clone().select(0, rows),
                )
            }
            None => self.inputs(mb.frames, mb.features, m),
        };
        let x = x.autodiff();
        let f = f.autodiff();
        let actions = Tensor::<2, Int>::from_data(
            TensorData::new(mb.actions.iter().map(|&a| a as i64).collect(), [m, 1]),
            &dev,
        )
        .autodiff();
        let old_logp = upload_vec(mb.old_log_probs.to_vec(), &dev).autodiff();
        let old_v = upload_vec(mb.old_values.to_vec(), &dev).autodiff();
        let adv = upload_vec(mb.advantages.to_vec(), &dev).autodiff();
        let ret = upload_vec(mb.returns.to_vec(), &dev).autodiff();
        let net = &self.net;
        let clip = cfg.clip_coef as f64;
        let clip_vloss = cfg.clip_vloss;
        let (ent_coef, vf_coef) = (cfg.ent_coef as f64, cfg.vf_coef as f64);

        let out = self
            .train
            .step(lr, cfg.max_grad_norm.map(|v| v as f64), |params| {
                let mut heads = net.forward(params, x, f);
                let value = heads.pop().expect("value head").reshape([m]);
                let logits = heads.pop().expect("policy head");
                let logp_all = log_softmax(logits, 1);
                let new_logp = logp_all.clone().gather(1, actions).reshape([m]);
                let entropy = (logp_all.clone().exp() * logp_all)
                    .sum_dim(1)
                    .neg()
                    .reshape([m]);
                let logratio = new_logp - old_logp;
                let ratio = logratio.clone().exp();
                let pg1 = adv.clone().neg() * ratio.clone();
                let pg2 = adv.neg() * ratio.clamp(1.0 - clip, 1.0 + clip);
                let pg_loss = pg1.max_pair(pg2).mean();
                let v_unclipped = (value.clone() - ret.clone()).square();
                let v_loss = if clip_vloss {
                    let v_clipped = old_v.clone() + (value - old_v).clamp(-clip, clip);
                    let v_clipped = (v_clipped - ret).square();
                    v_unclipped.max_pair(v_clipped).mean().mul_scalar(0.5)
                } else {
                    v_unclipped.mean().mul_scalar(0.5)
                };
                let ent = entropy.mean();
                let loss = pg_loss.clone() - ent.clone().mul_scalar(ent_coef)
                    + v_loss.clone().mul_scalar(vf_coef);
                let aux = Tensor::cat(
                    vec![
                        pg_loss.inner(),
                        v_loss.inner(),
                        ent.inner(),
                        logratio.inner(),
                    ],
                    0,
                );
                (loss, aux)
            });
        let vals = crate::nn::download(out.aux);
        let (head, logratio) = vals.split_at(3);
        let mut kl = 0f64;
        let mut old_kl = 0f64;
        let mut clipped = 0usize;
        for &lr_ in logratio {
            let lr_ = lr_ as f64;
            let ratio = lr_.exp();
            kl += (ratio - 1.0) - lr_;
            old_kl += -lr_;
            if (ratio - 1.0).abs() > clip {
                clipped += 1;
            }
        }
        let n = m as f64;
        Ok(MinibatchStats {
            policy_loss: head[0] as f64,
            value_loss: head[1] as f64,
            entropy: head[2] as f64,
            approx_kl: kl / n,
            old_approx_kl: old_kl / n,
            clip_fraction: clipped as f64 / n,
            grad_norm: out.grad_norm,
        })
    }

    fn state(&self) -> NetState {
        let mut tensors = self.train.params.to_host("param/");
        tensors.extend(self.train.moments_to_host());
        NetState {
            tensors,
            adam_step: self.train.step,
        }
    }

    fn load_state(&mut self, state: &NetState) -> Result<(), PpoError> {
        let expected: usize = 3 * self.train.params.specs.len();
        if state.tensors.len() != expected {
            let known: std::collections::BTreeSet<String> = self
                .train
                .params
                .specs
                .iter()
                .flat_map(|s| ["param/", "adam_m/", "adam_v/"].map(|p| format!("{p}{}", s.name)))
                .collect();
            let extra: Vec<&String> = state
                .tensors
                .keys()
                .filter(|k| !known.contains(*k))
                .collect();
            return Err(PpoError::Checkpoint(format!(
                "checkpoint has {} tensors, the model expects {expected}; unexpected: {extra:?}",
                state.tensors.len()
            )));
        }
        self.load_params(&state.tensors)?;
        self.train
            .moments_from_host(&state.tensors, state.adam_step)
            .map_err(PpoError::Checkpoint)
    }

    fn params(&self) -> BTreeMap<String, HostTensor> {
        self.train.params.to_host("param/")
    }

    fn load_params(&mut self, tensors: &BTreeMap<String, HostTensor>) -> Result<(), PpoError> {
        let params = ParamSet::from_host(
            self.train.params.specs.clone(),
            tensors,
            "param/",
            &self.device,
        )
        .map_err(PpoError::Checkpoint)?;
        self.train.params = params;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::ConvLayer;

    /// One 8x8 frame, one 4x4/4 conv to 2 channels, `features` features, 2 actions.
    fn tiny_config(features: usize, feature_hidden: usize) -> PolicyConfig {
        PolicyConfig {
            encoder: EncoderConfig {
                frame_stack: 1,
                height: 8,
                width: 8,
                convs: vec![ConvLayer {
                    out_channels: 2,
                    kernel: 4,
                    stride: 4,
                }],
                features,
                feature_hidden,
                hidden: 8,
            },
            actions: 2,
        }
    }

    /// A frames-only policy (no features) runs forward and a training step.
    #[test]
    fn frames_only_policy_trains() {
        let cfg = tiny_config(0, 16);
        let mut net = BurnPolicy::new(&cfg, AdamConfig::default(), Backend::Flex, 1).unwrap();
        let frames = [7u8; 128];
        let obs = ObsBatch {
            frames: &frames,
            features: &[],
            batch: 2,
        };
        let out = net.act(&obs, ActMode::Greedy).unwrap();
        assert_eq!(out.actions.len(), 2);
        let before = net.params();
        let s = net
            .train_minibatch(
                &Minibatch {
                    frames: &frames,
                    features: &[],
                    rows: &[],
                    actions: &out.actions,
                    old_log_probs: &out.log_probs,
                    old_values: &out.values,
                    advantages: &[1.0, -1.0],
                    returns: &[1.0, 0.0],
                },
                &PpoConfig::default(),
                1e-3,
            )
            .unwrap();
        assert!(s.grad_norm > 0.0 && s.approx_kl.abs() < 1e-6);
        assert_ne!(before, net.params());
    }

    /// The LibTorch path (cast and multiply where the tensor lives; run on flex here) gives
    /// the host conversion's bits for every byte.
    #[test]
    fn frames_tensor_scales_every_byte_like_the_host() {
        let bytes: Vec<u8> = (0..=255).collect();
        let device = Backend::Flex.device().unwrap();
        let bits = |t: Tensor<4>| {
            let v = crate::nn::download(t);
            v.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        };
        let host = frames_tensor(&bytes, [1, 1, 16, 16], &device);
        let scaled = scaled_on_device(&bytes, [1, 1, 16, 16], &device);
        assert_eq!(bits(scaled), bits(host.clone()));
        let host = crate::nn::download(host);
        assert_eq!((host[0], host[255]), (0.0, 1.0));
    }

    /// Training on rows of a staged batch is bit-identical to training on the same rows
    /// gathered on the host (the GPU path; forced on flex here), and bad rows are refused.
    #[test]
    fn staged_rows_train_exactly_like_host_minibatches() {
        let cfg = tiny_config(3, 4);
        let frames: Vec<u8> = (0..4 * 64).map(|i| (i * 37 % 251) as u8).collect();
        let features: Vec<f32> = (0..4 * 3).map(|i| i as f32 / 7.0).collect();
        let rows = [3u32, 1];
        let gathered_frames: Vec<u8> = rows
            .iter()
            .flat_map(|&r| frames[r as usize * 64..(r as usize + 1) * 64].to_vec())
            .collect();
        let gathered_features: Vec<f32> = rows
            .iter()
            .flat_map(|&r| features[r as usize * 3..(r as usize + 1) * 3].to_vec())
            .collect();
        let net = BurnPolicy::new(&cfg, AdamConfig::default(), Backend::Flex, 4).unwrap();
        let mb = |frames, features, rows| Minibatch {
            frames,
            features,
            rows,
            actions: &[1, 0],
            old_log_probs: &[-0.7, -0.6],
            old_values: &[0.1, 0.2],
            advantages: &[1.0, -1.0],
            returns: &[1.0, 0.0],
        };
        let pc = PpoConfig::default();

        let mut host = net.clone();
        let a = host
            .train_minibatch(&mb(&gathered_frames, &gathered_features, &[]), &pc, 1e-3)
            .unwrap();
        let mut staged = net.clone();
        assert!(
            !staged.stage(&frames, &features, 4).unwrap(),
            "flex does not stage"
        );
        staged.staged = Some(staged.inputs(&frames, &features, 4));
        let b = staged
            .train_minibatch(&mb(&[], &[], &rows), &pc, 1e-3)
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(host.params(), staged.params());

        let e = staged
            .train_minibatch(&mb(&[], &[], &[4, 0]), &pc, 1e-3)
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("row 4 is outside the staged batch of 4"),
            "{e}"
        );
        staged.unstage();
        let e = staged
            .train_minibatch(&mb(&[], &[], &rows), &pc, 1e-3)
            .unwrap_err();
        assert!(e.to_string().contains("no batch is staged"), "{e}");
    }

    #[test]
    fn greedy_and_sampling() {
        let fwd = Forward {
            logits: vec![0.0, 5.0, 0.0, 1.0, 1.0, 1.0],
            values: vec![0.5, -0.5],
        };
        let g = select_actions(&fwd, 3, ActMode::Greedy);
        assert_eq!(g.actions, vec![1, 0]);
        let lp = 5.0 - (2.0 + 5f64.exp()).ln();
        assert!((g.log_probs[0] as f64 - lp).abs() < 1e-6);
        assert!((g.log_probs[1] as f64 + 3f64.ln()).abs() < 1e-6);
        let s1 = select_actions(&fwd, 3, ActMode::Sample { seed: 9 });
        let s2 = select_actions(&fwd, 3, ActMode::Sample { seed: 9 });
        assert_eq!(s1, s2);
        // Uniform row: frequencies near 1/3 over many seeds.
        let mut counts = [0; 3];
        for seed in 0..3000 {
            counts[select_actions(&fwd, 3, ActMode::Sample { seed }).actions[1] as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c > 850 && c < 1150), "{counts:?}");
    }
}
