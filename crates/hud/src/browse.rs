//! What the HUD reads from the store: runs, their segments, segment replays, and the
//! evaluator's scores.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use base64::Engine as _;
use episodes::{Segment, Store};
use serde::Serialize;
use serde_json::Value;

/// Segments listed per run at most (the newest ones).
pub const MAX_SEGMENTS_LISTED: usize = 2000;
/// Score lines returned at most (the latest ones).
pub const MAX_SCORES: usize = 30;
/// Replays kept in memory.
const REPLAY_CACHE: usize = 8;

/// Why a browse request failed; the message goes to the page.
#[derive(Debug, thiserror::Error)]
pub enum BrowseError {
    /// Something the page sent is not acceptable.
    #[error("{0}")]
    BadRequest(String),
    /// The object does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] episodes::StoreError),
    /// A stored segment is unreadable.
    #[error(transparent)]
    Segment(#[from] episodes::SegmentError),
}

/// Checks a run id (the same alphabet the CLI accepts).
pub fn check_run(run: &str) -> Result<(), BrowseError> {
    let ok = !run.is_empty()
        && run.len() <= 128
        && !run.starts_with('.')
        && run
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(BrowseError::BadRequest(format!("`{run}` is not a run id")))
    }
}

/// Checks a segment key: `<run>/segments/<worker>-<env>/<index>.seg`, nothing else.
pub fn check_segment_key(key: &str) -> Result<(), BrowseError> {
    let bad = || {
        BrowseError::BadRequest(format!(
            "`{key}` is not a segment key (<run>/segments/<worker>-<env>/<index>.seg)"
        ))
    };
    let parts: Vec<&str> = key.split('/').collect();
    if parts.len() != 4 || parts[1] != "segments" || !parts[3].ends_with(".seg") {
        return Err(bad());
    }
    check_run(parts[0]).map_err(|_| bad())?;
    let simple = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && !s.contains("..")
    };
    if !simple(parts[2]) || !simple(parts[3]) {
        return Err(bad());
    }
    Ok(())
}

/// A segment key from a segment id (`<run>/<worker>-<env>/<index>`, as the evaluator
/// records) or a key.
pub fn key_from_id(id: &str) -> Result<String, BrowseError> {
    if id.ends_with(".seg") {
        check_segment_key(id)?;
        return Ok(id.to_string());
    }
    let (run, rest) = id.split_once('/').ok_or_else(|| {
        BrowseError::BadRequest(format!(
            "`{id}` is not a segment id (<run>/<worker>-<env>/<index>)"
        ))
    })?;
    let key = format!("{run}/segments/{rest}.seg");
    check_segment_key(&key)?;
    Ok(key)
}

/// One listed segment.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentEntry {
    /// Object key.
    pub key: String,
    /// `<worker>-<env>` folder.
    pub stream: String,
    /// Index within the stream.
    pub index: String,
    /// Bytes.
    pub size: u64,
}

/// Lists the segments of `run`, the newest (by stream, then index) last, at most
/// [`MAX_SEGMENTS_LISTED`].
pub async fn list_segments(
    store: &Store,
    run: &str,
) -> Result<(Vec<SegmentEntry>, usize), BrowseError> {
    check_run(run)?;
    let prefix = episodes::segment::segments_prefix(run);
    let all = store.list(&prefix).await?;
    let mut out: Vec<SegmentEntry> = all
        .into_iter()
        .filter(|o| o.key.ends_with(".seg"))
        .filter_map(|o| {
            let rest = o.key.strip_prefix(&prefix)?.trim_start_matches('/');
            let (stream, file) = rest.split_once('/')?;
            Some(SegmentEntry {
                stream: stream.to_string(),
                index: file.trim_end_matches(".seg").to_string(),
                key: o.key.clone(),
                size: o.size,
            })
        })
        .collect();
    let total = out.len();
    if out.len() > MAX_SEGMENTS_LISTED {
        out.drain(..out.len() - MAX_SEGMENTS_LISTED);
    }
    Ok((out, total))
}

/// The run ids found at the top of the store (folders holding `segments/` or `scores/`).
pub async fn list_runs(store: &Store) -> Result<Vec<String>, BrowseError> {
    let all = store.list("").await?;
    let mut runs = BTreeSet::new();
    for o in all {
        let mut parts = o.key.splitn(3, '/');
        if let (Some(run), Some(kind)) = (parts.next(), parts.next())
            && matches!(kind, "segments" | "scores")
            && check_run(run).is_ok()
        {
            runs.insert(run.to_string());
        }
    }
    Ok(runs.into_iter().collect())
}

