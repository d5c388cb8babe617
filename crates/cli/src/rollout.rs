//! `zelda-rl rollout`: play N environments with a policy and write their segments.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use rollout::{Policy, RandomPolicy, SegmentContext, SegmentExporter, VecEnv};

use crate::common::{Live, RomArgs, Settings, StoreArgs, progress_bar, runtime};

/// Options of `zelda-rl rollout`.
#[derive(Debug, Args)]
pub struct RolloutArgs {
    #[command(flatten)]
    rom: RomArgs,
    #[command(flatten)]
    store: StoreArgs,
    /// Environments stepped together.
    #[arg(long, env = "ENVS_PER_WORKER", default_value_t = 4)]
    envs: usize,
    /// Agent steps per environment.
    #[arg(long, default_value_t = 1024)]
    steps: u64,
    /// Who acts: `random` (seeded), or a `zelda-rl train` checkpoint: a store key
    /// (`local/checkpoints/latest.json`, `.../b0001-1-u000000.ckpt`) or a local file;
    /// its policy samples actions with the run's seed.
    #[arg(long, default_value = "random")]
    policy: String,
    /// Where a checkpoint policy's network runs: `flex` (CPU, pure Rust), `tch-cpu`,
    /// `tch-cuda` or `tch-cuda:N` (LibTorch; needs a build with the `tch` feature).
    #[arg(long, default_value = "flex")]
    backend: String,
    /// Seed of everything random (env resets, the random policy).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Settings file (TOML with [env], [reward], [segments]).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Run id (segments go under runs/<run>/); defaults to `rollout-<seed>`.
    #[arg(long)]
    run: Option<String>,
    /// Worker id recorded in segment keys.
    #[arg(long, default_value_t = 0)]
    worker: u32,
    /// Threads stepping the environments (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Do not record or write segments (measures the environments alone).
    #[arg(long)]
    no_segments: bool,
    /// Print the summary as one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// Publish the envs' screens and positions to the HUD at this URL
    /// (`zelda-rl hud`, for example http://127.0.0.1:8080).
    #[arg(long, env = "HUD_URL")]
    hud: Option<String>,
    /// Serve Prometheus metrics on this address (`/metrics`) while the rollout runs.
    #[arg(long)]
    metrics_addr: Option<String>,
}

