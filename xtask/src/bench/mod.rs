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
    /// Learning curves: random (and random with Go-Explore) vs PPO vs PPO + learned
    /// reward (and with Go-Explore), several seeds; a PNG.
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
    build_cli_with(None)
}

/// [`build_cli`], with the `tch` feature linked against the libtorch of the `torch`
/// package of `torch_python` when given (torch-sys's `LIBTORCH_USE_PYTORCH`).
pub fn build_cli_with(torch_python: Option<&std::path::Path>) -> Result<PathBuf> {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args([
        "build",
        "--quiet",
        "--profile",
        "bench",
        "--package",
        "zelda-rl",
        "--bin",
        "zelda-rl",
    ]);
    if let Some(py) = torch_python {
        // torch-sys runs `python` from PATH to find the torch package.
        let dir = py.parent().context("--anchor-python has no folder")?;
        let path = std::env::var_os("PATH").unwrap_or_default();
        let path = std::env::join_paths(
            std::iter::once(dir.to_path_buf()).chain(std::env::split_paths(&path)),
        )?;
        cmd.args(["--features", "tch"])
            .env("LIBTORCH_USE_PYTORCH", "1")
            .env("PATH", path);
    }
    let status = cmd
        .current_dir(crate::repo_root())
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("cargo build --profile bench failed");
    }
    // Cargo's built-in `bench` profile writes to the `release` folder.
    Ok(target_dir()?.join("release/zelda-rl"))
}

/// The folder of the libtorch libraries in `torch_python`'s torch package (a binary built
/// by [`build_cli_with`] loads them from there: torch-sys sets no rpath).
pub fn torch_lib(torch_python: &std::path::Path) -> Result<PathBuf> {
    let out = Command::new(torch_python)
        .args([
            "-c",
            "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))",
        ])
        .output()
        .with_context(|| format!("running {}", torch_python.display()))?;
    if !out.status.success() {
        bail!(
            "{} cannot import torch: {}",
            torch_python.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// Whether `backend` (a `--backend` value) runs on LibTorch; an unknown one is an error.
pub fn is_tch_backend(backend: &str) -> Result<bool> {
    match backend {
        "flex" => Ok(false),
        "tch-cpu" | "tch-cuda" => Ok(true),
        other if other.starts_with("tch-cuda:") => Ok(true),
        other => bail!("--backend {other}: expected flex, tch-cpu or tch-cuda[:N]"),
    }
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
