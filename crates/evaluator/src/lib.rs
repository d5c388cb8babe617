//! The evaluator: a run's segments -> LLM judges -> one JSON line per segment.
//!
//! Resumable and idempotent. Each segment's line is first stored as its own object
//! (`<run>/scores/<out>.parts/<worker>-<env>/<index>.json`, written once with
//! [`episodes::Store::put_new`]), so a run killed at any moment loses at most the segments
//! in flight, and a rerun skips every segment that has its object. At the end the lines are
//! gathered, sorted by segment, into `<run>/scores/<out>` with one atomic replace. A rerun
//! over the same segments therefore always ends with exactly one line per segment.
//!
//! Judge failures (unreachable gateway, timeouts, replies off the schema) are recorded in the
//! line and never stop the run; so are segments that cannot be read. Only store failures
//! stop it, and a rerun picks up where it stopped.

pub mod lines;
pub mod metrics;
pub mod pairs;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use episodes::{PutOutcome, Segment, Store, StoreError};
use judges::{Judges, Keyframe, SegmentInput, Task};
use serde::{Deserialize, Serialize};

pub use lines::{
    Combined, CompareJudges, LineStatus, PairLabel, PreferenceLine, Provenance, ScoreJudges,
    ScoreLine, SegmentRef, StepRange,
};
pub use metrics::{JudgeCall, JudgeSink, Metrics};

/// What the evaluator asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Score each segment (`/vision`, `/state`, and `/puzzle`, `/dialog` where they apply).
    Score,
    /// Ask `/vision` and `/state` which of two segments made more progress.
    Compare,
}

impl Mode {
    /// The default output name under `<run>/scores/`.
    pub fn default_out(self) -> &'static str {
        match self {
            Mode::Score => "scores.jsonl",
            Mode::Compare => "preferences.jsonl",
        }
    }
}

/// How to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Run id: segments are read from `<run>/segments/`.
    pub run: String,
    /// The judges (gateway or offline).
    pub judges: Judges,
    /// Score or compare.
    pub mode: Mode,
    /// Segments (or pairs) judged at once.
    pub concurrency: usize,
    /// Output file name under `<run>/scores/`.
    pub out: String,
    /// Judge again the segments whose line has a failed judge, replacing their line.
    pub retry_failed: bool,
    /// Seed of the compare-mode pairing.
    pub seed: u64,
    /// Draw a progress bar (on a terminal); otherwise progress goes to the log.
    pub progress: bool,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Segments (score mode) or pairs (compare mode) in the run.
    pub items: usize,
    /// Already judged by an earlier run, skipped.
    pub skipped: usize,
    /// Judged by this run.
    pub judged: usize,
    /// Of those, every judge answered.
    pub ok: usize,
    /// Of those, some judges failed.
    pub partial: usize,
    /// Of those, every judge failed.
    pub failed: usize,
    /// Of those, a segment could not be read.
    pub invalid: usize,
    /// Segments left without a partner (compare mode).
    pub unpaired: usize,
    /// Lines in the output file.
    pub lines: usize,
    /// The output object's key.
    pub out_key: String,
}

/// A run that could not finish (a rerun resumes it).
#[derive(Debug, thiserror::Error)]
pub enum EvaluateError {
    /// Bad options.
    #[error("{0}")]
    Options(String),
    /// The store failed.
    #[error(transparent)]
    Store(Box<StoreError>),
    /// A line could not be encoded (a bug).
    #[error("encoding a line: {0}")]
    Encode(#[from] serde_json::Error),
    /// A worker task panicked (a bug).
    #[error("a worker task failed: {0}")]
    Task(String),
}

impl From<StoreError> for EvaluateError {
    fn from(e: StoreError) -> Self {
        EvaluateError::Store(Box::new(e))
    }
}

fn check_name(what: &str, v: &str) -> Result<(), EvaluateError> {
    let bad = v.is_empty()
        || v.contains('/')
        || v.contains('\\')
        || v == "."
        || v == ".."
        || v.chars().any(char::is_control);
    if bad {
        return Err(EvaluateError::Options(format!(
            "{what} `{v}` must be a plain name (no `/`, not empty)"
        )));
    }
    Ok(())
}

/// One unit of work: a segment, or a pair.
#[derive(Debug, Clone)]
enum Item {
    Segment(String),
    Pair(String, String),
}

/// The part of a segment key below `<run>/segments/` without `.seg`, e.g. `001-002/00000003`.
fn relative(run: &str, key: &str) -> String {
    let prefix = format!("{}/", episodes::segment::segments_prefix(run));
    let rel = key.strip_prefix(&prefix).unwrap_or(key);
    rel.strip_suffix(".seg").unwrap_or(rel).to_string()
}

struct Layout {
    run: String,
    out_key: String,
    parts: String,
}

impl Layout {
    fn new(run: &str, out: &str) -> Self {
        Self {
            run: run.to_string(),
            out_key: format!("{run}/scores/{out}"),
            parts: format!("{run}/scores/{out}.parts/"),
        }
    }