/// Runs `zelda-rl rollout`.
pub fn run(args: RolloutArgs) -> Result<()> {
    let settings = Settings::load(args.config.as_deref())?;
    let (rom, rom_name) = args.rom.load()?;
    let start_state = args.rom.load_start_state()?;
    let run = args
        .run
        .clone()
        .unwrap_or_else(|| format!("rollout-{}", args.seed));
    validate_run_id(&run)?;
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let header = gameboy::GameBoy::new(rom.clone()).context("loading the ROM")?;
    let ctx = SegmentContext {
        run: run.clone(),
        burst: 0,
        worker: args.worker,
        policy: args.policy.clone(),
        cartridge_sha1: hex::encode(header.rom_sha1()),
        cartridge_title: header.header().title.clone(),
        config_hash: settings.env_hash(),
    };
    drop(header);
    let store = args.store.open()?;
    let rt = runtime()?;
    if !args.no_segments {
        rt.block_on(store.check())
            .with_context(|| format!("store {} is not usable", store.url()))?;
    }
    let mut envs = VecEnv::new(
        &rom,
        start_state,
        args.envs,
        settings.env.clone(),
        settings.reward.clone(),
        threads,
        args.seed,
        ctx,
        settings.segments.clone(),
        !args.no_segments,
    )?;
    let mut policy: Box<dyn Policy> = match args.policy.as_str() {
        "random" => Box::new(RandomPolicy::new(
            envs.n_actions(),
            rollout::derive_seed(args.seed, &[0x9011c7]),
        )),
        reference => {
            let (key, state) = crate::common::read_checkpoint(&rt, &store, reference)
                .with_context(|| format!("--policy {reference}"))?;
            Box::new(CheckpointPolicy::from_state(
                &state,
                &key,
                envs.n_actions(),
                settings.env.frame_stack,
                args.seed,
                crate::common::backend(&args.backend)?,
            )?)
        }
    };
    tracing::info!(
        rom = rom_name,
        run,
        envs = args.envs,
        steps = args.steps,
        threads,
        store = store.url(),
        "rollout starting"
    );
    let metrics = telemetry::Metrics::new();
    let _metrics_server = args
        .metrics_addr
        .as_deref()
        .map(|addr| telemetry::serve_metrics(metrics.clone(), addr))
        .transpose()?;
    let mut live = Live::new(
        metrics.clone(),
        args.hud.as_deref(),
        &run,
        args.worker,
        envs.len(),
    )?;
    let exporter = SegmentExporter::spawn(store.clone(), 64);
    let bar = progress_bar(args.steps, "rollout");
    let mut actions = vec![0usize; envs.len()];
    // Episodes are counted as a training burst counts them.
    let mut counts = train::runstate::BurstStats::default();
    let t0 = Instant::now();
    for step in 0..args.steps {
        policy.act(envs.frames(), envs.features(), &mut actions);
        envs.step(&actions);
        for seg in envs.take_segments() {
            exporter.submit(seg)?;
        }
        live.step(&envs, |i| envs.reward(i));
        for ep in envs.take_episodes() {
            counts.add(&train::runstate::EpisodeRecord::from(&ep));
            live.episode(&ep);
        }
        for ep in envs.take_explorer_episodes() {
            counts.add_explorer(&train::runstate::EpisodeRecord::from(&ep));
        }
        bar.inc(1);
        if (step + 1) % 256 == 0 && bar.is_hidden() {
            tracing::info!(step = step + 1, of = args.steps, "rollout progress");
        }
    }
    envs.flush_segments();
    for seg in envs.take_segments() {
        exporter.submit(seg)?;
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let hud_stats = live.finish(&envs);
    let stats = exporter.finish()?;
    metrics.segments_written(stats.written, stats.bytes);
    bar.finish_and_clear();
    let total_steps = args.steps * args.envs as u64;
    let burst = counts.summary(0);
    let archive = envs.explore_stats();
    let episodes = burst.episodes;
    let per_1000 = stats.bytes as f64 / stats.steps.max(1) as f64 * 1000.0;
    if args.json {
        let summary = serde_json::json!({
            "run": run,
            "envs": args.envs,
            "threads": threads,
            "env_steps": total_steps,
            "wall_seconds": elapsed,
            "steps_per_second": total_steps as f64 / elapsed,
            "segments_written": stats.written,
            "segments_already_present": stats.already_present,
            "segment_bytes": stats.bytes,
            "segment_steps": stats.steps,
            "segment_bytes_per_1000_steps": per_1000,
            "episodes": episodes,
            "mean_return": burst.mean_return,
            "mean_rooms": burst.mean_rooms,
            "max_rooms": burst.max_rooms,
            "instrument_episodes": burst.instrument_episodes,
            "start_episodes": burst.start_episodes,
            "start_mean_rooms": burst.start_mean_rooms,
            "start_instrument_episodes": burst.start_instrument_episodes,
            "archive_cells": archive.cells,
            "archive_states": archive.states,
            "archive_state_bytes": archive.state_bytes,
            "archive_rooms": envs
                .archive()
                .cells()
                .map(|c| c.room)
                .collect::<std::collections::BTreeSet<_>>()
                .iter()
                .map(|r| format!("{r:#05x}"))
                .collect::<Vec<_>>(),
            "archive_progress": archive.progress,
            "ladder_cells": archive.ladder.cells,
            "ladder_top": archive.ladder.top,
            "ladder_frontier": archive.ladder.frontier,
            "ladder_frontier_tries": archive.ladder.frontier_tries,
            "ladder_frontier_wins": archive.ladder.frontier_wins,
            "explorer_episodes": burst.explorer_episodes,
            "explorer_instrument_episodes": burst.explorer_instrument_episodes,
            "hud_updates_sent": hud_stats.map(|h| h.sent),
            "hud_updates_superseded": hud_stats.map(|h| h.superseded),
            "hud_failures": hud_stats.map(|h| h.failures),
        });
        println!("{summary}");
        return Ok(());
    }
    println!(
        "run {run}: {total_steps} env steps in {elapsed:.2} s ({:.0} steps/s) on {threads} threads",
        total_steps as f64 / elapsed
    );
    println!(
        "segments: {} written, {} already present, {} bytes ({per_1000:.0} bytes per 1000 steps)",
        stats.written, stats.already_present, stats.bytes
    );
    if let Some(h) = hud_stats {
        println!(
            "HUD: {} updates sent, {} superseded by newer ones, {} failed sends",
            h.sent, h.superseded, h.failures
        );
    }
    if episodes > 0 {
        println!(
            "episodes finished: {episodes}, mean return {:.3}, mean rooms {:.2}",
            burst.mean_return, burst.mean_rooms
        );
    }
    Ok(())
}

/// The policy of a training checkpoint, sampling with a seeded stream.
pub(crate) struct CheckpointPolicy {
    name: String,
    ppo: ppo::Ppo,
    seed: u64,
    calls: u64,
}

impl CheckpointPolicy {
    /// The policy of an already decoded checkpoint (`key` names it), run on `backend`.
    pub(crate) fn from_state(
        state: &train::checkpoint::TrainState,
        key: &str,
        actions: usize,
        frame_stack: usize,
        seed: u64,
        backend: ppo::Backend,
    ) -> Result<Self> {
        let ppo = ppo::Ppo::from_checkpoint(&state.learner, backend)
            .with_context(|| format!("{key}: learner"))?;
        let p = &ppo.config().policy;
        if p.actions != actions
            || p.encoder.frame_stack != frame_stack
            || p.encoder.features != zelda::obs::FEATURES
        {
            bail!(
                "{key}: the policy takes {} frames + {} features and chooses among {} actions; these envs give {frame_stack} frames + {} features and {actions} actions (use the run's [env] settings)",
                p.encoder.frame_stack,
                p.encoder.features,
                p.actions,
                zelda::obs::FEATURES
            );
        }
        Ok(Self {
            name: format!("ppo:{key}"),
            ppo,
            seed,
            calls: 0,
        })
    }
}

impl Policy for CheckpointPolicy {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn act(&mut self, frames: &[u8], features: &[f32], actions: &mut [usize]) {
        let obs = ppo::ObsBatch {
            frames,
            features,
            batch: actions.len(),
        };
        let seed = ppo::mix_seed(self.seed, 0x9011c7, self.calls);
        self.calls += 1;
        // Shapes were checked at load, so a failure here is a bug, not bad input.
        let out = self
            .ppo
            .act(&obs, ppo::ActMode::Sample { seed })
            .expect("policy inference on checked shapes");
        for (a, &b) in actions.iter_mut().zip(&out.actions) {
            *a = b as usize;
        }
    }
}

/// Run ids become object-key components: keep them to a safe alphabet.
pub fn validate_run_id(run: &str) -> Result<()> {
    if run.is_empty()
        || run.len() > 128
        || !run
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        || run.starts_with('.')
    {
        bail!(
            "invalid run id `{run}`: use 1-128 characters from A-Z a-z 0-9 - _ . (not starting with .)"
        );
    }
    Ok(())
}
