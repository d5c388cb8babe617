//! `cargo xtask bench ray`: env steps/s of a training burst through the Ray driver (rollout
//! actors + learner actor on a local Ray cluster) with 1 and 2 rollout actors, against the
//! local loop (`zelda-rl train`) with the same envs, batch and settings, in one run.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::{build_cli, print_row, python, run_json};

/// Options of `cargo xtask bench ray`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Environments in all (split over the rollout actors).
    #[arg(long, default_value_t = 8)]
    envs: usize,
    /// Env steps per PPO update over all envs.
    #[arg(long, default_value_t = 512)]
    batch_size: usize,
    /// Env steps per measured burst.
    #[arg(long, default_value_t = 4096)]
    steps: u64,
}

/// A local Ray head on 127.0.0.1, stopped when dropped.
struct Cluster {
    ray: std::path::PathBuf,
    address: String,
}

impl Cluster {
    fn start(python: &Path, cpus: usize) -> Result<Self> {
        let ray = python.with_file_name("ray");
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let status = Command::new(&ray)
            .args(["start", "--head", "--num-cpus", &cpus.to_string()])
            .args([
                "--node-ip-address",
                "127.0.0.1",
                "--port",
                &port.to_string(),
            ])
            .args(["--include-dashboard", "false", "--disable-usage-stats"])
            .envs(ray_env())
            .stdout(std::process::Stdio::null())
            .status()
            .with_context(|| format!("starting {}", ray.display()))?;
        if !status.success() {
            bail!("ray start failed");
        }
        Ok(Self {
            ray,
            address: format!("127.0.0.1:{port}"),
        })
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(&self.ray)
            .args(["stop", "--force"])
            .envs(ray_env())
            .output();
    }
}

/// Ray 2.60 turns token authentication on by default; this cluster is loopback-only.
fn ray_env() -> [(&'static str, &'static str); 2] {
    [
        ("RAY_AUTH_MODE", "disabled"),
        ("RAY_USAGE_STATS_ENABLED", "0"),
    ]
}

/// Builds the Python module with the release profile into the test venv.
fn build_module(python: &Path) -> Result<()> {
    let maturin = python.with_file_name("maturin");
    let status = Command::new(&maturin)
        .args(["develop", "--release", "--locked", "--quiet"])
        .env(
            "VIRTUAL_ENV",
            python.parent().and_then(Path::parent).unwrap(),
        )
        .current_dir(crate::repo_root().join("python"))
        .status()
        .with_context(|| format!("running {}", maturin.display()))?;
    if !status.success() {
        bail!("maturin develop --release failed");
    }
    Ok(())
}

pub fn run(args: &Args) -> Result<()> {
    let cli = build_cli()?;
    let python = python()?;
    build_module(&python)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if !args.envs.is_multiple_of(2) {
        bail!("--envs must be even (it is split over 2 rollout actors)");
    }
    println!(
        "bench ray: mini-zelda, {} envs, batch {}, {} steps per burst, 4 minibatches, 3 epochs; {cores} cores",
        args.envs, args.batch_size, args.steps
    );
    let tmp = std::env::temp_dir().join(format!("zelda-rl-bench-ray-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let cfg = tmp.join("bench.toml");
    // One burst, no reward model: the rate covers rollouts and updates only.
    std::fs::write(
        &cfg,
        format!(
            "[train]\nsteps_per_burst = {}\ncheckpoint_every = 0\n[ppo]\nnum_minibatches = 4\nupdate_epochs = 3\n[reward_model]\nenabled = false\n",
            args.steps
        ),
    )?;
    let result = measure(args, &cli, &python, &tmp, &cfg, cores);
    let _ = std::fs::remove_dir_all(&tmp);
    let (local, rays) = result?;
    print_row(&["measurement", "zelda-rl", "anchor", "ratio (target)"]);
    for (actors, sps) in rays {
        print_row(&[
            &format!("Ray driver, {actors} rollout actor(s), env steps/s"),
            &format!("{sps:.0}"),
            &format!("{local:.0} (zelda-rl train)"),
            &format!(
                "{:.3}x (overhead {:.1}%, < 10%)",
                sps / local,
                (1.0 - sps / local) * 100.0
            ),
        ]);
    }
    Ok(())
}

type Measured = (f64, Vec<(usize, f64)>);

fn measure(
    args: &Args,
    cli: &Path,
    python: &Path,
    tmp: &Path,
    cfg: &Path,
    cores: usize,
) -> Result<Measured> {
    let local = run_json(
        Command::new(cli)
            .args(["train", "--log", "warn", "--log-format", "json", "--json"])
            .args(["--offline", "--run", "local", "--bursts", "1"])
            .arg("--store")
            .arg(tmp.join("runs"))
            .arg("--config")
            .arg(cfg)
            .args(["--envs", &args.envs.to_string()])
            .args(["--batch-size", &args.batch_size.to_string()]),
    )
    .context("zelda-rl train")?;
    let local = local["steps_per_second"]
        .as_f64()
        .context("steps_per_second")?;

    let cluster = Cluster::start(python, cores)?;
    let mut rays = Vec::new();
    for actors in [1usize, 2] {
        // The actors share the machine's cores; the learner runs between rounds, while
        // the rollout actors wait, so it reserves none.
        let per = cores as f64 / actors as f64;
        let out = run_json(
            Command::new(python)
                .args(["-m", "zelda_rl.ray.train", "--json", "--address"])
                .arg(&cluster.address)
                .args(["--workers", &actors.to_string()])
                .args(["--envs-per-worker", &(args.envs / actors).to_string()])
                .args(["--batch-size", &args.batch_size.to_string()])
                .args(["--cpus-per-worker", &per.to_string(), "--learner-cpus", "0"])
                .arg("--store")
                .arg(tmp.join("runs"))
                .arg("--config")
                .arg(cfg)
                .args(["--run", &format!("ray-{actors}"), "--bursts", "1"])
                .envs(ray_env())
                .current_dir(crate::repo_root()),
        )
        .with_context(|| format!("Ray driver with {actors} rollout actor(s)"))?;
        rays.push((
            actors,
            out["steps_per_second"]
                .as_f64()
                .context("steps_per_second")?,
        ));
    }
    drop(cluster);
    Ok((local, rays))
}
