//! A run split over processes, for the Ray driver (`python -m zelda_rl.ray.train`).
//!
//! [`RolloutWorker`]s host a vector env and a copy of the policy each; the [`Learner`] owns
//! PPO, the checkpoints, the evaluation and the reward model. The driver moves policy bytes
//! (`ppo::Ppo::policy_bytes`) to the workers and [`Chunk`] bytes back, one round per PPO
//! update, so Ray's per-call overhead is paid once per `horizon` env steps.
//!
//! Invariants:
//! - A worker's actions depend only on (seed, worker, burst, update, step), the policy
//!   bytes and its env state. Every chunk carries the worker's env snapshot at the next
//!   update boundary, and checkpoints store the snapshots of all workers, so a restarted
//!   worker (or a resumed run) continues exactly where the learner's state says.
//! - A learner is replaced the same way a run is resumed ([`LearnerSpec::restart_to`]):
//!   from the latest checkpoint, with every worker put back to its snapshots, so the
//!   updates since are done again and give the same bytes.
//! - A worker writes its segments before it returns a chunk; re-collecting a lost round
//!   rewrites the same segment bytes, which `put_new` accepts as already present.

use std::time::Instant;

use episodes::Store;
use ppo::{BurnPolicy, RolloutBuffer, StepEnd, StepRecord, TrainConfig};
use rollout::{SegmentContext, SegmentExporter, VecEnv};
use serde::{Deserialize, Serialize};
use zelda::obs::FEATURES;

use crate::checkpoint::{self, Phase};
use crate::learned::LearnedReward;
use crate::runstate::{self, BurstEnd, BurstStats, EnvState, EpisodeRecord, RunId};
use crate::stepper::{Stepper, last_values};
use crate::trainer::{BurstSummary, UpdateReport, train_config};
use crate::{Settings, TrainError};

const CHUNK_MAGIC: &[u8; 8] = b"ZRLCHNK\0";
// 2: rooms entered and per-component reward sums (for the learner's metrics).
// 3: segment bytes.
// 4: the exploration archive's size.
// 5: the archive's rooms and progress.
const CHUNK_VERSION: u32 = 5;

/// What a worker is asked to do in one round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectRequest {
    /// Burst the round belongs to.
    pub burst: u32,
    /// PPO update (within the burst) the round feeds.
    pub update: u64,
    /// Steps per env (the horizon).
    pub steps: usize,
    /// Reward model to shape rewards with (store key).
    pub reward_model: Option<String>,
    /// Last round of the burst: close every open segment after it.
    pub flush: bool,
}

/// How a transition ended (a serialisable `ppo::StepEnd`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
enum End {
    Running,
    Terminated,
    Truncated(f32),
}

impl From<StepEnd> for End {
    fn from(e: StepEnd) -> Self {
        match e {
            StepEnd::Running => End::Running,
            StepEnd::Terminated => End::Terminated,
            StepEnd::Truncated { final_value } => End::Truncated(final_value),
        }
    }
}

impl From<End> for StepEnd {
    fn from(e: End) -> Self {
        match e {
            End::Running => StepEnd::Running,
            End::Terminated => StepEnd::Terminated,
            End::Truncated(v) => StepEnd::Truncated { final_value: v },
        }
    }
}

/// One worker's part of a PPO batch: `[steps][envs]` transitions plus what the learner
/// needs to account for them and to checkpoint the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    /// Worker index.
    pub worker: u32,
    /// The request it answers.
    pub request: CollectRequest,
    /// Envs on the worker.
    pub envs: u32,
    #[serde(with = "serde_bytes")]
    frames: Vec<u8>,
    features: Vec<f32>,
    actions: Vec<u32>,
    log_probs: Vec<f32>,
    values: Vec<f32>,
    rewards: Vec<f32>,
    ends: Vec<End>,
    last_values: Vec<f32>,
    /// Sum of shaped rewards.
    pub reward_sum: f64,
    /// Sum of the learned parts.
    pub learned_sum: f64,
    /// Episodes that ended.
    pub episodes: Vec<EpisodeRecord>,
    /// Explorers' episodes that ended (`env.explorers`).
    pub explorer_episodes: Vec<EpisodeRecord>,
    /// Segments written.
    pub segments: u64,
    /// Their encoded bytes.
    pub segment_bytes: u64,
    /// Rooms the envs were in during the round (each once, in first-seen order).
    pub rooms: Vec<zelda::RoomKey>,
    /// Per reward component: the positive and the negative step rewards, summed apart.
    pub reward_parts: Vec<(f64, f64)>,
    /// Seconds the worker spent on the round.
    pub seconds: f64,
    /// Of those, in policy inference and in env stepping.
    pub act_seconds: f64,
    /// See `act_seconds`.
    pub env_seconds: f64,
    /// The worker's env snapshot after the round (the next update boundary).
    #[serde(with = "serde_bytes")]
    pub snapshot: Vec<u8>,
    /// The worker's exploration archive after the round.
    pub archive: rollout::archive::ArchiveStats,
}

