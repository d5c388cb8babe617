//! `zelda-rl archive`: what a run's Go-Explore archive and goal ladder hold, read from a
//! checkpoint, with an optional probe of the ladder's cells: episodes from their kept
//! states, played by random actions or by the checkpoint's policy. `--start-state` places
//! a save state (the run's own start) on the ladder and probes it the same way.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use rayon::prelude::*;
use rollout::archive::{Archive, Cell, CellInfo};
use rollout::ladder::Ladder;
use rollout::{Policy, RandomPolicy};
use serde::Serialize;
use train::checkpoint::latest_key;
use train::runstate::EnvState;
use zelda::ZeldaEnv;
use zelda::obs::{FEATURES, FRAME_PIXELS};

use crate::common::{RomArgs, StoreArgs, runtime};
use crate::rollout::CheckpointPolicy;

/// Options of `zelda-rl archive`.
#[derive(Debug, Args)]
pub struct ArchiveArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Run id.
    #[arg(long, default_value = "local")]
    run: String,
    /// Checkpoint: a key in the store or a local file [default: the run's latest].
    #[arg(long)]
    checkpoint: Option<String>,
    /// List every ladder cell on the rungs shown, not only the rung totals.
    #[arg(long)]
    cells: bool,
    /// Show rungs up to this one [default: all].
    #[arg(long)]
    max_rung: Option<u32>,
    /// Episodes played from each shown ladder cell's kept state, counting those that gain
    /// an instrument (0: no probe). Random actions unless --probe-policy.
    #[arg(long, default_value_t = 0)]
    probe: u32,
    /// Steps of each probe episode (it also ends where the game ends it) [default: the
    /// run's env.max_steps, as a ladder start has].
    #[arg(long)]
    probe_steps: Option<u32>,
    /// Probe with the checkpoint's policy (sampling) instead of random actions.
    #[arg(long)]
    probe_policy: bool,
    /// Where --probe-policy's network runs: `flex` (CPU, pure Rust), `tch-cpu`, `tch-cuda`
    /// or `tch-cuda:N` (LibTorch; needs a build with the `tch` feature).
    #[arg(long, default_value = "flex")]
    backend: String,
    /// Seed of the probe's resets and actions.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Threads stepping the probe's environments [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
    /// A save state to place on the ladder, such as the run's own `--start-state`: the
    /// report gives its cell's steps to the goal and rung, and `--probe` plays from it too.
    #[arg(long)]
    start_state: Option<PathBuf>,
    /// The cartridge the run played, for --probe and --start-state [default: the bundled
    /// mini-zelda].
    #[arg(long, env = "ROM")]
    rom: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// The whole report.
#[derive(Debug, Serialize)]
struct Report {
    checkpoint: String,
    burst: u32,
    env_steps: u64,
    /// One per vector env (one for `zelda-rl train`, one per Ray rollout worker).
    workers: Vec<WorkerReport>,
}

#[derive(Debug, Serialize)]
struct WorkerReport {
    archive_cells: u64,
    archive_states: u64,
    archive_rooms: u64,
    ladder_cells: u64,
    rung_steps: u32,
    top_rung: u64,
    frontier: u64,
    frontier_tries: u64,
    frontier_wins: u64,
    rungs: Vec<RungReport>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cells: Vec<CellReport>,
    /// Where `--start-state` stands on the ladder.
    #[serde(skip_serializing_if = "Option::is_none")]
    start: Option<StartReport>,
}

#[derive(Debug, Serialize)]
struct StartReport {
    #[serde(flatten)]
    at: Place,
    /// The fewest steps to the goal the ladder counts from this cell (none: not on it).
    steps: Option<u32>,
    rung: Option<u32>,
    /// The archive keeps a state of this cell.
    held: bool,
    #[serde(flatten)]
    probe: ProbeReport,
}

/// A cell as reports name it.
#[derive(Debug, Serialize)]
struct Place {
    room: String,
    x: u8,
    y: u8,
    keys: u8,
    instruments: u8,
    progress: u8,
}

impl From<Cell> for Place {
    fn from(c: Cell) -> Self {
        Self {
            room: room_name(c.room),
            x: c.x,
            y: c.y,
            keys: c.keys,
            instruments: c.instruments,
            progress: c.progress,
        }
    }
}

/// A probe's outcome as reports give it.
#[derive(Debug, Serialize)]
struct ProbeReport {
    probe_episodes: u32,
    probe_wins: u32,
    /// Fewest steps any winning probe episode took.
    probe_best: Option<u32>,
}