    fn part_key(&self, item: &Item) -> String {
        match item {
            Item::Segment(k) => format!("{}{}.json", self.parts, relative(&self.run, k)),
            Item::Pair(a, b) => format!(
                "{}{}_vs_{}.json",
                self.parts,
                relative(&self.run, a).replace('/', "_"),
                relative(&self.run, b).replace('/', "_")
            ),
        }
    }

    /// The part key a stored line belongs to.
    fn part_key_of_line(&self, line: &serde_json::Value) -> Option<String> {
        if let Some(pair) = line.get("first").zip(line.get("second")) {
            let a = pair.0.get("key")?.as_str()?.to_string();
            let b = pair.1.get("key")?.as_str()?.to_string();
            return Some(self.part_key(&Item::Pair(a, b)));
        }
        Some(self.part_key(&Item::Segment(line.get("key")?.as_str()?.to_string())))
    }
}

/// Fields from the key alone, for segments that cannot be read.
fn segment_ref_from_key(run: &str, key: &str) -> SegmentRef {
    let (stream, index) = pairs::stream_and_index(key).unwrap_or_default();
    let (w, e) = stream.split_once('-').unwrap_or(("0", "0"));
    let (worker, env) = (w.parse().unwrap_or(0), e.parse().unwrap_or(0));
    SegmentRef {
        segment: format!("{run}/{worker:03}-{env:03}/{index:08}"),
        key: key.to_string(),
        run: run.to_string(),
        worker,
        env,
        index,
        steps: None,
        episode: None,
        burst: None,
    }
}

fn segment_ref(seg: &Segment, key: &str) -> SegmentRef {
    let m = &seg.meta;
    SegmentRef {
        segment: seg.id(),
        key: key.to_string(),
        run: m.run.clone(),
        worker: m.worker,
        env: m.env,
        index: m.index,
        steps: Some(StepRange {
            first: m.global_step,
            last: m.global_step + u64::from(m.steps.max(1)) - 1,
            count: m.steps,
        }),
        episode: Some(m.episode),
        burst: Some(m.burst),
    }
}

/// Reads and decodes a segment; `Err` is the reason it cannot be judged.
async fn load(store: &Store, key: &str) -> Result<Result<Segment, String>, StoreError> {
    let bytes = store.get(key).await?;
    let key = key.to_string();
    let decoded = tokio::task::spawn_blocking(move || Segment::decode(&bytes, &key))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    Ok(decoded)
}

/// A segment's keyframes for the judges, with steps made global like the state steps.
fn keyframes_of(seg: &Segment) -> Vec<Keyframe<'_>> {
    let base = seg.meta.global_step;
    seg.keyframes
        .iter()
        .map(|k| Keyframe {
            step: base + u64::from(k.step),
            png: &k.png,
        })
        .collect()
}

struct Judged {
    part_key: String,
    line: Bytes,
    status: LineStatus,
}

