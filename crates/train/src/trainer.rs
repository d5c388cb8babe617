//! The training loop: bursts of (rollouts + PPO updates), then evaluation of the burst's
//! segments by the judges, then a reward model for the next burst.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use episodes::Store;
use ppo::{RolloutBuffer, TrainConfig, UpdateStats};
use rollout::archive::ArchiveStats;
use rollout::{EpisodeStats, SegmentContext, SegmentExporter, VecEnv};
use serde::Serialize;
use zelda::obs::FEATURES;

use crate::checkpoint::Phase;
use crate::learned::LearnedReward;
use crate::runstate::{self, BurstEnd, BurstStats, EnvState, EpisodeRecord, Opened, RunId};
use crate::stepper::{Stepper, last_values};
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
    /// Also receives every judge call of the evaluations (the process's metrics).
    pub judge_sink: Option<evaluator::JudgeSink>,
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
    /// Seconds of the rollout spent in policy inference (all workers' on Ray: summed).
    pub act_seconds: f64,
    /// Seconds of the rollout spent stepping the envs (likewise).
    pub env_seconds: f64,
    /// PPO statistics.
    pub stats: UpdateStats,
    /// The Go-Explore archive after the rollout (all workers' on Ray: summed).
    pub archive: ArchiveStats,
}

impl UpdateReport {
    /// The update as the learner's Prometheus metrics take it.
    pub fn learner_stats(&self) -> telemetry::LearnerStats {
        let s = &self.stats;
        telemetry::LearnerStats {
            policy_loss: s.policy_loss,
            value_loss: s.value_loss,
            entropy: s.entropy,
            approx_kl: s.approx_kl,
            clip_fraction: s.clip_fraction,
            explained_variance: s.explained_variance,
            grad_norm: s.grad_norm,
            learning_rate: s.learning_rate,
            duration_seconds: self.update_seconds,
        }
    }

    /// Sets the learner's, the exploration archive's and the goal ladder's Prometheus
    /// metrics.
    pub fn record_metrics(&self, metrics: &telemetry::Metrics) {
        metrics.learner_update(&self.learner_stats());
        let a = self.archive;
        metrics.explore_archive(a.cells, a.states, a.state_bytes, a.progress);
        metrics.explore_ladder(a.ladder.cells, a.ladder.top, a.ladder.frontier);
    }

    /// The update's TensorBoard scalars (step: env steps so far).
    pub fn scalars(&self) -> Vec<(&'static str, f32)> {
        let s = &self.stats;
        let mut v = vec![
            ("learner/policy_loss", s.policy_loss as f32),
            ("learner/value_loss", s.value_loss as f32),
            ("learner/entropy", s.entropy as f32),
            ("learner/approx_kl", s.approx_kl as f32),
            ("learner/clip_fraction", s.clip_fraction as f32),
            ("learner/explained_variance", s.explained_variance as f32),
            ("learner/learning_rate", s.learning_rate as f32),
            ("rollout/mean_reward", self.mean_reward as f32),
            (
                "rollout/mean_learned_reward",
                self.mean_learned_reward as f32,
            ),
            ("rollout/steps_per_second", self.steps_per_second as f32),
        ];
        // Only runs with Go-Explore resets have an archive to chart.
        if self.archive.cells > 0 {
            v.extend([
                ("explore/archive_cells", self.archive.cells as f32),
                ("explore/archive_states", self.archive.states as f32),
                ("explore/archive_rooms", self.archive.rooms as f32),
                ("explore/archive_progress", self.archive.progress as f32),
                (
                    "explore/archive_mib",
                    self.archive.state_bytes as f32 / (1 << 20) as f32,
                ),
            ]);
        }
        let ladder = self.archive.ladder;
        if ladder.cells > 0 {
            v.extend([
                ("explore/ladder_cells", ladder.cells as f32),
                ("explore/ladder_top", ladder.top as f32),
                ("explore/ladder_frontier", ladder.frontier as f32),
                (
                    "explore/ladder_frontier_win_rate",
                    ladder.frontier_wins as f32 / ladder.frontier_tries.max(1) as f32,
                ),
            ]);
        }
        v
    }

