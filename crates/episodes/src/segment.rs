//! The episode segment format, version 1.
//!
//! A segment is a fixed-length piece of one environment's trajectory (default 512 steps; it
//! never crosses an episode boundary). One segment is one object: a zstd-compressed POSIX
//! tar, so standard tools open it (`zstd -dc x.seg | tar -tv`), holding in this order:
//!
//! | member | content |
//! |---|---|
//! | `meta.json` | [`SegmentMeta`]: format name and version, ids, step range, cartridge SHA-1, emulator version, config hash, the env config needed to replay, action names, reward component names, keyframe steps, the state at the start |
//! | `start.state` | the emulator save state the segment starts from |
//! | `actions.bin` | one byte per step: the policy's action index |
//! | `rewards.bin` | per step, one little-endian f32 per reward component |
//! | `states.jsonl` | per step, the [`GameState`] after the action, one JSON object per line |
//! | `frames/NNNNNN.png` | the screen after step NNNNNN (160x144, 2-bit greyscale) for each keyframe step |
//! | `checksums.sha256` | `sha256sum -c` compatible digests of every member above |
//!
//! The tar headers carry no time, owner or host data, so the same segment always encodes to
//! the same bytes.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zelda::{EnvConfig, GameState};

/// The `format` field of every segment's metadata.
pub const FORMAT_NAME: &str = "zelda-rl-segment";
/// The current format version; readers reject any other.
pub const FORMAT_VERSION: u32 = 1;
/// File extension of segment objects.
pub const EXTENSION: &str = "seg";
/// zstd level: segments are written while training, so fast enough to stay off the
/// critical path, while keyframes (already PNG) and JSON lines still shrink well.
const ZSTD_LEVEL: i32 = 9;
/// Upper bound on a decompressed segment, against decompression bombs.
const MAX_DECOMPRESSED: u64 = 256 << 20;

/// How an episode ended at a segment's last step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EpisodeEnd {
    /// Ended inside the game (death or goal).
    Terminated,
    /// Cut by the step limit.
    Truncated,
}

/// Everything about a segment except its bulk data (`meta.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentMeta {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// Always [`FORMAT_VERSION`] for this reader.
    pub version: u32,
    /// Run id.
    pub run: String,
    /// Training burst that produced it.
    pub burst: u32,
    /// Rollout worker id.
    pub worker: u32,
    /// Environment id within the worker.
    pub env: u32,
    /// Index of this segment among the segments of (worker, env).
    pub index: u64,
    /// Episode number of this environment (1-based).
    pub episode: u64,
    /// Steps of the episode before this segment's first action.
    pub episode_step: u32,
    /// Steps of this environment (all episodes) before this segment's first action.
    pub global_step: u64,
    /// Number of actions in the segment.
    pub steps: u32,
    /// Set when the episode ended at the last step.
    pub ended: Option<EpisodeEnd>,
    /// SHA-1 of the cartridge ROM (hex).
    pub cartridge_sha1: String,
    /// Title from the cartridge header.
    pub cartridge_title: String,
    /// `gameboy::VERSION` of the emulator that recorded it.
    pub emulator_version: String,
    /// SHA-256 (hex) of the canonical JSON of the env and reward settings.
    pub config_hash: String,
    /// The env settings (frame skip and press timing are what replay needs).
    pub env_config: EnvConfig,
    /// Action names in policy-index order.
    pub actions: Vec<String>,
    /// Reward component names, in `rewards.bin` column order.
    pub reward_components: Vec<String>,
    /// Interval of keyframes in steps.
    pub keyframe_interval: u32,
    /// Steps whose screen is stored under `frames/`.
    pub keyframes: Vec<u32>,
    /// Which policy acted (`random`, or a checkpoint key).
    pub policy: String,
    /// The decoded state at the start (before the first action).
    pub start: GameState,
}

/// One stored screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keyframe {
    /// Step (within the segment) after which the screen was taken.
    pub step: u32,
    /// PNG bytes.
    pub png: Vec<u8>,
}

/// A whole segment in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Metadata.
    pub meta: SegmentMeta,
    /// Emulator save state at the start.
    pub start_state: Vec<u8>,
    /// Action index per step.
    pub actions: Vec<u8>,
    /// Reward per step and component, row-major `[steps][components]`.
    pub rewards: Vec<f32>,
    /// State after each step.
    pub states: Vec<GameState>,
    /// Keyframes in step order.
    pub keyframes: Vec<Keyframe>,
}