async fn judge_segment(
    store: &Store,
    judges: &Judges,
    metrics: &Metrics,
    provenance: &Provenance,
    run: &str,
    key: &str,
) -> Result<(Vec<u8>, LineStatus), EvaluateError> {
    let line = match load(store, key).await? {
        Err(reason) => {
            tracing::warn!(segment = key, error = %reason, "segment cannot be read; recorded as invalid");
            ScoreLine {
                schema: lines::SCORES_SCHEMA.into(),
                version: lines::SCHEMA_VERSION,
                segment: segment_ref_from_key(run, key),
                status: LineStatus::InvalidSegment,
                error: Some(reason),
                judges: ScoreJudges::default(),
                combined: None,
                evaluator: provenance.clone(),
            }
        }
        Ok(seg) => {
            let (id, keys) = (seg.id(), keyframes_of(&seg));
            let input = &SegmentInput {
                id: &id,
                first_step: seg.meta.global_step,
                states: &seg.states,
                keyframes: &keys,
            };
            let (vision, state, puzzle, dialog) = tokio::join!(
                judges.vision(input),
                judges.state(input),
                async {
                    if input.in_dungeon() {
                        Some(judges.puzzle(input).await)
                    } else {
                        None
                    }
                },
                async {
                    if input.dialog_seen() {
                        Some(judges.dialog(input).await)
                    } else {
                        None
                    }
                },
            );
            let judged = ScoreJudges {
                vision: Some(vision),
                state: Some(state),
                puzzle,
                dialog,
            };
            if let Some(r) = &judged.vision {
                metrics.observe(r);
            }
            if let Some(r) = &judged.state {
                metrics.observe(r);
            }
            if let Some(r) = &judged.puzzle {
                metrics.observe(r);
            }
            if let Some(r) = &judged.dialog {
                metrics.observe(r);
            }
            ScoreLine {
                schema: lines::SCORES_SCHEMA.into(),
                version: lines::SCHEMA_VERSION,
                segment: segment_ref(&seg, key),
                status: LineStatus::from_judges(&judged.statuses()),
                error: None,
                combined: Combined::from_judges(&judged),
                judges: judged,
                evaluator: provenance.clone(),
            }
        }
    };
    Ok((serde_json::to_vec(&line)?, line.status))
}

async fn judge_pair(
    store: &Store,
    judges: &Judges,
    metrics: &Metrics,
    provenance: &Provenance,
    run: &str,
    a: &str,
    b: &str,
) -> Result<(Vec<u8>, LineStatus), EvaluateError> {
    let (la, lb) = (load(store, a).await?, load(store, b).await?);
    let line = match (la, lb) {
        (Ok(sa), Ok(sb)) => {
            let (ida, ka, idb, kb) = (sa.id(), keyframes_of(&sa), sb.id(), keyframes_of(&sb));
            let ia = &SegmentInput {
                id: &ida,
                first_step: sa.meta.global_step,
                states: &sa.states,
                keyframes: &ka,
            };
            let ib = &SegmentInput {
                id: &idb,
                first_step: sb.meta.global_step,
                states: &sb.states,
                keyframes: &kb,
            };
            let (v, s) = tokio::join!(
                judges.compare(Task::VisionCompare, ia, ib),
                judges.compare(Task::StateCompare, ia, ib)
            );
            let judged = CompareJudges {
                vision_compare: Some(v),
                state_compare: Some(s),
            };
            for r in [
                judged.vision_compare.as_ref(),
                judged.state_compare.as_ref(),
            ]
            .into_iter()
            .flatten()
            {
                metrics.observe(r);
            }
            let statuses: Vec<_> = [&judged.vision_compare, &judged.state_compare]
                .iter()
                .filter_map(|r| r.as_ref().map(|r| r.status))
                .collect();
            PreferenceLine {
                schema: lines::PREFERENCES_SCHEMA.into(),
                version: lines::SCHEMA_VERSION,
                pair: format!("{}|{}", sa.id(), sb.id()),
                first: segment_ref(&sa, a),
                second: segment_ref(&sb, b),
                status: LineStatus::from_judges(&statuses),
                error: None,
                label: PairLabel::from_judges(&judged),
                judges: judged,
                evaluator: provenance.clone(),
            }
        }
        (ra, rb) => {
            let mut reasons = Vec::new();
            let first = match ra {
                Ok(s) => segment_ref(&s, a),
                Err(e) => {
                    reasons.push(e);
                    segment_ref_from_key(run, a)
                }
            };
            let second = match rb {
                Ok(s) => segment_ref(&s, b),
                Err(e) => {
                    reasons.push(e);
                    segment_ref_from_key(run, b)
                }
            };
            tracing::warn!(first = a, second = b, error = %reasons.join("; "), "pair cannot be read; recorded as invalid");
            PreferenceLine {
                schema: lines::PREFERENCES_SCHEMA.into(),
                version: lines::SCHEMA_VERSION,
                pair: format!("{}|{}", first.segment, second.segment),
                first,
                second,
                status: LineStatus::InvalidSegment,
                error: Some(reasons.join("; ")),
                judges: CompareJudges::default(),
                label: None,
                evaluator: provenance.clone(),
            }
        }
    };
    Ok((serde_json::to_vec(&line)?, line.status))
}

fn status_name(s: LineStatus) -> &'static str {
    match s {
        LineStatus::Ok => "ok",
        LineStatus::Partial => "partial",
        LineStatus::Failed => "failed",
        LineStatus::InvalidSegment => "invalid_segment",
    }
}