impl Chunk {
    /// Encodes: magic, version, SHA-256 of the body, body (postcard).
    pub fn encode(&self) -> Vec<u8> {
        checkpoint::seal(CHUNK_MAGIC, CHUNK_VERSION, self)
    }

    /// Decodes and verifies a chunk; `what` names it in errors.
    pub fn decode(bytes: &[u8], what: &str) -> Result<Self, TrainError> {
        checkpoint::unseal(bytes, CHUNK_MAGIC, CHUNK_VERSION, "rollout chunk", "chunk")
            .map_err(|m| TrainError::Io(format!("{what}: {m}")))
    }
}

/// Everything a rollout worker needs.
pub struct WorkerSpec {
    /// Cartridge ROM.
    pub rom: Vec<u8>,
    /// Save state episodes start from.
    pub start_state: Option<Vec<u8>>,
    /// Where segments go and reward models come from.
    pub store: Store,
    /// Run id.
    pub run: String,
    /// The run's settings (as the learner has them).
    pub settings: Settings,
    /// Worker index (segment keys, env seeds).
    pub worker: u32,
    /// Envs on this worker.
    pub envs: usize,
    /// Threads stepping them.
    pub threads: usize,
    /// Where the policy runs.
    pub backend: ppo::Backend,
}

/// Hosts envs and a policy copy; answers [`CollectRequest`]s with [`Chunk`]s.
pub struct RolloutWorker {
    store: Store,
    settings: Settings,
    worker: u32,
    backend: ppo::Backend,
    sha1: String,
    envs: VecEnv,
    stepper: Stepper,
    policy: Option<BurnPolicy>,
    learned: Option<LearnedReward>,
    rt: tokio::runtime::Runtime,
}

impl RolloutWorker {
    /// Builds the worker's envs (reset to the start of an episode).
    pub fn new(spec: WorkerSpec) -> Result<Self, TrainError> {
        let gb = gameboy::GameBoy::new(spec.rom.clone())?;
        let sha1 = hex::encode(gb.rom_sha1());
        let title = gb.header().title.clone();
        drop(gb);
        let s = &spec.settings;
        let ctx = SegmentContext {
            run: spec.run.clone(),
            burst: 0,
            worker: spec.worker,
            policy: format!("ppo:{}", spec.run),
            cartridge_sha1: sha1.clone(),
            cartridge_title: title,
            config_hash: s.env_hash(),
        };
        let envs = VecEnv::new(
            &spec.rom,
            spec.start_state,
            spec.envs,
            s.env.clone(),
            s.reward.clone(),
            spec.threads.max(1),
            s.train.seed,
            ctx,
            s.segments.clone(),
            true,
        )?;
        let stepper = Stepper::new(envs.len(), envs.frames_per_env());
        Ok(Self {
            store: spec.store,
            settings: spec.settings,
            worker: spec.worker,
            backend: spec.backend,
            sha1,
            envs,
            stepper,
            policy: None,
            learned: None,
            rt: runstate::runtime()?,
        })
    }

    /// Continues from a snapshot of this worker's envs (a checkpoint or a chunk).
    pub fn restore(&mut self, snapshot: &[u8]) -> Result<(), TrainError> {
        self.envs.restore(snapshot).map_err(|e| {
            TrainError::Checkpoint(format!("worker {} environments: {e}", self.worker))
        })
    }

    /// The worker's env snapshot now.
    pub fn snapshot(&self) -> Vec<u8> {
        self.envs.snapshot()
    }

    /// Envs on the worker.
    pub fn len(&self) -> usize {
        self.envs.len()
    }

