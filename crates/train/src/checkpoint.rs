//! Training checkpoints: the learner, the environments and where the loop stands, as one
//! object in the store, plus a small `latest.json` pointer replaced atomically.
//!
//! A checkpoint is taken at an update boundary, so resuming from it continues the run
//! exactly: same actions, same segments (rewritten as no-ops), same weights.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::TrainError;

const MAGIC: &[u8; 8] = b"ZRLCKPT\0";
/// Format version of checkpoint objects.
pub const VERSION: u32 = 1;

/// Where the loop stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Collecting rollouts; `update` is the next update of the burst.
    Rollout {
        /// Next update within the burst.
        update: u64,
    },
    /// Rollouts of the burst are done; evaluation and the reward model are next.
    Evaluate,
}

/// Everything a resumed run needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Run id.
    pub run: String,
    /// Hash of the run's settings (a resume must use the same).
    pub settings_hash: String,
    /// Cartridge SHA-1 (hex).
    pub cartridge_sha1: String,
    /// Burst the loop is in.
    pub burst: u32,
    /// Phase within the burst.
    pub phase: Phase,
    /// Env steps taken so far (all envs).
    pub env_steps: u64,
    /// Store key of the reward model in use, if any.
    pub reward_model: Option<String>,
    /// `ppo::Ppo::checkpoint_bytes`.
    pub learner: Vec<u8>,
    /// `rollout::VecEnv::snapshot`.
    pub envs: Vec<u8>,
}

/// The `latest.json` pointer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Latest {
    /// Key of the newest checkpoint.
    pub key: String,
    /// Its burst.
    pub burst: u32,
    /// Its phase.
    pub phase: Phase,
    /// Env steps at that point.
    pub env_steps: u64,
}

/// Key of the pointer to the newest checkpoint.
pub fn latest_key(run: &str) -> String {
    format!("{run}/checkpoints/latest.json")
}

/// Key of a checkpoint.
pub fn checkpoint_key(run: &str, burst: u32, phase: Phase) -> String {
    match phase {
        Phase::Rollout { update } => format!("{run}/checkpoints/b{burst:04}-1-u{update:06}.ckpt"),
        Phase::Evaluate => format!("{run}/checkpoints/b{burst:04}-2-evaluate.ckpt"),
    }
}

impl TrainState {
    /// Encodes: magic, version, SHA-256 of the body, body (postcard).
    pub fn encode(&self) -> Vec<u8> {
        seal(MAGIC, VERSION, self)
    }

    /// Decodes and verifies; `object` names it in errors.
    pub fn decode(bytes: &[u8], object: &str) -> Result<Self, TrainError> {
        unseal(
            bytes,
            MAGIC,
            VERSION,
            "zelda-rl training checkpoint",
            "checkpoint",
        )
        .map_err(|m| TrainError::Checkpoint(format!("{object}: {m}")))
    }
}

/// The framing of the loop's binary objects (checkpoints, rollout chunks): an 8-byte
/// magic, a u32 format version, the SHA-256 of the body, the body (postcard).
pub(crate) fn seal(magic: &[u8; 8], version: u32, value: &impl Serialize) -> Vec<u8> {
    let body = postcard::to_allocvec(value).expect("value serialises");
    let mut out = Vec::with_capacity(body.len() + 44);
    out.extend_from_slice(magic);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&Sha256::digest(&body));
    out.extend_from_slice(&body);
    out
}

/// Reads [`seal`]ed bytes; the error says which check failed (`kind`: what the object
/// should be, `format`: the word used for its version).
pub(crate) fn unseal<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    magic: &[u8; 8],
    version: u32,
    kind: &str,
    format: &str,
) -> Result<T, String> {
    if bytes.len() < 44 || &bytes[..8] != magic {
        return Err(format!("not a {kind}"));
    }
    let got = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if got != version {
        return Err(format!(
            "{format} format version {got}; this build reads {version}"
        ));
    }
    let body = &bytes[44..];
    if Sha256::digest(body).as_slice() != &bytes[12..44] {
        return Err("checksum mismatch (truncated or corrupted)".into());
    }
    postcard::from_bytes(body).map_err(|e| format!("unreadable body: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> TrainState {
        TrainState {
            run: "r".into(),
            settings_hash: "h".into(),
            cartridge_sha1: "c".into(),
            burst: 2,
            phase: Phase::Rollout { update: 7 },
            env_steps: 1234,
            reward_model: Some("r/reward-models/b0001.rm".into()),
            learner: vec![1, 2, 3],
            envs: vec![4; 100],
        }
    }

    #[test]
    fn round_trip_and_corruption() {
        let s = state();
        let bytes = s.encode();
        assert_eq!(TrainState::decode(&bytes, "x").unwrap(), s);
        let mut bad = bytes.clone();
        *bad.last_mut().unwrap() ^= 1;
        let e = TrainState::decode(&bad, "r/checkpoints/x.ckpt").unwrap_err();
        assert!(
            e.to_string().contains("r/checkpoints/x.ckpt") && e.to_string().contains("checksum"),
            "{e}"
        );
        let e = TrainState::decode(&bytes[..30], "y").unwrap_err();
        assert!(e.to_string().contains("not a zelda-rl"), "{e}");
        let mut v2 = bytes;
        v2[8] = 2;
        assert!(
            TrainState::decode(&v2, "z")
                .unwrap_err()
                .to_string()
                .contains("version 2")
        );
    }

    #[test]
    fn keys_sort_in_run_order() {
        let a = checkpoint_key("r", 1, Phase::Rollout { update: 9 });
        let b = checkpoint_key("r", 1, Phase::Evaluate);
        let c = checkpoint_key("r", 2, Phase::Rollout { update: 0 });
        assert!(a < b && b < c, "{a} {b} {c}");
    }
}
