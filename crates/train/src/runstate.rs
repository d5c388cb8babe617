//! What the local loop and the Ray learner share about a run's life: starting or resuming
//! it from the store, writing checkpoints, the per-burst statistics, and the end of a
//! burst (evaluation, then a reward model).

use episodes::Store;
use ppo::{Ppo, TrainConfig};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{self, Latest, Phase, TrainState};
use crate::learned::{self, LearnedReward, Trained};
use crate::trainer::BurstSummary;
use crate::{Settings, TrainError};

/// Prefix of a checkpoint's `envs` bytes when the run's environments live on several
/// Ray rollout workers (one `VecEnv` snapshot each) instead of in one process.
const WORKERS_MAGIC: &[u8; 8] = b"ZRLWRKS\0";

/// The environment part of a checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub enum EnvState {
    /// One `VecEnv::snapshot` (`zelda-rl train`).
    Local(Vec<u8>),
    /// One snapshot per Ray rollout worker, in worker order (`python -m zelda_rl.ray.train`).
    Workers(Vec<Vec<u8>>),
}

/// [`TrainState::envs`] of a Ray run: the magic, then the workers' snapshots (postcard).
/// A local run stores its `VecEnv::snapshot` as it is.
pub fn workers_bytes(snapshots: &[Vec<u8>]) -> Vec<u8> {
    let mut out = WORKERS_MAGIC.to_vec();
    out.extend(postcard::to_allocvec(snapshots).expect("snapshots serialise"));
    out
}

impl EnvState {
    /// Reads [`TrainState::envs`]; `object` names the checkpoint in errors.
    pub fn decode(bytes: &[u8], object: &str) -> Result<Self, TrainError> {
        match bytes.strip_prefix(WORKERS_MAGIC.as_slice()) {
            Some(body) => postcard::from_bytes::<Vec<Vec<u8>>>(body)
                .map(EnvState::Workers)
                .map_err(|e| {
                    TrainError::Checkpoint(format!("{object}: worker snapshots unreadable: {e}"))
                }),
            None => Ok(EnvState::Local(bytes.to_vec())),
        }
    }
}

/// Where a run stands after [`open`].
pub struct Opened {
    /// The learner (new, or restored from the checkpoint); `None` when the run is
    /// complete, so repeating a finished command builds no network (nor a CUDA context).
    pub ppo: Option<Ppo>,
    /// Burst the run is in.
    pub burst: u32,
    /// Phase within it.
    pub phase: Phase,
    /// Env steps so far.
    pub env_steps: u64,
    /// Reward model in use.
    pub reward_model: Option<String>,
    /// Environments to restore (`None`: a new run, start from reset).
    pub envs: Option<EnvState>,
    /// Bursts the run has when this job is done.
    pub target_bursts: u32,
}

/// The identity a run's checkpoints must match.
#[derive(Clone)]
pub struct RunId {
    /// Object store.
    pub store: Store,
    /// Run id.
    pub run: String,
    /// `Settings::hash` of the run.
    pub settings_hash: String,
    /// Cartridge SHA-1 (hex).
    pub cartridge_sha1: String,
}

/// Whether [`open`] continues the latest checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// Start a new run (a finished one with the same settings is a no-op).
    No,
    /// Continue the latest checkpoint; an error when there is none.
    Yes,
    /// Continue the latest checkpoint if there is one, else start the run: a replaced
    /// Ray learner, which opens the run with the lost one's settings.
    IfCheckpointed,
}

impl From<bool> for Resume {
    fn from(resume: bool) -> Self {
        if resume { Self::Yes } else { Self::No }
    }
}

