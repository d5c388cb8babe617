//! `cargo xtask bench learn`: does training work? Rooms visited and instrument reached vs
//! env steps on mini-zelda for a random policy, the random policy with Go-Explore resets
//! (`env.explore_resets`: Go-Explore's exploration phase alone), PPO with the heuristic
//! reward, PPO with the heuristic plus the learned reward (offline judge), and the same
//! with Go-Explore resets, several seeds each; a table and a PNG of the curves.
//!
//! Rooms and the instrument are counted over episodes that began at the start state, so
//! the curves compare what each policy does from the start of the game; episodes that
//! began from the exploration archive are counted apart ("any start").
//!
//! `--start-state` moves that start to a save state (say the dungeon's entrance, written by
//! `zelda-rl emu run --input walkthrough.txt --save-state`), so a budget this machine can
//! run shows whether each policy finishes the part of the game that is left.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use plotters::prelude::*;

use super::{build_cli_with, python, target_dir, torch_lib};

/// Options of `cargo xtask bench learn`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Env steps per run (all envs).
    #[arg(long, default_value_t = 131_072)]
    steps: u64,
    /// Points on each curve (one training burst each).
    #[arg(long, default_value_t = 8)]
    points: u64,
    /// Seeds per policy.
    #[arg(long, default_value_t = 3)]
    seeds: u64,
    /// Environments.
    #[arg(long, default_value_t = 8)]
    envs: usize,
    /// The plot (PNG) [default: <target dir>/bench-learn.png].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Env steps per PPO update, over all envs (`train.batch_size`) [default: train's 512].
    #[arg(long)]
    batch_size: Option<usize>,
    /// Share of resets from the exploration archive in the Go-Explore arms.
    #[arg(long, default_value_t = 0.5)]
    explore_resets: f32,
    /// Steps an episode from the archive lasts at most in the Go-Explore arms
    /// (`env.explore_steps`) [default: the env's 256].
    #[arg(long)]
    explore_steps: Option<u32>,
    /// Go-Explore's level weight in the Go-Explore arms (`env.explore_level_weight`)
    /// [default: the env's 1, off].
    #[arg(long)]
    explore_level_weight: Option<f64>,
    /// Side in pixels of the archive's cells in the Go-Explore arms
    /// (`env.explore_cell_px`) [default: the env's 32].
    #[arg(long)]
    explore_cell_px: Option<u8>,
    /// Random explorers beside the envs of the PPO Go-Explore arm (`env.explorers`): they
    /// grow its archive and train nothing; their steps are not in the arm's env steps
    /// [default: none].
    #[arg(long)]
    explorers: Option<u32>,
    /// Share of the PPO Go-Explore arm's archive starts drawn from the goal ladder
    /// (`env.explore_ladder`) [default: none].
    #[arg(long)]
    explore_ladder: Option<f32>,
    /// The ladder frontier's win rate that moves it back (`env.explore_ladder_pass`)
    /// [default: the config's, 0.2].
    #[arg(long)]
    explore_ladder_pass: Option<f32>,
    /// Steps to the goal per rung of the goal ladder (`env.explore_ladder_rung`)
    /// [default: the config's, 4].
    #[arg(long)]
    explore_ladder_rung: Option<u32>,
    /// Weight the ladder's starts by each cell's win rate (`env.explore_ladder_focus`).
    #[arg(long)]
    explore_ladder_focus: bool,
    /// Save state every episode starts from instead of power-on (`zelda-rl emu run
    /// --save-state`); the curves then measure the rest of the game from there.
    #[arg(long)]
    start_state: Option<PathBuf>,
    /// Agent steps an episode lasts at most (`env.max_steps`) [default: the env's 2048].
    #[arg(long)]
    max_steps: Option<u32>,
    /// The PPO arms' learner backend: flex, tch-cpu or tch-cuda[:N] (the tch ones build
    /// zelda-rl with the `tch` feature against the torch of --torch-python and run it with
    /// that torch's libraries).
    #[arg(long, default_value = "flex")]
    backend: String,
    /// Python whose torch a tch backend links (default: the test venv's).
    #[arg(long)]
    torch_python: Option<PathBuf>,
    /// A TrueType font for the plot's text.
    #[arg(
        long,
        default_value = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
    )]
    font: PathBuf,
}

/// One curve point: what the episodes that ended in a window did.
#[derive(Debug, Clone, Copy, Default)]
struct Point {
    env_steps: u64,
    episodes: u64,
    mean_rooms: f64,
    max_rooms: u64,
    instrument_episodes: u64,
    /// Episodes holding the instrument at the end, whatever their start.
    instrument_any: u64,
}

