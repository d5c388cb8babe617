//! Checkpoint and policy-weight files.
//!
//! Both are [`crate::container`] safetensors files. A checkpoint (`kind` =
//! [`CHECKPOINT_KIND`]) holds tensors `param/<name>`, `adam_m/<name>`, `adam_v/<name>` and metadata
//! fields `config` (the [`TrainConfig`]), `counters`, `adam_step`, `extra` (caller strings),
//! `backend` and `crate_version` (informational). A policy file (`kind` = [`POLICY_KIND`]) holds
//! only `param/<name>` and the `policy` config, for rollout workers.
//!
//! Loading decodes the container (kind, version, SHA-1 of the tensors), rebuilds the model from
//! the stored config, and requires every tensor to be present with the model's shape and no
//! other tensor to exist. Writing bytes atomically to disk or an object store is the caller's job.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::container::{self, Container};
use crate::learner::Counters;
use crate::nn::Backend;
use crate::policy::{BurnPolicy, NetState, PolicyConfig, PolicyNet};
use crate::{Ppo, PpoError, TrainConfig};

/// `kind` of a learner checkpoint.
pub const CHECKPOINT_KIND: &str = "zelda-rl/ppo-checkpoint";
/// Checkpoint format version this build reads and writes.
pub const CHECKPOINT_VERSION: u64 = 1;
/// `kind` of a weights-only policy file.
pub const POLICY_KIND: &str = "zelda-rl/ppo-policy";
/// Policy file format version.
pub const POLICY_VERSION: u64 = 1;

fn field<T: serde::de::DeserializeOwned>(c: &Container, key: &str) -> Result<T, PpoError> {
    let v = c
        .meta
        .get(key)
        .ok_or_else(|| PpoError::Checkpoint(format!("metadata field `{key}` is missing")))?;
    serde_json::from_value(v.clone())
        .map_err(|e| PpoError::Checkpoint(format!("metadata field `{key}`: {e}")))
}

/// Paths (`a.b.c`) where two JSON values differ.
fn json_diff(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match (x.get(k), y.get(k)) {
                    (Some(va), Some(vb)) => json_diff(va, vb, &p, out),
                    _ => out.push(p),
                }
            }
        }
        _ if a != b => out.push(format!("{path} (checkpoint {a}, requested {b})")),
        _ => {}
    }
}

/// The run config stored in checkpoint bytes (after full validation of the container).
pub fn read_checkpoint_config(bytes: &[u8]) -> Result<TrainConfig, PpoError> {
    let c = container::decode(bytes, CHECKPOINT_KIND, CHECKPOINT_VERSION)?;
    field(&c, "config")
}

impl<N: PolicyNet> Ppo<N> {
    /// Serialises the learner (weights, Adam state, config, counters, extra fields).
    pub fn checkpoint_bytes(&self) -> Vec<u8> {
        let state = self.net.state();
        let mut meta = Map::new();
        meta.insert(
            "config".into(),
            serde_json::to_value(&self.config).expect("config JSON"),
        );
        meta.insert(
            "counters".into(),
            serde_json::to_value(&self.counters).expect("counters JSON"),
        );
        meta.insert("adam_step".into(), Value::from(state.adam_step));
        meta.insert(
            "extra".into(),
            serde_json::to_value(&self.extra).expect("extra JSON"),
        );
        meta.insert("backend".into(), Value::from(self.net.backend_name()));
        meta.insert(
            "crate_version".into(),
            Value::from(env!("CARGO_PKG_VERSION")),
        );
        container::encode(CHECKPOINT_KIND, CHECKPOINT_VERSION, meta, &state.tensors)
    }

    /// Serialises only the policy weights and shapes (for rollout workers).
    pub fn policy_bytes(&self) -> Vec<u8> {
        policy_bytes(&self.net)
    }