/// Starts a new run or continues the latest checkpoint: never silently restarts a run
/// that has checkpoints, never silently starts over when asked to resume.
#[allow(clippy::too_many_arguments)]
pub fn open(
    rt: &tokio::runtime::Runtime,
    id: &RunId,
    settings: &Settings,
    cfg: &TrainConfig,
    backend: ppo::Backend,
    resume: Resume,
    add_bursts: Option<u32>,
) -> Result<Opened, TrainError> {
    let store = &id.store;
    let latest_key = checkpoint::latest_key(&id.run);
    let latest = rt.block_on(store.get_opt(&latest_key))?;
    let resume = match resume {
        Resume::Yes => true,
        Resume::No => add_bursts.is_some() && latest.is_some(),
        Resume::IfCheckpointed => latest.is_some(),
    };
    let opened = match (resume, latest) {
        (false, Some(bytes)) => {
            // Running a finished run again with the same settings is a no-op, so the
            // command is safe to repeat.
            if let Ok(latest) = serde_json::from_slice::<Latest>(&bytes) {
                let ck = rt.block_on(store.get(&latest.key))?;
                let st = TrainState::decode(&ck, &latest.key)?;
                if st.settings_hash == id.settings_hash
                    && st.cartridge_sha1 == id.cartridge_sha1
                    && st.burst >= settings.train.bursts
                {
                    tracing::info!(
                        run = id.run,
                        bursts = st.burst,
                        "run already complete; nothing to do"
                    );
                    return Ok(Opened {
                        ppo: None,
                        burst: st.burst,
                        phase: st.phase,
                        env_steps: st.env_steps,
                        reward_model: st.reward_model,
                        envs: None,
                        target_bursts: st.burst,
                    });
                }
            }
            return Err(TrainError::Resume(format!(
                "run `{}` already has checkpoints ({latest_key}); pass --resume to continue it, or choose another --run",
                id.run
            )));
        }
        (true, None) => {
            return Err(TrainError::Resume(format!(
                "nothing to resume: {latest_key} does not exist in {}",
                store.url()
            )));
        }
        (false, None) => {
            let meta = serde_json::json!({
                "run": id.run,
                "cartridge_sha1": id.cartridge_sha1,
                "settings_hash": id.settings_hash,
                "settings": settings,
            });
            let key = format!("{}/run.json", id.run);
            rt.block_on(store.put_new(&key, serde_json::to_vec_pretty(&meta).expect("JSON").into()))
                .map_err(|e| match e {
                    episodes::StoreError::Conflict { .. } => TrainError::Resume(format!(
                        "{key} exists with other settings: run `{}` was started differently; choose another --run",
                        id.run
                    )),
                    other => other.into(),
                })?;
            Opened {
                ppo: Some(Ppo::new(cfg.clone(), backend)?),
                burst: 0,
                phase: Phase::Rollout { update: 0 },
                env_steps: 0,
                reward_model: None,
                envs: None,
                target_bursts: 0,
            }
        }
        (true, Some(bytes)) => {
            let latest: Latest = serde_json::from_slice(&bytes)
                .map_err(|e| TrainError::Checkpoint(format!("{latest_key}: {e}")))?;
            let ck = rt.block_on(store.get(&latest.key))?;
            let st = TrainState::decode(&ck, &latest.key)?;
            if st.settings_hash != id.settings_hash {
                return Err(TrainError::Resume(format!(
                    "checkpoint {} was written with other settings (hash {} vs {}); resume with the run's original settings",
                    latest.key, st.settings_hash, id.settings_hash
                )));
            }
            if st.cartridge_sha1 != id.cartridge_sha1 {
                return Err(TrainError::Resume(format!(
                    "checkpoint {} is for cartridge SHA-1 {}, not {}",
                    latest.key, st.cartridge_sha1, id.cartridge_sha1
                )));
            }
            let ppo = Ppo::resume(&st.learner, backend, cfg)
                .map_err(|e| TrainError::Checkpoint(format!("{}: learner: {e}", latest.key)))?;
            tracing::info!(checkpoint = latest.key, burst = st.burst, phase = ?st.phase, "resuming");
            Opened {
                ppo: Some(ppo),
                burst: st.burst,
                phase: st.phase,
                env_steps: st.env_steps,
                reward_model: st.reward_model,
                envs: Some(EnvState::decode(&st.envs, &latest.key)?),
                target_bursts: 0,
            }
        }
    };
    // `add_bursts` counts from the burst the run is in (an interrupted burst finishes
    // first and counts as one).
    let target_bursts = match add_bursts {
        Some(k) => opened.burst + k,
        None => settings.train.bursts,
    };
    Ok(Opened {
        target_bursts,
        ..opened
    })
}

