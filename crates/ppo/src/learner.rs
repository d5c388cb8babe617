//! The PPO update loop (CleanRL `ppo_atari.py`, lines "Optimizing the policy and value network").

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::buffer::RolloutBuffer;
use crate::nn::Backend;
use crate::policy::{ActMode, ActOutput, BurnPolicy, Minibatch, ObsBatch, PolicyNet};
use crate::rng::{HostRng, STREAM_ACT, STREAM_SHUFFLE, mix_seed};
use crate::{LrSchedule, PpoError, TrainConfig};

/// Progress counters, saved in checkpoints.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Counters {
    /// PPO updates completed.
    pub updates: u64,
    /// Env transitions consumed by those updates.
    pub env_steps: u64,
    /// Seeds handed out by [`Ppo::next_act_seed`].
    pub act_seeds: u64,
}

/// Statistics of one update (CleanRL's logged values).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct UpdateStats {
    /// Learning rate used.
    pub learning_rate: f64,
    /// Mean clipped surrogate loss over minibatches.
    pub policy_loss: f64,
    /// Mean value loss.
    pub value_loss: f64,
    /// Mean entropy.
    pub entropy: f64,
    /// approx-KL of the last minibatch (what CleanRL logs and tests against `target_kl`).
    pub approx_kl: f64,
    /// old approx-KL of the last minibatch.
    pub old_approx_kl: f64,
    /// Mean clip fraction.
    pub clip_fraction: f64,
    /// `1 - Var(returns - values) / Var(returns)` over the batch (NaN if Var(returns) = 0).
    pub explained_variance: f64,
    /// Mean global gradient norm before clipping.
    pub grad_norm: f64,
    /// Epochs run (fewer than configured after a target-KL stop).
    pub epochs: usize,
    /// Optimiser steps taken.
    pub minibatches: usize,
    /// Whether target-KL stopped the update early.
    pub early_stopped: bool,
}

/// The learner: a [`PolicyNet`], its run config and counters.
pub struct Ppo<N: PolicyNet = BurnPolicy> {
    pub(crate) config: TrainConfig,
    pub(crate) net: N,
    pub(crate) counters: Counters,
    pub(crate) extra: BTreeMap<String, String>,
}

impl Ppo<BurnPolicy> {
    /// A fresh learner on `backend`, initialised from `config.seed`.
    pub fn new(config: TrainConfig, backend: Backend) -> Result<Self, PpoError> {
        config.validate()?;
        let net = BurnPolicy::new(&config.policy, config.adam.clone(), backend, config.seed)?;
        Ok(Self {
            config,
            net,
            counters: Counters::default(),
            extra: BTreeMap::new(),
        })
    }
}

impl<N: PolicyNet> Ppo<N> {
    /// Wraps an existing network (another backend implementation, or a restored one).
    pub fn with_net(config: TrainConfig, net: N) -> Result<Self, PpoError> {
        config.validate()?;
        if net.config() != &config.policy {
            return Err(PpoError::Config(
                "the network's PolicyConfig differs from config.policy".into(),
            ));
        }
        Ok(Self {
            config,
            net,
            counters: Counters::default(),
            extra: BTreeMap::new(),
        })
    }

    /// Run config.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The network.
    pub fn net(&self) -> &N {
        &self.net
    }

    /// Mutable network access (e.g. to load weights).
    pub fn net_mut(&mut self) -> &mut N {
        &mut self.net
    }

    /// Progress counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Free-form string fields stored in checkpoints (burst index, store paths, ...).
    pub fn extra(&self) -> &BTreeMap<String, String> {
        &self.extra
    }

    /// Mutable access to the checkpoint's free-form fields.
    pub fn extra_mut(&mut self) -> &mut BTreeMap<String, String> {
        &mut self.extra
    }

    /// Batched acting with the current parameters.
    pub fn act(&self, obs: &ObsBatch<'_>, mode: ActMode) -> Result<ActOutput, PpoError> {
        self.net.act(obs, mode)
    }