    /// Logs the update as one structured line.
    pub fn log(&self) {
        tracing::info!(
            burst = self.burst,
            update = self.update + 1,
            of = self.updates,
            env_steps = self.env_steps,
            sps = format!("{:.0}", self.steps_per_second),
            reward = format!("{:.4}", self.mean_reward),
            loss = format!("{:.4}", self.stats.policy_loss),
            entropy = format!("{:.3}", self.stats.entropy),
            act_s = format!("{:.2}", self.act_seconds),
            env_s = format!("{:.2}", self.env_seconds),
            update_s = format!("{:.2}", self.update_seconds),
            "update"
        );
    }
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
    /// Episodes that began at the start state (all of them unless `env.explore_resets` is
    /// above 0; the others began from the exploration archive).
    pub start_episodes: u64,
    /// Mean distinct rooms of those episodes.
    pub start_mean_rooms: f64,
    /// Those of them that ended holding an instrument: the game played from its start.
    pub start_instrument_episodes: u64,
    /// Episodes of the explorers (`env.explorers`), counted in none of the above.
    pub explorer_episodes: u64,
    /// Those of them that ended holding an instrument.
    pub explorer_instrument_episodes: u64,
    /// The Go-Explore archive at the burst's end (all workers' on Ray: summed).
    pub archive: ArchiveStats,
    /// Mean per-episode sum of each heuristic reward component, by name.
    pub reward_components: Vec<(String, f64)>,
    /// Segments written to the store.
    pub segments_written: u64,
    /// Their encoded bytes.
    pub segment_bytes: u64,
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

impl BurstSummary {
    /// Counts the burst's segments (and their bytes), its explorers' episodes and its
    /// evaluation's outcomes in `metrics`.
    pub fn record_metrics(&self, metrics: &telemetry::Metrics) {
        metrics.segments_written(self.segments_written, self.segment_bytes);
        metrics.explorer_episodes(self.explorer_episodes, self.explorer_instrument_episodes);
        if let Some(e) = &self.evaluation {
            for (outcome, n) in [
                ("ok", e.ok),
                ("partial", e.partial),
                ("failed", e.failed),
                ("invalid_segment", e.invalid),
                ("skipped", e.skipped),
            ] {
                for _ in 0..n {
                    metrics.evaluator_segment(outcome);
                }
            }
        }
    }

