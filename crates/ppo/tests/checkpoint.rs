//! Checkpoint round trips, exact resume, determinism and clear errors on bad files.

mod common;

use common::*;
use ppo::checkpoint::refresh_policy;
use ppo::container::{self, ContainerError};
use ppo::{
    ActMode, Backend, CHECKPOINT_KIND, CHECKPOINT_VERSION, ObsBatch, PolicyNet, Ppo, PpoError,
    RolloutBuffer, load_policy, mix_seed, read_checkpoint_config,
};

/// Runs `n` rollout+update cycles. The env for update u is rebuilt from (seed, u), so a resumed
/// learner sees exactly the data the straight run saw.
fn run(ppo: &mut Ppo, n: u64) {
    for _ in 0..n {
        let u = ppo.counters().updates;
        let mut env = FrameBandit::new(4, mix_seed(99, 0, u));
        let mut buf = RolloutBuffer::new(8, 4, STACK * H * W, FEATURES);
        rollout(ppo, &mut env, &mut buf);
        ppo.update(&buf).unwrap();
    }
}

fn params_of(ppo: &Ppo) -> Vec<(String, Vec<u32>)> {
    ppo.net()
        .state()
        .tensors
        .into_iter()
        .map(|(k, t)| (k, t.data.iter().map(|v| v.to_bits()).collect()))
        .collect()
}

#[test]
fn resume_is_bit_exact() {
    let cfg = small_config(5, 3);
    let mut straight = Ppo::new(cfg.clone(), Backend::Flex).unwrap();
    run(&mut straight, 3);

    let mut first = Ppo::new(cfg.clone(), Backend::Flex).unwrap();
    run(&mut first, 1);
    first.extra_mut().insert("burst".into(), "1".into());
    let bytes = first.checkpoint_bytes();
    drop(first);
    let mut resumed = Ppo::resume(&bytes, Backend::Flex, &cfg).unwrap();
    assert_eq!(resumed.counters().updates, 1);
    assert_eq!(resumed.extra()["burst"], "1");
    run(&mut resumed, 2);

    assert_eq!(resumed.counters(), straight.counters());
    assert!(
        params_of(&resumed) == params_of(&straight),
        "parameters or Adam state differ"
    );
    // The whole checkpoint matches apart from the extra field.
    resumed.extra_mut().clear();
    assert_eq!(resumed.checkpoint_bytes(), straight.checkpoint_bytes());
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let mut a = Ppo::new(small_config(8, 3), Backend::Flex).unwrap();
    let mut b = Ppo::new(small_config(8, 3), Backend::Flex).unwrap();
    let mut c = Ppo::new(small_config(9, 3), Backend::Flex).unwrap();
    run(&mut a, 2);
    run(&mut b, 2);
    run(&mut c, 2);
    assert_eq!(a.checkpoint_bytes(), b.checkpoint_bytes());
    assert_ne!(a.checkpoint_bytes(), c.checkpoint_bytes());
}

#[test]
fn checkpoint_round_trip_preserves_everything() {
    let cfg = small_config(3, 3);
    let mut p = Ppo::new(cfg.clone(), Backend::Flex).unwrap();
    run(&mut p, 1);
    let bytes = p.checkpoint_bytes();
    assert_eq!(read_checkpoint_config(&bytes).unwrap(), cfg);
    let q = Ppo::from_checkpoint(&bytes, Backend::Flex).unwrap();
    assert_eq!(q.checkpoint_bytes(), bytes);
    assert_eq!(q.net().state(), p.net().state());
}

#[test]
fn policy_file_drives_a_worker() {
    let mut p = Ppo::new(small_config(4, 3), Backend::Flex).unwrap();
    run(&mut p, 1);
    let worker = load_policy(&p.policy_bytes(), Backend::Flex).unwrap();
    let mut env = FrameBandit::new(5, 1);
    let mut frames = vec![0u8; 5 * STACK * H * W];
    let mut feats = vec![0f32; 5 * FEATURES];
    env.obs(&mut frames, &mut feats);
    let obs = ObsBatch {
        frames: &frames,
        features: &feats,
        batch: 5,
    };
    let mode = ActMode::Sample { seed: 77 };
    assert_eq!(worker.act(&obs, mode).unwrap(), p.act(&obs, mode).unwrap());

    // Refresh after another update: the worker follows.
    let mut worker = worker;
    run(&mut p, 1);
    assert_ne!(
        worker.act(&obs, mode).unwrap().values,
        p.act(&obs, mode).unwrap().values
    );
    refresh_policy(&mut worker, &p.policy_bytes()).unwrap();
    assert_eq!(worker.act(&obs, mode).unwrap(), p.act(&obs, mode).unwrap());
    // Checkpoint bytes are not policy bytes.
    assert!(matches!(
        load_policy(&p.checkpoint_bytes(), Backend::Flex),
        Err(PpoError::Container(ContainerError::WrongKind { .. }))
    ));
    env.step(
        &[0; 5],
        &mut [0.0; 5],
        &mut [ppo::StepEnd::Running; 5],
        &|_, _| 0.0,
    );
}