/// A decoded segment played back for the page.
#[derive(Debug, Clone, Serialize)]
pub struct Replay {
    /// Object key.
    pub key: String,
    /// `replay` (every step re-emulated and checked against the recording) or `keyframes`
    /// (the ROM given to the HUD is not the segment's cartridge: stored keyframes only).
    pub mode: &'static str,
    /// Why the mode is `keyframes`, or what a failed replay reported.
    pub note: Option<String>,
    /// Segment metadata (run, worker, env, episode, steps, policy, cartridge, ...).
    pub meta: Value,
    /// Frames: `(step, base64 PNG)`.
    pub frames: Vec<(u32, String)>,
    /// Per step: room, x, y, health, rupees, keys and the step's total reward.
    pub steps: Vec<Value>,
    /// Sum of rewards.
    pub total_reward: f32,
}

/// Replays a segment: through the emulator when `rom` is the segment's cartridge,
/// otherwise from its keyframes.
pub fn replay_segment(seg: &Segment, rom: &[u8]) -> Replay {
    let b64 = base64::engine::general_purpose::STANDARD;
    let rewards = seg.step_rewards();
    let steps = seg
        .states
        .iter()
        .enumerate()
        .map(|(i, s)| {
            serde_json::json!({
                "room": s.room.describe(),
                "x": s.x, "y": s.y, "health": s.health, "max_hearts": s.max_hearts,
                "rupees": s.rupees, "keys": s.small_keys, "instruments": s.instrument_count(),
                "reward": rewards.get(i).copied().unwrap_or(0.0),
            })
        })
        .collect();
    let mut meta = serde_json::to_value(&seg.meta).unwrap_or(Value::Null);
    if let Some(m) = meta.as_object_mut() {
        // The start state is large and says nothing to a person.
        m.remove("start");
        m.remove("env_config");
    }
    let keyframes = || -> Vec<(u32, String)> {
        seg.keyframes
            .iter()
            .map(|k| (k.step, b64.encode(&k.png)))
            .collect()
    };
    let mut frames = Vec::with_capacity(seg.states.len());
    let (mode, note, frames) = match episodes::replay(seg, rom, |step, frame| {
        frames.push((step, b64.encode(episodes::frames::encode_png(frame))));
    }) {
        Ok(_) => ("replay", None, frames),
        Err(e @ episodes::ReplayError::WrongCartridge { .. }) => (
            "keyframes",
            Some(format!(
                "{e}; showing the stored keyframes (start the HUD with --rom to replay every step)"
            )),
            keyframes(),
        ),
        Err(e) => (
            "keyframes",
            Some(format!("replay failed: {e}; showing the stored keyframes")),
            keyframes(),
        ),
    };
    Replay {
        key: seg.key(),
        mode,
        note,
        meta,
        frames,
        steps,
        total_reward: seg.total_reward(),
    }
}

/// A small LRU of replays (replaying a long segment costs tens of milliseconds).
#[derive(Default)]
pub struct ReplayCache {
    items: VecDeque<(String, Arc<String>)>,
}

impl ReplayCache {
    /// The cached JSON of `key`.
    pub fn get(&mut self, key: &str) -> Option<Arc<String>> {
        let pos = self.items.iter().position(|(k, _)| k == key)?;
        let item = self.items.remove(pos)?;
        let v = item.1.clone();
        self.items.push_back(item);
        Some(v)
    }

    /// Stores the JSON of `key`.
    pub fn put(&mut self, key: String, json: Arc<String>) {
        self.items.retain(|(k, _)| *k != key);
        self.items.push_back((key, json));
        while self.items.len() > REPLAY_CACHE {
            self.items.pop_front();
        }
    }
}

/// One score line, reduced to what the page shows. The evaluator's line format is its own;
/// the HUD reads the fields it knows by name and keeps the rest for a tooltip.
#[derive(Debug, Clone, Serialize)]
pub struct ScoreView {
    /// Which object and line it came from.
    pub source: String,
    /// Segment id or key.
    pub segment: Option<String>,
    /// The segment's key, when it could be derived.
    pub key: Option<String>,
    /// Combined score.
    pub score: Option<f64>,
    /// The first one-line summary in the line (the vision judge's).
    pub summary: Option<String>,
    /// Per-judge scores or statuses found (`route -> value`).
    pub judges: Vec<(String, String)>,
    /// Offline judge or a model.
    pub backend: Option<String>,
    /// The whole line.
    pub raw: Value,
}

