//! PPO must learn small tasks within a bounded number of updates.

mod common;

use common::*;
use ppo::{ActMode, Backend, ObsBatch, Ppo, RolloutBuffer};

/// The frame-only bandit: random play scores 1/3; PPO must pick the marked action.
#[test]
fn learns_frame_bandit() {
    let cfg = small_config(1, 3);
    let mut ppo = Ppo::new(cfg, Backend::Flex).unwrap();
    let mut env = FrameBandit::new(16, 42);
    let mut buf = RolloutBuffer::new(8, 16, STACK * H * W, FEATURES);
    let before = greedy_bandit_accuracy(&ppo, 300, 7);
    let mut solved_at = None;
    for u in 0..40 {
        let r = rollout(&mut ppo, &mut env, &mut buf);
        let s = ppo.update(&buf).unwrap();
        assert!(s.policy_loss.is_finite() && s.value_loss.is_finite());
        if r > 0.9 && solved_at.is_none() {
            solved_at = Some(u);
            break;
        }
    }
    let after = greedy_bandit_accuracy(&ppo, 300, 7);
    eprintln!("bandit: greedy accuracy {before:.3} -> {after:.3}, solved at {solved_at:?}");
    assert!(
        solved_at.is_some(),
        "sampled reward never exceeded 0.9 in 40 updates"
    );
    assert!(after > 0.95, "greedy accuracy {after}");
}

/// The feature-only corridor with terminal rewards, truncation and bootstrapping: the greedy
/// policy must walk right to the goal.
#[test]
fn learns_feature_corridor() {
    let mut cfg = small_config(2, 3);
    cfg.ppo.gamma = 0.9;
    let mut ppo = Ppo::new(cfg, Backend::Flex).unwrap();
    let mut env = FeatureCorridor::new(8);
    let mut buf = RolloutBuffer::new(16, 8, STACK * H * W, FEATURES);
    let mut best = 0f32;
    for _ in 0..60 {
        let r = rollout(&mut ppo, &mut env, &mut buf);
        best = best.max(r);
        ppo.update(&buf).unwrap();
        if r >= 0.9 / CORRIDOR_LEN as f32 {
            break;
        }
    }
    // Greedy walk from the start must reach the goal in CORRIDOR_LEN steps.
    let fl = STACK * H * W;
    let frames = vec![0u8; fl];
    let mut pos = 0usize;
    for _ in 0..CORRIDOR_LEN {
        let mut f = [0f32; FEATURES];
        f[0] = pos as f32 / CORRIDOR_LEN as f32;
        f[1] = 1.0;
        let a = ppo
            .act(
                &ObsBatch {
                    frames: &frames,
                    features: &f,
                    batch: 1,
                },
                ActMode::Greedy,
            )
            .unwrap()
            .actions[0];
        match a {
            0 => pos = pos.saturating_sub(1),
            1 => pos += 1,
            _ => {}
        }
    }
    eprintln!("corridor: best mean reward/step {best:.3}, greedy end position {pos}");
    assert_eq!(pos, CORRIDOR_LEN, "greedy policy did not reach the goal");
}
