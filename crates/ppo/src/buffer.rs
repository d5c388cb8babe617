//! Rollout storage with a `[T][N]` layout and GAE.

use crate::PpoError;

/// How a transition ended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StepEnd {
    /// The episode goes on.
    Running,
    /// The episode ended in a terminal state: no bootstrap.
    Terminated,
    /// The episode was cut (time limit): bootstrap from `V(final observation)` given here.
    Truncated {
        /// Value estimate of the observation the env returned before auto-resetting.
        final_value: f32,
    },
}

/// One vectorised env step as seen by the buffer (N envs).
pub struct StepRecord<'a> {
    /// Frames of the observation the actions were chosen from: `[N][stack][H][W]` u8.
    pub frames: &'a [u8],
    /// Features of that observation: `[N][D]`.
    pub features: &'a [f32],
    /// Actions taken.
    pub actions: &'a [u32],
    /// Log-probabilities of those actions under the acting policy.
    pub log_probs: &'a [f32],
    /// Value estimates of the observation.
    pub values: &'a [f32],
    /// Rewards received.
    pub rewards: &'a [f32],
    /// How each env's transition ended.
    pub ends: &'a [StepEnd],
}

/// Fixed-size rollout storage. Frames stay u8; nothing is allocated per step.
pub struct RolloutBuffer {
    steps: usize,
    envs: usize,
    frame_len: usize,
    feature_len: usize,
    pub(crate) frames: Vec<u8>,
    pub(crate) features: Vec<f32>,
    pub(crate) actions: Vec<u32>,
    pub(crate) log_probs: Vec<f32>,
    pub(crate) values: Vec<f32>,
    rewards: Vec<f32>,
    ends: Vec<StepEnd>,
    pub(crate) advantages: Vec<f32>,
    pub(crate) returns: Vec<f32>,
    filled: usize,
    gae_ready: bool,
}

impl RolloutBuffer {
    /// Allocates storage for `steps` x `envs` transitions.
    pub fn new(steps: usize, envs: usize, frame_len: usize, feature_len: usize) -> Self {
        let b = steps * envs;
        Self {
            steps,
            envs,
            frame_len,
            feature_len,
            frames: vec![0; b * frame_len],
            features: vec![0.0; b * feature_len],
            actions: vec![0; b],
            log_probs: vec![0.0; b],
            values: vec![0.0; b],
            rewards: vec![0.0; b],
            ends: vec![StepEnd::Running; b],
            advantages: vec![0.0; b],
            returns: vec![0.0; b],
            filled: 0,
            gae_ready: false,
        }
    }

    /// Steps per env (T).
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Number of envs (N).
    pub fn envs(&self) -> usize {
        self.envs
    }

    /// Total transitions when full (T * N).
    pub fn capacity(&self) -> usize {
        self.steps * self.envs
    }

    /// Steps recorded so far.
    pub fn filled(&self) -> usize {
        self.filled
    }

    /// Whether every step has been recorded.
    pub fn is_full(&self) -> bool {
        self.filled == self.steps
    }

    /// Whether advantages and returns have been computed for the current contents.
    pub fn gae_ready(&self) -> bool {
        self.gae_ready
    }

    /// Empties the buffer for the next rollout (storage is kept).
    pub fn clear(&mut self) {
        self.filled = 0;
        self.gae_ready = false;
    }

