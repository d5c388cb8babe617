//! The JSON lines the evaluator writes: one per segment (score mode) or per pair of segments
//! (compare mode), each self-describing with a schema name and version.

use judges::{
    Backend, Comparison, DialogAdvice, JudgeRecord, Preference, PuzzlePlan, StateScore, Status,
    VisionScore,
};
use serde::{Deserialize, Serialize};

/// `schema` of score lines.
pub const SCORES_SCHEMA: &str = "zelda-rl-scores";
/// `schema` of preference lines.
pub const PREFERENCES_SCHEMA: &str = "zelda-rl-preferences";
/// `version` of both line schemas; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// Which segment a line is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentRef {
    /// `<run>/<worker>-<env>/<index>`, as `episodes::Segment::id`.
    pub segment: String,
    /// The object key.
    pub key: String,
    /// Run id.
    pub run: String,
    /// Rollout worker.
    pub worker: u32,
    /// Environment within the worker.
    pub env: u32,
    /// Segment index within (worker, env).
    pub index: u64,
    /// Where the segment sits in its environment's steps, when it could be read.
    pub steps: Option<StepRange>,
    /// Episode number, when the segment could be read.
    pub episode: Option<u64>,
    /// Training burst, when the segment could be read.
    pub burst: Option<u32>,
}

/// The environment steps a segment covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRange {
    /// Global step of the first action (0-based over all of the environment's episodes).
    pub first: u64,
    /// Global step of the last action.
    pub last: u64,
    /// Number of actions.
    pub count: u32,
}

/// How a line turned out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineStatus {
    /// Every judge asked answered.
    Ok,
    /// Some judges answered, some failed.
    Partial,
    /// Every judge asked failed.
    Failed,
    /// The segment could not be read; no judge was asked.
    InvalidSegment,
}

impl LineStatus {
    /// From the statuses of the judges asked.
    pub fn from_judges(statuses: &[Status]) -> Self {
        let ok = statuses.iter().filter(|s| **s == Status::Ok).count();
        if ok == statuses.len() {
            LineStatus::Ok
        } else if ok == 0 {
            LineStatus::Failed
        } else {
            LineStatus::Partial
        }
    }
}

/// Who produced a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// `evaluator` crate version.
    pub version: String,
    /// Gateway models or the offline heuristic.
    pub backend: Backend,
    /// The gateway URL (gateway backend only).
    pub gateway: Option<String>,
}

/// The judges' answers about one segment; a judge that does not apply is absent.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ScoreJudges {
    /// `/vision`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub vision: Option<JudgeRecord<VisionScore>>,
    /// `/state`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub state: Option<JudgeRecord<StateScore>>,
    /// `/puzzle` (segments inside dungeon rooms).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub puzzle: Option<JudgeRecord<PuzzlePlan>>,
    /// `/dialog` (segments with a dialog box open).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub dialog: Option<JudgeRecord<DialogAdvice>>,
}

impl ScoreJudges {
    /// The status of every judge asked.
    pub fn statuses(&self) -> Vec<Status> {
        [
            self.vision.as_ref().map(|r| r.status),
            self.state.as_ref().map(|r| r.status),
            self.puzzle.as_ref().map(|r| r.status),
            self.dialog.as_ref().map(|r| r.status),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

/// One number per segment for the reward model, from the judges that answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Combined {
    /// 0..=1: the mean of the answering judges' progress (each 0..=10) divided by 10, plus
    /// 0.1 when the puzzle judge says the room's puzzle advanced (capped at 1).
    pub score: f64,
    /// The judges that contributed.
    pub from: Vec<String>,
}

impl Combined {
    /// Combines the judges' answers; `None` when neither progress judge answered.
    pub fn from_judges(j: &ScoreJudges) -> Option<Self> {
        let mut progress = Vec::new();
        let mut from = Vec::new();
        if let Some(v) = j.vision.as_ref().and_then(JudgeRecord::ok) {
            progress.push(f64::from(v.progress));
            from.push("vision".to_string());
        }
        if let Some(s) = j.state.as_ref().and_then(JudgeRecord::ok) {
            progress.push(f64::from(s.progress));
            from.push("state".to_string());
        }
        if progress.is_empty() {
            return None;
        }
        let mut score = progress.iter().sum::<f64>() / progress.len() as f64 / 10.0;
        if let Some(p) = j.puzzle.as_ref().and_then(JudgeRecord::ok) {
            from.push("puzzle".to_string());
            if p.puzzle_advanced {
                score += 0.1;
            }
        }
        Some(Self {
            score: score.min(1.0),
            from,
        })
    }
}

/// One line of the scores file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreLine {
    /// Always [`SCORES_SCHEMA`].
    pub schema: String,
    /// Always [`SCHEMA_VERSION`].
    pub version: u32,
    /// The segment.
    #[serde(flatten)]
    pub segment: SegmentRef,
    /// How it turned out.
    pub status: LineStatus,
    /// Why the segment could not be read (`invalid_segment` only).
    pub error: Option<String>,
    /// Each judge's record.
    pub judges: ScoreJudges,
    /// The combined score, when a progress judge answered.
    pub combined: Option<Combined>,
    /// Who produced it.
    pub evaluator: Provenance,
}

/// The judges' answers about one pair.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CompareJudges {
    /// `/vision` compare mode.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub vision_compare: Option<JudgeRecord<Comparison>>,
    /// `/state` compare mode.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub state_compare: Option<JudgeRecord<Comparison>>,
}

/// The pair's label for Bradley-Terry training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairLabel {
    /// Probability that the first segment made more progress: the mean of the answering
    /// judges' labels (first = 1, second = 0, tie = 0.5).
    pub first_wins: f64,
    /// The judges that contributed.
    pub from: Vec<String>,
}

impl PairLabel {
    /// Combines the judges' preferences; `None` when none answered.
    pub fn from_judges(j: &CompareJudges) -> Option<Self> {
        let mut votes: Vec<f64> = Vec::new();
        let mut from = Vec::new();
        for (name, rec) in [
            ("vision_compare", &j.vision_compare),
            ("state_compare", &j.state_compare),
        ] {
            if let Some(c) = rec.as_ref().and_then(JudgeRecord::ok) {
                votes.push(c.more_progress.first_wins_probability());
                from.push(name.to_string());
            }
        }
        (!votes.is_empty()).then(|| Self {
            first_wins: votes.iter().sum::<f64>() / votes.len() as f64,
            from,
        })
    }

    /// The label as a preference (above 0.5 first, below second, else tie).
    pub fn preference(&self) -> Preference {
        if self.first_wins > 0.5 {
            Preference::First
        } else if self.first_wins < 0.5 {
            Preference::Second
        } else {
            Preference::Tie
        }
    }
}

/// One line of the preferences file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreferenceLine {
    /// Always [`PREFERENCES_SCHEMA`].
    pub schema: String,
    /// Always [`SCHEMA_VERSION`].
    pub version: u32,
    /// `<first segment id>|<second segment id>`.
    pub pair: String,
    /// The segment shown first.
    pub first: SegmentRef,
    /// The segment shown second.
    pub second: SegmentRef,
    /// How it turned out.
    pub status: LineStatus,
    /// Why a segment could not be read (`invalid_segment` only).
    pub error: Option<String>,
    /// Each judge's record.
    pub judges: CompareJudges,
    /// The label, when a judge answered.
    pub label: Option<PairLabel>,
    /// Who produced it.
    pub evaluator: Provenance,
}
