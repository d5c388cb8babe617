//! LLM/VLM judges for game segments.
//!
//! Four routes under an OpenAI-compatible gateway (the llm-d gateway in front of vLLM):
//! `/vision` (keyframes + state text -> progress, novelty, danger, summary), `/state` (state
//! text -> progress, subgoals reached), `/puzzle` (dungeon segments -> plan, puzzle advanced),
//! `/dialog` (segments with a dialog box -> handled, next input), plus a compare mode on
//! `/vision` and `/state` (which of two segments made more progress, for the reward model).
//!
//! [`Judges`] is either the [`Gateway`] client or the [`offline`] heuristic judge; both return
//! the same [`JudgeRecord`]s. A failed call is a record with its reason, never a panic or an
//! early return, so a run always completes.

pub mod client;
pub mod config;
pub mod fixtures;
pub mod gateway;
pub mod input;
pub mod judgment;
pub mod offline;
pub mod prefix;
pub mod prompts;

use std::time::Instant;

use serde::{Deserialize, Serialize};

pub use client::{CallError, ErrorKind, Usage};
pub use config::{ConfigError, JudgesConfig, ResponseFormatStyle};
pub use gateway::Gateway;
pub use input::{Keyframe, SegmentInput};
pub use judgment::{
    Comparison, DialogAdvice, Input, Judgment, Preference, PuzzlePlan, StateScore, Subgoal,
    VisionScore,
};

/// A gateway route, one model pool behind each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// `/vision`: the vision-language model.
    Vision,
    /// `/dialog`: the dialog planner.
    Dialog,
    /// `/puzzle`: the puzzle planner.
    Puzzle,
    /// `/state`: the state judge.
    State,
}

impl Route {
    /// Every route.
    pub const ALL: [Route; 4] = [Route::Vision, Route::Dialog, Route::Puzzle, Route::State];

    /// The path segment (`vision`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Route::Vision => "vision",
            Route::Dialog => "dialog",
            Route::Puzzle => "puzzle",
            Route::State => "state",
        }
    }
}

/// What a judge is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Score a segment from keyframes and state text (`/vision`).
    Vision,
    /// Score a segment from state text (`/state`).
    State,
    /// Plan a dungeon room (`/puzzle`).
    Puzzle,
    /// Advise on a dialog (`/dialog`).
    Dialog,
    /// Compare two segments from keyframes and state text (`/vision`).
    VisionCompare,
    /// Compare two segments from state text (`/state`).
    StateCompare,
}

impl Task {
    /// Every task.
    pub const ALL: [Task; 6] = [
        Task::Vision,
        Task::State,
        Task::Puzzle,
        Task::Dialog,
        Task::VisionCompare,
        Task::StateCompare,
    ];

    /// The route it is sent to.
    pub fn route(self) -> Route {
        match self {
            Task::Vision | Task::VisionCompare => Route::Vision,
            Task::State | Task::StateCompare => Route::State,
            Task::Puzzle => Route::Puzzle,
            Task::Dialog => Route::Dialog,
        }
    }

    /// The snake_case name used in records.
    pub fn name(self) -> &'static str {
        match self {
            Task::Vision => "vision",
            Task::State => "state",
            Task::Puzzle => "puzzle",
            Task::Dialog => "dialog",
            Task::VisionCompare => "vision_compare",
            Task::StateCompare => "state_compare",
        }
    }

    /// Sends keyframes.
    pub fn uses_images(self) -> bool {
        matches!(self, Task::Vision | Task::VisionCompare)
    }

    /// Judges a pair of segments.
    pub fn is_compare(self) -> bool {
        matches!(self, Task::VisionCompare | Task::StateCompare)
    }
}

/// Where a result came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// A model behind the gateway.
    Gateway,
    /// The offline heuristic judge: no model was asked.
    Offline,
}

/// Whether the call produced a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// `result` holds the judgment.
    Ok,
    /// `error` says why there is none.
    Failed,
}

/// One judge's answer about one segment (or pair), with how it was obtained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeRecord<T> {
    /// What was asked.
    pub task: Task,
    /// The route asked.
    pub route: Route,
    /// Gateway model or offline heuristic.
    pub backend: Backend,
    /// The model name (for the offline judge, [`offline::MODEL`]).
    pub model: String,
    /// The prompt version and hash (for the offline judge, [`offline::MODEL`]).
    pub prompt: String,
    /// Ok or failed.
    pub status: Status,
    /// The judgment, when ok.
    pub result: Option<T>,
    /// Why it failed, when failed.
    pub error: Option<CallError>,
    /// HTTP attempts made, retries included (0 offline).
    pub attempts: u32,
    /// Wall time of the whole call, retries and waits included, in seconds.
    pub latency_s: f64,
    /// Tokens the server reported, summed over attempts.
    pub usage: Option<Usage>,
}

