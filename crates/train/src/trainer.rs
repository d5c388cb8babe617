//! The training loop: bursts of (rollouts + PPO updates), then evaluation of the burst's
//! segments by the judges, then a reward model for the next burst.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use episodes::Store;
use ppo::{ActMode, ObsBatch, Ppo, RolloutBuffer, StepEnd, StepRecord, TrainConfig, UpdateStats};
use rollout::{EpisodeStats, SegmentContext, SegmentExporter, VecEnv};
use serde::Serialize;
use zelda::obs::FEATURES;

use crate::checkpoint::{self, Latest, Phase, TrainState};
use crate::learned::{self, LearnedReward, Trained};
use crate::{Settings, TrainError};

/// Everything a training run needs.
pub struct TrainOptions {
    /// Cartridge ROM.
    pub rom: Vec<u8>,
    /// Save state episodes start from (games with a file menu).
    pub start_state: Option<Vec<u8>>,
    /// Where segments, scores, models and checkpoints go.
    pub store: Store,
    /// Run id.
    pub run: String,
    /// The settings.
    pub settings: Settings,
    /// Judges for the evaluation step (offline or a gateway).
    pub judges: judges::Judges,
    /// Segments judged at once.
    pub eval_concurrency: usize,
    /// Continue the run from its latest checkpoint.
    pub resume: bool,
    /// Run this many bursts past wherever the run stands (starting it if it does not
    /// exist yet) instead of up to `train.bursts` in all: one RayJob per burst uses this.
    pub add_bursts: Option<u32>,
    /// Where the networks run.
    pub backend: ppo::Backend,
    /// Worker id (segment keys).
    pub worker: u32,
    /// Set to stop at the next step (SIGTERM): a checkpoint is written first.
    pub stop: Arc<AtomicBool>,
    /// Draw progress bars (the evaluator's) on a terminal.
    pub progress: bool,
}

/// One PPO update as reported to observers.
#[derive(Debug, Clone, Serialize)]
pub struct UpdateReport {
    /// Burst.
    pub burst: u32,
    /// Update within the burst.
    pub update: u64,
    /// Updates per burst.
    pub updates: u64,
    /// Env steps of the run so far (all envs).
    pub env_steps: u64,
    /// Env steps per second of this update's rollout and update together.
    pub steps_per_second: f64,
    /// Mean reward per step (shaped total).
    pub mean_reward: f64,
    /// Mean learned part of the reward per step.
    pub mean_learned_reward: f64,
    /// Seconds the PPO update itself took.
    pub update_seconds: f64,
    /// PPO statistics.
    pub stats: UpdateStats,
}

/// What one burst did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BurstSummary {
    /// Burst index.
    pub burst: u32,
    /// Env steps in this burst (all envs).
    pub env_steps: u64,
    /// Seconds of rollouts and updates.
    pub wall_seconds: f64,
    /// Env steps per second (rollouts and updates).
    pub steps_per_second: f64,
    /// Episodes finished.
    pub episodes: u64,
    /// Mean heuristic return of those episodes.
    pub mean_return: f64,
    /// Mean length.
    pub mean_length: f64,
    /// Mean distinct rooms per episode.
    pub mean_rooms: f64,
    /// Most rooms in one episode.
    pub max_rooms: u32,
    /// Episodes that ended holding an instrument.
    pub instrument_episodes: u64,
    /// Mean per-episode sum of each heuristic reward component, by name.
    pub reward_components: Vec<(String, f64)>,
    /// Segments written to the store.
    pub segments_written: u64,
    /// The evaluation of the run's segments.
    pub evaluation: Option<evaluator::Summary>,
    /// The reward model trained after this burst.
    pub reward_model: Option<String>,
    /// Scored segments it learned from.
    pub reward_model_samples: usize,
    /// Its held-out pair accuracy.
    pub reward_model_val_accuracy: Option<f64>,
    /// The last update's statistics.
    pub last_update: Option<UpdateStats>,
}

/// How a run ended.
#[derive(Debug)]
pub enum Outcome {
    /// Every burst ran.
    Finished(Vec<BurstSummary>),
    /// Stopped by request after writing this checkpoint.
    Interrupted {
        /// Store key of the checkpoint.
        checkpoint: String,
        /// Bursts completed before the stop.
        completed: Vec<BurstSummary>,
    },
}

