//! `cargo xtask bench env`: vector-env steps/s on mini-zelda (24-frame actions with
//! observations) against PyBoy doing the same work in Python, per core and on all cores,
//! and the segment size per 1000 steps against raw 72x80 frames.

use anyhow::{Context, Result, bail};

use super::{build_cli, print_row, python, run_json};

/// Options of `cargo xtask bench env`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Agent steps per environment in each measurement.
    #[arg(long, default_value_t = 3000)]
    steps: u64,
    /// Agent steps of the PyBoy anchor.
    #[arg(long, default_value_t = 1500)]
    pyboy_steps: u64,
}

/// 1000 steps of raw 72x80 greyscale frames.
const RAW_BYTES_PER_1000: f64 = 72.0 * 80.0 * 1000.0;

pub fn run(args: &Args) -> Result<()> {
    let root = crate::repo_root();
    let rom = root.join("cartridges/mini-zelda/mini-zelda.gb");
    let cli = build_cli()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "bench env: mini-zelda, frame skip 24 (8 pressed), last frame rendered, 4x72x80 + 55 features; {cores} cores"
    );

    let anchor = run_json(
        std::process::Command::new(python()?)
            .arg(root.join("tests/reference/bench_env.py"))
            .arg("--rom")
            .arg(&rom)
            .arg("--steps")
            .arg(args.pyboy_steps.to_string()),
    )
    .context("PyBoy anchor")?;
    let pyboy = anchor["steps_per_second"]
        .as_f64()
        .context("anchor steps_per_second")?;

    let ours = |envs: usize,
                threads: usize,
                segments: bool,
                store: &std::path::Path|
     -> Result<serde_json::Value> {
        let mut cmd = std::process::Command::new(&cli);
        cmd.args([
            "rollout",
            "--log-format",
            "json",
            "--log",
            "warn",
            "--json",
            "--seed",
            "1",
        ])
        .arg("--envs")
        .arg(envs.to_string())
        .arg("--threads")
        .arg(threads.to_string())
        .arg("--steps")
        .arg(args.steps.to_string())
        .arg("--store")
        .arg(store)
        .arg("--run")
        .arg(format!("bench-{envs}-{threads}"));
        if !segments {
            cmd.arg("--no-segments");
        }
        run_json(&mut cmd)
    };
    let tmp = std::env::temp_dir().join(format!("zelda-rl-bench-env-{}", std::process::id()));
    let _cleanup = Cleanup(tmp.clone());
    let one = ours(1, 1, false, &tmp)?;
    let one_sps = one["steps_per_second"].as_f64().unwrap_or(0.0);
    let all = ours(2 * cores, cores, false, &tmp)?;
    let all_sps = all["steps_per_second"].as_f64().unwrap_or(0.0);
    let seg = ours(2 * cores, cores, true, &tmp)?;
    let seg_sps = seg["steps_per_second"].as_f64().unwrap_or(0.0);
    let per_1000 = seg["segment_bytes_per_1000_steps"]
        .as_f64()
        .unwrap_or(f64::NAN);

    println!();
    print_row(&["measurement", "steps/s", "vs PyBoy (1 core)", "target"]);
    print_row(&[
        "PyBoy, 1 core (anchor)",
        &format!("{pyboy:.0}"),
        "1.00x",
        "",
    ]);
    print_row(&[
        "ours, 1 env, 1 thread",
        &format!("{one_sps:.0}"),
        &format!("{:.2}x", one_sps / pyboy),
        ">= 3x per core",
    ]);
    print_row(&[
        &format!("ours, {} envs, {cores} threads", 2 * cores),
        &format!("{all_sps:.0}"),
        &format!(
            "{:.2}x ({:.2}x of 1 thread)",
            all_sps / pyboy,
            all_sps / one_sps
        ),
        "scales with cores",
    ]);
    print_row(&[
        &format!("ours, {} envs, {cores} threads, segments on", 2 * cores),
        &format!("{seg_sps:.0}"),
        &format!("{:.2}x", seg_sps / pyboy),
        "",
    ]);
    println!();
    println!(
        "segment size: {per_1000:.0} bytes per 1000 steps, keyframes included; raw 72x80 frames: {RAW_BYTES_PER_1000:.0} bytes -> {:.1}x smaller (target >= 50x)",
        RAW_BYTES_PER_1000 / per_1000
    );
    if !(one_sps.is_finite() && one_sps > 0.0) {
        bail!("our measurement failed");
    }
    Ok(())
}

struct Cleanup(std::path::PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
