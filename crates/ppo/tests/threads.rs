//! Determinism across rayon thread counts on the full-size (Nature-CNN, 4x72x80) policy.

use ppo::rng::HostRng;
use ppo::{
    ActMode, Backend, ObsBatch, PolicyConfig, Ppo, PpoConfig, RolloutBuffer, StepEnd, StepRecord,
    TrainConfig,
};

/// One rollout of random observations (T=16, N=8) and one update; returns checkpoint bytes.
fn one_update() -> Vec<u8> {
    let cfg = TrainConfig {
        seed: 17,
        policy: PolicyConfig::nature(50, 15),
        ppo: PpoConfig {
            num_minibatches: 2,
            update_epochs: 1,
            ..Default::default()
        },
        adam: Default::default(),
    };
    let mut ppo = Ppo::new(cfg, Backend::Flex).unwrap();
    let (t, n, fl, d) = (16, 8, 4 * 72 * 80, 50);
    let mut rng = HostRng::new(3);
    let mut buf = RolloutBuffer::new(t, n, fl, d);
    for _ in 0..t {
        let frames: Vec<u8> = (0..n * fl).map(|_| rng.below(256) as u8).collect();
        let feats: Vec<f32> = (0..n * d).map(|_| rng.normal() as f32).collect();
        let seed = ppo.next_act_seed();
        let out = ppo
            .act(
                &ObsBatch {
                    frames: &frames,
                    features: &feats,
                    batch: n,
                },
                ActMode::Sample { seed },
            )
            .unwrap();
        let rewards: Vec<f32> = out.actions.iter().map(|&a| (a % 3) as f32).collect();
        buf.push(&StepRecord {
            frames: &frames,
            features: &feats,
            actions: &out.actions,
            log_probs: &out.log_probs,
            values: &out.values,
            rewards: &rewards,
            ends: &vec![StepEnd::Running; n],
        })
        .unwrap();
    }
    ppo.finish_rollout(&mut buf, &vec![0.0; n]).unwrap();
    ppo.update(&buf).unwrap();
    ppo.checkpoint_bytes()
}

#[test]
fn same_bytes_with_one_two_and_three_threads() {
    let run_in = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(one_update)
    };
    let one = run_in(1);
    let two = run_in(2);
    let two_again = run_in(2);
    let three = run_in(3);
    assert!(two == two_again, "two runs with 2 threads differ");
    assert!(one == two, "1 thread and 2 threads differ");
    assert!(two == three, "2 threads and 3 threads differ");
}
