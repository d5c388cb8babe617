//! `zelda-rl train` (the main job) and `zelda-rl reward-model train`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use rollout::{EpisodeStats, VecEnv};
use train::{BurstSummary, Observer, Outcome, Settings, TrainOptions, UpdateReport};

use crate::common::{Live, RomArgs, StoreArgs};
use crate::rollout::validate_run_id;

/// Options of `zelda-rl train`. Flags override the settings file; the names match the
/// GitOps environment variables (`ENVS_PER_WORKER`, `BATCH_SIZE`, ...).
#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    rom: RomArgs,
    #[command(flatten)]
    store: StoreArgs,
    /// Run id: everything goes under `<store>/<run>/`.
    #[arg(long, env = "RUN", default_value = "local")]
    run: String,
    /// Settings file (TOML: [env], [reward], [segments], [train], [ppo], [reward_model]).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Continue the run from its latest checkpoint (same settings and cartridge).
    #[arg(long)]
    resume: bool,
    /// Environments stepped together [settings: train.envs].
    #[arg(long, env = "ENVS_PER_WORKER")]
    envs: Option<usize>,
    /// Env steps per PPO update, over all envs [settings: train.batch_size].
    #[arg(long, env = "BATCH_SIZE")]
    batch_size: Option<usize>,
    /// Env steps per burst [settings: train.steps_per_burst].
    #[arg(long)]
    steps: Option<u64>,
    /// Training bursts in all [settings: train.bursts].
    #[arg(long, conflicts_with = "add_bursts")]
    bursts: Option<u32>,
    /// Run this many more bursts from wherever the run stands, starting it if it does not
    /// exist (one job per burst).
    #[arg(long)]
    add_bursts: Option<u32>,
    /// Seed of everything random [settings: train.seed].
    #[arg(long)]
    seed: Option<u64>,
    /// Threads stepping the environments [settings: train.threads; default all cores].
    #[arg(long)]
    threads: Option<usize>,
    /// Gateway base URL of the LLM judges; without one the offline heuristic judge scores
    /// segments.
    #[arg(long, env = "GATEWAY")]
    gateway: Option<String>,
    /// Use the offline judge even when a gateway is configured.
    #[arg(long)]
    offline: bool,
    /// Judge routes, models and limits [default: the built-in configs/judges.toml].
    #[arg(long)]
    judges_config: Option<PathBuf>,
    /// Segments judged at once.
    #[arg(long, default_value_t = 32)]
    eval_concurrency: usize,
    /// Where the networks run: `flex` (CPU, pure Rust), `tch-cpu`, `tch-cuda` or
    /// `tch-cuda:N` (LibTorch; needs a build with the `tch` feature).
    #[arg(long, default_value = "flex")]
    backend: String,
    /// Worker id recorded in segment keys.
    #[arg(long, default_value_t = 0)]
    worker: u32,
    /// Publish the envs' screens and positions to the HUD at this URL.
    #[arg(long, env = "HUD_URL")]
    hud: Option<String>,
    /// Serve Prometheus metrics on this address (`/metrics`).
    #[arg(long)]
    metrics_addr: Option<String>,
    /// Print the bursts' summaries as JSON lines on stdout.
    #[arg(long)]
    json: bool,
}

/// `zelda-rl reward-model ...`
#[derive(Debug, Subcommand)]
pub enum RewardModelCommand {
    /// Train a reward model from a run's `scores.jsonl` (and `preferences.jsonl`).
    Train(RewardModelTrainArgs),
}

/// Options of `zelda-rl reward-model train`.
#[derive(Debug, Args)]
pub struct RewardModelTrainArgs {
    #[command(flatten)]
    rom: RomArgs,
    #[command(flatten)]
    store: StoreArgs,
    /// Run whose scores are learned from; the model goes to `<run>/reward-models/`.
    #[arg(long, env = "RUN")]
    run: String,
    /// Settings file ([reward_model] is used).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Index in the model's key (`bNNNN.rm`) [default: one past the newest model].
    #[arg(long)]
    burst: Option<u32>,
    /// Seed of the training shuffles and the held-out split.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Where the network trains (`flex`, `tch-cpu`, `tch-cuda[:N]`).
    #[arg(long, default_value = "flex")]
    backend: String,
}

fn settings(args: &TrainArgs) -> Result<Settings> {
    Ok(
        Settings::load(args.config.as_deref())?.with_overrides(&train::settings::Overrides {
            envs: args.envs,
            batch_size: args.batch_size,
            steps_per_burst: args.steps,
            bursts: args.bursts,
            seed: args.seed,
            threads: args.threads,
        })?,
    )
}

