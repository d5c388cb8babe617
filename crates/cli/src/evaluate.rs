//! `zelda-rl evaluate`: judge a run's segments into `<run>/scores/scores.jsonl`.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use evaluator::{Metrics, Mode, Options};

use crate::common::StoreArgs;

/// What to ask the judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Score each segment.
    Score,
    /// Ask which of two segments made more progress (preference pairs for the reward model).
    Compare,
}

/// Options of `zelda-rl evaluate`.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// Where the run's segments are.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Run id (segments under `<run>/segments/`).
    #[arg(long)]
    pub run: String,
    /// Gateway base URL; judges are asked at `{gateway}/{route}/v1/chat/completions`.
    /// Without one, the offline heuristic judge is used.
    #[arg(long, env = "GATEWAY")]
    pub gateway: Option<String>,
    /// Use the offline heuristic judge even when a gateway is configured.
    #[arg(long)]
    pub offline: bool,
    /// Score segments, or compare pairs of them.
    #[arg(long, value_enum, default_value_t = ModeArg::Score)]
    pub mode: ModeArg,
    /// Segments (or pairs) judged at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Output file name under `<run>/scores/` [default: scores.jsonl, or preferences.jsonl
    /// in compare mode].
    #[arg(long)]
    pub out: Option<String>,
    /// Serve Prometheus metrics on this address (`/metrics`) while running.
    #[arg(long)]
    pub metrics_addr: Option<SocketAddr>,
    /// Judge routes, models and limits [default: the built-in configs/judges.toml].
    #[arg(long)]
    pub judges_config: Option<PathBuf>,
    /// Judge again the segments whose line has a failed judge, replacing their line.
    #[arg(long)]
    pub retry_failed: bool,
    /// Seed of the compare-mode pairing.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Runs `zelda-rl evaluate`.
pub fn run(args: EvaluateArgs) -> Result<()> {
    let judges = crate::common::judges(
        args.gateway.as_deref(),
        args.offline,
        args.judges_config.as_ref(),
    )?;
    let mode = match args.mode {
        ModeArg::Score => Mode::Score,
        ModeArg::Compare => Mode::Compare,
    };
    let options = Options {
        run: args.run.clone(),
        judges,
        mode,
        concurrency: args.concurrency,
        out: args
            .out
            .clone()
            .unwrap_or_else(|| mode.default_out().to_string()),
        retry_failed: args.retry_failed,
        seed: args.seed,
        progress: std::io::stderr().is_terminal(),
    };
    let store = args.store.open()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let summary = rt.block_on(async {
        let metrics = Metrics::new();
        let _server = match args.metrics_addr {
            Some(addr) => {
                let (bound, server) = metrics
                    .serve(addr)
                    .await
                    .with_context(|| format!("serving metrics on {addr}"))?;
                tracing::info!(addr = %bound, "metrics on /metrics");
                Some(server)
            }
            None => None,
        };
        evaluator::evaluate(&store, &options, &metrics)
            .await
            .with_context(|| format!("evaluating run `{}` in store {}", options.run, store.url()))
    })?;
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}