/// Receives progress as the run goes (HUD, metrics, TensorBoard, logs).
pub trait Observer {
    /// After every env step.
    fn on_step(&mut self, _envs: &VecEnv, _rewards: &[f32]) {}
    /// When an episode ends.
    fn on_episode(&mut self, _burst: u32, _episode: &EpisodeStats) {}
    /// After every PPO update.
    fn on_update(&mut self, _report: &UpdateReport) {}
    /// After every burst.
    fn on_burst(&mut self, _summary: &BurstSummary) {}
    /// Once, when the loop stops (finished or interrupted), with the envs' final state.
    fn on_end(&mut self, _envs: &VecEnv) {}
}

/// An observer that ignores everything.
pub struct NoObserver;

impl Observer for NoObserver {}

/// Per-burst accumulators.
#[derive(Default)]
struct BurstStats {
    episodes: u64,
    ret: f64,
    length: f64,
    rooms: f64,
    max_rooms: u32,
    instrument: u64,
    components: [f64; zelda::reward::COMPONENTS],
    segments: u64,
    steps: u64,
    seconds: f64,
}

impl BurstStats {
    fn add(&mut self, ep: &EpisodeStats) {
        self.episodes += 1;
        self.ret += f64::from(ep.ret);
        self.length += f64::from(ep.length);
        self.rooms += f64::from(ep.rooms);
        self.max_rooms = self.max_rooms.max(ep.rooms);
        self.instrument += u64::from(ep.instruments > 0);
        for (acc, c) in self.components.iter_mut().zip(ep.components) {
            *acc += f64::from(c);
        }
    }

    fn summary(&self, burst: u32) -> BurstSummary {
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
            reward_components: zelda::RewardConfig::NAMES
                .iter()
                .zip(self.components)
                .map(|(name, v)| (name.to_string(), v / n))
                .collect(),
            segments_written: self.segments,
            ..Default::default()
        }
    }
}

/// The learner's run config for these settings and action count.
pub fn train_config(settings: &Settings, actions: usize) -> TrainConfig {
    let mut policy = ppo::PolicyConfig::nature(FEATURES, actions);
    policy.encoder.frame_stack = settings.env.frame_stack;
    TrainConfig {
        seed: settings.train.seed,
        policy,
        ppo: settings.ppo.clone(),
        adam: Default::default(),
    }
}