/// Writes a checkpoint and points `latest.json` at it; returns its key. `envs` is a
/// `VecEnv::snapshot` or [`workers_bytes`].
#[allow(clippy::too_many_arguments)]
pub fn save(
    rt: &tokio::runtime::Runtime,
    id: &RunId,
    burst: u32,
    phase: Phase,
    env_steps: u64,
    learner: Vec<u8>,
    envs: Vec<u8>,
    reward_model: &Option<String>,
) -> Result<String, TrainError> {
    let state = TrainState {
        run: id.run.clone(),
        settings_hash: id.settings_hash.clone(),
        cartridge_sha1: id.cartridge_sha1.clone(),
        burst,
        phase,
        env_steps,
        reward_model: reward_model.clone(),
        learner,
        envs,
    };
    let key = checkpoint::checkpoint_key(&id.run, burst, phase);
    rt.block_on(id.store.put_new(&key, state.encode().into()))?;
    let latest = Latest {
        key: key.clone(),
        burst,
        phase,
        env_steps,
    };
    rt.block_on(id.store.put(
        &checkpoint::latest_key(&id.run),
        serde_json::to_vec(&latest).expect("JSON").into(),
    ))?;
    Ok(key)
}

/// One finished episode as the burst statistics count it (what a Ray worker sends back).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpisodeRecord {
    /// Heuristic return.
    pub ret: f32,
    /// Steps.
    pub length: u32,
    /// Distinct rooms.
    pub rooms: u32,
    /// Instruments held at the end.
    pub instruments: u32,
    /// Per reward component sums.
    pub components: [f32; zelda::reward::COMPONENTS],
    /// Ended inside the game (not by the step limit).
    pub terminated: bool,
    /// Started from the exploration archive rather than the start state.
    pub from_archive: bool,
}

impl From<&rollout::EpisodeStats> for EpisodeRecord {
    fn from(ep: &rollout::EpisodeStats) -> Self {
        Self {
            ret: ep.ret,
            length: ep.length,
            rooms: ep.rooms,
            instruments: ep.instruments,
            components: ep.components,
            terminated: ep.terminated,
            from_archive: ep.start_cell.is_some(),
        }
    }
}

/// Per-burst accumulators.
#[derive(Default)]
pub struct BurstStats {
    episodes: u64,
    ret: f64,
    length: f64,
    rooms: f64,
    max_rooms: u32,
    instrument: u64,
    start_episodes: u64,
    start_rooms: f64,
    start_instrument: u64,
    explorer_episodes: u64,
    explorer_instrument: u64,
    components: [f64; zelda::reward::COMPONENTS],
    /// Segments written.
    pub segments: u64,
    /// Their encoded bytes.
    pub segment_bytes: u64,
    /// Env steps.
    pub steps: u64,
    /// Seconds of rollouts and updates.
    pub seconds: f64,
}

impl BurstStats {
    /// Counts one finished episode.
    pub fn add(&mut self, ep: &EpisodeRecord) {
        self.episodes += 1;
        self.ret += f64::from(ep.ret);
        self.length += f64::from(ep.length);
        self.rooms += f64::from(ep.rooms);
        self.max_rooms = self.max_rooms.max(ep.rooms);
        self.instrument += u64::from(ep.instruments > 0);
        if !ep.from_archive {
            self.start_episodes += 1;
            self.start_rooms += f64::from(ep.rooms);
            self.start_instrument += u64::from(ep.instruments > 0);
        }
        for (acc, c) in self.components.iter_mut().zip(ep.components) {
            *acc += f64::from(c);
        }
    }

    /// Counts one finished episode of an explorer (`env.explorers`).
    pub fn add_explorer(&mut self, ep: &EpisodeRecord) {
        self.explorer_episodes += 1;
        self.explorer_instrument += u64::from(ep.instruments > 0);
    }