    /// Value estimates for a batch.
    pub fn values(&self, obs: &ObsBatch<'_>) -> Result<Vec<f32>, PpoError> {
        self.net.values(obs)
    }

    /// A fresh sampling seed derived from the run seed; the counter is checkpointed, so a resumed
    /// run continues the same sequence.
    pub fn next_act_seed(&mut self) -> u64 {
        let s = mix_seed(self.config.seed, STREAM_ACT, self.counters.act_seeds);
        self.counters.act_seeds += 1;
        s
    }

    /// Learning rate for the next update.
    pub fn learning_rate(&self) -> f64 {
        let lr = self.config.ppo.learning_rate;
        match self.config.ppo.lr_schedule {
            LrSchedule::Constant => lr,
            LrSchedule::Linear { total_updates } => {
                let frac = 1.0 - self.counters.updates as f64 / total_updates as f64;
                lr * frac.max(0.0)
            }
        }
    }

    /// Computes GAE on a full buffer with this run's gamma and lambda.
    pub fn finish_rollout(
        &self,
        buffer: &mut RolloutBuffer,
        last_values: &[f32],
    ) -> Result<(), PpoError> {
        buffer.compute_gae(
            last_values,
            self.config.ppo.gamma,
            self.config.ppo.gae_lambda,
        )
    }

    /// One PPO update over a full buffer whose GAE has been computed.
    pub fn update(&mut self, buffer: &RolloutBuffer) -> Result<UpdateStats, PpoError> {
        if !buffer.gae_ready() {
            return Err(PpoError::Buffer(
                "update needs a full buffer with GAE computed (call finish_rollout)".into(),
            ));
        }
        let enc = &self.config.policy.encoder;
        if buffer.frame_len() != enc.frame_len() || buffer.feature_len() != enc.features {
            return Err(PpoError::Input(format!(
                "buffer holds {} frame bytes and {} features per obs; the policy expects {} and {}",
                buffer.frame_len(),
                buffer.feature_len(),
                enc.frame_len(),
                enc.features
            )));
        }
        let cfg = self.config.ppo.clone();
        let batch = buffer.capacity();
        if !batch.is_multiple_of(cfg.num_minibatches) {
            return Err(PpoError::Config(format!(
                "batch {batch} (steps x envs) is not divisible by num_minibatches {}",
                cfg.num_minibatches
            )));
        }
        let mb_size = batch / cfg.num_minibatches;
        let lr = self.learning_rate();
        let (fl, dl) = (buffer.frame_len(), buffer.feature_len());

        let mut rng = HostRng::derived(self.config.seed, STREAM_SHUFFLE, self.counters.updates);
        let mut order: Vec<usize> = (0..batch).collect();
        let staged = self.net.stage(
            &buffer.frames[..batch * fl],
            &buffer.features[..batch * dl],
            batch,
        )?;
        // A staged batch is gathered on the device by row; otherwise on the host. The
        // other side's buffers stay empty, and empty is what `Minibatch` expects of them.
        let (host_rows, device_rows) = if staged { (0, mb_size) } else { (mb_size, 0) };
        let mut frames = vec![0u8; host_rows * fl];
        let mut features = vec![0f32; host_rows * dl];
        let mut rows = vec![0u32; device_rows];
        let mut actions = vec![0u32; mb_size];
        let mut old_lp = vec![0f32; mb_size];
        let mut old_v = vec![0f32; mb_size];
        let mut adv = vec![0f32; mb_size];
        let mut ret = vec![0f32; mb_size];

        let mut stats = UpdateStats {
            learning_rate: lr,
            ..Default::default()
        };
        let mut last = None;
        'epochs: for _epoch in 0..cfg.update_epochs {
            rng.shuffle(&mut order);
            for chunk in order.chunks_exact(mb_size) {
                for (k, &i) in chunk.iter().enumerate() {
                    if staged {
                        rows[k] = i as u32;
                    } else {
                        frames[k * fl..(k + 1) * fl]
                            .copy_from_slice(&buffer.frames[i * fl..(i + 1) * fl]);
                        features[k * dl..(k + 1) * dl]
                            .copy_from_slice(&buffer.features[i * dl..(i + 1) * dl]);
                    }
                    actions[k] = buffer.actions[i];
                    old_lp[k] = buffer.log_probs[i];
                    old_v[k] = buffer.values[i];
                    adv[k] = buffer.advantages[i];
                    ret[k] = buffer.returns[i];
                }
                if cfg.norm_adv {
                    normalise(&mut adv);
                }
                let s = self.net.train_minibatch(
                    &Minibatch {
                        frames: &frames,
                        features: &features,
                        rows: &rows,
                        actions: &actions,
                        old_log_probs: &old_lp,
                        old_values: &old_v,
                        advantages: &adv,
                        returns: &ret,
                    },
                    &cfg,
                    lr,
                )?;
                stats.policy_loss += s.policy_loss;
                stats.value_loss += s.value_loss;
                stats.entropy += s.entropy;
                stats.clip_fraction += s.clip_fraction;
                stats.grad_norm += s.grad_norm;
                stats.minibatches += 1;
                last = Some(s);
            }
            stats.epochs += 1;
            if let (Some(target), Some(s)) = (cfg.target_kl, last)
                && s.approx_kl > target as f64
            {
                stats.early_stopped = true;
                break 'epochs;
            }
        }
        self.net.unstage();
        let n = stats.minibatches as f64;
        stats.policy_loss /= n;
        stats.value_loss /= n;
        stats.entropy /= n;
        stats.clip_fraction /= n;
        stats.grad_norm /= n;
        if let Some(s) = last {
            stats.approx_kl = s.approx_kl;
            stats.old_approx_kl = s.old_approx_kl;
        }
        stats.explained_variance = explained_variance(buffer.values(), buffer.returns());
        self.counters.updates += 1;
        self.counters.env_steps += batch as u64;
        Ok(stats)
    }
}