    /// Whether the worker has no envs (never: it needs at least one).
    pub fn is_empty(&self) -> bool {
        self.envs.is_empty()
    }

    // Every round brings new weights, so they are loaded every time (into the existing
    // network after the first round).
    fn use_policy(&mut self, bytes: &[u8]) -> Result<(), TrainError> {
        match &mut self.policy {
            Some(net) => ppo::checkpoint::refresh_policy(net, bytes)?,
            None => self.policy = Some(ppo::load_policy(bytes, self.backend)?),
        }
        Ok(())
    }

    fn use_reward_model(&mut self, key: &Option<String>) -> Result<(), TrainError> {
        let current = self.learned.as_ref().map(|l| &l.key);
        if current == key.as_ref() {
            return Ok(());
        }
        self.learned = match key {
            None => None,
            Some(key) => {
                let bytes = self.rt.block_on(self.store.get(key))?;
                Some(LearnedReward::load(
                    &bytes,
                    key,
                    &self.sha1,
                    &self.settings.reward_model.shaping,
                    self.backend,
                )?)
            }
        };
        Ok(())
    }

    /// Steps every env `request.steps` times with `policy` (policy-file bytes), writes the
    /// segments, and returns the transitions.
    pub fn collect(
        &mut self,
        request: &CollectRequest,
        policy: &[u8],
    ) -> Result<Chunk, TrainError> {
        let t0 = Instant::now();
        self.use_policy(policy)?;
        self.use_reward_model(&request.reward_model)?;
        self.envs.set_burst(request.burst);
        let n = self.envs.len();
        let frame_len = self.envs.frames_per_env();
        let steps = request.steps;
        let mut chunk = Chunk {
            worker: self.worker,
            request: request.clone(),
            envs: n as u32,
            frames: Vec::with_capacity(steps * n * frame_len),
            features: Vec::with_capacity(steps * n * FEATURES),
            actions: Vec::with_capacity(steps * n),
            log_probs: Vec::with_capacity(steps * n),
            values: Vec::with_capacity(steps * n),
            rewards: Vec::with_capacity(steps * n),
            ends: Vec::with_capacity(steps * n),
            last_values: Vec::new(),
            reward_sum: 0.0,
            learned_sum: 0.0,
            episodes: Vec::new(),
            explorer_episodes: Vec::new(),
            segments: 0,
            segment_bytes: 0,
            rooms: Vec::new(),
            reward_parts: vec![(0.0, 0.0); zelda::reward::COMPONENTS],
            seconds: 0.0,
            act_seconds: 0.0,
            env_seconds: 0.0,
            snapshot: Vec::new(),
            archive: Default::default(),
        };
        let mut rooms = std::collections::HashSet::new();
        let round = ppo::mix_seed(
            self.settings.train.seed,
            0xAC7_0000 + u64::from(self.worker),
            (u64::from(request.burst) << 32) | request.update,
        );
        let exporter = SegmentExporter::spawn(self.store.clone(), 64);
        let net = self.policy.as_ref().expect("policy loaded above");
        for t in 0..steps {
            let (r, l) = self.stepper.step(
                &mut self.envs,
                net,
                self.learned.as_mut(),
                ppo::mix_seed(round, 0xAC7, t as u64),
            )?;
            chunk.reward_sum += r;
            chunk.learned_sum += l;
            let rec = self.stepper.record();
            chunk.frames.extend_from_slice(rec.frames);
            chunk.features.extend_from_slice(rec.features);
            chunk.actions.extend_from_slice(rec.actions);
            chunk.log_probs.extend_from_slice(rec.log_probs);
            chunk.values.extend_from_slice(rec.values);
            chunk.rewards.extend_from_slice(rec.rewards);
            chunk.ends.extend(rec.ends.iter().map(|&e| End::from(e)));
            for i in 0..n {
                let room = self.envs.state(i).room;
                if rooms.insert(room) {
                    chunk.rooms.push(room);
                }
                telemetry::add_reward_parts(
                    &mut chunk.reward_parts,
                    self.envs.reward_components(i),
                );
            }
            for seg in self.envs.take_segments() {
                chunk.segments += 1;
                exporter.submit(seg)?;
            }
            for ep in self.envs.take_episodes() {
                chunk.episodes.push(EpisodeRecord::from(&ep));
            }
            for ep in self.envs.take_explorer_episodes() {
                chunk.explorer_episodes.push(EpisodeRecord::from(&ep));
            }
        }
        chunk.last_values = last_values(&self.envs, net)?;
        if request.flush {
            self.envs.flush_segments();
            for seg in self.envs.take_segments() {
                chunk.segments += 1;
                exporter.submit(seg)?;
            }
        }
        chunk.segment_bytes = exporter.finish()?.bytes;
        chunk.snapshot = self.envs.snapshot();
        chunk.archive = self.envs.explore_stats();
        (chunk.act_seconds, chunk.env_seconds) = self.stepper.take_seconds();
        chunk.seconds = t0.elapsed().as_secs_f64();
        Ok(chunk)
    }
}