impl Point {
    /// A summary's episodes that began at the start state (all of them without explore
    /// resets).
    fn from_json(v: &serde_json::Value, env_steps: u64) -> Result<Self> {
        let u = |k: &str| v[k].as_u64().with_context(|| format!("`{k}` in {v}"));
        Ok(Self {
            env_steps,
            episodes: u("start_episodes")?,
            mean_rooms: v["start_mean_rooms"].as_f64().context("start_mean_rooms")?,
            max_rooms: u("max_rooms")?,
            instrument_episodes: u("start_instrument_episodes")?,
            instrument_any: u("instrument_episodes")?,
        })
    }
}

const POLICIES: [&str; 5] = [
    "random",
    "random (Go-Explore)",
    "PPO (heuristic reward)",
    "PPO (heuristic + learned)",
    "PPO (h + l, Go-Explore)",
];

/// The first PPO arm in [`POLICIES`]; the ones before it play randomly.
const FIRST_PPO: usize = 2;

/// How a PPO arm trains.
#[derive(Clone, Copy)]
struct Arm {
    learned: bool,
    explore: bool,
}

/// How to start `zelda-rl`: the binary, its torch libraries, and what every run shares.
struct Cli {
    path: PathBuf,
    torch_lib: Option<PathBuf>,
    start_state: Option<PathBuf>,
}

impl Cli {
    /// `zelda-rl <sub>` with the start state (if any) and the libraries it links.
    fn command(&self, sub: &str) -> Command {
        let mut cmd = Command::new(&self.path);
        cmd.arg(sub);
        if let Some(lib) = &self.torch_lib {
            cmd.env("LD_LIBRARY_PATH", lib);
        }
        if let Some(s) = &self.start_state {
            cmd.arg("--start-state").arg(s);
        }
        cmd
    }
}