/// Lists the run's segments, judges those without a line yet, and writes the output file.
pub async fn evaluate(
    store: &Store,
    opts: &Options,
    metrics: &Metrics,
) -> Result<Summary, EvaluateError> {
    check_name("run id", &opts.run)?;
    check_name("output name", &opts.out)?;
    if opts.concurrency == 0 {
        return Err(EvaluateError::Options(
            "concurrency must be at least 1".into(),
        ));
    }
    store.check().await?;
    let layout = Layout::new(&opts.run, &opts.out);
    let provenance = Provenance {
        version: env!("CARGO_PKG_VERSION").to_string(),
        backend: opts.judges.backend(),
        gateway: match &opts.judges {
            Judges::Gateway(g) => Some(g.url().to_string()),
            Judges::Offline => None,
        },
    };

    let seg_keys: Vec<String> = store
        .list(&episodes::segment::segments_prefix(&opts.run))
        .await?
        .into_iter()
        .map(|o| o.key)
        .filter(|k| k.ends_with(".seg"))
        .collect();
    let mut summary = Summary {
        out_key: layout.out_key.clone(),
        ..Summary::default()
    };
    let items: Vec<Item> = match opts.mode {
        Mode::Score => seg_keys.iter().cloned().map(Item::Segment).collect(),
        Mode::Compare => {
            let (p, rest) = pairs::pairs(&seg_keys, opts.seed);
            summary.unpaired = rest.len();
            p.into_iter().map(|(a, b)| Item::Pair(a, b)).collect()
        }
    };
    summary.items = items.len();

    let existing: BTreeSet<String> = store
        .list(&layout.parts)
        .await?
        .into_iter()
        .map(|o| o.key)
        .collect();
    let mut redo: BTreeSet<String> = BTreeSet::new();
    if opts.retry_failed {
        for key in &existing {
            let bytes = store.get(key).await?;
            let status = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("status").and_then(|s| s.as_str()).map(str::to_string));
            if matches!(status.as_deref(), Some("partial" | "failed")) {
                redo.insert(key.clone());
            }
        }
        if !redo.is_empty() {
            // Lines are about to change under the compacted file: drop it first, so that if
            // this run is killed, the next one rebuilds it from the parts.
            store.delete(&layout.out_key).await?;
        }
    }
    let todo: Vec<Item> = items
        .iter()
        .filter(|it| {
            let pk = layout.part_key(it);
            !existing.contains(&pk) || redo.contains(&pk)
        })
        .cloned()
        .collect();
    summary.skipped = items.len() - todo.len();
    tracing::info!(
        run = %opts.run,
        mode = ?opts.mode,
        backend = ?opts.judges.backend(),
        items = items.len(),
        skipped = summary.skipped,
        to_judge = todo.len(),
        "evaluating"
    );
    for _ in 0..summary.skipped {
        metrics.finished("skipped");
    }

    let bar = if opts.progress {
        indicatif::ProgressBar::new(items.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {msg} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec}, eta {eta})",
        )
        .expect("valid template"),
    );
    bar.set_message(format!("evaluating {}", opts.run));
    bar.set_position(summary.skipped as u64);

    let mut written: BTreeMap<String, Bytes> = BTreeMap::new();
    let mut pending = todo.len() as u64;
    metrics.set_pending(pending);
    let mut queue = todo.into_iter();
    let mut tasks = tokio::task::JoinSet::new();
    let started = Instant::now();
    let mut last_log = Instant::now();
    loop {
        while tasks.len() < opts.concurrency {
            let Some(item) = queue.next() else { break };
            let (store, judges, metrics, provenance, run) = (
                store.clone(),
                opts.judges.clone(),
                metrics.clone(),
                provenance.clone(),
                opts.run.clone(),
            );
            let part_key = layout.part_key(&item);
            let replace = redo.contains(&part_key);
            tasks.spawn(async move {
                let (line, status) = match &item {
                    Item::Segment(k) => {
                        judge_segment(&store, &judges, &metrics, &provenance, &run, k).await?
                    }
                    Item::Pair(a, b) => {
                        judge_pair(&store, &judges, &metrics, &provenance, &run, a, b).await?
                    }
                };
                let mut line = line;
                line.push(b'\n');
                let line = Bytes::from(line);
                if replace {
                    store.put(&part_key, line.clone()).await?;
                } else if store.put_new(&part_key, line.clone()).await?
                    == PutOutcome::AlreadyPresent
                {
                    tracing::debug!(part = %part_key, "line already stored by another evaluator");
                }
                Ok::<_, EvaluateError>(Judged {
                    part_key,
                    line,
                    status,
                })
            });
        }
        let Some(done) = tasks.join_next().await else {
            break;
        };
        let judged = done.map_err(|e| EvaluateError::Task(e.to_string()))??;
        summary.judged += 1;
        match judged.status {
            LineStatus::Ok => summary.ok += 1,
            LineStatus::Partial => summary.partial += 1,
            LineStatus::Failed => summary.failed += 1,
            LineStatus::InvalidSegment => summary.invalid += 1,
        }
        metrics.finished(status_name(judged.status));
        pending -= 1;
        metrics.set_pending(pending);
        bar.inc(1);
        if !opts.progress && last_log.elapsed() >= Duration::from_secs(30) {
            last_log = Instant::now();
            tracing::info!(
                done = summary.skipped + summary.judged,
                of = summary.items,
                "progress"
            );
        }
        written.insert(judged.part_key, judged.line);
    }
    bar.finish_and_clear();

    summary.lines = compact(store, &layout, &written).await?;
    tracing::info!(
        judged = summary.judged,
        ok = summary.ok,
        partial = summary.partial,
        failed = summary.failed,
        invalid = summary.invalid,
        lines = summary.lines,
        seconds = started.elapsed().as_secs_f64(),
        out = %summary.out_key,
        "evaluation finished"
    );
    Ok(summary)
}

