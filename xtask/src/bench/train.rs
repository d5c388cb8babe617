//! `cargo xtask bench train`: env steps/s of the whole local training loop
//! (`zelda-rl train`: rollouts with policy inference + PPO updates) against
//! PokemonRedExperiments' stack (Stable-Baselines3 PPO over PyBoy envs in subprocesses),
//! same cartridge, frame skip, observation, batch, minibatches and epochs, in one run.

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::{build_cli_with, print_row, python, run_json, torch_lib};

/// Options of `cargo xtask bench train`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Environments (both sides).
    #[arg(long, default_value_t = 8)]
    envs: usize,
    /// Env steps per PPO update over all envs (both sides).
    #[arg(long, default_value_t = 512)]
    batch_size: usize,
    /// Measured env steps of zelda-rl (after one warm-up update).
    #[arg(long, default_value_t = 8192)]
    steps: u64,
    /// Measured env steps of the anchor (after one warm-up update).
    #[arg(long, default_value_t = 2048)]
    anchor_steps: u64,
    /// Python with stable-baselines3, torch and pyboy for the anchor (default: the test
    /// venv, which has them where scripts/test installed tests/requirements-torch.txt).
    #[arg(long)]
    anchor_python: Option<PathBuf>,
    /// zelda-rl's learner backend: flex, tch-cpu or tch-cuda[:N] (the tch ones build
    /// zelda-rl with the `tch` feature against the torch of --anchor-python and run it
    /// with that torch's libraries).
    #[arg(long, default_value = "flex")]
    backend: String,
    /// Torch device of the anchor's PPO update (cpu, cuda). PokemonRedExperiments
    /// trains on the GPU where it has one; compare like with like.
    #[arg(long, default_value = "cpu")]
    anchor_device: String,
    /// A zelda-rl binary built beforehand (for a machine without a Rust toolchain, such
    /// as a GPU box): no build; it must have the `tch` feature for a tch backend.
    #[arg(long)]
    cli: Option<PathBuf>,
}

pub fn run(args: &Args) -> Result<()> {
    let root = crate::repo_root();
    let rom = root.join("cartridges/mini-zelda/mini-zelda.gb");
    let anchor_python = match &args.anchor_python {
        Some(p) => p.clone(),
        None => python()?,
    };
    let libtorch = super::is_tch_backend(&args.backend)?;
    let cli = match &args.cli {
        Some(cli) => cli.clone(),
        None => build_cli_with(libtorch.then_some(anchor_python.as_path()))?,
    };
    let torch_lib = match libtorch {
        true => Some(torch_lib(&anchor_python)?),
        false => None,
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "bench train: mini-zelda, {} envs, batch {}, 4 minibatches, 3 epochs, frame skip 24, learner {} (anchor {}); {cores} cores",
        args.envs, args.batch_size, args.backend, args.anchor_device
    );
    let anchor = run_json(
        std::process::Command::new(&anchor_python)
            .arg(root.join("tests/reference/bench_train_sb3.py"))
            .arg("--rom")
            .arg(&rom)
            .args(["--envs", &args.envs.to_string()])
            .args(["--batch-size", &args.batch_size.to_string()])
            .args(["--steps", &args.anchor_steps.to_string()])
            .args(["--threads", &cores.to_string()])
            .args(["--device", &args.anchor_device]),
    )
    .context("SB3 + PyBoy anchor (needs stable-baselines3 and torch: --anchor-python)")?;
    let sb3 = anchor["steps_per_second"]
        .as_f64()
        .context("anchor steps_per_second")?;

    let tmp = std::env::temp_dir().join(format!("zelda-rl-bench-train-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let cfg = tmp.join("bench.toml");
    // One burst, no reward model: the rate covers rollouts and updates only (evaluation
    // comes after the burst's clock stops).
    std::fs::write(
        &cfg,
        "[ppo]\nnum_minibatches = 4\nupdate_epochs = 3\n[reward_model]\nenabled = false\n",
    )?;
    let mut ours = std::process::Command::new(&cli);
    if let Some(lib) = &torch_lib {
        ours.env("LD_LIBRARY_PATH", lib);
    }
    let out = run_json(
        ours.args([
            "train",
            "--log",
            "warn",
            "--log-format",
            "json",
            "--json",
            "--offline",
        ])
        .arg("--store")
        .arg(tmp.join("runs"))
        .arg("--config")
        .arg(&cfg)
        .args(["--run", "bench", "--bursts", "1"])
        .args(["--backend", &args.backend])
        .args(["--envs", &args.envs.to_string()])
        .args(["--batch-size", &args.batch_size.to_string()])
        .args(["--steps", &args.steps.to_string()]),
    );
    let _ = std::fs::remove_dir_all(&tmp);
    let ours = out.context("zelda-rl train")?;
    let sps = ours["steps_per_second"]
        .as_f64()
        .context("steps_per_second")?;
    let ratio = sps / sb3;
    print_row(&["measurement", "zelda-rl", "anchor", "ratio (target)"]);
    print_row(&[
        &format!(
            "train env steps/s (rollouts + PPO updates, {})",
            args.backend
        ),
        &format!("{sps:.0}"),
        &format!(
            "{sb3:.1} (SB3 {} {} + PyBoy)",
            anchor["torch"].as_str().unwrap_or("?"),
            anchor["device"].as_str().unwrap_or("?")
        ),
        &format!("{ratio:.1}x (>= 5x)"),
    ]);
    println!(
        "zelda-rl: {} env steps in {:.1} s; anchor: {} env steps in {:.1} s",
        ours["env_steps"],
        ours["wall_seconds"].as_f64().unwrap_or(0.0),
        anchor["env_steps"],
        anchor["wall_seconds"].as_f64().unwrap_or(0.0)
    );
    Ok(())
}