    /// Restores a learner from checkpoint bytes, building the network with `make_net` from the
    /// stored config. If `expected` is given, any difference from the stored config is an error
    /// naming the differing fields.
    pub fn from_checkpoint_with(
        bytes: &[u8],
        expected: Option<&TrainConfig>,
        make_net: impl FnOnce(&TrainConfig) -> Result<N, PpoError>,
    ) -> Result<Self, PpoError> {
        let c = container::decode(bytes, CHECKPOINT_KIND, CHECKPOINT_VERSION)?;
        let config: TrainConfig = field(&c, "config")?;
        if let Some(exp) = expected {
            let mut diffs = Vec::new();
            json_diff(
                &serde_json::to_value(&config).expect("config JSON"),
                &serde_json::to_value(exp).expect("config JSON"),
                "",
                &mut diffs,
            );
            if !diffs.is_empty() {
                return Err(PpoError::ConfigMismatch(diffs));
            }
        }
        config
            .validate()
            .map_err(|e| PpoError::Checkpoint(format!("stored config: {e}")))?;
        let counters: Counters = field(&c, "counters")?;
        let adam_step: u64 = field(&c, "adam_step")?;
        let extra: BTreeMap<String, String> = field(&c, "extra")?;
        let mut net = make_net(&config)?;
        net.load_state(&NetState {
            tensors: c.tensors,
            adam_step,
        })?;
        Ok(Self {
            config,
            net,
            counters,
            extra,
        })
    }
}

impl Ppo<BurnPolicy> {
    /// Restores a burn learner with the checkpoint's own config.
    pub fn from_checkpoint(bytes: &[u8], backend: Backend) -> Result<Self, PpoError> {
        Self::from_checkpoint_with(bytes, None, |cfg| {
            BurnPolicy::new(&cfg.policy, cfg.adam.clone(), backend, cfg.seed)
        })
    }

    /// Restores a burn learner, requiring the stored config to equal `expected` (what `--resume`
    /// should use so a changed config is never silently mixed into a run).
    pub fn resume(
        bytes: &[u8],
        backend: Backend,
        expected: &TrainConfig,
    ) -> Result<Self, PpoError> {
        Self::from_checkpoint_with(bytes, Some(expected), |cfg| {
            BurnPolicy::new(&cfg.policy, cfg.adam.clone(), backend, cfg.seed)
        })
    }
}

/// Policy-file bytes of any [`PolicyNet`].
pub fn policy_bytes<N: PolicyNet + ?Sized>(net: &N) -> Vec<u8> {
    let mut meta = Map::new();
    meta.insert(
        "policy".into(),
        serde_json::to_value(net.config()).expect("policy JSON"),
    );
    container::encode(POLICY_KIND, POLICY_VERSION, meta, &net.params())
}

/// Builds an inference policy from policy-file bytes (the seed is irrelevant: weights are loaded).
pub fn load_policy(bytes: &[u8], backend: Backend) -> Result<BurnPolicy, PpoError> {
    let c = container::decode(bytes, POLICY_KIND, POLICY_VERSION)?;
    let cfg: PolicyConfig = field(&c, "policy")?;
    let mut net = BurnPolicy::new(&cfg, Default::default(), backend, 0)?;
    check_only_params(&c, &net)?;
    net.load_params(&c.tensors)?;
    Ok(net)
}

/// Replaces `net`'s weights from policy-file bytes; the stored shapes must equal `net`'s.
pub fn refresh_policy<N: PolicyNet + ?Sized>(net: &mut N, bytes: &[u8]) -> Result<(), PpoError> {
    let c = container::decode(bytes, POLICY_KIND, POLICY_VERSION)?;
    let cfg: PolicyConfig = field(&c, "policy")?;
    if &cfg != net.config() {
        let mut diffs = Vec::new();
        json_diff(
            &serde_json::to_value(&cfg).expect("JSON"),
            &serde_json::to_value(net.config()).expect("JSON"),
            "policy",
            &mut diffs,
        );
        return Err(PpoError::ConfigMismatch(diffs));
    }
    net.load_params(&c.tensors)
}

fn check_only_params(c: &Container, net: &BurnPolicy) -> Result<(), PpoError> {
    let expected = net.params();
    if let Some(extra) = c.tensors.keys().find(|k| !expected.contains_key(*k)) {
        return Err(PpoError::Checkpoint(format!(
            "unexpected tensor `{extra}` in policy file"
        )));
    }
    Ok(())
}