/// Everything the learner needs.
pub struct LearnerSpec {
    /// Cartridge ROM (its SHA-1 is the run's).
    pub rom: Vec<u8>,
    /// Where the run lives.
    pub store: Store,
    /// Run id.
    pub run: String,
    /// The run's settings; `train.envs` must be the sum of `workers`.
    pub settings: Settings,
    /// Envs per rollout worker, in worker order.
    pub workers: Vec<usize>,
    /// Where the networks train.
    pub backend: ppo::Backend,
    /// Continue the run from its latest checkpoint.
    pub resume: bool,
    /// Run this many bursts past where the run stands.
    pub add_bursts: Option<u32>,
    /// Replaces a lost learner of a job whose target is this many bursts: continues from
    /// the latest checkpoint, or starts the run again if it has none yet. `resume` and
    /// `add_bursts` are ignored; the other fields must be the lost learner's.
    pub restart_to: Option<u32>,
    /// Judges for the evaluation.
    pub judges: judges::Judges,
    /// Segments judged at once.
    pub eval_concurrency: usize,
    /// Write TensorBoard scalars to `<run>/tensorboard/` (as `zelda-rl train` does).
    pub tensorboard: bool,
}

/// Where the run stands, for the driver.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LearnerStatus {
    /// Burst the run is in.
    pub burst: u32,
    /// Next update of the burst (`updates_per_burst` once its rollouts are done).
    pub update: u64,
    /// PPO updates per burst.
    pub updates_per_burst: u64,
    /// Steps per env per update.
    pub horizon: usize,
    /// Bursts the run has when this job is done.
    pub target_bursts: u32,
    /// Env steps so far.
    pub env_steps: u64,
    /// Reward model the workers shape rewards with.
    pub reward_model: Option<String>,
    /// Nothing left to do.
    pub done: bool,
}

/// Owns PPO and the run's state; turns rounds of chunks into updates and checkpoints.
pub struct Learner {
    rt: tokio::runtime::Runtime,
    id: RunId,
    settings: Settings,
    backend: ppo::Backend,
    judges: judges::Judges,
    eval_concurrency: usize,
    /// `None` when the run was already complete: nothing is left to learn.
    ppo: Option<ppo::Ppo>,
    burst: u32,
    phase: Phase,
    env_steps: u64,
    reward_model: Option<String>,
    target_bursts: u32,
    workers: Vec<usize>,
    snapshots: Option<Vec<Vec<u8>>>,
    buffer: RolloutBuffer,
    stats: BurstStats,
    /// The workers' archives after the last round (for the burst summary).
    archive: rollout::archive::ArchiveStats,
    round_start: Instant,
    scalars: Option<telemetry::Scalars>,
    metrics: telemetry::Metrics,
}

