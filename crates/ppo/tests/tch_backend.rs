//! LibTorch backend (feature `tch`): same model, same checkpoints, numerically close to flex.
#![cfg(feature = "tch")]

mod common;

use common::*;
use ppo::{ActMode, Backend, ObsBatch, Ppo, RolloutBuffer, mix_seed};

fn one_update(backend: Backend) -> Ppo {
    let mut ppo = Ppo::new(small_config(11, 3), backend).unwrap();
    let mut env = FrameBandit::new(4, mix_seed(1, 0, 0));
    let mut buf = RolloutBuffer::new(8, 4, STACK * H * W, FEATURES);
    rollout(&mut ppo, &mut env, &mut buf);
    ppo.update(&buf).unwrap();
    ppo
}

#[test]
fn libtorch_cpu_matches_flex_closely_and_shares_checkpoints() {
    let flex = one_update(Backend::Flex);
    let tch = one_update(Backend::LibTorchCpu);
    let (sf, st) = (
        ppo::PolicyNet::state(flex.net()),
        ppo::PolicyNet::state(tch.net()),
    );
    let mut max_diff = 0f32;
    for (k, a) in &sf.tensors {
        let b = &st.tensors[k];
        assert_eq!(a.shape, b.shape);
        for (x, y) in a.data.iter().zip(&b.data) {
            max_diff = max_diff.max((x - y).abs());
        }
    }
    eprintln!("max |flex - tch| after one update: {max_diff:e}");
    assert!(max_diff < 1e-3, "backends diverge: {max_diff}");

    // A LibTorch checkpoint resumes on flex and acts identically up to float noise.
    let on_flex = Ppo::from_checkpoint(&tch.checkpoint_bytes(), Backend::Flex).unwrap();
    let env = FrameBandit::new(3, 5);
    let mut frames = vec![0u8; 3 * STACK * H * W];
    let mut feats = vec![0f32; 3 * FEATURES];
    env.obs(&mut frames, &mut feats);
    let obs = ObsBatch {
        frames: &frames,
        features: &feats,
        batch: 3,
    };
    let a = on_flex.act(&obs, ActMode::Greedy).unwrap();
    let b = tch.act(&obs, ActMode::Greedy).unwrap();
    assert_eq!(a.actions, b.actions);
    for (x, y) in a.values.iter().zip(&b.values) {
        assert!((x - y).abs() < 1e-4);
    }
}

/// Runs only where a CUDA libtorch and a GPU exist (set ZELDA_RL_TEST_CUDA=1).
#[test]
fn libtorch_cuda_update_when_available() {
    if std::env::var("ZELDA_RL_TEST_CUDA").is_err() {
        eprintln!("skipped: set ZELDA_RL_TEST_CUDA=1 on a GPU machine");
        return;
    }
    let cuda = one_update(Backend::LibTorchCuda(0));
    let flex = one_update(Backend::Flex);
    let a = ppo::PolicyNet::state(cuda.net());
    let b = ppo::PolicyNet::state(flex.net());
    for (k, t) in &a.tensors {
        for (x, y) in t.data.iter().zip(&b.tensors[k].data) {
            assert!((x - y).abs() < 1e-3, "{k}");
        }
    }
}
