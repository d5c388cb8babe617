//! `cargo xtask bench <target>`: benchmarks that measure our code and its anchor in the
//! same run and print the ratio.

mod emu;
mod env;
mod judges;
mod learn;
mod ray;
mod train;

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Options of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Which benchmark.
    #[command(subcommand)]
    target: Target,
}

#[derive(Debug, clap::Subcommand)]
enum Target {
    /// Game Boy core vs PyBoy: frames/s, RL steps/s, save/load state.
    Emu(emu::Args),
    /// Vector-env steps/s vs PyBoy doing the same work; segment size.
    Env(env::Args),
    /// Judge client vs the server-limited throughput of llm-testserver; CPU per call.
    Judges(judges::Args),
    /// The local training loop vs SB3 PPO + PyBoy: env steps/s.
    Train(train::Args),
    /// The Ray driver (1 and 2 rollout actors on a local cluster) vs the local loop.
    Ray(ray::Args),
    /// Learning curves: random vs PPO vs PPO + learned reward, several seeds; a PNG.
    Learn(learn::Args),
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    match &args.target {
        Target::Emu(a) => emu::run(a),
        Target::Env(a) => env::run(a),
        Target::Judges(a) => judges::run(a),
        Target::Train(a) => train::run(a),
        Target::Ray(a) => ray::run(a),
        Target::Learn(a) => learn::run(a),
    }
}

/// Builds the `zelda-rl` binary with the `bench` profile (fat LTO) and returns its path.
pub fn build_cli() -> Result<PathBuf> {
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--quiet",
            "--profile",
            "bench",
            "--package",
            "zelda-rl",
            "--bin",
            "zelda-rl",
        ])
        .current_dir(crate::repo_root())
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("cargo build --profile bench failed");
    }
    // Cargo's built-in `bench` profile writes to the `release` folder.
    Ok(target_dir()?.join("release/zelda-rl"))
}

/// The workspace's target directory (honours CARGO_TARGET_DIR).
pub fn target_dir() -> Result<PathBuf> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(crate::repo_root())
        .output()
        .context("running cargo metadata")?;
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("cargo metadata output")?;
    Ok(PathBuf::from(
        meta["target_directory"]
            .as_str()
            .context("target_directory")?,
    ))
}

/// The test venv's Python (created by scripts/test).
pub fn python() -> Result<PathBuf> {
    let p = crate::repo_root().join(".venv/bin/python");
    if !p.is_file() {
        bail!(
            "{} not found: run scripts/test once to create the venv",
            p.display()
        );
    }
    Ok(p)
}

/// Runs a command that prints one JSON object on its last stdout line.
pub fn run_json(cmd: &mut Command) -> Result<serde_json::Value> {
    let shown = format!("{cmd:?}");
    let out = cmd.output().with_context(|| format!("starting {shown}"))?;
    if !out.status.success() {
        bail!("{shown} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .with_context(|| format!("{shown} printed no JSON"))?;
    serde_json::from_str(line).with_context(|| format!("{shown}: bad JSON `{line}`"))
}

/// Prints a table row with fixed column widths.
pub fn print_row(cols: &[&str]) {
    let widths = [42, 12, 28, 18];
    let mut line = String::new();
    for (i, c) in cols.iter().enumerate() {
        line.push_str(&format!(
            "{:<w$} ",
            c,
            w = widths.get(i).copied().unwrap_or(12)
        ));
    }
    println!("{}", line.trim_end());
}