impl From<Probe> for ProbeReport {
    fn from(p: Probe) -> Self {
        Self {
            probe_episodes: p.episodes,
            probe_wins: p.wins,
            probe_best: p.best,
        }
    }
}

#[derive(Debug, Serialize)]
struct RungReport {
    rung: u32,
    cells: u32,
    /// Cells whose state the archive keeps (episodes can start there).
    held: u32,
    min_steps: u32,
    max_steps: u32,
    /// Cells per room (hex global room index).
    rooms: BTreeMap<String, u32>,
    /// Cells per world progress value.
    progress: BTreeMap<u8, u32>,
    probe_episodes: u32,
    probe_wins: u32,
    /// The run's own policy episodes from the rung's cells ([`rollout::ladder::Tried`]).
    policy_tries: u32,
    policy_wins: u32,
}

#[derive(Debug, Serialize)]
struct CellReport {
    rung: u32,
    steps: u32,
    #[serde(flatten)]
    at: Place,
    #[serde(flatten)]
    info: Option<CellInfo>,
    /// The run's own policy episodes from the cell (halved past a window) and their wins.
    policy_tries: u32,
    policy_wins: u32,
    #[serde(flatten)]
    probe: ProbeReport,
}

/// Probe outcome of one cell.
#[derive(Debug, Clone, Copy, Default)]
struct Probe {
    episodes: u32,
    wins: u32,
    best: Option<u32>,
}

/// Runs `zelda-rl archive`.
pub fn run(args: ArchiveArgs) -> Result<()> {
    if args.probe_policy && args.probe == 0 {
        bail!("--probe-policy says who plays the probe: add --probe N (episodes per cell)");
    }
    let store = args.store.open()?;
    let rt = runtime()?;
    let backend = crate::common::backend(&args.backend)?;
    let reference = args
        .checkpoint
        .clone()
        .unwrap_or_else(|| latest_key(&args.run));
    let (key, state) = crate::common::read_checkpoint(&rt, &store, &reference)?;
    let settings = run_settings(&rt, &store, &state.run)?;
    let snapshots = match EnvState::decode(&state.envs, &key)? {
        EnvState::Local(b) => vec![b],
        EnvState::Workers(w) => w,
    };
    let start = RomArgs {
        rom: None,
        start_state: args.start_state.clone(),
    }
    .load_start_state()?;
    // The probe's environments, booted once for all workers.
    let envs = if args.probe > 0 || start.is_some() {
        let (rom, name) = RomArgs {
            rom: args.rom.clone(),
            start_state: None,
        }
        .load()?;
        let sha1 = hex::encode(gameboy::GameBoy::new(rom.clone())?.rom_sha1());
        if sha1 != state.cartridge_sha1 {
            bail!(
                "{name} (SHA-1 {sha1}) is not the cartridge run `{}` played ({}); pass its --rom",
                state.run,
                state.cartridge_sha1
            );
        }
        (0..args.probe.max(1))
            .map(|_| ZeldaEnv::new(rom.clone(), settings.env.clone(), settings.reward.clone()))
            .collect::<Result<Vec<_>, _>>()
            .context("booting the probe's environments")?
    } else {
        Vec::new()
    };
    let n_actions = envs.first().map_or(1, |e| e.actions().len());
    let policy: Box<dyn Policy> = if args.probe_policy {
        Box::new(CheckpointPolicy::from_state(
            &state,
            &key,
            n_actions,
            settings.env.frame_stack,
            args.seed,
            backend,
        )?)
    } else {
        Box::new(RandomPolicy::new(
            n_actions,
            rollout::derive_seed(args.seed, &[0x9011c7]),
        ))
    };
    let mut prober = Prober::new(envs, policy, &settings, &args)?;
    let cell_px = settings.env.explore_cell_px;
    // The start's cell and probe are the same for every worker: played once, after the
    // first worker's cells (so a one-worker report steps the policy in the same order).
    let mut start_played: Option<(Cell, Probe)> = None;
    let mut workers = Vec::new();
    for (i, snap) in snapshots.iter().enumerate() {
        let (archive, ladder) =
            rollout::explore_in_snapshot(snap, settings.env.explore_ladder_rung)
                .with_context(|| format!("{key}: environments of worker {i}"))?;
        let probes = if args.probe > 0 {
            probe_cells(&mut prober, &archive, &ladder, &args, cell_px)?
        } else {
            BTreeMap::new()
        };
        let mut report = worker_report(&archive, &ladder, &probes, &args);
        if let Some(state) = &start {
            let (cell, probe) = match start_played {
                Some(played) => played,
                None => *start_played.insert(play_start(&mut prober, state, &args, cell_px)?),
            };
            let steps = ladder.steps(cell);
            report.start = Some(StartReport {
                at: cell.into(),
                steps,
                rung: steps.map(|n| ladder.rung_of(n)),
                held: archive.holds(cell),
                probe: probe.into(),
            });
        }
        workers.push(report);
    }
    let report = Report {
        checkpoint: key,
        burst: state.burst,
        env_steps: state.env_steps,
        workers,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report, args.probe > 0);
    }
    Ok(())
}