/// Installs SIGTERM/SIGINT handlers that set `stop`; a second signal exits at once.
fn stop_on_signals(stop: Arc<AtomicBool>) -> Result<()> {
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        // The second signal while stopping is the user insisting: exit with 130.
        signal_hook::flag::register_conditional_shutdown(sig, 130, stop.clone())
            .context("installing the signal handler")?;
        signal_hook::flag::register(sig, stop.clone()).context("installing the signal handler")?;
    }
    Ok(())
}

/// Metrics, the HUD feed, TensorBoard scalars and progress for the training loop.
struct Watch {
    live: Live,
    events: telemetry::Scalars,
    bar: indicatif::ProgressBar,
    json: bool,
}

impl Observer for Watch {
    fn on_step(&mut self, envs: &VecEnv, rewards: &[f32]) {
        self.live.step(envs, |i| rewards[i]);
        self.bar.inc(envs.len() as u64);
    }

    fn on_episode(&mut self, _burst: u32, ep: &EpisodeStats) {
        self.live.episode(ep);
    }

    fn on_end(&mut self, envs: &VecEnv) {
        self.live.finish(envs);
    }

    fn on_update(&mut self, r: &UpdateReport) {
        r.record_metrics(&self.live.metrics);
        self.events.record(r.env_steps as i64, &r.scalars());
        self.bar.set_message(format!(
            "burst {} update {}/{} reward {:.4} entropy {:.3}",
            r.burst,
            r.update + 1,
            r.updates,
            r.mean_reward,
            r.stats.entropy
        ));
    }

    fn on_burst(&mut self, b: &BurstSummary) {
        self.events.record(i64::from(b.burst + 1), &b.scalars());
        b.record_metrics(&self.live.metrics);
        if self.json {
            match serde_json::to_string(b) {
                Ok(line) => println!("{line}"),
                Err(e) => tracing::warn!(error = %e, "burst summary"),
            }
        }
        tracing::info!(
            burst = b.burst,
            env_steps = b.env_steps,
            sps = format!("{:.0}", b.steps_per_second),
            episodes = b.episodes,
            mean_return = format!("{:.3}", b.mean_return),
            mean_rooms = format!("{:.2}", b.mean_rooms),
            max_rooms = b.max_rooms,
            instruments = b.instrument_episodes,
            start_episodes = b.start_episodes,
            start_instruments = b.start_instrument_episodes,
            explorer_episodes = b.explorer_episodes,
            explorer_instruments = b.explorer_instrument_episodes,
            reward_model = b.reward_model.as_deref().unwrap_or("-"),
            "burst done"
        );
    }
}

