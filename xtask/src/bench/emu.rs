//! `cargo xtask bench emu`: our Game Boy core against PyBoy 2.8.1 on the same cartridges,
//! the same frames and the same warm-up, in one run, printing ratios.
//!
//! Our side is the `emu-bench` example of `crates/gameboy`, built in the `bench` profile
//! (fat LTO, one codegen unit); PyBoy runs from the project venv with sound off and no
//! window. Rounds of the two sides alternate (ours, PyBoy, ours, ...) so both see the same
//! machine load, and each side keeps its best round. Both wall-clock and thread CPU time
//! are measured: on a busy machine CPU time is the steadier basis for the ratio.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use serde_json::Value;

/// Options of `cargo xtask bench emu`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Rounds per side (best of N).
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Frames per no-render round.
    #[arg(long, default_value_t = 20_000)]
    frames: u64,
    /// Frames per RL-step round (rounded up to whole steps; K=24 runs twice as many).
    /// Rounds well under a second were at the mercy of a shared machine's noise.
    #[arg(long, default_value_t = 24_000)]
    step_frames_total: u64,
    /// save/load pairs timed on our side (PyBoy gets a tenth of them: it takes milliseconds).
    #[arg(long, default_value_t = 2_000)]
    state_iterations: u32,
}

/// One measurement of one side.
#[derive(Debug, Clone, Default)]
struct Measure {
    wall: f64,
    cpu: f64,
    frames: f64,
    steps: f64,
    state_bytes: f64,
    save: f64,
    load: f64,
}

impl Measure {
    fn from_json(v: &Value) -> anyhow::Result<Self> {
        let f = |k: &str| v.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
        Ok(Self {
            wall: f("wall_seconds"),
            cpu: f("cpu_seconds"),
            frames: f("frames"),
            steps: f("steps"),
            state_bytes: f("state_bytes"),
            save: f("save_seconds"),
            load: f("load_seconds"),
        })
    }

    fn best(a: &Measure, b: &Measure) -> Measure {
        let min = |x: f64, y: f64| {
            if x.is_nan() {
                y
            } else if y.is_nan() {
                x
            } else {
                x.min(y)
            }
        };
        Measure {
            wall: min(a.wall, b.wall),
            cpu: min(a.cpu, b.cpu),
            frames: a.frames.max(b.frames),
            steps: a.steps.max(b.steps),
            state_bytes: a.state_bytes.max(b.state_bytes),
            save: min(a.save, b.save),
            load: min(a.load, b.load),
        }
    }
}

fn measure(cmd: &mut Command) -> anyhow::Result<Measure> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .with_context(|| format!("no JSON from {cmd:?}: {text}"))?;
    Measure::from_json(&serde_json::from_str(line).with_context(|| format!("parsing {line}"))?)
}