/// The settings the run was started with (`<run>/run.json`).
fn run_settings(
    rt: &tokio::runtime::Runtime,
    store: &episodes::Store,
    run: &str,
) -> Result<train::Settings> {
    #[derive(serde::Deserialize)]
    struct Meta {
        settings: train::Settings,
    }
    let key = format!("{run}/run.json");
    let bytes = rt
        .block_on(store.get(&key))
        .with_context(|| format!("reading {key}"))?;
    let meta: Meta = serde_json::from_slice(&bytes).with_context(|| format!("reading {key}"))?;
    Ok(meta.settings)
}

fn shown(ladder: &Ladder, max_rung: Option<u32>) -> impl Iterator<Item = (Cell, u32)> + '_ {
    ladder
        .cells()
        .filter(move |&(_, n)| max_rung.is_none_or(|m| ladder.rung_of(n) <= m))
}

/// Plays episodes from one save state at a time, all of a state's episodes stepping
/// together: one per environment, stepped on the pool, with `policy` acting for all of
/// them at once.
struct Prober {
    envs: Vec<ZeldaEnv>,
    policy: Box<dyn Policy>,
    pool: rayon::ThreadPool,
    /// Steps per episode (it also ends where the game ends it).
    limit: u32,
    seed: u64,
    frame_len: usize,
    frames: Vec<u8>,
    features: Vec<f32>,
    actions: Vec<usize>,
}

impl Prober {
    fn new(
        envs: Vec<ZeldaEnv>,
        policy: Box<dyn Policy>,
        settings: &train::Settings,
        args: &ArchiveArgs,
    ) -> Result<Self> {
        let n = envs.len();
        let threads = args
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .clamp(1, n.max(1));
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .context("starting the probe's threads")?;
        let frame_len = settings.env.frame_stack * FRAME_PIXELS;
        Ok(Self {
            policy,
            pool,
            limit: args.probe_steps.unwrap_or(settings.env.max_steps),
            seed: args.seed,
            frame_len,
            frames: vec![0u8; n * frame_len],
            features: vec![0f32; n * FEATURES],
            actions: vec![0usize; n],
            envs,
        })
    }

    /// Loads `state` into every environment (seeded by `key`), as a ladder start does but
    /// with the `max_steps` limit, and returns the first one's cell.
    fn load(&mut self, state: &[u8], key: u64, cell_px: u8) -> Result<Option<Cell>> {
        for (e, env) in self.envs.iter_mut().enumerate() {
            env.reset_to(state, rollout::derive_seed(self.seed, &[key, e as u64]))?;
            env.set_explore_limit(false);
        }
        Ok(self
            .envs
            .first()
            .and_then(|env| Cell::of(env.state(), env.progress(), cell_px)))
    }

    /// Plays one episode per environment from the state [`Prober::load`] put there,
    /// counting those that gain an instrument.
    fn play(&mut self) -> Probe {
        let n = self.envs.len();
        let had: Vec<u32> = self
            .envs
            .iter()
            .map(|e| e.state().instrument_count())
            .collect();
        // Per episode: still playing, and the step it won on.
        let mut live = vec![true; n];
        let mut won: Vec<Option<u32>> = vec![None; n];
        let fl = self.frame_len;
        for step in 1..=self.limit {
            if !live.contains(&true) {
                break;
            }
            for (e, env) in self.envs.iter().enumerate() {
                env.write_observation(
                    &mut self.frames[e * fl..(e + 1) * fl],
                    &mut self.features[e * FEATURES..(e + 1) * FEATURES],
                );
            }
            self.policy
                .act(&self.frames, &self.features, &mut self.actions);
            let (envs, actions) = (&mut self.envs, &self.actions);
            // Each episode is its own env: which thread steps it changes nothing.
            self.pool.install(|| {
                envs.par_iter_mut()
                    .zip(live.par_iter_mut())
                    .zip(won.par_iter_mut())
                    .zip(actions.par_iter().zip(&had))
                    .for_each(|(((env, live), won), (&a, &had))| {
                        if !*live {
                            return;
                        }
                        let r = env.step(a);
                        if env.state().instrument_count() > had {
                            *won = Some(step);
                            *live = false;
                        } else if r.done() {
                            *live = false;
                        }
                    });
            });
        }
        Probe {
            episodes: n as u32,
            wins: won.iter().flatten().count() as u32,
            best: won.iter().flatten().min().copied(),
        }
    }
}