/// Runs `zelda-rl train`.
pub fn run(args: TrainArgs) -> Result<()> {
    validate_run_id(&args.run)?;
    let settings = settings(&args)?;
    let (rom, rom_name) = args.rom.load()?;
    let start_state = args.rom.load_start_state()?;
    let store = args.store.open()?;
    let backend = crate::common::backend(&args.backend)?;
    let judges = crate::common::judges(
        args.gateway.as_deref(),
        args.offline,
        args.judges_config.as_ref(),
    )?;
    let stop = Arc::new(AtomicBool::new(false));
    stop_on_signals(stop.clone())?;

    let metrics = telemetry::Metrics::new();
    let _metrics_server = args
        .metrics_addr
        .as_deref()
        .map(|addr| telemetry::serve_metrics(metrics.clone(), addr))
        .transpose()
        .context("serving metrics")?;
    // The evaluations' judge calls land in the same registry as the loop's metrics.
    let judge_sink = train::trainer::judge_metrics(metrics.clone());
    let live = Live::new(
        metrics,
        args.hud.as_deref(),
        &args.run,
        args.worker,
        settings.train.envs,
    )?;
    let events = telemetry::Scalars::open(&store, &args.run)?;
    let total = settings.updates_per_burst()
        * settings.train.batch_size as u64
        * u64::from(settings.train.bursts);
    let bar = crate::common::progress_bar(total, "train");
    tracing::info!(
        rom = rom_name,
        run = args.run,
        store = store.url(),
        envs = settings.train.envs,
        batch_size = settings.train.batch_size,
        bursts = settings.train.bursts,
        steps_per_burst = settings.train.steps_per_burst,
        backend = args.backend,
        "training"
    );
    let mut watch = Watch {
        live,
        events,
        bar,
        json: args.json,
    };
    let opts = TrainOptions {
        rom,
        start_state,
        store,
        run: args.run.clone(),
        settings,
        judges,
        eval_concurrency: args.eval_concurrency,
        resume: args.resume,
        add_bursts: args.add_bursts,
        backend,
        worker: args.worker,
        stop: stop.clone(),
        progress: std::io::stderr().is_terminal(),
        judge_sink: Some(judge_sink),
    };
    let outcome = train::run(opts, &mut watch);
    watch.bar.finish_and_clear();
    match outcome? {
        Outcome::Finished(bursts) => {
            if !args.json {
                for b in &bursts {
                    println!(
                        "burst {}: {} env steps ({:.0}/s), {} episodes, mean return {:.3}, mean rooms {:.2}, max rooms {}, instrument in {}{}{}{}{}, {} segments, reward model {}",
                        b.burst,
                        b.env_steps,
                        b.steps_per_second,
                        b.episodes,
                        b.mean_return,
                        b.mean_rooms,
                        b.max_rooms,
                        b.instrument_episodes,
                        if b.start_episodes < b.episodes {
                            format!(
                                " ({} of {} episodes from the start state: mean rooms {:.2}, instrument in {})",
                                b.start_episodes,
                                b.episodes,
                                b.start_mean_rooms,
                                b.start_instrument_episodes
                            )
                        } else {
                            String::new()
                        },
                        if b.archive.cells > 0 {
                            format!(
                                ", archive {} cells in {} rooms, progress {} ({} states, {:.1} MiB)",
                                b.archive.cells,
                                b.archive.rooms,
                                b.archive.progress,
                                b.archive.states,
                                b.archive.state_bytes as f64 / f64::from(1 << 20)
                            )
                        } else {
                            String::new()
                        },
                        if b.archive.ladder.cells > 0 {
                            format!(
                                ", ladder {} cells, rungs 0-{}, frontier {} ({} of {} won)",
                                b.archive.ladder.cells,
                                b.archive.ladder.top,
                                b.archive.ladder.frontier,
                                b.archive.ladder.frontier_wins,
                                b.archive.ladder.frontier_tries
                            )
                        } else {
                            String::new()
                        },
                        if b.explorer_episodes > 0 {
                            format!(
                                ", explorers: {} episodes, instrument in {}",
                                b.explorer_episodes, b.explorer_instrument_episodes
                            )
                        } else {
                            String::new()
                        },
                        b.segments_written,
                        b.reward_model.as_deref().unwrap_or("-")
                    );
                }
                if bursts.is_empty() {
                    println!(
                        "run `{}` is already complete; nothing to do (raise --bursts and pass --resume to extend it)",
                        args.run
                    );
                } else {
                    println!("run `{}` complete", args.run);
                }
            }
            Ok(())
        }
        Outcome::Interrupted { checkpoint, .. } => {
            eprintln!(
                "stopped: checkpoint {checkpoint} written; continue with --resume --run {}",
                args.run
            );
            // 143 = terminated by SIGTERM, as a process killed by the signal would report.
            std::process::exit(if stop.load(Ordering::Relaxed) { 143 } else { 1 });
        }
    }
}

/// Runs `zelda-rl reward-model ...`.
pub fn run_reward_model(cmd: RewardModelCommand) -> Result<()> {
    let RewardModelCommand::Train(args) = cmd;
    validate_run_id(&args.run)?;
    let settings = Settings::load(args.config.as_deref())?;
    let (rom, _) = args.rom.load()?;
    let sha1 = hex::encode(
        gameboy::GameBoy::new(rom)
            .context("loading the ROM")?
            .rom_sha1(),
    );
    let store = args.store.open()?;
    let backend = crate::common::backend(&args.backend)?;
    let rt = crate::common::runtime()?;
    let burst = match args.burst {
        Some(b) => b,
        None => rt
            .block_on(store.list(&format!("{}/reward-models/", args.run)))?
            .iter()
            .filter_map(|o| {
                o.key
                    .rsplit('/')
                    .next()?
                    .strip_prefix('b')?
                    .strip_suffix(".rm")?
                    .parse::<u32>()
                    .ok()
            })
            .max()
            .map_or(0, |b| b + 1),
    };
    let mut cfg = settings.reward_model.clone();
    // Asked for explicitly: train on whatever is there, however little.
    cfg.min_samples = cfg.min_samples.min(2);
    let trained = rt.block_on(train::learned::train(
        &store, &args.run, burst, &sha1, &cfg, args.seed, backend,
    ))?;
    let Some(t) = trained else {
        bail!(
            "run `{}` in {} has too few scored segments to train on: run `zelda-rl evaluate --run {}` first",
            args.run,
            store.url(),
            args.run
        );
    };
    println!(
        "{}",
        serde_json::json!({
            "model": t.key,
            "samples": t.samples,
            "pairs": t.pairs,
            "val_pair_accuracy": t.val_pair_accuracy.is_finite().then_some(t.val_pair_accuracy),
        })
    );
    Ok(())
}