fn find_key<'a>(v: &'a Value, names: &[&str], depth: usize) -> Option<&'a Value> {
    let obj = v.as_object()?;
    for n in names {
        if let Some(x) = obj.get(*n) {
            return Some(x);
        }
    }
    if depth == 0 {
        return None;
    }
    obj.values().find_map(|x| match x {
        Value::Object(_) => find_key(x, names, depth - 1),
        Value::Array(a) => a.iter().find_map(|y| find_key(y, names, depth - 1)),
        _ => None,
    })
}

/// Reduces one parsed score line.
pub fn score_view(source: String, v: Value) -> ScoreView {
    let segment = find_key(
        &v,
        &["segment", "segment_id", "segment_key", "key", "id"],
        0,
    )
    .and_then(Value::as_str)
    .map(str::to_string);
    let key = v
        .get("key")
        .and_then(Value::as_str)
        .and_then(|k| check_segment_key(k).ok().map(|()| k.to_string()))
        .or_else(|| segment.as_deref().and_then(|s| key_from_id(s).ok()));
    let score = ["combined_score", "combined", "score", "total"]
        .iter()
        .find_map(|k| match v.get(*k) {
            Some(Value::Number(n)) => n.as_f64(),
            Some(Value::Object(o)) => o
                .get("score")
                .or_else(|| o.get("value"))
                .and_then(Value::as_f64),
            _ => None,
        });
    let summary = find_key(&v, &["summary"], 4)
        .and_then(Value::as_str)
        .map(str::to_string);
    // The evaluator records `evaluator: {backend, gateway}`; the judges' own records carry a
    // model name too.
    let backend = v
        .pointer("/evaluator/backend")
        .or_else(|| find_key(&v, &["backend", "judge_backend"], 0))
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| {
            v.get("offline")
                .and_then(Value::as_bool)
                .filter(|b| *b)
                .map(|_| "offline".to_string())
        });
    let mut judges = Vec::new();
    if let Some(obj) = ["judges", "results", "routes"]
        .iter()
        .find_map(|k| v.get(*k).and_then(Value::as_object))
    {
        for (route, r) in obj.iter().filter(|(_, r)| !r.is_null()) {
            let status = r.get("status").and_then(Value::as_str).map(str::to_string);
            let progress = find_key(r, &["progress", "score"], 2).and_then(Value::as_f64);
            let text = match (progress, status) {
                (Some(p), _) => format!("{p}"),
                (None, Some(s)) => s,
                (None, None) => "-".into(),
            };
            judges.push((route.clone(), text));
        }
        judges.sort();
    }
    ScoreView {
        source,
        segment,
        key,
        score,
        summary,
        judges,
        backend,
        raw: v,
    }
}

/// Reads every JSON line under `<run>/scores/` and returns the latest [`MAX_SCORES`]
/// (later files and later lines are newer). Unreadable lines are reported, not fatal.
pub async fn read_scores(
    store: &Store,
    run: &str,
) -> Result<(Vec<ScoreView>, usize, Vec<String>), BrowseError> {
    check_run(run)?;
    let objects = store.list(&format!("{run}/scores")).await?;
    let mut views = Vec::new();
    let mut problems = Vec::new();
    let mut total = 0usize;
    for o in objects
        .iter()
        .filter(|o| o.key.ends_with(".jsonl") || o.key.ends_with(".json"))
    {
        let Some(bytes) = store.get_opt(&o.key).await? else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Value>(line) {
                Ok(v) if v.is_object() => {
                    total += 1;
                    views.push(score_view(format!("{}:{}", o.key, i + 1), v));
                }
                Ok(_) => problems.push(format!("{}:{}: not a JSON object", o.key, i + 1)),
                // A line being written right now can be cut; the next poll reads it whole.
                Err(e) => problems.push(format!("{}:{}: {e}", o.key, i + 1)),
            }
        }
    }
    if views.len() > MAX_SCORES {
        views.drain(..views.len() - MAX_SCORES);
    }
    views.reverse();
    problems.truncate(10);
    Ok((views, total, problems))
}

