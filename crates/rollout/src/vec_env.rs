//! N environments stepped as one batch on a thread pool, writing observations into
//! contiguous buffers (no allocation per step) and recording segments as they go.

use episodes::segment::{EpisodeEnd, Segment};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use zelda::obs::{FEATURES, FRAME_PIXELS};
use zelda::reward::{COMPONENTS, NOVELTY};
use zelda::{EnvConfig, EnvSnapshot, GameState, RewardConfig, ZeldaEnv};

use crate::archive::{Archive, ArchiveStats, ArchiveV2, Candidate, Cell, CellV2};
use crate::ladder::{self, Ladder};
use crate::recorder::{Recorder, RecorderConfig, SegmentContext};

/// Why a vector env could not be built.
#[derive(Debug, thiserror::Error)]
pub enum VecEnvError {
    /// An environment could not be built.
    #[error(transparent)]
    Env(#[from] zelda::EnvError),
    /// A setting is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The thread pool could not start.
    #[error("thread pool: {0}")]
    Pool(String),
    /// A snapshot does not fit these environments.
    #[error("snapshot: {0}")]
    Snapshot(String),
}

/// Version of the [`VecEnv::snapshot`] encoding. Version 2 appends [`ExploreSnapshot`]
/// to version 1's bytes, so version 1 snapshots still load (with an empty archive);
/// version 3 adds the world's progress to each archive cell (version 2 cells load with
/// progress 0); version 4 appends [`LadderSnapshot`] (version 3 loads with an empty ladder);
/// version 5's ladder counts steps to the goal, not archive returns, so a version 4 ladder
/// loads empty (its episodes' ladder starts are kept); version 6 appends each ladder cell's
/// counts of the policy's episodes ([`Ladder::tried`]; version 5 loads without them).
const SNAPSHOT_VERSION: u32 = 6;

#[derive(Serialize, Deserialize)]
struct VecSnapshot {
    version: u32,
    seed: u64,
    worker: u32,
    slots: Vec<SlotSnapshot>,
}

/// The exploration archive and where each slot's episode started (version 3).
#[derive(Serialize, Deserialize, Default)]
struct ExploreSnapshot {
    archive: Archive,
    /// Per slot: the archive cell its episode started from and that cell's depth.
    starts: Vec<(Option<Cell>, u32)>,
}

/// The goal ladder and each slot's place on it (version 5).
#[derive(Serialize, Deserialize, Default)]
struct LadderSnapshot {
    ladder: Ladder,
    /// Per slot: the rung its episode started on and the cells it has stood on.
    slots: Vec<(Option<u32>, Vec<Option<Cell>>)>,
}

/// [`LadderSnapshot`] as version 4 wrote it: rungs counted archive returns.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct LadderSnapshotV4 {
    #[allow(dead_code)] // read to check the bytes, then dropped
    ladder: (std::collections::BTreeMap<Cell, u32>, u32, u32, u32),
    /// Per slot: the rung its episode started on and the lowest rung it has stood on.
    slots: Vec<(Option<u32>, Option<u32>)>,
}

/// [`ExploreSnapshot`] as version 2 wrote it.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct ExploreSnapshotV2 {
    archive: ArchiveV2,
    starts: Vec<(Option<CellV2>, u32)>,
}