/// A segment that cannot be read, naming the object and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("segment `{object}`: {problem}")]
pub struct SegmentError {
    /// Object key or file name.
    pub object: String,
    /// What is wrong (names the member and offset/line where it applies).
    pub problem: String,
}

/// The key of segment `index` of (worker, env) in run `run`, relative to the store root
/// (the default store is the folder `./runs`, so keys start with the run id).
pub fn segment_key(run: &str, worker: u32, env: u32, index: u64) -> String {
    format!("{run}/segments/{worker:03}-{env:03}/{index:08}.{EXTENSION}")
}

/// The prefix under which run `run` keeps its segments.
pub fn segments_prefix(run: &str) -> String {
    format!("{run}/segments")
}

/// SHA-256 (hex) of any serialisable settings, via canonical (sorted-key) JSON.
pub fn config_hash<T: Serialize>(value: &T) -> String {
    let v = serde_json::to_value(value).expect("settings serialise to JSON");
    let canonical = serde_json::to_string(&sort_keys(v)).expect("JSON value serialises");
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

fn sort_keys(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(map) => {
            let sorted: BTreeMap<_, _> = map.into_iter().map(|(k, v)| (k, sort_keys(v))).collect();
            serde_json::Value::Object(sorted.into_iter().collect())
        }
        serde_json::Value::Array(a) => {
            serde_json::Value::Array(a.into_iter().map(sort_keys).collect())
        }
        other => other,
    }
}

impl Segment {
    /// The object key this segment is stored under.
    pub fn key(&self) -> String {
        segment_key(
            &self.meta.run,
            self.meta.worker,
            self.meta.env,
            self.meta.index,
        )
    }

    /// A short id, `<run>/<worker>-<env>/<index>`, used in scores.
    pub fn id(&self) -> String {
        format!(
            "{}/{:03}-{:03}/{:08}",
            self.meta.run, self.meta.worker, self.meta.env, self.meta.index
        )
    }

    /// Total reward per step.
    pub fn step_rewards(&self) -> Vec<f32> {
        let c = self.meta.reward_components.len().max(1);
        self.rewards
            .chunks_exact(c)
            .map(|r| r.iter().sum())
            .collect()
    }

    /// Sum of all rewards.
    pub fn total_reward(&self) -> f32 {
        self.rewards.iter().sum()
    }

    /// Checks the in-memory invariants (lengths agree with the metadata).
    pub fn validate(&self) -> Result<(), String> {
        let m = &self.meta;
        if m.format != FORMAT_NAME {
            return Err(format!(
                "meta.json: format is `{}`, expected `{FORMAT_NAME}`",
                m.format
            ));
        }
        if m.version != FORMAT_VERSION {
            return Err(format!(
                "meta.json: format version {} is not supported (this reader: {FORMAT_VERSION})",
                m.version
            ));
        }
        let steps = m.steps as usize;
        if self.actions.len() != steps {
            return Err(format!(
                "actions.bin: {} actions for {steps} steps",
                self.actions.len()
            ));
        }
        if let Some((i, a)) = self
            .actions
            .iter()
            .enumerate()
            .find(|(_, a)| usize::from(**a) >= m.actions.len())
        {
            return Err(format!(
                "actions.bin: offset {i}: action index {a} outside the {}-action set",
                m.actions.len()
            ));
        }
        let want = steps * m.reward_components.len();
        if self.rewards.len() != want {
            return Err(format!(
                "rewards.bin: {} values, expected {steps} steps x {} components",
                self.rewards.len(),
                m.reward_components.len()
            ));
        }
        if self.states.len() != steps {
            return Err(format!(
                "states.jsonl: {} lines for {steps} steps",
                self.states.len()
            ));
        }
        let kf: Vec<u32> = self.keyframes.iter().map(|k| k.step).collect();
        if kf != m.keyframes {
            return Err(format!(
                "frames/: keyframe steps {kf:?} do not match meta.json keyframes {:?}",
                m.keyframes
            ));
        }
        if let Some(k) = self.keyframes.iter().find(|k| k.step >= m.steps) {
            return Err(format!(
                "frames/: keyframe step {} beyond {steps} steps",
                k.step
            ));
        }
        Ok(())
    }