/// The keyframe a judge saw: the segment's last stored screen (PNG).
pub async fn keyframe(
    store: &Store,
    key: &str,
    cache: &mut HashMap<String, Vec<u8>>,
) -> Result<Vec<u8>, BrowseError> {
    check_segment_key(key)?;
    if let Some(png) = cache.get(key) {
        return Ok(png.clone());
    }
    let bytes = store
        .get_opt(key)
        .await?
        .ok_or_else(|| BrowseError::NotFound(format!("no segment {key} in the store")))?;
    let seg = Segment::decode(&bytes, key)?;
    let png = seg
        .keyframes
        .last()
        .map(|k| k.png.clone())
        .ok_or_else(|| BrowseError::NotFound(format!("segment {key} has no keyframes")))?;
    if cache.len() > 256 {
        cache.clear();
    }
    cache.insert(key.to_string(), png.clone());
    Ok(png)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_keys_are_checked() {
        check_segment_key("run-1/segments/000-001/00000003.seg").unwrap();
        for bad in [
            "../x/segments/a/b.seg",
            "run/segments/../b.seg",
            "run/other/a/b.seg",
            "run/segments/a/b.txt",
            "run/segments/a/b/c.seg",
            "/etc/passwd",
        ] {
            assert!(check_segment_key(bad).is_err(), "{bad}");
        }
        assert_eq!(
            key_from_id("r/000-001/00000002").unwrap(),
            "r/segments/000-001/00000002.seg"
        );
        assert!(key_from_id("nonsense").is_err());
    }

    #[test]
    fn score_lines_of_several_shapes() {
        let v = serde_json::json!({
            "segment": "r/000-001/00000002",
            "combined": {"score": 0.75},
            "judges": {"vision": {"status": "ok", "result": {"summary": "Link walks east", "progress": 6}},
                       "state": {"status": "error"}},
            "backend": "offline"
        });
        let s = score_view("r/scores/a.jsonl:1".into(), v);
        assert_eq!(s.key.as_deref(), Some("r/segments/000-001/00000002.seg"));
        assert_eq!(s.score, Some(0.75));
        assert_eq!(s.summary.as_deref(), Some("Link walks east"));
        assert_eq!(s.backend.as_deref(), Some("offline"));
        assert!(
            s.judges.contains(&("vision".into(), "6".into())),
            "{:?}",
            s.judges
        );
        assert!(
            s.judges.contains(&("state".into(), "error".into())),
            "{:?}",
            s.judges
        );
        let flat = score_view(
            "x".into(),
            serde_json::json!({"segment_id": "r/000-000/00000000", "combined_score": 3}),
        );
        assert_eq!(flat.score, Some(3.0));
        assert!(flat.summary.is_none());
    }

    #[test]
    fn the_evaluators_score_lines() {
        // The shape `zelda-rl evaluate` writes (crates/evaluator/src/lines.rs, ScoreLine).
        let line = serde_json::json!({
            "schema": "zelda-rl.scores", "version": 1,
            "segment": "r/000-001/00000002", "key": "r/segments/000-001/00000002.seg",
            "run": "r", "worker": 0, "env": 1, "index": 2,
            "status": "partial", "error": null,
            "judges": {
                "vision": {"task": "vision", "route": "vision", "backend": "offline", "model": "offline",
                           "status": "ok", "result": {"summary": "Link enters a new room", "progress": 4,
                           "novelty": 6, "danger": 1}, "error": null, "attempts": 0, "latency_s": 0.0},
                "state": {"task": "state", "route": "state", "backend": "offline", "model": "offline",
                          "status": "failed", "result": null, "error": {"kind": "timeout", "message": "x"}},
                "puzzle": null, "dialog": null
            },
            "combined": {"score": 0.4, "from": ["vision"]},
            "evaluator": {"version": "0.1.0", "backend": "offline", "gateway": null}
        });
        let s = score_view("r/scores/scores.jsonl:1".into(), line);
        assert_eq!(s.segment.as_deref(), Some("r/000-001/00000002"));
        assert_eq!(s.key.as_deref(), Some("r/segments/000-001/00000002.seg"));
        assert_eq!(s.score, Some(0.4));
        assert_eq!(s.summary.as_deref(), Some("Link enters a new room"));
        assert_eq!(s.backend.as_deref(), Some("offline"));
        assert_eq!(
            s.judges,
            [
                ("state".to_string(), "failed".to_string()),
                ("vision".to_string(), "4".to_string())
            ]
        );
    }

    #[test]
    fn replay_cache_is_bounded_lru() {
        let mut c = ReplayCache::default();
        for i in 0..10 {
            c.put(format!("k{i}"), Arc::new(i.to_string()));
        }
        assert!(c.get("k0").is_none());
        assert_eq!(c.get("k9").unwrap().as_str(), "9");
    }
}