    /// Appends one vectorised step at position `filled`.
    pub fn push(&mut self, rec: &StepRecord<'_>) -> Result<(), PpoError> {
        if self.is_full() {
            return Err(PpoError::Buffer(format!(
                "buffer is full ({} steps); call clear() after the update",
                self.steps
            )));
        }
        let n = self.envs;
        let check = |what: &str, got: usize, want: usize| {
            if got == want {
                Ok(())
            } else {
                Err(PpoError::Input(format!(
                    "step record `{what}` has length {got}, expected {want}"
                )))
            }
        };
        check("frames", rec.frames.len(), n * self.frame_len)?;
        check("features", rec.features.len(), n * self.feature_len)?;
        check("actions", rec.actions.len(), n)?;
        check("log_probs", rec.log_probs.len(), n)?;
        check("values", rec.values.len(), n)?;
        check("rewards", rec.rewards.len(), n)?;
        check("ends", rec.ends.len(), n)?;
        let t = self.filled;
        let r = t * n..(t + 1) * n;
        self.frames[t * n * self.frame_len..(t + 1) * n * self.frame_len]
            .copy_from_slice(rec.frames);
        self.features[t * n * self.feature_len..(t + 1) * n * self.feature_len]
            .copy_from_slice(rec.features);
        self.actions[r.clone()].copy_from_slice(rec.actions);
        self.log_probs[r.clone()].copy_from_slice(rec.log_probs);
        self.values[r.clone()].copy_from_slice(rec.values);
        self.rewards[r.clone()].copy_from_slice(rec.rewards);
        self.ends[r].copy_from_slice(rec.ends);
        self.filled += 1;
        self.gae_ready = false;
        Ok(())
    }

    /// Computes advantages and returns once the buffer is full. `last_values` are the value
    /// estimates of the observations following the last recorded step.
    pub fn compute_gae(
        &mut self,
        last_values: &[f32],
        gamma: f32,
        lambda: f32,
    ) -> Result<(), PpoError> {
        if !self.is_full() {
            return Err(PpoError::Buffer(format!(
                "compute_gae on a partial buffer ({}/{} steps)",
                self.filled, self.steps
            )));
        }
        if last_values.len() != self.envs {
            return Err(PpoError::Input(format!(
                "last_values has length {}, expected {}",
                last_values.len(),
                self.envs
            )));
        }
        gae(
            &self.rewards,
            &self.values,
            &self.ends,
            last_values,
            self.envs,
            gamma,
            lambda,
            &mut self.advantages,
            &mut self.returns,
        );
        self.gae_ready = true;
        Ok(())
    }

    /// Advantages (`[T][N]`), valid after [`RolloutBuffer::compute_gae`].
    pub fn advantages(&self) -> &[f32] {
        &self.advantages
    }

    /// Returns (`advantages + values`), valid after [`RolloutBuffer::compute_gae`].
    pub fn returns(&self) -> &[f32] {
        &self.returns
    }

    /// Value estimates recorded during the rollout.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// Rewards recorded during the rollout.
    pub fn rewards(&self) -> &[f32] {
        &self.rewards
    }

    /// Frame bytes per observation.
    pub fn frame_len(&self) -> usize {
        self.frame_len
    }

    /// Features per observation.
    pub fn feature_len(&self) -> usize {
        self.feature_len
    }
}

