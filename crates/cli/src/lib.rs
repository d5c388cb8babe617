//! Argument parsing and wiring for the `zelda-rl` command.
//!
//! This crate only parses and dispatches; each subcommand calls into the library crate
//! that owns the work. It is a library as well as a binary so that `xtask` can check that
//! the command lines written in the GitOps manifests parse with the real CLI.

use std::io::IsTerminal;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub mod archive;
pub mod common;
pub mod emu;
pub mod evaluate;
pub mod hud;
pub mod rollout;
pub mod rom;
pub mod segments;
pub mod train;

/// Top-level command line.
#[derive(Debug, Parser)]
#[command(name = "zelda-rl", version, about, propagate_version = true)]
pub struct Cli {
    /// Options shared by every subcommand.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by every subcommand.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Log format; `auto` is human-readable on a terminal and JSON lines otherwise.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Auto, env = "ZELDA_RL_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// Log filter in `tracing` syntax (for example `info,judges=debug`).
    #[arg(long, global = true, default_value = "info", env = "RUST_LOG")]
    pub log: String,
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable on a terminal, JSON otherwise.
    Auto,
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show a run's Go-Explore archive and goal ladder (from a checkpoint) rung by rung;
    /// `--probe N` measures how often random walks from each ladder cell win.
    Archive(archive::ArchiveArgs),
    /// Game Boy emulator: run a ROM headless, or measure its speed.
    #[command(subcommand)]
    Emu(emu::EmuCommand),
    /// Serve the live HUD: every agent's screen, the room map, curves, judge scores,
    /// segment replays.
    Hud(hud::HudArgs),
    /// Judge a run's segments with the LLM judges (or the offline judge) into
    /// `<run>/scores/scores.jsonl`; resumable.
    Evaluate(evaluate::EvaluateArgs),
    /// Train a reward model from a run's judge scores.
    #[command(subcommand)]
    RewardModel(train::RewardModelCommand),
    /// Inspect ROM files.
    #[command(subcommand)]
    Rom(rom::RomCommand),
    /// Play environments with a policy and write their episode segments to the store.
    Rollout(rollout::RolloutArgs),
    /// List, inspect and replay stored episode segments.
    #[command(subcommand)]
    Segments(segments::SegmentsCommand),
    /// The main job: train PPO agents in bursts (rollouts and updates, judge evaluation,
    /// reward model), with checkpoints and `--resume`.
    Train(train::TrainArgs),
}

/// Sets up `tracing` on stderr according to the global options.
pub fn init_logging(global: &GlobalArgs) {
    let filter = tracing_subscriber::EnvFilter::try_new(&global.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let json = match global.log_format {
        LogFormat::Auto => !std::io::stderr().is_terminal(),
        LogFormat::Text => false,
        LogFormat::Json => true,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second initialisation (tests) is harmless; ignore it.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Archive(args) => archive::run(args),
        Command::Emu(cmd) => emu::run(cmd),
        Command::Evaluate(args) => evaluate::run(args),
        Command::Hud(args) => hud::run(args),
        Command::Rom(cmd) => rom::run(cmd),
        Command::Rollout(args) => rollout::run(args),
        Command::Segments(cmd) => segments::run(cmd),
        Command::RewardModel(cmd) => train::run_reward_model(cmd),
        Command::Train(args) => train::run(args),
    }
}