impl<T> JudgeRecord<T> {
    /// The judgment, if the call succeeded.
    pub fn ok(&self) -> Option<&T> {
        self.result.as_ref()
    }

    fn failed(
        task: Task,
        backend: Backend,
        model: String,
        prompt: String,
        error: CallError,
        started: Instant,
    ) -> Self {
        Self {
            task,
            route: task.route(),
            backend,
            model,
            prompt,
            status: Status::Failed,
            result: None,
            error: Some(error),
            attempts: 0,
            latency_s: started.elapsed().as_secs_f64(),
            usage: None,
        }
    }
}

/// The judges a run uses: the gateway models, or the offline heuristic.
#[derive(Debug, Clone)]
pub enum Judges {
    /// Models behind an OpenAI-compatible gateway.
    Gateway(Gateway),
    /// The offline heuristic judge (no network).
    Offline,
}

impl Judges {
    /// Gateway judges at `url` with `config`.
    pub fn gateway(url: &str, config: JudgesConfig) -> Result<Self, ConfigError> {
        Ok(Judges::Gateway(Gateway::new(url, config)?))
    }

    /// The offline heuristic judge.
    pub fn offline() -> Self {
        Judges::Offline
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        match self {
            Judges::Gateway(_) => Backend::Gateway,
            Judges::Offline => Backend::Offline,
        }
    }

    /// The model answering `route`.
    pub fn model(&self, route: Route) -> &str {
        match self {
            Judges::Gateway(g) => g.client(route).model(),
            Judges::Offline => offline::MODEL,
        }
    }

    async fn single<T: Judgment>(
        &self,
        task: Task,
        input: &SegmentInput<'_>,
        heuristic: fn(&SegmentInput<'_>) -> T,
    ) -> JudgeRecord<T> {
        let started = Instant::now();
        if let Err(e) = input.check() {
            let (model, prompt) = self.labels(task);
            return JudgeRecord::failed(
                task,
                self.backend(),
                model,
                prompt,
                CallError::new(ErrorKind::InvalidInput, e),
                started,
            );
        }
        match self {
            Judges::Gateway(g) => g.judge(task, input).await,
            Judges::Offline => offline::record(task, heuristic(input), started),
        }
    }

    fn labels(&self, task: Task) -> (String, String) {
        match self {
            Judges::Gateway(g) => (
                g.client(task.route()).model().to_string(),
                prompts::prompt(task).id.clone(),
            ),
            Judges::Offline => (offline::MODEL.to_string(), offline::MODEL.to_string()),
        }
    }

    /// `/vision`: progress, novelty, danger and a summary from keyframes and state text.
    pub async fn vision(&self, input: &SegmentInput<'_>) -> JudgeRecord<VisionScore> {
        self.single(Task::Vision, input, offline::vision).await
    }

    /// `/state`: progress and subgoals reached from the state text.
    pub async fn state(&self, input: &SegmentInput<'_>) -> JudgeRecord<StateScore> {
        self.single(Task::State, input, offline::state).await
    }

    /// `/puzzle`: a plan and whether the room's puzzle advanced (for dungeon segments; see
    /// [`SegmentInput::in_dungeon`]).
    pub async fn puzzle(&self, input: &SegmentInput<'_>) -> JudgeRecord<PuzzlePlan> {
        self.single(Task::Puzzle, input, offline::puzzle).await
    }

    /// `/dialog`: whether the dialog was handled and the next input (for segments with a
    /// dialog box; see [`SegmentInput::dialog_seen`]).
    pub async fn dialog(&self, input: &SegmentInput<'_>) -> JudgeRecord<DialogAdvice> {
        self.single(Task::Dialog, input, offline::dialog).await
    }

    /// Compare mode on `/vision` (`Task::VisionCompare`) or `/state` (`Task::StateCompare`):
    /// which of `a` ("first") and `b` ("second") made more progress.
    pub async fn compare(
        &self,
        task: Task,
        a: &SegmentInput<'_>,
        b: &SegmentInput<'_>,
    ) -> JudgeRecord<Comparison> {
        let started = Instant::now();
        let (model, prompt) = self.labels(task);
        if !task.is_compare() {
            let e = CallError::new(
                ErrorKind::InvalidInput,
                format!("{} is not a compare task", task.name()),
            );
            return JudgeRecord::failed(task, self.backend(), model, prompt, e, started);
        }
        if let Err(e) = a.check().and_then(|()| b.check()) {
            return JudgeRecord::failed(
                task,
                self.backend(),
                model,
                prompt,
                CallError::new(ErrorKind::InvalidInput, e),
                started,
            );
        }
        match self {
            Judges::Gateway(g) => g.compare(task, a, b).await,
            Judges::Offline => offline::record(task, offline::compare(a, b), started),
        }
    }
}