/// Gathers every part into the output file (one line per part, sorted by part key) and
/// replaces it atomically. Lines of the previous output file are reused for parts it
/// already holds, so only new parts are read back.
async fn compact(
    store: &Store,
    layout: &Layout,
    written: &BTreeMap<String, Bytes>,
) -> Result<usize, StoreError> {
    let parts: Vec<String> = store
        .list(&layout.parts)
        .await?
        .into_iter()
        .map(|o| o.key)
        .collect();
    let mut lines: BTreeMap<String, Bytes> = BTreeMap::new();
    if let Some(old) = store.get_opt(&layout.out_key).await? {
        for raw in old.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let Some(pk) = serde_json::from_slice::<serde_json::Value>(raw)
                .ok()
                .and_then(|v| layout.part_key_of_line(&v))
            else {
                tracing::warn!(file = %layout.out_key, "unreadable line in the previous output; rebuilding it from the parts");
                lines.clear();
                break;
            };
            let mut line = raw.to_vec();
            line.push(b'\n');
            lines.insert(pk, Bytes::from(line));
        }
    }
    for (k, v) in written {
        lines.insert(k.clone(), v.clone());
    }
    for pk in &parts {
        if !lines.contains_key(pk) {
            lines.insert(pk.clone(), store.get(pk).await?);
        }
    }
    let mut out = Vec::with_capacity(lines.values().map(Bytes::len).sum());
    for line in lines.values() {
        out.extend_from_slice(line);
        if !line.ends_with(b"\n") {
            out.push(b'\n');
        }
    }
    store.put(&layout.out_key, Bytes::from(out)).await?;
    Ok(lines.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_keys_follow_the_segment_keys() {
        let l = Layout::new("r1", "scores.jsonl");
        assert_eq!(
            l.part_key(&Item::Segment("r1/segments/001-002/00000003.seg".into())),
            "r1/scores/scores.jsonl.parts/001-002/00000003.json"
        );
        assert_eq!(
            l.part_key(&Item::Pair(
                "r1/segments/001-002/00000003.seg".into(),
                "r1/segments/000-001/00000003.seg".into()
            )),
            "r1/scores/scores.jsonl.parts/001-002_00000003_vs_000-001_00000003.json"
        );
        let line = serde_json::json!({"key": "r1/segments/001-002/00000003.seg"});
        assert_eq!(
            l.part_key_of_line(&line).unwrap(),
            "r1/scores/scores.jsonl.parts/001-002/00000003.json"
        );
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("run id", "run-1").is_ok());
        for bad in ["", "a/b", "..", "x\n"] {
            assert!(check_name("run id", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn keys_alone_give_the_segment_ref() {
        let r = segment_ref_from_key("r", "r/segments/003-004/00000012.seg");
        assert_eq!((r.worker, r.env, r.index), (3, 4, 12));
        assert_eq!(r.segment, "r/003-004/00000012");
    }
}