    /// The burst's summary so far.
    pub fn summary(&self, burst: u32) -> BurstSummary {
        let n = self.episodes.max(1) as f64;
        BurstSummary {
            burst,
            env_steps: self.steps,
            wall_seconds: self.seconds,
            steps_per_second: if self.seconds > 0.0 {
                self.steps as f64 / self.seconds
            } else {
                0.0
            },
            episodes: self.episodes,
            mean_return: self.ret / n,
            mean_length: self.length / n,
            mean_rooms: self.rooms / n,
            max_rooms: self.max_rooms,
            instrument_episodes: self.instrument,
            start_episodes: self.start_episodes,
            start_mean_rooms: self.start_rooms / self.start_episodes.max(1) as f64,
            start_instrument_episodes: self.start_instrument,
            explorer_episodes: self.explorer_episodes,
            explorer_instrument_episodes: self.explorer_instrument,
            reward_components: zelda::RewardConfig::NAMES
                .iter()
                .zip(self.components)
                .map(|(name, v)| (name.to_string(), v / n))
                .collect(),
            segments_written: self.segments,
            segment_bytes: self.segment_bytes,
            ..Default::default()
        }
    }
}

/// What the end of a burst needs besides the run's identity.
pub struct BurstEnd<'a> {
    /// Judges for the evaluation.
    pub judges: &'a judges::Judges,
    /// Segments judged at once.
    pub eval_concurrency: usize,
    /// Draw the evaluator's progress bar.
    pub progress: bool,
    /// Where the reward model trains.
    pub backend: ppo::Backend,
    /// Also receives every judge call (the process's metrics).
    pub judge_sink: Option<evaluator::JudgeSink>,
}

/// The end of a burst: judge everything stored so far (judged segments are skipped), then
/// train a reward model on the scores. Fills `summary` and returns the new model, if any.
pub fn end_burst(
    rt: &tokio::runtime::Runtime,
    id: &RunId,
    settings: &Settings,
    burst: u32,
    end: &BurstEnd<'_>,
    summary: &mut BurstSummary,
) -> Result<Option<LearnedReward>, TrainError> {
    let eval_opts = evaluator::Options {
        run: id.run.clone(),
        judges: end.judges.clone(),
        mode: evaluator::Mode::Score,
        concurrency: end.eval_concurrency,
        out: evaluator::Mode::Score.default_out().to_string(),
        retry_failed: false,
        seed: settings.train.seed,
        progress: end.progress,
    };
    let metrics = match &end.judge_sink {
        Some(sink) => evaluator::Metrics::with_sink(sink.clone()),
        None => evaluator::Metrics::new(),
    };
    let eval = rt.block_on(evaluator::evaluate(&id.store, &eval_opts, &metrics))?;
    tracing::info!(
        judged = eval.judged,
        skipped = eval.skipped,
        ok = eval.ok,
        "evaluation done"
    );
    summary.evaluation = Some(eval);
    if !settings.reward_model.enabled {
        return Ok(None);
    }
    let trained: Option<Trained> = rt.block_on(learned::train(
        &id.store,
        &id.run,
        burst,
        &id.cartridge_sha1,
        &settings.reward_model,
        settings.train.seed,
        end.backend,
    ))?;
    let Some(t) = trained else {
        return Ok(None);
    };
    let bytes = rt.block_on(id.store.get(&t.key))?;
    let model = LearnedReward::load(
        &bytes,
        &t.key,
        &id.cartridge_sha1,
        &settings.reward_model.shaping,
        end.backend,
    )?;
    summary.reward_model = Some(t.key);
    summary.reward_model_samples = t.samples;
    summary.reward_model_val_accuracy = t
        .val_pair_accuracy
        .is_finite()
        .then_some(t.val_pair_accuracy);
    Ok(Some(model))
}

/// A tokio runtime for store and judge I/O.
pub fn runtime() -> Result<tokio::runtime::Runtime, TrainError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| TrainError::Io(e.to_string()))
}