    /// The burst's TensorBoard scalars (step: bursts done, this one included).
    pub fn scalars(&self) -> Vec<(&'static str, f32)> {
        let mut v = vec![
            ("burst/mean_return", self.mean_return as f32),
            ("burst/mean_length", self.mean_length as f32),
            ("burst/mean_rooms", self.mean_rooms as f32),
            ("burst/max_rooms", self.max_rooms as f32),
            ("burst/episodes", self.episodes as f32),
            ("burst/instrument_episodes", self.instrument_episodes as f32),
            ("burst/start_episodes", self.start_episodes as f32),
            ("burst/start_mean_rooms", self.start_mean_rooms as f32),
            (
                "burst/start_instrument_episodes",
                self.start_instrument_episodes as f32,
            ),
            ("burst/steps_per_second", self.steps_per_second as f32),
        ];
        if self.explorer_episodes > 0 {
            v.push(("burst/explorer_episodes", self.explorer_episodes as f32));
            v.push((
                "burst/explorer_instrument_episodes",
                self.explorer_instrument_episodes as f32,
            ));
        }
        if let Some(acc) = self.reward_model_val_accuracy {
            v.push(("reward_model/val_pair_accuracy", acc as f32));
        }
        v
    }
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
    let rt = runstate::runtime()?;
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
    let id = RunId {
        store: store.clone(),
        run: opts.run.clone(),
        settings_hash: s.hash(),
        cartridge_sha1: sha1.clone(),
    };
    let mut opened = runstate::open(
        &rt,
        &id,
        s,
        &cfg,
        opts.backend,
        opts.resume.into(),
        opts.add_bursts,
    )?;
    // A complete run comes without a learner: repeating its command does nothing.
    let Some(mut ppo) = opened.ppo.take() else {
        return Ok(Outcome::Finished(Vec::new()));
    };
    match &opened.envs {
        None => {}
        Some(EnvState::Local(snapshot)) => envs.restore(snapshot).map_err(|e| {
            TrainError::Checkpoint(format!("the latest checkpoint's environments: {e}"))
        })?,
        Some(EnvState::Workers(w)) => {
            return Err(TrainError::Resume(format!(
                "run `{}` was trained by the Ray driver ({} rollout workers); continue it with `python -m zelda_rl.ray.train --resume`",
                opts.run,
                w.len()
            )));
        }
    }
    let Opened {
        mut burst,
        mut phase,
        mut env_steps,
        reward_model: mut rm_key,
        target_bursts,
        ..
    } = opened;
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
    let mut stepper = Stepper::new(n, frame_len);
    let mut completed = Vec::new();
    let save = |burst: u32,
                phase: Phase,
                env_steps: u64,
                learner: Vec<u8>,
                envs: Vec<u8>,
                rm_key: &Option<String>| {
        runstate::save(&rt, &id, burst, phase, env_steps, learner, envs, rm_key)
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
                        // Stopped mid-burst: no summary, so the bytes are not counted.
                        exporter.finish()?;
                        let key = save(
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
                    let step_index = env_steps + (t * n) as u64;
                    let (r, l) = stepper.step(
                        &mut envs,
                        ppo.net(),
                        learned.as_mut(),
                        ppo::mix_seed(s.train.seed, 0xAC7, step_index),
                    )?;
                    reward_sum += r;
                    learned_sum += l;
                    buffer.push(&stepper.record())?;
                    for seg in envs.take_segments() {
                        bs.segments += 1;
                        exporter.submit(seg)?;
                    }
                    for ep in envs.take_episodes() {
                        bs.add(&EpisodeRecord::from(&ep));
                        observer.on_episode(burst, &ep);
                    }
                    for ep in envs.take_explorer_episodes() {
                        bs.add_explorer(&EpisodeRecord::from(&ep));
                    }
                    observer.on_step(&envs, &stepper.rewards);
                }
                let last = last_values(&envs, ppo.net())?;
                let (act_seconds, env_seconds) = stepper.take_seconds();
                ppo.finish_rollout(&mut buffer, &last)?;
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
                    act_seconds,
                    env_seconds,
                    stats,
                    archive: envs.explore_stats(),
                };
                report.log();
                observer.on_update(&report);
                let next = update + 1;
                let every = s.train.checkpoint_every;
                if every > 0 && next % every == 0 && next < updates {
                    save(
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
            bs.segment_bytes = exporter.finish()?.bytes;
            save(
                burst,
                Phase::Evaluate,
                env_steps,
                ppo.checkpoint_bytes(),
                envs.snapshot(),
                &rm_key,
            )?;
        }
        let mut summary = bs.summary(burst);
        summary.archive = envs.explore_stats();
        let end = BurstEnd {
            judges: &opts.judges,
            eval_concurrency: opts.eval_concurrency,
            progress: opts.progress,
            backend: opts.backend,
            judge_sink: opts.judge_sink.clone(),
        };
        if let Some(model) = runstate::end_burst(&rt, &id, s, burst, &end, &mut summary)? {
            rm_key = Some(model.key.clone());
            learned = Some(model);
        }
        burst += 1;
        phase = Phase::Rollout { update: 0 };
        save(
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

/// A judge-call sink that counts every evaluation's judge calls (latency, errors, tokens)
/// in `metrics`, the registry the training loop's own metrics are in.
pub fn judge_metrics(metrics: telemetry::Metrics) -> evaluator::JudgeSink {
    std::sync::Arc::new(move |call: &evaluator::JudgeCall<'_>| {
        metrics.judge_call(call.route, call.seconds, call.error.map_or(Ok(()), Err));
        if let Some((prompt, completion)) = call.tokens {
            metrics.judge_tokens(call.route, prompt, completion);
        }
    })
}