fn cartridge(root: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let path = root
        .join("cartridges")
        .join(name)
        .join(format!("{name}.gb"));
    if !path.exists() {
        eprintln!("{} missing: building it", path.display());
        let status = Command::new(std::env::current_exe()?)
            .args(["cartridges", name])
            .current_dir(root)
            .status()?;
        if !status.success() || !path.exists() {
            bail!(
                "could not build {} (`cargo xtask cartridges {name}`)",
                path.display()
            );
        }
    }
    Ok(path)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let root = crate::repo_root();
    let python = super::python()?;
    eprintln!("building the benchmark runner (bench profile)...");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--quiet",
            "--profile",
            "bench",
            "-p",
            "gameboy",
            "--example",
            "emu-bench",
        ])
        .current_dir(&root)
        .status()?;
    if !status.success() {
        bail!("building the emu-bench example failed");
    }
    // Cargo puts the built-in `bench` profile's output in `release/`.
    let ours_bin = super::target_dir()?.join("release/examples/emu-bench");
    let pyboy_script = include_str!("emu_pyboy.py");

    let halt = cartridge(&root, "bench-halt")?;
    let cpu = cartridge(&root, "bench-cpu")?;
    let zelda = cartridge(&root, "mini-zelda")?;

    struct Case {
        name: String,
        rom: PathBuf,
        mode: &'static str,
        frames: u64,
        k: u32,
    }
    let cases = [
        Case {
            name: "no-render frames/s, bench-halt".into(),
            rom: halt.clone(),
            mode: "no-render",
            frames: args.frames,
            k: 1,
        },
        Case {
            name: "no-render frames/s, bench-cpu".into(),
            rom: cpu.clone(),
            mode: "no-render",
            frames: args.frames,
            k: 1,
        },
        Case {
            name: "RL step K=4 steps/s, mini-zelda".into(),
            rom: zelda.clone(),
            mode: "step",
            frames: args.step_frames_total,
            k: 4,
        },
        Case {
            name: "RL step K=24 steps/s, mini-zelda".into(),
            rom: zelda.clone(),
            mode: "step",
            frames: args.step_frames_total * 2,
            k: 24,
        },
    ];

    eprintln!("load average at start: {}", load_average());
    let mut rows = Vec::new();
    for case in &cases {
        let mut ours = None::<Measure>;
        let mut theirs = None::<Measure>;
        for round in 0..args.rounds.max(1) {
            eprintln!("{}: round {}", case.name, round + 1);
            let m = measure(Command::new(&ours_bin).args([
                case.rom.to_str().unwrap(),
                case.mode,
                &case.frames.to_string(),
                &case.k.to_string(),
                "1",
                "0",
            ]))?;
            ours = Some(match ours {
                Some(o) => Measure::best(&o, &m),
                None => m,
            });
            let m = measure(Command::new(&python).args([
                "-c",
                pyboy_script,
                case.rom.to_str().unwrap(),
                case.mode,
                &case.frames.to_string(),
                &case.k.to_string(),
                "0",
            ]))?;
            theirs = Some(match theirs {
                Some(o) => Measure::best(&o, &m),
                None => m,
            });
        }
        rows.push((case, ours.unwrap(), theirs.unwrap()));
    }

    eprintln!("save/load state");
    let ours_state = measure(Command::new(&ours_bin).args([
        zelda.to_str().unwrap(),
        "no-render",
        "600",
        "1",
        "1",
        &args.state_iterations.to_string(),
    ]))?;
    let theirs_state = measure(Command::new(&python).args([
        "-c",
        pyboy_script,
        zelda.to_str().unwrap(),
        "state",
        "0",
        "1",
        &(args.state_iterations / 10).max(5).to_string(),
    ]))?;

    println!();
    println!(
        "Game Boy emulator benchmark: zelda-rl `gameboy` vs PyBoy 2.8.1 (sound off, no window)"
    );
    println!(
        "best of {} alternating rounds, 600 warm-up frames; load average at end: {}",
        args.rounds,
        load_average()
    );
    println!();
    println!(
        "{:<34} {:>12} {:>12} {:>7}   {:>12} {:>12} {:>7}   target",
        "benchmark", "ours", "PyBoy", "ratio", "ours (CPU)", "PyBoy (CPU)", "ratio"
    );
    for (case, o, t) in &rows {
        let per = |m: &Measure, secs: f64| {
            if case.mode == "step" {
                m.steps / secs
            } else {
                m.frames / secs
            }
        };
        let (ow, tw) = (per(o, o.wall), per(t, t.wall));
        let (oc, tc) = (per(o, o.cpu), per(t, t.cpu));
        println!(
            "{:<34} {:>12.0} {:>12.0} {:>6.2}x   {:>12.0} {:>12.0} {:>6.2}x   >= 3x",
            case.name,
            ow,
            tw,
            ow / tw,
            oc,
            tc,
            oc / tc
        );
    }
    let us = |s: f64| s * 1e6;
    println!(
        "{:<34} {:>10.1}us {:>10.0}us {:>6.0}x",
        "save_state",
        us(ours_state.save),
        us(theirs_state.save),
        theirs_state.save / ours_state.save
    );
    println!(
        "{:<34} {:>10.1}us {:>10.0}us {:>6.0}x",
        "load_state",
        us(ours_state.load),
        us(theirs_state.load),
        theirs_state.load / ours_state.load
    );
    let total = us(ours_state.save + ours_state.load);
    println!(
        "{:<34} {:>10.1}us {:>10.0}us {:>6.0}x   < 50 us: {}",
        "save_state + load_state",
        total,
        us(theirs_state.save + theirs_state.load),
        (theirs_state.save + theirs_state.load) / (ours_state.save + ours_state.load),
        if total < 50.0 { "met" } else { "NOT met" }
    );
    println!(
        "{:<34} {:>12.0} {:>12.0}",
        "state size (bytes)", ours_state.state_bytes, theirs_state.state_bytes
    );
    Ok(())
}