impl Learner {
    /// Starts or resumes the run (the same rules as `zelda-rl train`).
    pub fn open(spec: LearnerSpec) -> Result<Self, TrainError> {
        let s = &spec.settings;
        if spec.workers.is_empty() || spec.workers.contains(&0) {
            return Err(TrainError::Settings(
                "every rollout worker needs at least one env".into(),
            ));
        }
        let total: usize = spec.workers.iter().sum();
        if total != s.train.envs {
            return Err(TrainError::Settings(format!(
                "train.envs is {} but the workers host {total} envs",
                s.train.envs
            )));
        }
        s.validate().map_err(TrainError::Settings)?;
        let rt = runstate::runtime()?;
        rt.block_on(spec.store.check())?;
        let gb = gameboy::GameBoy::new(spec.rom)?;
        let id = RunId {
            store: spec.store,
            run: spec.run,
            settings_hash: s.hash(),
            cartridge_sha1: hex::encode(gb.rom_sha1()),
        };
        drop(gb);
        let cfg: TrainConfig =
            train_config(s, zelda::ActionSet::standard(s.env.start_select).len());
        let (resume, add_bursts) = match spec.restart_to {
            // The lost learner opened the run with these same settings, so starting over
            // (no checkpoint yet) finds its `run.json` identical.
            Some(_) => (runstate::Resume::IfCheckpointed, None),
            None => (spec.resume.into(), spec.add_bursts),
        };
        let mut opened = runstate::open(&rt, &id, s, &cfg, spec.backend, resume, add_bursts)?;
        if let Some(target) = spec.restart_to {
            opened.target_bursts = target;
        }
        let snapshots = match opened.envs {
            None => None,
            Some(EnvState::Workers(w)) if w.len() == spec.workers.len() => Some(w),
            Some(EnvState::Workers(w)) => {
                return Err(TrainError::Resume(format!(
                    "run `{}` was trained with {} rollout workers; resume it with --workers {}",
                    id.run,
                    w.len(),
                    w.len()
                )));
            }
            Some(EnvState::Local(_)) => {
                return Err(TrainError::Resume(format!(
                    "run `{}` was trained by `zelda-rl train` in one process; continue it with `zelda-rl train --resume`",
                    id.run
                )));
            }
        };
        let buffer =
            RolloutBuffer::new(s.horizon(), total, cfg.policy.encoder.frame_len(), FEATURES);
        let done = opened.ppo.is_none() || opened.burst >= opened.target_bursts;
        let scalars = if spec.tensorboard && !done {
            Some(
                telemetry::Scalars::open(&id.store, &id.run)
                    .map_err(|e| TrainError::Io(e.to_string()))?,
            )
        } else {
            None
        };
        Ok(Self {
            rt,
            id,
            settings: spec.settings,
            backend: spec.backend,
            judges: spec.judges,
            eval_concurrency: spec.eval_concurrency,
            ppo: opened.ppo,
            burst: opened.burst,
            phase: opened.phase,
            env_steps: opened.env_steps,
            reward_model: opened.reward_model,
            target_bursts: if done {
                opened.burst
            } else {
                opened.target_bursts
            },
            workers: spec.workers,
            snapshots,
            buffer,
            stats: BurstStats::default(),
            archive: Default::default(),
            round_start: Instant::now(),
            scalars,
            metrics: telemetry::Metrics::new(),
        })
    }

    /// The job's Prometheus metrics as `zelda-rl train --metrics-addr` exposes them: env
    /// steps, episodes, rooms and rewards from every worker's chunks, the PPO updates,
    /// segments, evaluation outcomes and judge calls (counted from this learner's start).
    pub fn metrics(&self) -> &telemetry::Metrics {
        &self.metrics
    }

    /// Where the run stands.
    pub fn status(&self) -> LearnerStatus {
        let updates = self.settings.updates_per_burst();
        LearnerStatus {
            burst: self.burst,
            update: match self.phase {
                Phase::Rollout { update } => update,
                Phase::Evaluate => updates,
            },
            updates_per_burst: updates,
            horizon: self.settings.horizon(),
            target_bursts: self.target_bursts,
            env_steps: self.env_steps,
            reward_model: self.reward_model.clone(),
            done: self.burst >= self.target_bursts,
        }
    }

    /// The request every worker gets for the next round.
    pub fn next_request(&self) -> Option<CollectRequest> {
        let updates = self.settings.updates_per_burst();
        match self.phase {
            Phase::Rollout { update } if self.burst < self.target_bursts => Some(CollectRequest {
                burst: self.burst,
                update,
                steps: self.settings.horizon(),
                reward_model: self.reward_model.clone(),
                flush: update + 1 == updates,
            }),
            _ => None,
        }
    }

    /// Worker `w`'s env snapshot at the run's current update boundary (`None` for a new run:
    /// the worker starts from reset).
    pub fn worker_snapshot(&self, w: usize) -> Option<&[u8]> {
        self.snapshots
            .as_ref()
            .and_then(|s| s.get(w))
            .map(Vec::as_slice)
    }

