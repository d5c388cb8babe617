//! Tiny synthetic environments with the real observation layout (u8 frame stack + features).

#![allow(dead_code)]

use ppo::rng::HostRng;
use ppo::{
    ActMode, ConvLayer, EncoderConfig, ObsBatch, PolicyConfig, PolicyNet, Ppo, PpoConfig,
    RolloutBuffer, StepEnd, StepRecord, TrainConfig,
};

pub const H: usize = 12;
pub const W: usize = 12;
pub const STACK: usize = 2;
pub const FEATURES: usize = 4;

/// A small policy that keeps both input paths (conv over frames, MLP over features).
pub fn small_policy(actions: usize) -> PolicyConfig {
    PolicyConfig {
        encoder: EncoderConfig {
            frame_stack: STACK,
            height: H,
            width: W,
            convs: vec![
                ConvLayer {
                    out_channels: 8,
                    kernel: 4,
                    stride: 2,
                },
                ConvLayer {
                    out_channels: 8,
                    kernel: 3,
                    stride: 1,
                },
            ],
            features: FEATURES,
            feature_hidden: 16,
            hidden: 32,
        },
        actions,
    }
}

pub fn small_config(seed: u64, actions: usize) -> TrainConfig {
    TrainConfig {
        seed,
        policy: small_policy(actions),
        ppo: PpoConfig {
            learning_rate: 2.5e-3,
            num_minibatches: 4,
            update_epochs: 4,
            ..Default::default()
        },
        adam: Default::default(),
    }
}

/// A vectorised env: `obs` writes the current observation, `step` applies actions.
pub trait VecEnv {
    fn envs(&self) -> usize;
    fn obs(&self, frames: &mut [u8], features: &mut [f32]);
    /// Returns (reward, end) per env and resets finished envs.
    fn step(
        &mut self,
        actions: &[u32],
        rewards: &mut [f32],
        ends: &mut [StepEnd],
        values_of_final: &dyn Fn(&[u8], &[f32]) -> f32,
    );
}

/// Contextual bandit seen only through the frames: a bright column block marks the rewarded
/// action (0, 1 or 2); features are noise. Every step terminates.
pub struct FrameBandit {
    ctx: Vec<u32>,
    rng: HostRng,
}

impl FrameBandit {
    pub fn new(envs: usize, seed: u64) -> Self {
        let mut rng = HostRng::new(seed);
        let ctx = (0..envs).map(|_| rng.below(3) as u32).collect();
        Self { ctx, rng }
    }
}

impl VecEnv for FrameBandit {
    fn envs(&self) -> usize {
        self.ctx.len()
    }
    fn obs(&self, frames: &mut [u8], features: &mut [f32]) {
        let fl = STACK * H * W;
        for (e, &c) in self.ctx.iter().enumerate() {
            let f = &mut frames[e * fl..(e + 1) * fl];
            f.fill(0);
            for s in 0..STACK {
                for y in 0..H {
                    for x in (c as usize * 4)..(c as usize * 4 + 4) {
                        f[s * H * W + y * W + x] = 255;
                    }
                }
            }
            // Deterministic noise features derived from the context-free env index.
            for k in 0..FEATURES {
                features[e * FEATURES + k] = ((e * 7 + k * 3) % 5) as f32 * 0.1;
            }
        }
    }
    fn step(
        &mut self,
        actions: &[u32],
        rewards: &mut [f32],
        ends: &mut [StepEnd],
        _v: &dyn Fn(&[u8], &[f32]) -> f32,
    ) {
        for e in 0..self.ctx.len() {
            rewards[e] = if actions[e] == self.ctx[e] { 1.0 } else { 0.0 };
            ends[e] = StepEnd::Terminated;
            self.ctx[e] = self.rng.below(3) as u32;
        }
    }
}

/// Corridor seen only through the features: position 0..=LEN, actions 0 = left, 1 = right,
/// 2 = stay. Reaching LEN pays 1 and terminates; 12 steps truncate. Frames are blank.
pub struct FeatureCorridor {
    pos: Vec<usize>,
    t: Vec<usize>,
}

pub const CORRIDOR_LEN: usize = 4;
pub const CORRIDOR_LIMIT: usize = 12;

impl FeatureCorridor {
    pub fn new(envs: usize) -> Self {
        Self {
            pos: vec![0; envs],
            t: vec![0; envs],
        }
    }