#[test]
fn corrupted_or_foreign_checkpoints_are_clear_errors() {
    let cfg = small_config(6, 3);
    let p = Ppo::new(cfg.clone(), Backend::Flex).unwrap();
    let bytes = p.checkpoint_bytes();

    // A flipped bit in the tensor data.
    let mut bad = bytes.clone();
    let i = bad.len() - 10;
    bad[i] ^= 1;
    let e = Ppo::from_checkpoint(&bad, Backend::Flex).err().unwrap();
    assert!(
        matches!(
            e,
            PpoError::Container(ContainerError::DigestMismatch { .. })
        ),
        "{e}"
    );
    assert!(e.to_string().contains("corrupted"));

    // Truncated and garbage files.
    let e = Ppo::from_checkpoint(&bytes[..bytes.len() / 2], Backend::Flex)
        .err()
        .unwrap();
    assert!(
        matches!(e, PpoError::Container(ContainerError::Safetensors(_))),
        "{e}"
    );
    assert!(Ppo::from_checkpoint(b"", Backend::Flex).is_err());

    // Resume with a different requested shape: names the differing field.
    let mut other = cfg.clone();
    other.policy.encoder.hidden = 48;
    other.ppo.ent_coef = 0.02;
    let e = Ppo::resume(&bytes, Backend::Flex, &other).err().unwrap();
    let msg = e.to_string();
    assert!(matches!(e, PpoError::ConfigMismatch(_)), "{msg}");
    assert!(
        msg.contains("policy.encoder.hidden") && msg.contains("ppo.ent_coef"),
        "{msg}"
    );

    // A checkpoint whose config claims another shape than its tensors: shape error.
    let c = container::decode(&bytes, CHECKPOINT_KIND, CHECKPOINT_VERSION).unwrap();
    let mut meta = c.meta.clone();
    for k in ["kind", "format_version", "content_sha1"] {
        meta.remove(k);
    }
    let mut conf = serde_json::to_value(&cfg).unwrap();
    conf["policy"]["encoder"]["hidden"] = 48.into();
    meta.insert("config".into(), conf);
    let forged = container::encode(CHECKPOINT_KIND, CHECKPOINT_VERSION, meta, &c.tensors);
    let e = Ppo::from_checkpoint(&forged, Backend::Flex).err().unwrap();
    let msg = e.to_string();
    assert!(matches!(e, PpoError::Checkpoint(_)), "{msg}");
    assert!(msg.contains("fc.weight") && msg.contains("shape"), "{msg}");

    // A missing tensor.
    let mut fewer = c.tensors.clone();
    fewer.remove("adam_v/head.value.bias");
    let mut meta2 = c.meta.clone();
    for k in ["kind", "format_version", "content_sha1"] {
        meta2.remove(k);
    }
    let forged = container::encode(CHECKPOINT_KIND, CHECKPOINT_VERSION, meta2, &fewer);
    let msg = Ppo::from_checkpoint(&forged, Backend::Flex)
        .err()
        .unwrap()
        .to_string();
    assert!(msg.contains("tensors"), "{msg}");

    // A future format version.
    let future = container::encode(
        CHECKPOINT_KIND,
        CHECKPOINT_VERSION + 1,
        Default::default(),
        &c.tensors,
    );
    let e = Ppo::from_checkpoint(&future, Backend::Flex).err().unwrap();
    assert!(
        matches!(
            e,
            PpoError::Container(ContainerError::UnsupportedVersion { .. })
        ),
        "{e}"
    );
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let p = Ppo::new(small_config(1, 3), Backend::Flex).unwrap();
    let frames = vec![0u8; STACK * H * W - 1];
    let e = p
        .act(
            &ObsBatch {
                frames: &frames,
                features: &[0.0; FEATURES],
                batch: 1,
            },
            ActMode::Greedy,
        )
        .unwrap_err();
    assert!(e.to_string().contains("frames"), "{e}");
    let mut buf = RolloutBuffer::new(2, 1, STACK * H * W, FEATURES);
    assert!(matches!(
        p.clone_update_check(&mut buf),
        Err(PpoError::Buffer(_))
    ));
}

trait UpdateCheck {
    fn clone_update_check(&self, buf: &mut RolloutBuffer) -> Result<(), PpoError>;
}

impl UpdateCheck for Ppo {
    fn clone_update_check(&self, buf: &mut RolloutBuffer) -> Result<(), PpoError> {
        let mut q = Ppo::from_checkpoint(&self.checkpoint_bytes(), Backend::Flex)?;
        q.update(buf).map(|_| ())
    }
}