    /// The current policy (policy-file bytes) for the workers. A round's clock (its env
    /// steps per second) starts here, so actor start-up before the first round is not
    /// counted, as `zelda-rl train` does not count its env construction.
    pub fn policy_bytes(&mut self) -> Result<Vec<u8>, TrainError> {
        self.round_start = Instant::now();
        let ppo = self.ppo.as_ref().ok_or_else(|| complete(&self.id.run))?;
        Ok(ppo.policy_bytes())
    }

    /// Runs one PPO update on one chunk per worker (in worker order) answering
    /// [`Learner::next_request`]; checkpoints as `zelda-rl train` does.
    pub fn update(&mut self, chunks: &[Chunk]) -> Result<UpdateReport, TrainError> {
        let request = self.next_request().ok_or_else(|| {
            TrainError::Resume(format!(
                "burst {} has no rollouts left to learn from",
                self.burst
            ))
        })?;
        if chunks.len() != self.workers.len() {
            return Err(TrainError::Io(format!(
                "{} chunks for {} workers",
                chunks.len(),
                self.workers.len()
            )));
        }
        for (w, c) in chunks.iter().enumerate() {
            if c.worker as usize != w || c.envs as usize != self.workers[w] || c.request != request
            {
                return Err(TrainError::Io(format!(
                    "chunk {w} is worker {}'s ({} envs) for {:?}; expected worker {w} ({} envs) for {:?}",
                    c.worker, c.envs, c.request, self.workers[w], request
                )));
            }
        }
        let n: usize = self.workers.iter().sum();
        let frame_len = self.buffer.frame_len();
        // Every length is checked before the first push, so a refused round leaves the
        // buffer empty.
        for c in chunks {
            let e = c.envs as usize;
            let check = |what: &str, len: usize, per: usize| {
                if len == request.steps * e * per {
                    Ok(())
                } else {
                    Err(TrainError::Io(format!(
                        "worker {}'s chunk: `{what}` holds {len} values, expected {}",
                        c.worker,
                        request.steps * e * per
                    )))
                }
            };
            check("frames", c.frames.len(), frame_len)?;
            check("features", c.features.len(), FEATURES)?;
            for (what, len) in [
                ("actions", c.actions.len()),
                ("log_probs", c.log_probs.len()),
                ("values", c.values.len()),
                ("rewards", c.rewards.len()),
                ("ends", c.ends.len()),
            ] {
                check(what, len, 1)?;
            }
            check("last_values", c.last_values.len() * request.steps, 1)?;
        }
        let mut frames = Vec::with_capacity(n * frame_len);
        let mut features = Vec::with_capacity(n * FEATURES);
        let (mut actions, mut log_probs, mut values, mut rewards, mut ends) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for t in 0..request.steps {
            frames.clear();
            features.clear();
            actions.clear();
            log_probs.clear();
            values.clear();
            rewards.clear();
            ends.clear();
            for c in chunks {
                let e = c.envs as usize;
                let r = t * e..(t + 1) * e;
                frames.extend_from_slice(&c.frames[r.start * frame_len..r.end * frame_len]);
                features.extend_from_slice(&c.features[r.start * FEATURES..r.end * FEATURES]);
                actions.extend_from_slice(&c.actions[r.clone()]);
                log_probs.extend_from_slice(&c.log_probs[r.clone()]);
                values.extend_from_slice(&c.values[r.clone()]);
                rewards.extend_from_slice(&c.rewards[r.clone()]);
                ends.extend(c.ends[r].iter().map(|&e| StepEnd::from(e)));
            }
            self.buffer.push(&StepRecord {
                frames: &frames,
                features: &features,
                actions: &actions,
                log_probs: &log_probs,
                values: &values,
                rewards: &rewards,
                ends: &ends,
            })?;
        }
        let last: Vec<f32> = chunks
            .iter()
            .flat_map(|c| c.last_values.iter().copied())
            .collect();
        let ppo = self.ppo.as_mut().ok_or_else(|| complete(&self.id.run))?;
        let result = ppo.finish_rollout(&mut self.buffer, &last).and_then(|()| {
            let t = Instant::now();
            ppo.update(&self.buffer).map(|s| (s, t.elapsed()))
        });
        self.buffer.clear();
        let (stats, update_time) = result?;

        let steps = (request.steps * n) as u64;
        self.env_steps += steps;
        let secs = self.round_start.elapsed().as_secs_f64();
        self.stats.steps += steps;
        self.stats.seconds += secs;
        let (mut reward_sum, mut learned_sum) = (0.0, 0.0);
        let m = &self.metrics;
        m.env_steps(steps);
        for c in chunks {
            self.stats.segments += c.segments;
            self.stats.segment_bytes += c.segment_bytes;
            c.episodes.iter().for_each(|ep| self.stats.add(ep));
            c.explorer_episodes
                .iter()
                .for_each(|ep| self.stats.add_explorer(ep));
            reward_sum += c.reward_sum;
            learned_sum += c.learned_sum;
            for ep in &c.episodes {
                m.episode_finished(
                    f64::from(ep.ret),
                    u64::from(ep.length),
                    u64::from(ep.rooms),
                    ep.terminated,
                );
            }
            c.rooms.iter().for_each(|&room| m.room_entered(room));
            m.reward_parts(&c.reward_parts);
        }
        self.snapshots = Some(chunks.iter().map(|c| c.snapshot.clone()).collect());
        let updates = self.settings.updates_per_burst();
        let next = request.update + 1;
        self.phase = if next == updates {
            Phase::Evaluate
        } else {
            Phase::Rollout { update: next }
        };
        let every = self.settings.train.checkpoint_every;
        if next == updates || (every > 0 && next % every == 0) {
            self.save()?;
        }
        let report = UpdateReport {
            burst: self.burst,
            update: request.update,
            updates,
            env_steps: self.env_steps,
            steps_per_second: steps as f64 / secs,
            mean_reward: reward_sum / steps as f64,
            mean_learned_reward: learned_sum / steps as f64,
            update_seconds: update_time.as_secs_f64(),
            act_seconds: chunks.iter().map(|c| c.act_seconds).sum(),
            env_seconds: chunks.iter().map(|c| c.env_seconds).sum(),
            stats,
            archive: chunks.iter().fold(Default::default(), |mut a, c| {
                a += c.archive;
                a
            }),
        };
        self.archive = report.archive;
        report.log();
        report.record_metrics(&self.metrics);
        if let Some(s) = &mut self.scalars {
            s.record(report.env_steps as i64, &report.scalars());
        }
        Ok(report)
    }