    fn features_of(pos: usize, out: &mut [f32]) {
        out.fill(0.0);
        out[0] = pos as f32 / CORRIDOR_LEN as f32;
        out[1] = 1.0;
    }
}

impl VecEnv for FeatureCorridor {
    fn envs(&self) -> usize {
        self.pos.len()
    }
    fn obs(&self, frames: &mut [u8], features: &mut [f32]) {
        frames.fill(0);
        for (e, &p) in self.pos.iter().enumerate() {
            Self::features_of(p, &mut features[e * FEATURES..(e + 1) * FEATURES]);
        }
    }
    fn step(
        &mut self,
        actions: &[u32],
        rewards: &mut [f32],
        ends: &mut [StepEnd],
        value_of_final: &dyn Fn(&[u8], &[f32]) -> f32,
    ) {
        for e in 0..self.pos.len() {
            match actions[e] {
                0 => self.pos[e] = self.pos[e].saturating_sub(1),
                1 => self.pos[e] += 1,
                _ => {}
            }
            self.t[e] += 1;
            rewards[e] = 0.0;
            ends[e] = StepEnd::Running;
            if self.pos[e] >= CORRIDOR_LEN {
                rewards[e] = 1.0;
                ends[e] = StepEnd::Terminated;
            } else if self.t[e] >= CORRIDOR_LIMIT {
                let mut f = [0f32; FEATURES];
                Self::features_of(self.pos[e], &mut f);
                ends[e] = StepEnd::Truncated {
                    final_value: value_of_final(&vec![0u8; STACK * H * W], &f),
                };
            }
            if ends[e] != StepEnd::Running {
                self.pos[e] = 0;
                self.t[e] = 0;
            }
        }
    }
}

/// Collects one rollout into `buffer` and computes GAE. Returns the mean reward per step.
pub fn rollout<N: PolicyNet>(
    ppo: &mut Ppo<N>,
    env: &mut dyn VecEnv,
    buffer: &mut RolloutBuffer,
) -> f32 {
    let n = env.envs();
    let fl = STACK * H * W;
    let mut frames = vec![0u8; n * fl];
    let mut features = vec![0f32; n * FEATURES];
    let mut rewards = vec![0f32; n];
    let mut ends = vec![StepEnd::Running; n];
    let mut total = 0f32;
    buffer.clear();
    for _ in 0..buffer.steps() {
        env.obs(&mut frames, &mut features);
        let seed = ppo.next_act_seed();
        let out = ppo
            .act(
                &ObsBatch {
                    frames: &frames,
                    features: &features,
                    batch: n,
                },
                ActMode::Sample { seed },
            )
            .unwrap();
        {
            let net = ppo.net();
            let v = |fr: &[u8], fe: &[f32]| {
                net.values(&ObsBatch {
                    frames: fr,
                    features: fe,
                    batch: 1,
                })
                .unwrap()[0]
            };
            env.step(&out.actions, &mut rewards, &mut ends, &v);
        }
        total += rewards.iter().sum::<f32>();
        buffer
            .push(&StepRecord {
                frames: &frames,
                features: &features,
                actions: &out.actions,
                log_probs: &out.log_probs,
                values: &out.values,
                rewards: &rewards,
                ends: &ends,
            })
            .unwrap();
    }
    env.obs(&mut frames, &mut features);
    let last = ppo
        .values(&ObsBatch {
            frames: &frames,
            features: &features,
            batch: n,
        })
        .unwrap();
    ppo.finish_rollout(buffer, &last).unwrap();
    total / (n * buffer.steps()) as f32
}

/// Mean greedy reward of the bandit over fresh contexts.
pub fn greedy_bandit_accuracy<N: PolicyNet>(ppo: &Ppo<N>, envs: usize, seed: u64) -> f32 {
    let mut env = FrameBandit::new(envs, seed);
    let fl = STACK * H * W;
    let mut frames = vec![0u8; envs * fl];
    let mut features = vec![0f32; envs * FEATURES];
    env.obs(&mut frames, &mut features);
    let out = ppo
        .act(
            &ObsBatch {
                frames: &frames,
                features: &features,
                batch: envs,
            },
            ActMode::Greedy,
        )
        .unwrap();
    let mut rewards = vec![0f32; envs];
    let mut ends = vec![StepEnd::Running; envs];
    env.step(&out.actions, &mut rewards, &mut ends, &|_, _| 0.0);
    rewards.iter().sum::<f32>() / envs as f32
}