/// Runs (or resumes) a training run.
pub fn run(opts: TrainOptions, observer: &mut dyn Observer) -> Result<Outcome, TrainError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| TrainError::Io(e.to_string()))?;
    let store = opts.store.clone();
    rt.block_on(store.check())?;
    let s = &opts.settings;
    let gb = gameboy::GameBoy::new(opts.rom.clone())?;
    let sha1 = hex::encode(gb.rom_sha1());
    let title = gb.header().title.clone();
    drop(gb);
    let threads = s
        .train
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let ctx = SegmentContext {
        run: opts.run.clone(),
        burst: 0,
        worker: opts.worker,
        policy: format!("ppo:{}", opts.run),
        cartridge_sha1: sha1.clone(),
        cartridge_title: title,
        config_hash: s.env_hash(),
    };
    let mut envs = VecEnv::new(
        &opts.rom,
        opts.start_state.clone(),
        s.train.envs,
        s.env.clone(),
        s.reward.clone(),
        threads,
        s.train.seed,
        ctx,
        s.segments.clone(),
        true,
    )?;
    let cfg = train_config(s, envs.n_actions());
    let settings_hash = s.hash();

    // Where to start: a fresh run, or the latest checkpoint. Never silently restart a run
    // that has checkpoints, never silently start over when asked to resume.
    let latest_key = checkpoint::latest_key(&opts.run);
    let latest = rt.block_on(store.get_opt(&latest_key))?;
    let resume = opts.resume || (opts.add_bursts.is_some() && latest.is_some());
    let (mut ppo, mut burst, mut phase, mut env_steps, mut rm_key) = match (resume, latest) {
        (false, Some(bytes)) => {
            // Running a finished run again with the same settings is a no-op, so the
            // command is safe to repeat.
            if let Ok(latest) = serde_json::from_slice::<Latest>(&bytes) {
                let ck = rt.block_on(store.get(&latest.key))?;
                let st = TrainState::decode(&ck, &latest.key)?;
                if st.settings_hash == settings_hash
                    && st.cartridge_sha1 == sha1
                    && st.burst >= s.train.bursts
                {
                    tracing::info!(
                        run = opts.run,
                        bursts = st.burst,
                        "run already complete; nothing to do"
                    );
                    return Ok(Outcome::Finished(Vec::new()));
                }
            }
            return Err(TrainError::Resume(format!(
                "run `{}` already has checkpoints ({latest_key}); pass --resume to continue it, or choose another --run",
                opts.run
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
                "run": opts.run,
                "cartridge_sha1": sha1,
                "settings_hash": settings_hash,
                "settings": s,
            });
            let key = format!("{}/run.json", opts.run);
            rt.block_on(store.put_new(&key, serde_json::to_vec_pretty(&meta).expect("JSON").into()))
                .map_err(|e| match e {
                    episodes::StoreError::Conflict { .. } => TrainError::Resume(format!(
                        "{key} exists with other settings: run `{}` was started differently; choose another --run",
                        opts.run
                    )),
                    other => other.into(),
                })?;
            let ppo = Ppo::new(cfg.clone(), opts.backend)?;
            (ppo, 0u32, Phase::Rollout { update: 0 }, 0u64, None)
        }
        (true, Some(bytes)) => {
            let latest: Latest = serde_json::from_slice(&bytes)
                .map_err(|e| TrainError::Checkpoint(format!("{latest_key}: {e}")))?;
            let ck = rt.block_on(store.get(&latest.key))?;
            let st = TrainState::decode(&ck, &latest.key)?;
            if st.settings_hash != settings_hash {
                return Err(TrainError::Resume(format!(
                    "checkpoint {} was written with other settings (hash {} vs {}); resume with the run's original settings",
                    latest.key, st.settings_hash, settings_hash
                )));
            }
            if st.cartridge_sha1 != sha1 {
                return Err(TrainError::Resume(format!(
                    "checkpoint {} is for cartridge SHA-1 {}, not {sha1}",
                    latest.key, st.cartridge_sha1
                )));
            }
            let ppo = Ppo::resume(&st.learner, opts.backend, &cfg)
                .map_err(|e| TrainError::Checkpoint(format!("{}: learner: {e}", latest.key)))?;
            envs.restore(&st.envs).map_err(|e| {
                TrainError::Checkpoint(format!("{}: environments: {e}", latest.key))
            })?;
            tracing::info!(checkpoint = latest.key, burst = st.burst, phase = ?st.phase, "resuming");
            (ppo, st.burst, st.phase, st.env_steps, st.reward_model)
        }
    };
    // `add_bursts` counts from the burst the run is in (an interrupted burst finishes
    // first and counts as one).
    let target_bursts = match opts.add_bursts {
        Some(k) => burst + k,
        None => s.train.bursts,
    };
    let mut learned = match &rm_key {
        Some(key) => {
            let bytes = rt.block_on(store.get(key))?;
            Some(LearnedReward::load(
                &bytes,
                key,
                &sha1,
                &s.reward_model.shaping,
                opts.backend,
            )?)
        }
        None => None,
    };

    let n = envs.len();
    let horizon = s.horizon();
    let frame_len = envs.frames_per_env();
    let updates = s.updates_per_burst();
    let mut buffer = RolloutBuffer::new(horizon, n, frame_len, FEATURES);
    let mut obs_frames = vec![0u8; n * frame_len];
    let mut obs_features = vec![0f32; n * FEATURES];
    let mut rewards = vec![0f32; n];
    let mut learned_part = vec![0f32; n];
    let mut ends = vec![StepEnd::Running; n];
    let mut actions = vec![0usize; n];
    let mut completed = Vec::new();

    let save = |rt: &tokio::runtime::Runtime,
                burst: u32,
                phase: Phase,
                env_steps: u64,
                learner: Vec<u8>,
                envs_snapshot: Vec<u8>,
                rm_key: &Option<String>|
     -> Result<String, TrainError> {
        let state = TrainState {
            run: opts.run.clone(),
            settings_hash: settings_hash.clone(),
            cartridge_sha1: sha1.clone(),
            burst,
            phase,
            env_steps,
            reward_model: rm_key.clone(),
            learner,
            envs: envs_snapshot,
        };
        let key = checkpoint::checkpoint_key(&opts.run, burst, phase);
        rt.block_on(store.put_new(&key, state.encode().into()))?;
        let latest = Latest {
            key: key.clone(),
            burst,
            phase,
            env_steps,
        };
        rt.block_on(store.put(
            &latest_key,
            serde_json::to_vec(&latest).expect("JSON").into(),
        ))?;
        Ok(key)
    };

    while burst < target_bursts {
        envs.set_burst(burst);
        let mut bs = BurstStats::default();
        if let Phase::Rollout { update: first } = phase {
            let exporter = SegmentExporter::spawn(store.clone(), 64);
            for update in first..updates {
                // Checkpoints are taken at update boundaries: keep this boundary's state so
                // a stop request mid-rollout can write it without waiting for the update.
                let boundary = envs.snapshot();
                let t0 = Instant::now();
                let (mut reward_sum, mut learned_sum) = (0f64, 0f64);
                for t in 0..horizon {
                    if opts.stop.load(Ordering::Relaxed) {
                        exporter.finish()?;
                        let key = save(
                            &rt,
                            burst,
                            Phase::Rollout { update },
                            env_steps,
                            ppo.checkpoint_bytes(),
                            boundary,
                            &rm_key,
                        )?;
                        tracing::info!(checkpoint = key, "stopped on request; checkpoint written");
                        observer.on_end(&envs);
                        return Ok(Outcome::Interrupted {
                            checkpoint: key,
                            completed,
                        });
                    }
                    obs_frames.copy_from_slice(envs.frames());
                    obs_features.copy_from_slice(envs.features());
                    let step_index = env_steps + (t * n) as u64;
                    let act = ppo.act(
                        &ObsBatch {
                            frames: &obs_frames,
                            features: &obs_features,
                            batch: n,
                        },
                        ActMode::Sample {
                            seed: ppo::mix_seed(s.train.seed, 0xAC7, step_index),
                        },
                    )?;
                    for (a, &b) in actions.iter_mut().zip(&act.actions) {
                        *a = b as usize;
                    }
                    envs.step(&actions);
                    for (i, r) in rewards.iter_mut().enumerate() {
                        *r = envs.reward(i);
                    }
                    learned_part.iter_mut().for_each(|l| *l = 0.0);
                    if let Some(lr) = learned.as_mut() {
                        lr.shape(&envs, &mut rewards, &mut learned_part)?;
                    }
                    reward_sum += rewards.iter().map(|r| f64::from(*r)).sum::<f64>();
                    learned_sum += learned_part.iter().map(|r| f64::from(*r)).sum::<f64>();
                    let truncated: Vec<usize> = (0..n).filter(|&i| envs.truncated(i)).collect();
                    let final_values = if truncated.is_empty() {
                        Vec::new()
                    } else {
                        let mut f = Vec::with_capacity(truncated.len() * frame_len);
                        let mut d = Vec::with_capacity(truncated.len() * FEATURES);
                        for &i in &truncated {
                            let (fr, fe) = envs.final_observation(i);
                            f.extend_from_slice(fr);
                            d.extend_from_slice(fe);
                        }
                        ppo.values(&ObsBatch {
                            frames: &f,
                            features: &d,
                            batch: truncated.len(),
                        })?
                    };
                    for (i, e) in ends.iter_mut().enumerate() {
                        *e = if envs.terminated(i) {
                            StepEnd::Terminated
                        } else if let Some(k) = truncated.iter().position(|&j| j == i) {
                            StepEnd::Truncated {
                                final_value: final_values[k],
                            }
                        } else {
                            StepEnd::Running
                        };
                    }
                    buffer.push(&StepRecord {
                        frames: &obs_frames,
                        features: &obs_features,
                        actions: &act.actions,
                        log_probs: &act.log_probs,
                        values: &act.values,
                        rewards: &rewards,
                        ends: &ends,
                    })?;
                    for seg in envs.take_segments() {
                        bs.segments += 1;
                        exporter.submit(seg)?;
                    }
                    for ep in envs.take_episodes() {
                        bs.add(&ep);
                        observer.on_episode(burst, &ep);
                    }
                    observer.on_step(&envs, &rewards);
                }
                let last_values = ppo.values(&ObsBatch {
                    frames: envs.frames(),
                    features: envs.features(),
                    batch: n,
                })?;
                ppo.finish_rollout(&mut buffer, &last_values)?;
                let t_update = Instant::now();
                let stats = ppo.update(&buffer)?;
                let update_seconds = t_update.elapsed().as_secs_f64();
                buffer.clear();
                let steps = (horizon * n) as u64;
                env_steps += steps;
                let secs = t0.elapsed().as_secs_f64();
                bs.steps += steps;
                bs.seconds += secs;
                let report = UpdateReport {
                    burst,
                    update,
                    updates,
                    env_steps,
                    steps_per_second: steps as f64 / secs,
                    mean_reward: reward_sum / steps as f64,
                    mean_learned_reward: learned_sum / steps as f64,
                    update_seconds,
                    stats,
                };
                tracing::info!(
                    burst,
                    update = update + 1,
                    of = updates,
                    env_steps,
                    sps = format!("{:.0}", report.steps_per_second),
                    reward = format!("{:.4}", report.mean_reward),
                    loss = format!("{:.4}", report.stats.policy_loss),
                    entropy = format!("{:.3}", report.stats.entropy),
                    "update"
                );
                observer.on_update(&report);
                let next = update + 1;
                let every = s.train.checkpoint_every;
                if every > 0 && next % every == 0 && next < updates {
                    save(
                        &rt,
                        burst,
                        Phase::Rollout { update: next },
                        env_steps,
                        ppo.checkpoint_bytes(),
                        envs.snapshot(),
                        &rm_key,
                    )?;
                }
            }
            envs.flush_segments();
            for seg in envs.take_segments() {
                bs.segments += 1;
                exporter.submit(seg)?;
            }
            exporter.finish()?;
            save(
                &rt,
                burst,
                Phase::Evaluate,
                env_steps,
                ppo.checkpoint_bytes(),
                envs.snapshot(),
                &rm_key,
            )?;
        }
        let mut summary = bs.summary(burst);
        summary.last_update = None;

        // Judge everything the run has stored so far (already judged segments are skipped).
        let eval_opts = evaluator::Options {
            run: opts.run.clone(),
            judges: opts.judges.clone(),
            mode: evaluator::Mode::Score,
            concurrency: opts.eval_concurrency,
            out: evaluator::Mode::Score.default_out().to_string(),
            retry_failed: false,
            seed: s.train.seed,
            progress: opts.progress,
        };
        let metrics = evaluator::Metrics::new();
        let eval = rt.block_on(evaluator::evaluate(&store, &eval_opts, &metrics))?;
        tracing::info!(
            judged = eval.judged,
            skipped = eval.skipped,
            ok = eval.ok,
            "evaluation done"
        );
        summary.evaluation = Some(eval);

        if s.reward_model.enabled {
            let trained: Option<Trained> = rt.block_on(learned::train(
                &store,
                &opts.run,
                burst,
                &sha1,
                &s.reward_model,
                s.train.seed,
                opts.backend,
            ))?;
            if let Some(t) = trained {
                let bytes = rt.block_on(store.get(&t.key))?;
                learned = Some(LearnedReward::load(
                    &bytes,
                    &t.key,
                    &sha1,
                    &s.reward_model.shaping,
                    opts.backend,
                )?);
                summary.reward_model = Some(t.key.clone());
                summary.reward_model_samples = t.samples;
                summary.reward_model_val_accuracy = t
                    .val_pair_accuracy
                    .is_finite()
                    .then_some(t.val_pair_accuracy);
                rm_key = Some(t.key);
            }
        }
        burst += 1;
        phase = Phase::Rollout { update: 0 };
        save(
            &rt,
            burst,
            phase,
            env_steps,
            ppo.checkpoint_bytes(),
            envs.snapshot(),
            &rm_key,
        )?;
        observer.on_burst(&summary);
        completed.push(summary);
    }
    observer.on_end(&envs);
    Ok(Outcome::Finished(completed))
}