impl From<ExploreSnapshotV2> for ExploreSnapshot {
    fn from(e: ExploreSnapshotV2) -> Self {
        Self {
            archive: e.archive.into(),
            starts: e
                .starts
                .into_iter()
                .map(|(c, d)| (c.map(Cell::from), d))
                .collect(),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct SlotSnapshot {
    env: EnvSnapshot,
    recorder: Recorder,
    episode_return: f32,
    episode_components: Vec<f32>,
}

/// The Go-Explore archive and the goal ladder held in [`VecEnv::snapshot`] bytes, for
/// reports (`zelda-rl archive`); the ladder's rungs are `ladder_rung` steps wide
/// (`env.explore_ladder_rung`, which the snapshot leaves to the settings).
pub fn explore_in_snapshot(
    bytes: &[u8],
    ladder_rung: u32,
) -> Result<(Archive, Ladder), VecEnvError> {
    let (_, explore, mut ladder) = decode(bytes)?;
    ladder.ladder.set_width(ladder_rung);
    Ok((explore.archive, ladder.ladder))
}

/// Reads snapshot bytes of any version this build knows into the current shapes.
fn decode(bytes: &[u8]) -> Result<(VecSnapshot, ExploreSnapshot, LadderSnapshot), VecEnvError> {
    let unreadable = |e: postcard::Error| VecEnvError::Snapshot(format!("unreadable ({e})"));
    let (snap, rest): (VecSnapshot, _) = postcard::take_from_bytes(bytes).map_err(unreadable)?;
    let mut ladder = LadderSnapshot::default();
    let explore = match snap.version {
        1 if rest.is_empty() => ExploreSnapshot::default(),
        2 => postcard::from_bytes::<ExploreSnapshotV2>(rest)
            .map_err(unreadable)?
            .into(),
        3 => postcard::from_bytes(rest).map_err(unreadable)?,
        4 => {
            let (explore, rest) = postcard::take_from_bytes(rest).map_err(unreadable)?;
            let v4: LadderSnapshotV4 = postcard::from_bytes(rest).map_err(unreadable)?;
            ladder.slots = v4.slots.into_iter().map(|(s, _)| (s, Vec::new())).collect();
            explore
        }
        5 | 6 => {
            let (explore, rest) = postcard::take_from_bytes(rest).map_err(unreadable)?;
            let tried;
            (ladder, tried) = postcard::take_from_bytes(rest).map_err(unreadable)?;
            if snap.version == 6 {
                ladder
                    .ladder
                    .set_tried(postcard::from_bytes(tried).map_err(unreadable)?);
            }
            explore
        }
        v => {
            return Err(VecEnvError::Snapshot(format!(
                "version {v}{} (this build reads 1 to {SNAPSHOT_VERSION})",
                if v == 1 { " with trailing bytes" } else { "" }
            )));
        }
    };
    Ok((snap, explore, ladder))
}

/// Statistics of one finished episode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpisodeStats {
    /// Environment index.
    pub env: u32,
    /// Episode number of that environment.
    pub episode: u64,
    /// Sum of heuristic rewards.
    pub ret: f32,
    /// Sum per reward component.
    pub components: [f32; COMPONENTS],
    /// Steps.
    pub length: u32,
    /// Distinct rooms entered.
    pub rooms: u32,
    /// Instruments held at the end.
    pub instruments: u32,
    /// Ended inside the game (death or goal) rather than by the step limit.
    pub terminated: bool,
    /// The state at the end.
    pub last: GameState,
    /// The exploration archive's cell the episode started from (`None`: the start state).
    pub start_cell: Option<Cell>,
    /// The goal ladder's rung that cell was drawn from (`None`: not a ladder start).
    pub ladder_rung: Option<u32>,
}

struct Slot {
    id: u32,
    env: ZeldaEnv,
    recorder: Recorder,
    reward: f32,
    components: [f32; COMPONENTS],
    episode_components: [f32; COMPONENTS],
    episode_return: f32,
    terminated: bool,
    truncated: bool,
    final_frames: Vec<u8>,
    final_features: Vec<f32>,
    segment: Option<Segment>,
    finished: Option<EpisodeStats>,
    start_buf: Vec<u8>,
    /// The archive cell this episode started from (`None`: the start state).
    start_cell: Option<Cell>,
    /// Steps from the start state to where this episode started.
    start_depth: u32,
    /// A state to offer the archive after this step.
    candidate: Option<Candidate>,
    /// An archive cell this step's reset chose, to count after the step.
    chosen: Option<Cell>,
    /// The cell this step ended in, to count after the step.
    visited: Option<Cell>,
    /// The ladder rung this episode started on (`None`: not a ladder start).
    ladder_start: Option<u32>,
    /// Where this episode stood, before its first step and after each one (only while the
    /// ladder is on): what it shows the ladder when it ends.
    path: Vec<Option<Cell>>,
    /// What this step's finished episode tells the ladder, to apply after the step.
    report: Option<ladder::Report>,
}

impl Slot {
    /// Resets the env with the seed of its next episode (derived from the run's seed, the
    /// worker, the slot and the episode number, so episodes do not depend on timing). A
    /// share `explore.resets` of episodes starts from a state the archive chose.
    fn new_episode(
        &mut self,
        seed: u64,
        worker: u32,
        archive: &Archive,
        ladder: &Ladder,
        explore: Explore,
    ) {
        let s = crate::derive_seed(
            seed,
            &[
                u64::from(worker),
                u64::from(self.id),
                self.env.episode() + 1,
            ],
        );
        let unit = |k| crate::archive::unit(crate::derive_seed(s, &[k]));
        let start = if explore.resets > 0.0 && unit(1) < f64::from(explore.resets) {
            // Draws 3 and 4 are the ladder's, so runs without it keep their bytes.
            let rung = (explore.ladder > 0.0 && unit(3) < f64::from(explore.ladder))
                .then(|| {
                    let (cell, rung) =
                        ladder.choose(crate::derive_seed(s, &[4]), explore.ladder_focus, |c| {
                            archive.holds(c)
                        })?;
                    Some((archive.start_at(cell)?, Some(rung)))
                })
                .flatten();
            rung.or_else(|| {
                archive
                    .choose(crate::derive_seed(s, &[2]), f64::from(explore.level_weight))
                    .map(|start| (start, None))
            })
        } else {
            None
        };
        self.path.clear();
        match start {
            Some((start, rung)) => {
                self.env
                    .reset_to(&start.state, s)
                    .expect("archived states were saved by this env's machine");
                // A ladder start is meant to reach the goal, not to explore around.
                self.env.set_explore_limit(rung.is_none());
                self.start_cell = Some(start.cell);
                self.start_depth = start.depth;
                self.chosen = Some(start.cell);
                self.ladder_start = rung;
            }
            None => {
                self.env.reset(s);
                self.start_cell = None;
                self.start_depth = 0;
                self.ladder_start = None;
            }
        }
        self.episode_return = 0.0;
        self.episode_components = [0.0; COMPONENTS];
    }

    /// The archive cell the env is in now (`None` where no episode should start).
    fn cell(&self) -> Option<Cell> {
        Cell::of(
            self.env.state(),
            self.env.progress(),
            self.env.config().explore_cell_px,
        )
    }

    /// After a step that did not end the episode, in `cell`: counts the visit and packs
    /// the state for the archive if it would keep it.
    fn offer_state(&mut self, archive: &Archive, cell: Cell) {
        let state = self.env.state();
        self.visited = Some(cell);
        let depth = self.start_depth + self.env.steps();
        if archive.wants(cell, state.health, depth) {
            self.candidate = Some(Candidate::new(
                cell,
                state.health,
                depth,
                &self.env.gameboy().save_state(),
            ));
        }
    }
}

/// How episodes start from the archive (`env.explore_resets`, `env.explore_level_weight`).
#[derive(Debug, Clone, Copy)]
struct Explore {
    resets: f32,
    level_weight: f32,
    /// `env.explore_ladder`: share of archive starts drawn from the goal ladder.
    ladder: f32,
    /// `env.explore_ladder_pass`: the frontier's win rate that moves it back.
    ladder_pass: f32,
    /// `env.explore_ladder_rung`: steps to the goal per rung.
    ladder_rung: u32,
    /// `env.explore_ladder_focus`: ladder starts weighted by each cell's win rate.
    ladder_focus: bool,
}

impl Explore {
    /// An explorer starts every episode from the archive once it holds a cell, chosen by
    /// count score: explorers find the ladder's rungs, the policy climbs them.
    fn explorer(self) -> Self {
        Self {
            resets: 1.0,
            ladder: 0.0,
            ..self
        }
    }
}

/// A batch of environments.
pub struct VecEnv {
    /// The policy's envs first, then `env.explorers` explorers.
    slots: Vec<Slot>,
    /// The policy's envs (the rest of `slots` are explorers).
    n: usize,
    pool: Option<rayon::ThreadPool>,
    frames: Vec<u8>,
    features: Vec<f32>,
    frames_per_env: usize,
    seed: u64,
    worker: u32,
    recorder_cfg: RecorderConfig,
    ctx: SegmentContext,
    record: bool,
    segments: Vec<Segment>,
    episodes: Vec<EpisodeStats>,
    explorer_episodes: Vec<EpisodeStats>,
    archive: Archive,
    ladder: Ladder,
    explore: Explore,
    explore_cells: usize,
    /// `reward.novelty`: the archive is kept for it too, even without archive resets.
    novelty: f32,
}

impl VecEnv {
    /// Builds `n` environments on `rom` (booted once, then copied through a save state),
    /// stepping them on `threads` threads, and resets them. With `record`, each env's
    /// trajectory is cut into segments described by `ctx` and `recorder_cfg`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        rom: &[u8],
        start_state: Option<Vec<u8>>,
        n: usize,
        env_cfg: EnvConfig,
        reward_cfg: RewardConfig,
        threads: usize,
        seed: u64,
        ctx: SegmentContext,
        recorder_cfg: RecorderConfig,
        record: bool,
    ) -> Result<Self, VecEnvError> {
        if n == 0 {
            return Err(VecEnvError::Config("envs must be at least 1".into()));
        }
        if n > 255 * 4 {
            return Err(VecEnvError::Config(format!(
                "{n} envs per worker is more than 1020"
            )));
        }
        recorder_cfg.validate().map_err(VecEnvError::Config)?;
        let first = match start_state {
            Some(s) => {
                ZeldaEnv::with_start_state(rom.to_vec(), s, env_cfg.clone(), reward_cfg.clone())?
            }
            None => ZeldaEnv::new(rom.to_vec(), env_cfg.clone(), reward_cfg.clone())?,
        };
        let boot = first.start_state().to_vec();
        let frames_per_env = env_cfg.frame_stack * FRAME_PIXELS;
        let mut envs = vec![first];
        for _ in 1..n + env_cfg.explorers as usize {
            envs.push(ZeldaEnv::with_start_state(
                rom.to_vec(),
                boot.clone(),
                env_cfg.clone(),
                reward_cfg.clone(),
            )?);
        }
        let slots = envs
            .into_iter()
            .enumerate()
            .map(|(i, env)| Slot {
                id: i as u32,
                env,
                recorder: Recorder::new(i as u32, 0, 0),
                reward: 0.0,
                components: [0.0; COMPONENTS],
                episode_components: [0.0; COMPONENTS],
                episode_return: 0.0,
                terminated: false,
                truncated: false,
                // Nobody reads an explorer's observations.
                final_frames: vec![0; if i < n { frames_per_env } else { 0 }],
                final_features: vec![0.0; if i < n { FEATURES } else { 0 }],
                segment: None,
                finished: None,
                start_buf: Vec::new(),
                start_cell: None,
                start_depth: 0,
                candidate: None,
                chosen: None,
                visited: None,
                ladder_start: None,
                path: Vec::new(),
                report: None,
            })
            .collect();
        let pool = if threads > 1 {
            Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(|i| format!("rollout-{i}"))
                    .build()
                    .map_err(|e| VecEnvError::Pool(e.to_string()))?,
            )
        } else {
            None
        };
        let mut v = Self {
            slots,
            n,
            pool,
            frames: vec![0; n * frames_per_env],
            features: vec![0.0; n * FEATURES],
            frames_per_env,
            seed,
            worker: ctx.worker,
            recorder_cfg,
            ctx,
            record,
            segments: Vec::new(),
            episodes: Vec::new(),
            explorer_episodes: Vec::new(),
            archive: Archive::default(),
            ladder: Ladder::new(env_cfg.explore_ladder_rung),
            explore: Explore {
                resets: env_cfg.explore_resets,
                level_weight: env_cfg.explore_level_weight,
                ladder: env_cfg.explore_ladder,
                ladder_pass: env_cfg.explore_ladder_pass,
                ladder_rung: env_cfg.explore_ladder_rung,
                ladder_focus: env_cfg.explore_ladder_focus,
            },
            explore_cells: env_cfg.explore_cells as usize,
            novelty: reward_cfg.novelty,
        };
        v.reset_all();
        Ok(v)
    }