    /// Encodes the segment (deterministically: same segment, same bytes).
    pub fn encode(&self) -> Result<Vec<u8>, String> {
        self.validate()?;
        let mut members: Vec<(String, Vec<u8>)> = Vec::with_capacity(6 + self.keyframes.len());
        let meta = serde_json::to_vec_pretty(&self.meta).map_err(|e| e.to_string())?;
        members.push(("meta.json".into(), meta));
        members.push(("start.state".into(), self.start_state.clone()));
        members.push(("actions.bin".into(), self.actions.clone()));
        let mut rewards = Vec::with_capacity(self.rewards.len() * 4);
        for r in &self.rewards {
            rewards.extend_from_slice(&r.to_le_bytes());
        }
        members.push(("rewards.bin".into(), rewards));
        let mut states = Vec::with_capacity(self.states.len() * 320);
        for s in &self.states {
            serde_json::to_writer(&mut states, s).map_err(|e| e.to_string())?;
            states.push(b'\n');
        }
        members.push(("states.jsonl".into(), states));
        for k in &self.keyframes {
            members.push((format!("frames/{:06}.png", k.step), k.png.clone()));
        }
        let mut sums = String::new();
        for (name, data) in &members {
            sums.push_str(&format!("{}  {name}\n", hex::encode(Sha256::digest(data))));
        }
        members.push(("checksums.sha256".into(), sums.into_bytes()));

        let mut tar = tar::Builder::new(Vec::new());
        for (name, data) in &members {
            let mut header = tar::Header::new_ustar();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_uid(0);
            header.set_gid(0);
            header.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut header, name, data.as_slice())
                .map_err(|e| format!("tar {name}: {e}"))?;
        }
        let tar = tar.into_inner().map_err(|e| e.to_string())?;
        let mut enc = zstd::Encoder::new(Vec::new(), ZSTD_LEVEL).map_err(|e| e.to_string())?;
        enc.include_checksum(true).map_err(|e| e.to_string())?;
        enc.write_all(&tar).map_err(|e| e.to_string())?;
        enc.finish().map_err(|e| e.to_string())
    }

    /// Decodes and verifies a segment; `object` names it in errors.
    pub fn decode(bytes: &[u8], object: &str) -> Result<Segment, SegmentError> {
        let err = |problem: String| SegmentError {
            object: object.to_string(),
            problem,
        };
        if bytes.len() < 4 || bytes[..4] != [0x28, 0xB5, 0x2F, 0xFD] {
            return Err(err(format!(
                "not a zstd stream (first bytes {:02x?}); expected a {FORMAT_NAME} object",
                &bytes[..bytes.len().min(4)]
            )));
        }
        let mut tar_bytes = Vec::new();
        zstd::Decoder::new(bytes)
            .map_err(|e| err(format!("zstd: {e}")))?
            .take(MAX_DECOMPRESSED + 1)
            .read_to_end(&mut tar_bytes)
            .map_err(|e| err(format!("zstd: {e} (truncated or corrupted)")))?;
        if tar_bytes.len() as u64 > MAX_DECOMPRESSED {
            return Err(err(format!(
                "decompresses to more than {MAX_DECOMPRESSED} bytes"
            )));
        }
        let mut members: Vec<(String, Vec<u8>)> = Vec::new();
        let mut archive = tar::Archive::new(tar_bytes.as_slice());
        let entries = archive.entries().map_err(|e| err(format!("tar: {e}")))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| err(format!("tar: {e}")))?;
            let name = entry
                .path()
                .map_err(|e| err(format!("tar member name: {e}")))?
                .to_string_lossy()
                .into_owned();
            let mut data = Vec::with_capacity(entry.size() as usize);
            entry
                .read_to_end(&mut data)
                .map_err(|e| err(format!("tar member {name}: {e}")))?;
            if members.iter().any(|(n, _)| *n == name) {
                return Err(err(format!("member {name} appears twice")));
            }
            members.push((name, data));
        }
        let (last_name, sums) = members.pop().ok_or_else(|| err("empty archive".into()))?;
        if last_name != "checksums.sha256" {
            return Err(err(format!(
                "last member is `{last_name}`, expected checksums.sha256 (truncated?)"
            )));
        }
        let sums =
            String::from_utf8(sums).map_err(|_| err("checksums.sha256 is not UTF-8".into()))?;
        let mut listed = BTreeMap::new();
        for (i, line) in sums.lines().enumerate() {
            let (digest, name) = line
                .split_once("  ")
                .ok_or_else(|| err(format!("checksums.sha256 line {}: malformed", i + 1)))?;
            listed.insert(name.to_string(), digest.to_string());
        }
        for (name, data) in &members {
            let want = listed
                .remove(name)
                .ok_or_else(|| err(format!("member {name} has no checksum")))?;
            let got = hex::encode(Sha256::digest(data));
            if got != want {
                return Err(err(format!("member {name}: checksum mismatch (corrupted)")));
            }
        }
        if let Some(name) = listed.keys().next() {
            return Err(err(format!(
                "member {name} is listed in checksums.sha256 but missing"
            )));
        }
        let mut take = |name: &str| -> Result<Vec<u8>, SegmentError> {
            let i = members
                .iter()
                .position(|(n, _)| n == name)
                .ok_or_else(|| err(format!("missing member {name}")))?;
            Ok(members.remove(i).1)
        };
        let meta_bytes = take("meta.json")?;
        // Check the version before the full schema, so an old or new segment says so
        // instead of failing on a field it does not know.
        let probe: serde_json::Value =
            serde_json::from_slice(&meta_bytes).map_err(|e| err(format!("meta.json: {e}")))?;
        match (
            probe.get("format").and_then(|v| v.as_str()),
            probe.get("version").and_then(|v| v.as_u64()),
        ) {
            (Some(FORMAT_NAME), Some(v)) if v == u64::from(FORMAT_VERSION) => {}
            (Some(FORMAT_NAME), Some(v)) => {
                return Err(err(format!(
                    "meta.json: format version {v} is not supported (this reader: {FORMAT_VERSION})"
                )));
            }
            _ => {
                return Err(err(format!(
                    "meta.json: not a {FORMAT_NAME} (format/version fields)"
                )));
            }
        }
        let meta: SegmentMeta =
            serde_json::from_slice(&meta_bytes).map_err(|e| err(format!("meta.json: {e}")))?;
        let start_state = take("start.state")?;
        let actions = take("actions.bin")?;
        let rewards_bytes = take("rewards.bin")?;
        if rewards_bytes.len() % 4 != 0 {
            return Err(err(format!(
                "rewards.bin: {} bytes is not a whole number of f32",
                rewards_bytes.len()
            )));
        }
        let rewards = rewards_bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let states_bytes = take("states.jsonl")?;
        let mut states = Vec::with_capacity(meta.steps as usize);
        for (i, line) in states_bytes.split(|b| *b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let s = serde_json::from_slice(line)
                .map_err(|e| err(format!("states.jsonl line {}: {e}", i + 1)))?;
            states.push(s);
        }
        let mut keyframes = Vec::new();
        for (name, png) in std::mem::take(&mut members) {
            let step = name
                .strip_prefix("frames/")
                .and_then(|n| n.strip_suffix(".png"))
                .and_then(|n| n.parse::<u32>().ok())
                .ok_or_else(|| err(format!("unexpected member {name}")))?;
            keyframes.push(Keyframe { step, png });
        }
        keyframes.sort_by_key(|k| k.step);
        let seg = Segment {
            meta,
            start_state,
            actions,
            rewards,
            states,
            keyframes,
        };
        seg.validate().map_err(err)?;
        Ok(seg)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample(steps: u32) -> Segment {
        let mem = |addr: u16| match addr {
            zelda::ram::GAME_MODE => 0x0B,
            zelda::ram::HEALTH => 24,
            zelda::ram::MAX_HEARTS => 3,
            _ => 0,
        };
        let state = GameState::read(&mem);
        let mut states = Vec::new();
        for i in 0..steps {
            let mut s = state;
            s.x = (i % 160) as u8;
            states.push(s);
        }
        let keyframes: Vec<u32> = (0..steps)
            .filter(|s| s % 32 == 0 || *s == steps - 1)
            .collect();
        Segment {
            meta: SegmentMeta {
                format: FORMAT_NAME.into(),
                version: FORMAT_VERSION,
                run: "test-run".into(),
                burst: 0,
                worker: 1,
                env: 2,
                index: 3,
                episode: 1,
                episode_step: 0,
                global_step: 0,
                steps,
                ended: Some(EpisodeEnd::Truncated),
                cartridge_sha1: "00".repeat(20),
                cartridge_title: "TEST".into(),
                emulator_version: "0".into(),
                config_hash: config_hash(&EnvConfig::default()),
                env_config: EnvConfig::default(),
                actions: vec!["noop".into(), "right".into()],
                reward_components: vec!["a".into(), "b".into()],
                keyframe_interval: 32,
                keyframes: keyframes.clone(),
                policy: "random".into(),
                start: state,
            },
            start_state: vec![7; 1000],
            actions: (0..steps).map(|i| (i % 2) as u8).collect(),
            rewards: (0..steps * 2).map(|i| i as f32 * 0.5).collect(),
            states,
            keyframes: keyframes
                .iter()
                .map(|&step| Keyframe {
                    step,
                    png: vec![step as u8; 40],
                })
                .collect(),
        }
    }

    #[test]
    fn round_trip_is_exact_and_deterministic() {
        let seg = sample(100);
        let a = seg.encode().unwrap();
        let b = seg.encode().unwrap();
        assert_eq!(a, b, "encoding is deterministic");
        let back = Segment::decode(&a, "x.seg").unwrap();
        assert_eq!(back, seg);
        assert_eq!(seg.key(), "test-run/segments/001-002/00000003.seg");
        assert_eq!(seg.step_rewards()[1], 1.0 + 1.5);
    }

    #[test]
    fn corruption_is_detected_and_named() {
        let seg = sample(64);
        let bytes = seg.encode().unwrap();
        // Truncated.
        let e = Segment::decode(&bytes[..bytes.len() / 2], "runs/r/x.seg").unwrap_err();
        assert!(e.to_string().contains("runs/r/x.seg"), "{e}");
        // Not zstd.
        let e = Segment::decode(b"hello world", "y.seg").unwrap_err();
        assert!(e.to_string().contains("not a zstd stream"), "{e}");
        // A flipped byte inside a member: re-pack the tar with one member changed.
        let mut tar_bytes = Vec::new();
        zstd::Decoder::new(bytes.as_slice())
            .unwrap()
            .read_to_end(&mut tar_bytes)
            .unwrap();
        let pos = tar_bytes
            .windows(4)
            .position(|w| w == [7, 7, 7, 7])
            .unwrap();
        tar_bytes[pos] = 8;
        let repacked = zstd::encode_all(tar_bytes.as_slice(), 3).unwrap();
        let e = Segment::decode(&repacked, "z.seg").unwrap_err();
        assert!(
            e.to_string().contains("start.state: checksum mismatch"),
            "{e}"
        );
    }

    #[test]
    fn wrong_version_is_reported_as_such() {
        let mut seg = sample(10);
        seg.meta.version = 2;
        assert!(seg.encode().unwrap_err().contains("version 2"));
        // Forge a v2 object by bypassing validate: encode v1, then patch meta.json.
        let mut seg = sample(10);
        let bytes = seg.encode().unwrap();
        let mut tar_bytes = Vec::new();
        zstd::Decoder::new(bytes.as_slice())
            .unwrap()
            .read_to_end(&mut tar_bytes)
            .unwrap();
        let text = String::from_utf8_lossy(&tar_bytes).into_owned();
        assert!(text.contains("\"version\": 1"));
        seg.meta.version = 1;
        let patched = tar_bytes
            .windows(12)
            .position(|w| w == b"\"version\": 1")
            .unwrap();
        tar_bytes[patched + 11] = b'2';
        // Fix the checksum line for meta.json so only the version is wrong.
        let mut archive = tar::Archive::new(tar_bytes.as_slice());
        let mut members = Vec::new();
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut d = Vec::new();
            e.read_to_end(&mut d).unwrap();
            members.push((name, d));
        }
        let meta = members[0].1.clone();
        let sums = String::from_utf8(members.last().unwrap().1.clone()).unwrap();
        let first = sums
            .lines()
            .next()
            .unwrap()
            .split_once("  ")
            .unwrap()
            .0
            .to_string();
        let fixed = sums.replace(&first, &hex::encode(Sha256::digest(&meta)));
        let n = members.len();
        members[n - 1].1 = fixed.into_bytes();
        let mut b = tar::Builder::new(Vec::new());
        for (name, d) in &members {
            let mut h = tar::Header::new_ustar();
            h.set_size(d.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, name, d.as_slice()).unwrap();
        }
        let z = zstd::encode_all(b.into_inner().unwrap().as_slice(), 3).unwrap();
        let e = Segment::decode(&z, "v2.seg").unwrap_err();
        assert!(
            e.to_string().contains("format version 2 is not supported"),
            "{e}"
        );
    }

    #[test]
    fn inconsistent_lengths_are_rejected() {
        let mut seg = sample(10);
        seg.actions.pop();
        assert!(seg.encode().unwrap_err().contains("actions.bin"));
        let mut seg = sample(10);
        seg.actions[3] = 9;
        assert!(seg.encode().unwrap_err().contains("offset 3"));
    }

    #[test]
    fn config_hash_ignores_key_order() {
        let a = serde_json::json!({"a": 1, "b": {"c": 2, "d": 3}});
        let b = serde_json::json!({"b": {"d": 3, "c": 2}, "a": 1});
        assert_eq!(config_hash(&a), config_hash(&b));
    }
}
