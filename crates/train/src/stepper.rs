//! One vectorised env step under a policy, as the local loop and the Ray rollout workers
//! both take it: act, step, shape the reward, and decide how each transition ended.

use ppo::{ActMode, ActOutput, ObsBatch, PolicyNet, StepEnd, StepRecord};
use rollout::VecEnv;
use zelda::obs::FEATURES;

use crate::TrainError;
use crate::learned::LearnedReward;

/// Scratch buffers of one step, reused so nothing is allocated per step.
pub(crate) struct Stepper {
    frame_len: usize,
    obs_frames: Vec<u8>,
    obs_features: Vec<f32>,
    actions: Vec<usize>,
    /// Shaped reward per env of the last step.
    pub rewards: Vec<f32>,
    /// Learned part of that reward per env.
    pub learned: Vec<f32>,
    /// How each env's last transition ended.
    pub ends: Vec<StepEnd>,
    /// The last step's action, log-probability and value per env.
    pub act: ActOutput,
    /// Seconds spent in policy inference since the last [`Stepper::take_seconds`].
    act_seconds: f64,
    /// Seconds spent stepping the envs since then.
    env_seconds: f64,
}

impl Stepper {
    /// Scratch for `n` envs of `frame_len` frame bytes each.
    pub fn new(n: usize, frame_len: usize) -> Self {
        Self {
            frame_len,
            obs_frames: vec![0; n * frame_len],
            obs_features: vec![0.0; n * FEATURES],
            actions: vec![0; n],
            rewards: vec![0.0; n],
            learned: vec![0.0; n],
            ends: vec![StepEnd::Running; n],
            act: ActOutput::default(),
            act_seconds: 0.0,
            env_seconds: 0.0,
        }
    }

    /// (policy inference, env stepping) seconds since the last call: where a rollout's
    /// time went, for the update reports.
    pub fn take_seconds(&mut self) -> (f64, f64) {
        let t = (self.act_seconds, self.env_seconds);
        (self.act_seconds, self.env_seconds) = (0.0, 0.0);
        t
    }

    /// Acts on the envs' current observations with `net` (sampling with `seed`), steps them,
    /// and records rewards and ends. Returns the step's summed shaped and learned reward.
    pub fn step<N: PolicyNet + ?Sized>(
        &mut self,
        envs: &mut VecEnv,
        net: &N,
        learned: Option<&mut LearnedReward>,
        seed: u64,
    ) -> Result<(f64, f64), TrainError> {
        let n = envs.len();
        let t_act = std::time::Instant::now();
        self.obs_frames.copy_from_slice(envs.frames());
        self.obs_features.copy_from_slice(envs.features());
        self.act = net.act(
            &ObsBatch {
                frames: &self.obs_frames,
                features: &self.obs_features,
                batch: n,
            },
            ActMode::Sample { seed },
        )?;
        for (a, &b) in self.actions.iter_mut().zip(&self.act.actions) {
            *a = b as usize;
        }
        let t_env = std::time::Instant::now();
        self.act_seconds += (t_env - t_act).as_secs_f64();
        envs.step(&self.actions);
        self.env_seconds += t_env.elapsed().as_secs_f64();
        for (i, r) in self.rewards.iter_mut().enumerate() {
            *r = envs.reward(i);
        }
        self.learned.iter_mut().for_each(|l| *l = 0.0);
        if let Some(lr) = learned {
            lr.shape(envs, &mut self.rewards, &mut self.learned)?;
        }
        // A truncated episode bootstraps from the value of the observation it was cut at
        // (the env has already reset to a new one).
        let truncated: Vec<usize> = (0..n).filter(|&i| envs.truncated(i)).collect();
        let final_values = if truncated.is_empty() {
            Vec::new()
        } else {
            let t_final = std::time::Instant::now();
            let mut f = Vec::with_capacity(truncated.len() * self.frame_len);
            let mut d = Vec::with_capacity(truncated.len() * FEATURES);
            for &i in &truncated {
                let (fr, fe) = envs.final_observation(i);
                f.extend_from_slice(fr);
                d.extend_from_slice(fe);
            }
            let v = net.values(&ObsBatch {
                frames: &f,
                features: &d,
                batch: truncated.len(),
            })?;
            self.act_seconds += t_final.elapsed().as_secs_f64();
            v
        };
        for (i, e) in self.ends.iter_mut().enumerate() {
            *e = if envs.terminated(i) {
                StepEnd::Terminated
            } else if let Some(k) = truncated.iter().position(|&j| j == i) {
                StepEnd::Truncated {
                    final_value: final_values[k],
                }
            } else {
                StepEnd::Running
            };
        }
        Ok((
            self.rewards.iter().map(|r| f64::from(*r)).sum(),
            self.learned.iter().map(|r| f64::from(*r)).sum(),
        ))
    }

    /// The last step as a rollout-buffer record.
    pub fn record(&self) -> StepRecord<'_> {
        StepRecord {
            frames: &self.obs_frames,
            features: &self.obs_features,
            actions: &self.act.actions,
            log_probs: &self.act.log_probs,
            values: &self.act.values,
            rewards: &self.rewards,
            ends: &self.ends,
        }
    }
}

/// Value estimates of the envs' current observations (the GAE tail).
pub(crate) fn last_values<N: PolicyNet + ?Sized>(
    envs: &VecEnv,
    net: &N,
) -> Result<Vec<f32>, TrainError> {
    Ok(net.values(&ObsBatch {
        frames: envs.frames(),
        features: envs.features(),
        batch: envs.len(),
    })?)
}