pub fn run(args: &Args) -> Result<()> {
    if args.points == 0 || args.seeds == 0 || args.envs == 0 {
        bail!("--points, --seeds and --envs must be at least 1");
    }
    if !(args.explore_resets > 0.0 && args.explore_resets <= 1.0) {
        bail!("--explore-resets must be in (0, 1]");
    }
    if args.max_steps == Some(0) {
        bail!("--max-steps must be at least 1");
    }
    if args.explore_steps == Some(0) {
        bail!("--explore-steps must be at least 1");
    }
    if args
        .explore_level_weight
        .is_some_and(|w| !(w > 0.0 && w <= 1.0))
    {
        bail!("--explore-level-weight must be in (0, 1]");
    }
    if args
        .explore_ladder
        .is_some_and(|l| !(0.0..=1.0).contains(&l))
    {
        bail!("--explore-ladder must be in 0..=1");
    }
    if args
        .explore_ladder_pass
        .is_some_and(|p| !(p > 0.0 && p <= 1.0))
    {
        bail!("--explore-ladder-pass must be in (0, 1]");
    }
    if args.explore_ladder_rung == Some(0) {
        bail!("--explore-ladder-rung must be at least 1");
    }
    if args.explore_ladder_focus && args.explore_ladder.is_none() {
        bail!("--explore-ladder-focus weights the ladder's starts: it needs --explore-ladder");
    }
    if args.explorers.is_some_and(|n| n > 1020) {
        bail!("--explorers must be at most 1020");
    }
    if args.explore_cell_px == Some(0) {
        bail!("--explore-cell-px must be at least 1");
    }
    if let Some(s) = &args.start_state {
        std::fs::metadata(s).with_context(|| format!("--start-state {}", s.display()))?;
    }
    let font = std::fs::read(&args.font).with_context(|| {
        format!(
            "reading the plot font {} (Debian: fonts-dejavu-core; or pass --font)",
            args.font.display()
        )
    })?;
    let torch_python = match (super::is_tch_backend(&args.backend)?, &args.torch_python) {
        (false, _) => None,
        (true, Some(p)) => Some(p.clone()),
        (true, None) => Some(python()?),
    };
    let cli = Cli {
        path: build_cli_with(torch_python.as_deref())?,
        torch_lib: torch_python.as_deref().map(torch_lib).transpose()?,
        start_state: args.start_state.clone(),
    };
    let window = args.steps / args.points;
    if window < args.envs as u64 {
        bail!("--steps / --points must be at least --envs");
    }
    let tmp = std::env::temp_dir().join(format!("zelda-rl-bench-learn-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    // The header says where episodes start; the verdict's goal names a save state only.
    let (start, goal) = match &args.start_state {
        Some(s) => {
            let from = format!("from {}", s.display());
            let goal = format!("PPO finishes mini-zelda {from}");
            (from, goal)
        }
        None => ("from power-on".into(), "PPO finishes mini-zelda".into()),
    };
    println!(
        "bench learn: mini-zelda {start}, {} envs, {} env steps per run in {} windows of {window}, {} seeds, PPO on {}{}",
        args.envs,
        args.steps,
        args.points,
        args.seeds,
        args.backend,
        match args.explorers {
            Some(n) if n > 0 => format!(
                "; {} has {n} random explorers besides, whose steps are not counted",
                POLICIES[4]
            ),
            _ => String::new(),
        }
    );
    let result = (|| -> Result<Vec<Vec<Vec<Point>>>> {
        let mut curves = vec![Vec::new(); POLICIES.len()];
        for seed in 0..args.seeds {
            curves[0].push(random_curve(&cli, &tmp, args, window, seed, false)?);
            curves[1].push(random_curve(&cli, &tmp, args, window, seed, true)?);
            eprintln!("  {} seed {seed} done", POLICIES[1]);
            let arm = |learned, explore| Arm { learned, explore };
            let arms = [arm(false, false), arm(true, false), arm(true, true)];
            for (p, arm) in (FIRST_PPO..).zip(arms) {
                curves[p].push(ppo_curve(&cli, &tmp, args, window, seed, arm)?);
                eprintln!("  {} seed {seed} done", POLICIES[p]);
            }
        }
        Ok(curves)
    })();
    let _ = std::fs::remove_dir_all(&tmp);
    let curves = result?;

    print_table(&curves);
    let out = match &args.out {
        Some(p) => p.clone(),
        None => target_dir()?.join("bench-learn.png"),
    };
    plot(&curves, &out, &font)?;
    println!("plot: {}", out.display());
    verdict(&curves, &goal);
    Ok(())
}

/// A random policy, with Go-Explore resets or without: `zelda-rl rollout` for the first
/// 1, 2, ... windows with one seed. The runs are prefixes of each other (same seed, same
/// actions, the same archive step by step), so the difference of two consecutive runs'
/// totals is exactly what the episodes ending in that window did.
fn random_curve(
    cli: &Cli,
    tmp: &Path,
    args: &Args,
    window: u64,
    seed: u64,
    explore: bool,
) -> Result<Vec<Point>> {
    let cfg = tmp.join(format!("random-{explore}.toml"));
    std::fs::write(&cfg, env_table(args, explore, false))?;
    let mut points = Vec::new();
    let mut before = Point::default();
    let mut rooms_before = 0.0;
    for k in 0..args.points {
        let out = super::run_json(
            cli.command("rollout")
                .args(["--log", "warn", "--log-format", "json", "--json"])
                .args(["--policy", "random", "--no-segments"])
                .arg("--config")
                .arg(&cfg)
                .arg("--store")
                .arg(tmp.join("runs"))
                .args(["--run", &format!("random-{explore}-{seed}-{k}")])
                .args(["--envs", &args.envs.to_string()])
                .args([
                    "--steps",
                    &((k + 1) * window / args.envs as u64).to_string(),
                ])
                .args(["--seed", &seed.to_string()]),
        )
        .context("zelda-rl rollout --policy random")?;
        let total = Point::from_json(&out, (k + 1) * window)?;
        anyhow::ensure!(
            explore || total.episodes == out["episodes"].as_u64().unwrap_or(0),
            "a random rollout without explore resets began an episode from the archive"
        );
        let rooms = total.mean_rooms * total.episodes as f64;
        let episodes = total.episodes - before.episodes;
        points.push(Point {
            env_steps: total.env_steps,
            episodes,
            mean_rooms: if episodes > 0 {
                (rooms - rooms_before) / episodes as f64
            } else {
                0.0
            },
            // The most rooms of any episode so far (a window's own maximum is not
            // recoverable from two totals).
            max_rooms: total.max_rooms,
            instrument_episodes: total.instrument_episodes - before.instrument_episodes,
            instrument_any: total.instrument_any - before.instrument_any,
        });
        before = total;
        rooms_before = rooms;
    }
    Ok(points)
}

/// PPO: one `zelda-rl train` run with a burst per window.
fn ppo_curve(
    cli: &Cli,
    tmp: &Path,
    args: &Args,
    window: u64,
    seed: u64,
    arm: Arm,
) -> Result<Vec<Point>> {
    let Arm { learned, explore } = arm;
    let cfg = tmp.join(format!("learn-{learned}-{explore}.toml"));
    std::fs::write(
        &cfg,
        format!(
            "{}[reward_model]\nenabled = {learned}\n[train]\ncheckpoint_every = 0\n{}",
            env_table(args, explore, true),
            args.batch_size
                .map_or(String::new(), |b| format!("batch_size = {b}\n"))
        ),
    )?;
    let run = format!("ppo-{learned}-{explore}-{seed}");
    let out = cli
        .command("train")
        .args(["--log", "warn", "--log-format", "json", "--json"])
        .args(["--offline", "--run", &run])
        .args(["--backend", &args.backend])
        .arg("--store")
        .arg(tmp.join("runs"))
        .arg("--config")
        .arg(&cfg)
        .args(["--envs", &args.envs.to_string()])
        .args(["--steps", &window.to_string()])
        .args(["--bursts", &args.points.to_string()])
        .args(["--seed", &seed.to_string()])
        .output()
        .context("running zelda-rl train")?;
    if !out.status.success() {
        bail!(
            "zelda-rl train ({run}) failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut env_steps = 0;
    let mut points = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if !line.starts_with('{') {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line).context("burst summary")?;
        env_steps += v["env_steps"].as_u64().context("env_steps")?;
        points.push(Point::from_json(&v, env_steps)?);
    }
    if points.len() as u64 != args.points {
        bail!(
            "zelda-rl train ({run}) reported {} bursts, expected {}",
            points.len(),
            args.points
        );
    }
    Ok(points)
}

/// An arm's `[env]` table: `max_steps` if given and, for an arm with Go-Explore, the
/// archive's share of resets and whichever of its knobs were given (explorers only for a
/// PPO arm: the random arm already explores that way).
fn env_table(args: &Args, explore: bool, ppo: bool) -> String {
    let mut s = String::from("[env]\n");
    if let Some(n) = args.max_steps {
        s += &format!("max_steps = {n}\n");
    }
    if !explore {
        return s;
    }
    s += &format!("explore_resets = {}\n", args.explore_resets);
    if let Some(n) = args.explore_steps {
        s += &format!("explore_steps = {n}\n");
    }
    if let Some(w) = args.explore_level_weight {
        s += &format!("explore_level_weight = {w:?}\n");
    }
    if let Some(px) = args.explore_cell_px {
        s += &format!("explore_cell_px = {px}\n");
    }
    if let Some(n) = args.explorers.filter(|_| ppo) {
        s += &format!("explorers = {n}\n");
    }
    if let Some(l) = args.explore_ladder.filter(|_| ppo) {
        s += &format!("explore_ladder = {l:?}\n");
    }
    if let Some(p) = args.explore_ladder_pass.filter(|_| ppo) {
        s += &format!("explore_ladder_pass = {p:?}\n");
    }
    if let Some(n) = args.explore_ladder_rung.filter(|_| ppo) {
        s += &format!("explore_ladder_rung = {n}\n");
    }
    if args.explore_ladder_focus && ppo {
        s += "explore_ladder_focus = true\n";
    }
    s
}

/// Mean over seeds of `f` at point `k`.
fn mean(curves: &[Vec<Point>], k: usize, f: impl Fn(&Point) -> f64) -> f64 {
    curves.iter().map(|c| f(&c[k])).sum::<f64>() / curves.len() as f64
}

/// Mean rooms per episode at point `k` over the seeds whose window ended an episode
/// (`None` when none did).
fn mean_rooms(curves: &[Vec<Point>], k: usize) -> Option<f64> {
    let with: Vec<f64> = curves
        .iter()
        .filter(|c| c[k].episodes > 0)
        .map(|c| c[k].mean_rooms)
        .collect();
    (!with.is_empty()).then(|| with.iter().sum::<f64>() / with.len() as f64)
}

fn print_table(curves: &[Vec<Vec<Point>>]) {
    println!("rooms and instrument: episodes from the start state; any start: all episodes");
    println!(
        "{:<28} {:>10} {:>9} {:>11} {:>9} {:>20} {:>12}",
        "policy",
        "env steps",
        "episodes",
        "mean rooms",
        "max rooms",
        "instrument episodes",
        "(any start)"
    );
    for (name, seeds) in POLICIES.iter().zip(curves) {
        for k in 0..seeds[0].len() {
            let per_seed: Vec<String> = seeds
                .iter()
                .map(|c| c[k].instrument_episodes.to_string())
                .collect();
            let any: Vec<String> = seeds
                .iter()
                .map(|c| c[k].instrument_any.to_string())
                .collect();
            println!(
                "{:<28} {:>10} {:>9.1} {:>11} {:>9} {:>20} {:>12}",
                name,
                seeds[0][k].env_steps,
                mean(seeds, k, |p| p.episodes as f64),
                mean_rooms(seeds, k).map_or("-".into(), |r| format!("{r:.2}")),
                seeds.iter().map(|c| c[k].max_rooms).max().unwrap_or(0),
                per_seed.join("/"),
                any.join("/")
            );
        }
    }
}

/// One line per arm after the plain random one: does it beat random on rooms, and how
/// often it reached the instrument.
fn verdict(curves: &[Vec<Vec<Point>>], goal: &str) {
    let points = curves[0][0].len();
    for (p, name) in POLICIES.iter().enumerate().skip(1) {
        let beats =
            (0..points).all(
                |k| match (mean_rooms(&curves[p], k), mean_rooms(&curves[0], k)) {
                    (Some(ppo), Some(random)) => ppo > random,
                    (Some(_), None) => true,
                    _ => false,
                },
            );
        let sum =
            |f: fn(&Point) -> u64| -> u64 { curves[p].iter().flat_map(|c| c.iter().map(f)).sum() };
        println!(
            "{name}: more rooms than random at every budget: {}; episodes reaching the instrument from the start state: {} (any start: {}) (goal: {goal})",
            if beats { "yes" } else { "no" },
            sum(|x| x.instrument_episodes),
            sum(|x| x.instrument_any),
        );
    }
}

fn plot(curves: &[Vec<Vec<Point>>], out: &Path, font: &[u8]) -> Result<()> {
    let leaked: &'static [u8] = Box::leak(font.to_vec().into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, leaked)
        .map_err(|_| anyhow::anyhow!("the plot font is not a usable TrueType font"))?;
    let root = BitMapBackend::new(out, (1400, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(700);
    // Over every curve: a PPO burst is rounded up to whole batches, so with a small window
    // its points can lie beyond the random policy's.
    let max_x = curves
        .iter()
        .flatten()
        .filter_map(|c| c.last())
        .map(|p| p.env_steps)
        .max()
        .unwrap_or(1) as f64;
    let colors = [
        RGBColor(120, 120, 120),
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(148, 103, 189),
    ];
    // Per seed and point, then the mean over seeds; `None` leaves a gap (no episode ended).
    type Metric = (
        &'static str,
        fn(&Point) -> Option<f64>,
        fn(&[Vec<Point>], usize) -> Option<f64>,
    );
    let panels: [(&DrawingArea<BitMapBackend, _>, Metric); 2] = [
        (
            &left,
            (
                "mean rooms per episode from the start state",
                |p| (p.episodes > 0).then_some(p.mean_rooms),
                mean_rooms,
            ),
        ),
        (
            &right,
            (
                "episodes from the start that reached the instrument",
                |p| Some(p.instrument_episodes as f64),
                |c, k| Some(mean(c, k, |p| p.instrument_episodes as f64)),
            ),
        ),
    ];
    for (area, (title, per_seed, over_seeds)) in panels {
        let max_y = curves
            .iter()
            .flatten()
            .flatten()
            .filter_map(per_seed)
            .fold(1.0f64, f64::max)
            * 1.1;
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..max_x, 0f64..max_y)?;
        chart
            .configure_mesh()
            .x_desc("env steps")
            .label_style(("sans-serif", 14))
            .draw()?;
        for ((name, seeds), color) in POLICIES.iter().zip(curves).zip(colors) {
            for c in seeds {
                chart.draw_series(LineSeries::new(
                    c.iter()
                        .filter_map(|p| per_seed(p).map(|y| (p.env_steps as f64, y))),
                    color.mix(0.25).stroke_width(1),
                ))?;
            }
            let n = seeds[0].len();
            chart
                .draw_series(LineSeries::new(
                    (0..n).filter_map(|k| {
                        over_seeds(seeds, k).map(|y| (seeds[0][k].env_steps as f64, y))
                    }),
                    color.stroke_width(3),
                ))?
                .label(*name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
                });
        }
        chart
            .configure_series_labels()
            .label_font(("sans-serif", 14))
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()?;
    }
    root.present()
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}