/// Generalised advantage estimation over `[T][N]` slices.
///
/// `ends[t][n]` describes the transition taken at step t. A terminated step does not bootstrap;
/// a truncated step adds `gamma * V(final obs)` to its reward and then does not bootstrap across
/// the reset (the next stored observation belongs to a new episode). Running steps bootstrap from
/// `values[t+1]`, or from `last_values` at the final step.
#[allow(clippy::too_many_arguments)]
pub fn gae(
    rewards: &[f32],
    values: &[f32],
    ends: &[StepEnd],
    last_values: &[f32],
    envs: usize,
    gamma: f32,
    lambda: f32,
    advantages: &mut [f32],
    returns: &mut [f32],
) {
    let steps = rewards.len() / envs;
    for (n, &tail_value) in last_values.iter().enumerate().take(envs) {
        let mut last_gae = 0f32;
        for t in (0..steps).rev() {
            let i = t * envs + n;
            let next_value = if t + 1 == steps {
                tail_value
            } else {
                values[i + envs]
            };
            let (reward, nonterminal) = match ends[i] {
                StepEnd::Running => (rewards[i], 1.0),
                StepEnd::Terminated => (rewards[i], 0.0),
                StepEnd::Truncated { final_value } => (rewards[i] + gamma * final_value, 0.0),
            };
            let delta = reward + gamma * next_value * nonterminal - values[i];
            last_gae = delta + gamma * lambda * nonterminal * last_gae;
            advantages[i] = last_gae;
            returns[i] = last_gae + values[i];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One env, four steps: run, terminate, run, truncate; gamma 0.5, lambda 0.5.
    /// Hand computation (c = gamma * lambda = 0.25):
    /// t3 truncated, r=1, V=0.5, V(final)=2: delta = 1 + 0.5*2 - 0.5 = 1.5; A3 = 1.5
    /// t2 running, r=0, V=1, next V=0.5: delta = 0 + 0.25 - 1 = -0.75; A2 = -0.75 + 0.25*1.5 = -0.375
    /// t1 terminated, r=2, V=1: delta = 2 - 1 = 1; A1 = 1 (chain cut)
    /// t0 running, r=1, V=0, next V=1: delta = 1 + 0.5 = 1.5; A0 = 1.5 + 0.25*1 = 1.75
    #[test]
    fn gae_hand_example() {
        let rewards = [1.0, 2.0, 0.0, 1.0];
        let values = [0.0, 1.0, 1.0, 0.5];
        let ends = [
            StepEnd::Running,
            StepEnd::Terminated,
            StepEnd::Running,
            StepEnd::Truncated { final_value: 2.0 },
        ];
        let mut adv = [0.0; 4];
        let mut ret = [0.0; 4];
        // last_values is ignored after a truncation at the final step (nonterminal = 0).
        gae(
            &rewards,
            &values,
            &ends,
            &[100.0],
            1,
            0.5,
            0.5,
            &mut adv,
            &mut ret,
        );
        assert_eq!(adv, [1.75, 1.0, -0.375, 1.5]);
        assert_eq!(ret, [1.75, 2.0, 0.625, 2.0]);
    }

    /// Two envs interleaved in [T][N] order; a running final step bootstraps from last_values.
    #[test]
    fn gae_interleaved_envs_and_bootstrap() {
        // env0: rewards 1,1 values 0,0 running, last V = 4 ; gamma 1, lambda 1 => A1 = 1 + 4 = 5,
        // A0 = 1 + 0 - 0 + A1 = 6. env1: terminated at t0, rewards 3, 0, values 1, 2, last V 10
        // => A1 = 0 + 10 - 2 = 8, A0 = 3 - 1 = 2.
        let rewards = [1.0, 3.0, 1.0, 0.0];
        let values = [0.0, 1.0, 0.0, 2.0];
        let ends = [
            StepEnd::Running,
            StepEnd::Terminated,
            StepEnd::Running,
            StepEnd::Running,
        ];
        let mut adv = [0.0; 4];
        let mut ret = [0.0; 4];
        gae(
            &rewards,
            &values,
            &ends,
            &[4.0, 10.0],
            2,
            1.0,
            1.0,
            &mut adv,
            &mut ret,
        );
        assert_eq!(adv, [6.0, 2.0, 5.0, 8.0]);
    }

    #[test]
    fn buffer_checks_lengths_and_fullness() {
        let mut b = RolloutBuffer::new(1, 2, 3, 1);
        let bad = StepRecord {
            frames: &[0; 5],
            features: &[0.0; 2],
            actions: &[0; 2],
            log_probs: &[0.0; 2],
            values: &[0.0; 2],
            rewards: &[0.0; 2],
            ends: &[StepEnd::Running; 2],
        };
        assert!(matches!(b.push(&bad), Err(PpoError::Input(m)) if m.contains("frames")));
        assert!(b.compute_gae(&[0.0, 0.0], 0.9, 0.9).is_err());
        let ok = StepRecord {
            frames: &[1; 6],
            ..bad
        };
        b.push(&ok).unwrap();
        assert!(b.push(&ok).is_err());
        b.compute_gae(&[0.0, 0.0], 0.9, 0.9).unwrap();
        assert!(b.gae_ready());
    }
}