    fn save(&self) -> Result<String, TrainError> {
        let snapshots = self.snapshots.as_deref().ok_or_else(|| {
            TrainError::Checkpoint("no worker snapshots to checkpoint yet".into())
        })?;
        runstate::save(
            &self.rt,
            &self.id,
            self.burst,
            self.phase,
            self.env_steps,
            self.ppo
                .as_ref()
                .ok_or_else(|| complete(&self.id.run))?
                .checkpoint_bytes(),
            runstate::workers_bytes(snapshots),
            &self.reward_model,
        )
    }

    /// Ends a burst whose rollouts are done: evaluation, reward model, checkpoint.
    pub fn finish_burst(&mut self, progress: bool) -> Result<BurstSummary, TrainError> {
        if self.phase != Phase::Evaluate {
            return Err(TrainError::Resume(format!(
                "burst {} still has rollouts to run ({:?})",
                self.burst, self.phase
            )));
        }
        let mut summary = std::mem::take(&mut self.stats).summary(self.burst);
        summary.archive = self.archive;
        let end = BurstEnd {
            judges: &self.judges,
            eval_concurrency: self.eval_concurrency,
            progress,
            backend: self.backend,
            judge_sink: Some(crate::trainer::judge_metrics(self.metrics.clone())),
        };
        if let Some(model) = runstate::end_burst(
            &self.rt,
            &self.id,
            &self.settings,
            self.burst,
            &end,
            &mut summary,
        )? {
            self.reward_model = Some(model.key);
        }
        summary.record_metrics(&self.metrics);
        if let Some(s) = &mut self.scalars {
            s.record(i64::from(self.burst + 1), &summary.scalars());
        }
        self.burst += 1;
        self.phase = Phase::Rollout { update: 0 };
        self.save()?;
        Ok(summary)
    }
}

/// The error of a learner asked to learn in a run that was complete when it opened.
fn complete(run: &str) -> TrainError {
    TrainError::Resume(format!(
        "run `{run}` already has every burst asked for: nothing is left to learn"
    ))
}