    /// Calls `f` on every slot: the policy's envs with their observation buffers, the
    /// explorers with none.
    fn run<F: Fn(&mut Slot, Option<(&mut [u8], &mut [f32])>) + Sync + Send>(&mut self, f: F) {
        let fpe = self.frames_per_env;
        let (envs, explorers) = self.slots.split_at_mut(self.n);
        let frames = &mut self.frames;
        let features = &mut self.features;
        match &self.pool {
            Some(pool) => pool.install(|| {
                rayon::join(
                    || {
                        envs.par_iter_mut()
                            .zip(frames.par_chunks_mut(fpe))
                            .zip(features.par_chunks_mut(FEATURES))
                            .for_each(|((slot, fr), fe)| f(slot, Some((fr, fe))));
                    },
                    || explorers.par_iter_mut().for_each(|slot| f(slot, None)),
                );
            }),
            None => {
                for ((slot, fr), fe) in envs
                    .iter_mut()
                    .zip(frames.chunks_mut(fpe))
                    .zip(features.chunks_mut(FEATURES))
                {
                    f(slot, Some((fr, fe)));
                }
                for slot in explorers {
                    f(slot, None);
                }
            }
        }
    }

    /// Resets every environment (new episodes) and writes their observations.
    pub fn reset_all(&mut self) {
        let (seed, worker, explore) = (self.seed, self.worker, self.explore);
        let archive = std::mem::take(&mut self.archive);
        let ladder = std::mem::take(&mut self.ladder);
        self.run(|slot, obs| match obs {
            Some((fr, fe)) => {
                slot.new_episode(seed, worker, &archive, &ladder, explore);
                slot.env.write_observation(fr, fe);
            }
            None => slot.new_episode(seed, worker, &archive, &ladder, explore.explorer()),
        });
        self.archive = archive;
        self.ladder = ladder;
        self.merge_archive();
    }