/// Plays `--probe` episodes from the kept state of every shown ladder cell, as the
/// ladder starts them (the run's `max_steps` limit), and counts those that gain an
/// instrument.
fn probe_cells(
    prober: &mut Prober,
    archive: &Archive,
    ladder: &Ladder,
    args: &ArchiveArgs,
    cell_px: u8,
) -> Result<BTreeMap<Cell, Probe>> {
    let cells: Vec<Cell> = shown(ladder, args.max_rung)
        .map(|(c, _)| c)
        .filter(|&c| archive.holds(c))
        .collect();
    let bar = crate::common::progress_bar(cells.len() as u64, "cells probed");
    let mut probes = BTreeMap::new();
    for (i, &cell) in cells.iter().enumerate() {
        let state = archive
            .state(cell)
            .expect("only held cells are probed")
            .with_context(|| format!("unpacking the state of {cell:?}"))?;
        prober
            .load(&state, i as u64, cell_px)
            .with_context(|| format!("loading the state of {cell:?}"))?;
        probes.insert(cell, prober.play());
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(probes)
}

/// The cell `--start-state` puts Link in, and `--probe` episodes played from it.
fn play_start(
    prober: &mut Prober,
    state: &[u8],
    args: &ArchiveArgs,
    cell_px: u8,
) -> Result<(Cell, Probe)> {
    let path = args.start_state.as_deref().unwrap_or(Path::new("-"));
    let cell = prober
        .load(state, u64::MAX, cell_px)
        .with_context(|| format!("--start-state {}", path.display()))?
        .with_context(|| {
            format!(
                "--start-state {}: Link is not in play there (no cell)",
                path.display()
            )
        })?;
    let probe = if args.probe > 0 {
        prober.play()
    } else {
        Probe::default()
    };
    Ok((cell, probe))
}

fn worker_report(
    archive: &Archive,
    ladder: &Ladder,
    probes: &BTreeMap<Cell, Probe>,
    args: &ArchiveArgs,
) -> WorkerReport {
    let a = archive.stats();
    let l = ladder.stats(|c| archive.holds(c));
    let mut rungs: BTreeMap<u32, RungReport> = BTreeMap::new();
    let mut cells = Vec::new();
    for (c, n) in shown(ladder, args.max_rung) {
        let rung = ladder.rung_of(n);
        let p = probes.get(&c).copied().unwrap_or_default();
        let tried = ladder.tried(c).unwrap_or_default();
        let info = archive.info(c);
        let r = rungs.entry(rung).or_insert_with(|| RungReport {
            rung,
            cells: 0,
            held: 0,
            min_steps: n,
            max_steps: n,
            rooms: BTreeMap::new(),
            progress: BTreeMap::new(),
            probe_episodes: 0,
            probe_wins: 0,
            policy_tries: 0,
            policy_wins: 0,
        });
        r.cells += 1;
        r.held += u32::from(info.is_some_and(|i| i.held));
        r.min_steps = r.min_steps.min(n);
        r.max_steps = r.max_steps.max(n);
        *r.rooms.entry(room_name(c.room)).or_default() += 1;
        *r.progress.entry(c.progress).or_default() += 1;
        r.probe_episodes += p.episodes;
        r.probe_wins += p.wins;
        r.policy_tries += tried.tries;
        r.policy_wins += tried.wins;
        if args.cells {
            cells.push(CellReport {
                rung,
                steps: n,
                at: c.into(),
                info,
                policy_tries: tried.tries,
                policy_wins: tried.wins,
                probe: p.into(),
            });
        }
    }
    cells.sort_by_key(|c| (c.steps, c.at.room.clone(), c.at.y, c.at.x));
    WorkerReport {
        archive_cells: a.cells,
        archive_states: a.states,
        archive_rooms: a.rooms,
        ladder_cells: l.cells,
        rung_steps: ladder.width(),
        top_rung: l.top,
        frontier: l.frontier,
        frontier_tries: l.frontier_tries,
        frontier_wins: l.frontier_wins,
        rungs: rungs.into_values().collect(),
        cells,
        start: None,
    }
}

/// A room's global index as the HUD's map and the RAM map write it (`0x12B`: indoor
/// table A, room 0x2B).
fn room_name(room: u16) -> String {
    format!("{room:#05x}")
}

fn print_text(r: &Report, probed: bool) {
    println!(
        "{} (burst {}, {} env steps)",
        r.checkpoint, r.burst, r.env_steps
    );
    for (i, w) in r.workers.iter().enumerate() {
        if r.workers.len() > 1 {
            println!("\nworker {i}");
        }
        println!(
            "archive: {} cells ({} states kept) in {} rooms",
            w.archive_cells, w.archive_states, w.archive_rooms
        );
        println!(
            "ladder: {} cells, rungs of {} steps, top rung {}, frontier rung {} ({} of {} tries won)",
            w.ladder_cells, w.rung_steps, w.top_rung, w.frontier, w.frontier_wins, w.frontier_tries
        );
        if let Some(s) = &w.start {
            let place = match (s.steps, s.rung) {
                (Some(n), Some(r)) => format!("{n} steps from the goal (rung {r})"),
                _ => "not on the ladder".into(),
            };
            let probe = if probed {
                format!(
                    "; probe {} of {} won{}",
                    s.probe.probe_wins,
                    s.probe.probe_episodes,
                    s.probe
                        .probe_best
                        .map_or(String::new(), |b| format!(" (fewest steps {b})"))
                )
            } else {
                String::new()
            };
            println!(
                "start state: room {} ({}, {}), progress {}: {place}{probe}",
                s.at.room, s.at.x, s.at.y, s.at.progress
            );
        }
        if w.rungs.is_empty() {
            continue;
        }
        println!(
            "\n{:>4} {:>5} {:>4} {:>7} {:<12} {}rooms (cells) / progress (cells)",
            "rung",
            "cells",
            "held",
            "steps",
            "policy wins",
            if probed { "probe wins  " } else { "" },
        );
        for g in &w.rungs {
            let probe = if probed {
                format!("{:>5}/{:<6}", g.probe_wins, g.probe_episodes)
            } else {
                String::new()
            };
            println!(
                "{:>4} {:>5} {:>4} {:>7} {:<12} {probe}{} / {}",
                g.rung,
                g.cells,
                g.held,
                format!("{}-{}", g.min_steps, g.max_steps),
                format!("{:>5}/{}", g.policy_wins, g.policy_tries),
                join(&g.rooms),
                join(&g.progress)
            );
        }
        if !w.cells.is_empty() {
            println!(
                "\n{:>4} {:>5} {:>5} {:>3} {:>3} {:>4} {:>5} {:>4} {:>6} {:>6} {:>6} {:>7} {}",
                "rung",
                "steps",
                "room",
                "x",
                "y",
                "keys",
                "prog",
                "hp",
                "depth",
                "chosen",
                "visits",
                "policy",
                if probed { "probe wins (best)" } else { "" }
            );
            for c in &w.cells {
                let (hp, depth, chosen, visits) = c.info.map_or_else(
                    || ("-".into(), "-".into(), "-".into(), "-".into()),
                    |i| {
                        (
                            if i.held {
                                i.health.to_string()
                            } else {
                                "-".into()
                            },
                            i.depth.to_string(),
                            i.chosen.to_string(),
                            i.visits.to_string(),
                        )
                    },
                );
                let probe = if probed && c.probe.probe_episodes > 0 {
                    format!(
                        "{}/{}{}",
                        c.probe.probe_wins,
                        c.probe.probe_episodes,
                        c.probe
                            .probe_best
                            .map_or(String::new(), |b| format!(" ({b})"))
                    )
                } else {
                    String::new()
                };
                println!(
                    "{:>4} {:>5} {:>5} {:>3} {:>3} {:>4} {:>5} {:>4} {:>6} {:>6} {:>6} {:>7} {probe}",
                    c.rung,
                    c.steps,
                    c.at.room,
                    c.at.x,
                    c.at.y,
                    c.at.keys,
                    c.at.progress,
                    hp,
                    depth,
                    chosen,
                    visits,
                    format!("{}/{}", c.policy_wins, c.policy_tries)
                );
            }
        }
    }
}

fn join<K: std::fmt::Display>(m: &BTreeMap<K, u32>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k} ({v})"))
        .collect::<Vec<_>>()
        .join(", ")
}