/// `(x - mean) / (std + 1e-8)` with PyTorch's unbiased std.
fn normalise(x: &mut [f32]) {
    let n = x.len() as f64;
    let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = if x.len() > 1 {
        x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    let std = var.sqrt();
    for v in x {
        *v = ((*v as f64 - mean) / (std + 1e-8)) as f32;
    }
}

/// `1 - Var(y - y_pred) / Var(y)` (NaN when `Var(y)` is 0, like CleanRL).
pub fn explained_variance(pred: &[f32], y: &[f32]) -> f64 {
    let n = y.len() as f64;
    let var = |it: &mut dyn Iterator<Item = f64>| {
        let v: Vec<f64> = it.collect();
        let m = v.iter().sum::<f64>() / n;
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n
    };
    let var_y = var(&mut y.iter().map(|&v| v as f64));
    if var_y == 0.0 {
        return f64::NAN;
    }
    let var_d = var(&mut y.iter().zip(pred).map(|(&a, &b)| a as f64 - b as f64));
    1.0 - var_d / var_y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_matches_torch() {
        let mut x = [1.0, 2.0, 3.0, 4.0];
        normalise(&mut x);
        // torch.std([1,2,3,4]) = 1.2909944
        let s = 1.2909944f32;
        let want = [-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s];
        for (a, b) in x.iter().zip(want) {
            assert!((a - b).abs() < 1e-6);
        }
    }

    #[test]
    fn explained_variance_cases() {
        assert!((explained_variance(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]) - 1.0).abs() < 1e-12);
        assert!(explained_variance(&[0.0; 3], &[2.0; 3]).is_nan());
        assert!(explained_variance(&[0.0, 0.0], &[1.0, -1.0]).abs() < 1e-12);
    }
}