    /// Applies the slots' archive offers and choices in env order (never in thread order,
    /// so the archive is deterministic).
    fn merge_archive(&mut self) {
        for slot in &mut self.slots {
            if let Some(cell) = slot.chosen.take() {
                self.archive.mark_chosen(cell);
            }
            if let Some(cell) = slot.visited.take() {
                self.archive.mark_visited(cell);
            }
            if let Some(c) = slot.candidate.take() {
                self.archive.offer(c, self.explore_cells);
            }
            if let Some(r) = slot.report.take() {
                let archive = &self.archive;
                self.ladder
                    .record(r, self.explore.ladder_pass, |c| archive.holds(c));
            }
        }
    }

    /// Steps every environment with `actions[i]`; finished episodes reset automatically
    /// (the observation then is the new episode's first; the final one is kept, see
    /// [`VecEnv::final_observation`]). Explorers step too, with their own random actions.
    pub fn step(&mut self, actions: &[usize]) {
        assert_eq!(actions.len(), self.n, "one action per environment");
        let (seed, worker, record, explore) = (self.seed, self.worker, self.record, self.explore);
        let (novelty, archive_on) = (
            self.novelty,
            self.explore.resets > 0.0 || self.novelty != 0.0,
        );
        let archive = std::mem::take(&mut self.archive);
        let archive_ref = &archive;
        let ladder = std::mem::take(&mut self.ladder);
        // Episodes report to the ladder only when it is on (explorers' too: the policy's
        // `explore` is the one that says).
        let (ladder_ref, ladder_on) = (&ladder, self.explore.ladder > 0.0);
        let cfg = &self.recorder_cfg;
        let ctx = &self.ctx;
        let actions_ref = actions;
        // Move what the closure needs out of `self` so `run` can borrow the rest.
        let cfg = cfg.clone();
        let ctx = ctx.clone();
        self.run(move |slot, obs| {
            let learner = obs.is_some();
            let action = match actions_ref.get(slot.id as usize) {
                Some(&a) => a,
                // An explorer's action depends only on where it is in its own episodes.
                None => {
                    let s = crate::derive_seed(
                        seed,
                        &[
                            u64::from(worker),
                            u64::from(slot.id),
                            slot.env.episode(),
                            u64::from(slot.env.steps()),
                        ],
                    );
                    (s % slot.env.actions().len() as u64) as usize
                }
            };
            let record = record && learner;
            let open_before = slot.recorder.is_open();
            let prev = if record && !open_before {
                slot.start_buf = slot.env.gameboy().save_state();
                Some(*slot.env.state())
            } else {
                None
            };
            if ladder_on && slot.path.is_empty() {
                let start = slot.cell();
                slot.path.push(start);
            }
            let out = slot.env.step(action);
            let cell = if archive_on || ladder_on {
                slot.cell()
            } else {
                None
            };
            if ladder_on {
                slot.path.push(cell);
            }
            let mut components = out.reward.components;
            if let Some(cell) = cell.filter(|_| novelty != 0.0) {
                // Counts as of the last merge, the same for every thread schedule.
                let n = archive_ref.visits(cell);
                components[NOVELTY] = novelty / (1.0 + n as f32).sqrt();
            }
            slot.reward = components.iter().sum();
            slot.components = components;
            slot.terminated = out.terminated;
            slot.truncated = out.truncated;
            slot.episode_return += slot.reward;
            for (acc, c) in slot.episode_components.iter_mut().zip(components) {
                *acc += c;
            }
            let ended = if out.terminated {
                Some(EpisodeEnd::Terminated)
            } else if out.truncated {
                Some(EpisodeEnd::Truncated)
            } else {
                None
            };
            if record {
                slot.segment = slot.recorder.record(
                    &slot.env,
                    prev.as_ref().map(|s| (slot.start_buf.as_slice(), *s)),
                    action,
                    &components,
                    ended,
                    &cfg,
                    &ctx,
                );
            }
            if out.done() {
                if learner {
                    slot.env
                        .write_observation(&mut slot.final_frames, &mut slot.final_features);
                }
                slot.finished = Some(EpisodeStats {
                    env: slot.id,
                    episode: slot.env.episode(),
                    ret: slot.episode_return,
                    components: slot.episode_components,
                    length: slot.env.steps(),
                    rooms: slot.env.rooms_this_episode(),
                    instruments: slot.env.state().instrument_count(),
                    terminated: out.terminated,
                    last: *slot.env.state(),
                    start_cell: slot.start_cell,
                    ladder_rung: slot.ladder_start,
                });
                // The first cell it stood in: an episode from power-on is in none until play
                // starts.
                if let Some(&start) = slot.path.iter().flatten().next().filter(|_| ladder_on) {
                    let won = slot.env.state().instrument_count() > u32::from(start.instruments);
                    let found = ladder_ref.found(&slot.path, won);
                    if !found.is_empty() || slot.ladder_start.is_some() {
                        slot.report = Some(ladder::Report {
                            found,
                            climbed: slot.start_cell.zip(slot.ladder_start),
                            won,
                        });
                    }
                }
                let explore = if learner { explore } else { explore.explorer() };
                slot.new_episode(seed, worker, archive_ref, ladder_ref, explore);
            } else if let Some(cell) = cell {
                slot.offer_state(archive_ref, cell);
            }
            if let Some((fr, fe)) = obs {
                slot.env.write_observation(fr, fe);
            }
        });
        self.archive = archive;
        self.ladder = ladder;
        self.merge_archive();
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if let Some(seg) = slot.segment.take() {
                self.segments.push(seg);
            }
            if let Some(ep) = slot.finished.take() {
                if i < self.n {
                    self.episodes.push(ep);
                } else {
                    self.explorer_episodes.push(ep);
                }
            }
        }
    }

    /// Everything needed to continue these environments exactly (emulators, observation
    /// stacks, reward memory, open segments), as bytes.
    pub fn snapshot(&self) -> Vec<u8> {
        let explore = ExploreSnapshot {
            archive: self.archive.clone(),
            starts: self
                .slots
                .iter()
                .map(|s| (s.start_cell, s.start_depth))
                .collect(),
        };
        let snap = VecSnapshot {
            version: SNAPSHOT_VERSION,
            seed: self.seed,
            worker: self.worker,
            slots: self
                .slots
                .iter()
                .map(|s| SlotSnapshot {
                    env: s.env.snapshot(),
                    recorder: s.recorder.clone(),
                    episode_return: s.episode_return,
                    episode_components: s.episode_components.to_vec(),
                })
                .collect(),
        };
        let ladder = LadderSnapshot {
            ladder: self.ladder.clone(),
            slots: self
                .slots
                .iter()
                .map(|s| (s.ladder_start, s.path.clone()))
                .collect(),
        };
        let mut bytes = postcard::to_allocvec(&snap).expect("snapshot serialises");
        bytes.extend(postcard::to_allocvec(&explore).expect("snapshot serialises"));
        bytes.extend(postcard::to_allocvec(&ladder).expect("snapshot serialises"));
        bytes.extend(postcard::to_allocvec(self.ladder.all_tried()).expect("snapshot serialises"));
        bytes
    }

    /// Continues from [`VecEnv::snapshot`] bytes of a vector env with the same ROM, size,
    /// seed and settings, and rewrites the observations.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), VecEnvError> {
        let (snap, explore, ladder) = decode(bytes)?;
        if snap.slots.len() != self.slots.len()
            || snap.seed != self.seed
            || snap.worker != self.worker
        {
            return Err(VecEnvError::Snapshot(format!(
                "taken of {} envs, seed {}, worker {}; these are {} envs, seed {}, worker {} \
                 (explorers included)",
                snap.slots.len(),
                snap.seed,
                snap.worker,
                self.slots.len(),
                self.seed,
                self.worker
            )));
        }
        // An archived state that does not load would only fail at some later reset: check
        // them all now, before anything changes.
        for (cell, state) in explore.archive.states() {
            let checked = state
                .map_err(|e| e.to_string())
                .and_then(|s| self.slots[0].env.check_state(&s).map_err(|e| e.to_string()));
            if let Err(e) = checked {
                return Err(VecEnvError::Snapshot(format!(
                    "archived state of {cell:?} does not load: {e}"
                )));
            }
        }
        if !explore.starts.is_empty() && explore.starts.len() != self.slots.len() {
            return Err(VecEnvError::Snapshot(format!(
                "{} episode starts for {} envs",
                explore.starts.len(),
                self.slots.len()
            )));
        }
        if !ladder.slots.is_empty() && ladder.slots.len() != self.slots.len() {
            return Err(VecEnvError::Snapshot(format!(
                "{} ladder places for {} envs",
                ladder.slots.len(),
                self.slots.len()
            )));
        }
        if let Some(n) = snap
            .slots
            .iter()
            .map(|s| s.episode_components.len())
            .find(|&n| n > COMPONENTS)
        {
            return Err(VecEnvError::Snapshot(format!(
                "{n} reward components in the snapshot, this build has {COMPONENTS}"
            )));
        }
        for (i, (slot, s)) in self.slots.iter_mut().zip(snap.slots).enumerate() {
            (slot.start_cell, slot.start_depth) =
                explore.starts.get(i).copied().unwrap_or((None, 0));
            (slot.ladder_start, slot.path) = ladder.slots.get(i).cloned().unwrap_or_default();
            slot.env.restore(&s.env)?;
            slot.env
                .set_explore_limit(slot.start_cell.is_some() && slot.ladder_start.is_none());
            slot.recorder = s.recorder;
            slot.episode_return = s.episode_return;
            // Components are only ever appended (`RewardConfig::NAMES`): a snapshot from a
            // build with fewer has summed nothing into the newer ones yet.
            let mut sums = s.episode_components;
            sums.resize(COMPONENTS, 0.0);
            slot.episode_components.copy_from_slice(&sums);
        }
        self.archive = explore.archive;
        self.ladder = ladder.ladder;
        self.ladder.set_width(self.explore.ladder_rung);
        self.run(|slot, obs| {
            if let Some((fr, fe)) = obs {
                slot.env.write_observation(fr, fe);
            }
        });
        Ok(())
    }

    /// The exploration archive (empty unless `env.explore_resets` or `reward.novelty` is
    /// set).
    pub fn archive(&self) -> &Archive {
        &self.archive
    }

    /// The goal ladder (empty unless `env.explore_ladder` is set).
    pub fn ladder(&self) -> &Ladder {
        &self.ladder
    }

    /// The archive's and the ladder's sizes and reach.
    pub fn explore_stats(&self) -> ArchiveStats {
        ArchiveStats {
            ladder: self.ladder.stats(|c| self.archive.holds(c)),
            ..self.archive.stats()
        }
    }

    /// Closes every open segment (end of a burst) so no recorded step is lost.
    pub fn flush_segments(&mut self) {
        for slot in &mut self.slots {
            if let Some(seg) = slot
                .recorder
                .flush(&slot.env, &self.recorder_cfg, &self.ctx)
            {
                self.segments.push(seg);
            }
        }
    }

    /// Sets the training burst recorded in the segments from now on.
    pub fn set_burst(&mut self, burst: u32) {
        self.ctx.burst = burst;
    }

    /// Sets the policy name recorded in the segments from now on.
    pub fn set_policy_name(&mut self, name: String) {
        self.ctx.policy = name;
    }

    /// Segments finished since the last call.
    pub fn take_segments(&mut self) -> Vec<Segment> {
        std::mem::take(&mut self.segments)
    }

    /// Episodes finished since the last call (the policy's envs only).
    pub fn take_episodes(&mut self) -> Vec<EpisodeStats> {
        std::mem::take(&mut self.episodes)
    }

    /// Explorers' episodes finished since the last call (`env` counts on from
    /// [`VecEnv::len`]).
    pub fn take_explorer_episodes(&mut self) -> Vec<EpisodeStats> {
        std::mem::take(&mut self.explorer_episodes)
    }

    /// Number of environments the policy acts in (explorers not counted).
    pub fn len(&self) -> usize {
        self.n
    }

    /// Never true (construction requires at least one env).
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Number of explorers (`env.explorers`).
    pub fn explorers(&self) -> usize {
        self.slots.len() - self.n
    }

    /// All stacked frames, `[env][stack][72][80]`.
    pub fn frames(&self) -> &[u8] {
        &self.frames
    }

    /// All feature vectors, `[env][FEATURES]`.
    pub fn features(&self) -> &[f32] {
        &self.features
    }

    /// The last step's total reward of env `i`.
    pub fn reward(&self, i: usize) -> f32 {
        self.slots[i].reward
    }

    /// The last step's reward components of env `i`.
    pub fn reward_components(&self, i: usize) -> &[f32; COMPONENTS] {
        &self.slots[i].components
    }

    /// Whether env `i`'s episode ended inside the game on the last step.
    pub fn terminated(&self, i: usize) -> bool {
        self.slots[i].terminated
    }

    /// Whether env `i`'s episode was cut by the step limit on the last step.
    pub fn truncated(&self, i: usize) -> bool {
        self.slots[i].truncated
    }

    /// The observation env `i` ended its last episode on (valid after a step that ended it).
    pub fn final_observation(&self, i: usize) -> (&[u8], &[f32]) {
        (&self.slots[i].final_frames, &self.slots[i].final_features)
    }

    /// Env `i`'s decoded state.
    pub fn state(&self, i: usize) -> &GameState {
        self.slots[i].env.state()
    }

    /// Env `i` itself (screens, save states).
    pub fn env(&self, i: usize) -> &ZeldaEnv {
        &self.slots[i].env
    }

    /// Frames per env in [`VecEnv::frames`].
    pub fn frames_per_env(&self) -> usize {
        self.frames_per_env
    }

    /// Number of actions.
    pub fn n_actions(&self) -> usize {
        self.slots[0].env.actions().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_snapshots_load() {
        let cfg = EnvConfig {
            explore_resets: 1.0,
            max_steps: 5,
            ..Default::default()
        };
        let ctx = SegmentContext {
            run: "t".into(),
            burst: 0,
            worker: 0,
            policy: "p".into(),
            cartridge_sha1: String::new(),
            cartridge_title: String::new(),
            config_hash: String::new(),
        };
        let rc = RecorderConfig {
            steps: 8,
            keyframe_interval: 4,
        };
        let make = || {
            VecEnv::new(
                zelda::MINI_ZELDA,
                None,
                1,
                cfg.clone(),
                RewardConfig::default(),
                1,
                3,
                ctx.clone(),
                rc.clone(),
                false,
            )
            .unwrap()
        };
        let mut a = make();
        for t in 0..12 {
            a.step(&[t % 5]);
        }
        assert!(!a.archive().is_empty());
        let now = a.snapshot();
        let (mut old, rest): (VecSnapshot, _) = postcard::take_from_bytes(&now).unwrap();
        // Version 5: no cells' counts of the policy's episodes after the ladder (here there
        // are none: an empty map, one byte).
        assert!(a.ladder().all_tried().is_empty());
        old.version = 5;
        let mut v5 = postcard::to_allocvec(&old).unwrap();
        v5.extend_from_slice(&rest[..rest.len() - 1]);
        let mut b = make();
        b.restore(&v5).unwrap();
        assert_eq!(b.snapshot(), now);
        // Version 2: cells without progress (these 12 steps made none, so nothing is lost).
        let (mut explore, ladder_tail): (ExploreSnapshot, _) =
            postcard::take_from_bytes(rest).unwrap();
        // Version 3: no ladder after the archive.
        let explore_bytes = &rest[..rest.len() - ladder_tail.len()];
        let starts = explore.starts.iter();
        let as_v2 = ExploreSnapshotV2 {
            archive: ArchiveV2::of(&explore.archive),
            starts: starts
                .map(|&(c, d)| {
                    let c = c.map(|c| {
                        assert_eq!(c.progress, 0);
                        CellV2::of(c)
                    });
                    (c, d)
                })
                .collect(),
        };
        old.version = 2;
        let mut v2 = postcard::to_allocvec(&old).unwrap();
        v2.extend(postcard::to_allocvec(&as_v2).unwrap());
        assert!(v2.len() < now.len());
        let mut b = make();
        b.restore(&v2).unwrap();
        assert_eq!(b.archive(), a.archive());
        assert_eq!(b.snapshot(), now);
        // A build with one reward component fewer (before `progress`): its sums load and the
        // new component's starts at 0; a snapshot with more components than this build is
        // refused.
        old.version = 3;
        let sums: Vec<Vec<f32>> = old
            .slots
            .iter()
            .map(|s| s.episode_components.clone())
            .collect();
        assert!(sums.iter().all(|s| s.len() == COMPONENTS));
        let with = |old: &VecSnapshot| {
            let mut bytes = postcard::to_allocvec(old).unwrap();
            bytes.extend_from_slice(explore_bytes);
            bytes
        };
        // Version 3 as it was (no ladder): the same envs, an empty ladder.
        let mut c = make();
        c.restore(&with(&old)).unwrap();
        assert_eq!(c.snapshot(), now);
        assert!(c.ladder().is_empty());
        // Version 4: a ladder of returns, not steps, so it loads empty; its slots' ladder
        // starts are kept.
        old.version = 4;
        let mut v4 = with(&old);
        old.version = 3;
        let mut rungs = std::collections::BTreeMap::new();
        rungs.insert(a.slots[0].cell().unwrap(), 2);
        v4.extend(
            postcard::to_allocvec(&LadderSnapshotV4 {
                ladder: (rungs, 1, 5, 2),
                slots: vec![(Some(1), Some(0)); a.slots.len()],
            })
            .unwrap(),
        );
        c.restore(&v4).unwrap();
        assert!(c.ladder().is_empty());
        assert!(c.slots.iter().all(|s| s.ladder_start == Some(1)));
        let mut bad = v4.clone();
        bad.truncate(v4.len() - 1);
        let err = c.restore(&bad).unwrap_err().to_string();
        assert!(err.contains("unreadable"), "{err}");
        for s in &mut old.slots {
            s.episode_components.pop();
        }
        b.restore(&with(&old)).unwrap();
        for (slot, want) in b.slots.iter().zip(&sums) {
            assert_eq!(
                &slot.episode_components[..COMPONENTS - 1],
                &want[..COMPONENTS - 1]
            );
            assert_eq!(slot.episode_components[COMPONENTS - 1], 0.0);
        }
        for s in &mut old.slots {
            s.episode_components.extend([0.0, 0.0]);
        }
        let before = b.snapshot();
        let err = b.restore(&with(&old)).unwrap_err().to_string();
        assert!(
            err.contains(&format!("{} reward components", COMPONENTS + 1)),
            "{err}"
        );
        assert_eq!(b.snapshot(), before, "a refused snapshot changes nothing");
        for (s, want) in old.slots.iter_mut().zip(sums) {
            s.episode_components = want;
        }
        // Version 1: no archive.
        old.version = 1;
        let v1 = postcard::to_allocvec(&old).unwrap();
        b.restore(&v1).unwrap();
        assert!(b.archive().is_empty());
        assert_eq!(a.frames(), b.frames());
        let mut trailing = v1.clone();
        trailing.push(0);
        let err = b.restore(&trailing).unwrap_err().to_string();
        assert!(err.contains("version 1 with trailing bytes"), "{err}");
        // An archived state that does not load is refused at restore, not at a later reset.
        for (bad, why) in [
            (b"not zstd".to_vec(), "Unknown frame descriptor"),
            (zstd::bulk::compress(b"not a state", 1).unwrap(), "state"),
        ] {
            explore.archive.replace_first_state(bad);
            let mut bytes = now[..now.len() - rest.len()].to_vec();
            bytes.extend(postcard::to_allocvec(&explore).unwrap());
            bytes.extend_from_slice(ladder_tail);
            let err = b.restore(&bytes).unwrap_err().to_string();
            assert!(
                err.contains("archived state of Cell") && err.contains(why),
                "{err}"
            );
        }
        old.version = 9;
        let err = b
            .restore(&postcard::to_allocvec(&old).unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("version 9"), "{err}");
    }
}
