//! `zelda-rl emu`: run a ROM headless (debugging, test ROMs, outside checks) or measure
//! emulation speed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use gameboy::{GameBoy, InputScript};

/// `emu` subcommands.
#[derive(Debug, Subcommand)]
pub enum EmuCommand {
    /// Run a ROM headless for a number of frames.
    Run(RunArgs),
    /// Measure emulation speed (frames/s and RL steps/s).
    Bench(BenchArgs),
}

/// Options of `emu run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// ROM file.
    #[arg(long)]
    pub rom: PathBuf,
    /// Frames to run (a frame ends when LY reaches 144).
    #[arg(long, default_value_t = 600)]
    pub frames: u64,
    /// Input script: lines `<frame> <buttons>` (see notes/contracts.md).
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Print the bytes the ROM sent over the link port.
    #[arg(long)]
    pub serial: bool,
    /// Stop at the first `LD B,B` (Mooneye breakpoint) and print the registers.
    #[arg(long)]
    pub until_ld_b_b: bool,
    /// Write work RAM (0xC000-0xDFFF) then HRAM (0xFF80-0xFFFE) to this file.
    #[arg(long, value_name = "OUT")]
    pub dump_ram: Option<PathBuf>,
    /// Write the last frame as a 160x144 PNG: four greys, or colour in CGB mode.
    #[arg(long, value_name = "OUT.png")]
    pub screenshot: Option<PathBuf>,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    pub json: bool,
    /// Run this 256-byte DMG boot ROM first instead of starting in the post-boot state.
    #[arg(long)]
    pub boot_rom: Option<PathBuf>,
    /// Write a save state of the end point to this file (for `--start-state` of `train`
    /// and `rollout`: Link's Awakening boots into a file menu).
    #[arg(long, value_name = "OUT.state")]
    pub save_state: Option<PathBuf>,
    /// Game Boy model: `dmg` (default, also for CGB-compatible cartridges), `cgb`, or
    /// `auto` (CGB for cartridges with the CGB flag at 0x0143). In CGB mode `--screenshot`
    /// writes colour.
    #[arg(long, value_enum, default_value_t = ModelArg::Dmg)]
    pub model: ModelArg,
}

/// `--model` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModelArg {
    /// CGB for cartridges whose header has the CGB flag, DMG otherwise.
    Auto,
    /// Game Boy (DMG).
    Dmg,
    /// Game Boy Color (DMG compatibility mode for cartridges without the CGB flag).
    Cgb,
}

/// Which frames `emu bench` renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Render {
    /// Every frame.
    Every,
    /// The last frame of each step.
    Last,
    /// None.
    None,
}

/// Options of `emu bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// ROM file.
    #[arg(long)]
    pub rom: PathBuf,
    /// Frames to measure (after 600 warm-up frames).
    #[arg(long, default_value_t = 20_000)]
    pub frames: u64,
    /// Which frames to render.
    #[arg(long, value_enum, default_value_t = Render::None)]
    pub render: Render,
    /// Frames per RL step (with `--render last`, the last frame of each step is rendered
    /// and a 72x80 greyscale observation is copied out).
    #[arg(long, default_value_t = 1)]
    pub step_frames: u32,
    /// Repeat the measurement this many times and report the best.
    #[arg(long, default_value_t = 1)]
    pub rounds: u32,
    /// Also time this many save_state + load_state pairs (after the frames).
    #[arg(long, default_value_t = 0)]
    pub state_iterations: u32,
    /// Print a JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Game Boy model (as for `emu run`).
    #[arg(long, value_enum, default_value_t = ModelArg::Dmg)]
    pub model: ModelArg,
}

/// Runs an `emu` subcommand.
pub fn run(cmd: EmuCommand) -> anyhow::Result<()> {
    match cmd {
        EmuCommand::Run(args) => run_rom(&args),
        EmuCommand::Bench(args) => bench(&args),
    }
}

/// Loads a ROM (and optional boot ROM) with errors that name the file.
pub fn load(rom: &Path, boot: Option<&Path>, model: ModelArg) -> anyhow::Result<GameBoy> {
    let data = std::fs::read(rom).with_context(|| format!("reading ROM {}", rom.display()))?;
    let gb = match (boot, model) {
        (Some(_), ModelArg::Cgb) => {
            bail!("--boot-rom takes a DMG boot ROM; it cannot be used with --model cgb")
        }
        (Some(b), _) => {
            let boot_data =
                std::fs::read(b).with_context(|| format!("reading boot ROM {}", b.display()))?;
            GameBoy::with_boot_rom(data, boot_data)
        }
        (None, ModelArg::Auto) => GameBoy::auto(data),
        (None, ModelArg::Dmg) => GameBoy::new(data),
        (None, ModelArg::Cgb) => GameBoy::with_model(data, gameboy::Model::Cgb),
    };
    gb.with_context(|| format!("loading ROM {}", rom.display()))
}

fn run_rom(args: &RunArgs) -> anyhow::Result<()> {
    let mut gb = load(&args.rom, args.boot_rom.as_deref(), args.model)?;
    let script = match &args.input {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading input script {}", path.display()))?;
            InputScript::parse(&text).with_context(|| format!("input script {}", path.display()))?
        }
        None => InputScript::default(),
    };
    tracing::info!(rom = %args.rom.display(), title = %gb.header().title, frames = args.frames, "running");
    let start = Instant::now();
    let mut frames_run = 0u64;
    let mut breakpoint = false;
    let want_pixels = args.screenshot.is_some();
    while frames_run < args.frames {
        gb.set_buttons(script.buttons_at(frames_run));
        let render = want_pixels && frames_run + 1 == args.frames;
        if args.until_ld_b_b {
            if gb.run_frame_until_ld_b_b(render) {
                breakpoint = true;
                break;
            }
        } else {
            gb.run_frame(render);
        }
        frames_run += 1;
    }
    if args.until_ld_b_b && want_pixels && breakpoint {
        // The frame in progress was cut short; render one more so the picture is whole.
        gb.run_frame(true);
    }
    let wall = start.elapsed().as_secs_f64();

    if let Some(path) = &args.dump_ram {
        write_atomic(path, &ram_dump(&gb))?;
    }
    if let Some(path) = &args.save_state {
        write_atomic(path, &gb.save_state())?;
    }
    if let Some(path) = &args.screenshot {
        let png = if gb.cgb_mode() {
            colour_png(&gb)?
        } else {
            screenshot_png(gb.frame())?
        };
        write_atomic(path, &png)?;
    }
    let regs = gb.registers();
    let mooneye_pass = [regs.b, regs.c, regs.d, regs.e, regs.h, regs.l] == [3, 5, 8, 13, 21, 34];
    let mut stdout = std::io::stdout().lock();
    if args.json {
        let summary = serde_json::json!({
            "rom": args.rom.display().to_string(),
            "title": gb.header().title,
            "rom_sha1": hex::encode(gb.rom_sha1()),
            "emulator": gameboy::VERSION,
            "model": gb.model().to_string(),
            "cgb_mode": gb.cgb_mode(),
            "frames": frames_run,
            "cycles": gb.cycles(),
            "wall_seconds": wall,
            "frames_per_second": if wall > 0.0 { frames_run as f64 / wall } else { 0.0 },
            "ld_b_b": if args.until_ld_b_b {
                serde_json::json!({"hit": breakpoint, "registers": regs.to_string(), "mooneye_pass": breakpoint && mooneye_pass})
            } else {
                serde_json::Value::Null
            },
            "serial": String::from_utf8_lossy(gb.serial_output()),
            "dump_ram": args.dump_ram.as_ref().map(|p| p.display().to_string()),
            "screenshot": args.screenshot.as_ref().map(|p| p.display().to_string()),
        });
        writeln!(stdout, "{summary}")?;
    } else {
        if args.serial {
            stdout.write_all(gb.serial_output())?;
            if !gb.serial_output().ends_with(b"\n") {
                writeln!(stdout)?;
            }
        }
        if args.until_ld_b_b {
            if breakpoint {
                let verdict = if mooneye_pass { "pass" } else { "fail" };
                writeln!(
                    stdout,
                    "LD B,B after {frames_run} frames: {regs} (mooneye {verdict})"
                )?;
            } else {
                writeln!(stdout, "LD B,B not reached in {frames_run} frames: {regs}")?;
            }
        }
        if !args.serial && !args.until_ld_b_b {
            writeln!(
                stdout,
                "{frames_run} frames in {wall:.3} s ({:.0} frames/s)",
                frames_run as f64 / wall.max(1e-9)
            )?;
        }
    }
    if args.until_ld_b_b && !breakpoint {
        bail!("LD B,B not reached within {} frames", args.frames);
    }
    Ok(())
}

/// 0xC000-0xDFFF then 0xFF80-0xFFFE.
pub fn ram_dump(gb: &GameBoy) -> Vec<u8> {
    (0xC000u16..=0xDFFF)
        .chain(0xFF80..=0xFFFE)
        .map(|a| gb.peek(a))
        .collect()
}

/// The four DMG greys, lightest first.
pub const GREYS: [u8; 4] = [0xFF, 0xAA, 0x55, 0x00];

/// Encodes a frame of shades as an 8-bit greyscale PNG.
pub fn screenshot_png(frame: &[u8; gameboy::WIDTH * gameboy::HEIGHT]) -> anyhow::Result<Vec<u8>> {
    let pixels: Vec<u8> = frame.iter().map(|&s| GREYS[s as usize & 3]).collect();
    encode_png(&pixels, png::ColorType::Grayscale)
}

/// Encodes the last frame in colour (CGB mode) as an 8-bit RGB PNG.
pub fn colour_png(gb: &GameBoy) -> anyhow::Result<Vec<u8>> {
    let mut pixels = vec![0u8; gameboy::WIDTH * gameboy::HEIGHT * 3];
    gb.frame_rgb(&mut pixels);
    encode_png(&pixels, png::ColorType::Rgb)
}

/// A 160x144 PNG of 8-bit `pixels` in `color` layout.
fn encode_png(pixels: &[u8], color: png::ColorType) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, gameboy::WIDTH as u32, gameboy::HEIGHT as u32);
        enc.set_color(color);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().context("encoding PNG header")?;
        writer
            .write_image_data(pixels)
            .context("encoding PNG data")?;
    }
    Ok(out)
}

/// Writes `data` to `path` atomically: a temporary file in the same folder, fsync, rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file path", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {}", path.display()))
}

fn bench(args: &BenchArgs) -> anyhow::Result<()> {
    use gameboy::bench::{Config, Workload};
    if args.step_frames == 0 {
        bail!("--step-frames must be at least 1");
    }
    let mut gb = load(&args.rom, None, args.model)?;
    let workload = match args.render {
        Render::None => Workload::NoRender,
        Render::Last => Workload::Step,
        Render::Every => Workload::RenderEvery,
    };
    let cfg = Config {
        workload,
        frames: args.frames,
        step_frames: args.step_frames,
        warmup: 600,
        rounds: args.rounds,
        state_iterations: args.state_iterations,
    };
    let r = gameboy::bench::run(&mut gb, &cfg);
    let wall = r.best_wall();
    let cpu = r.best_cpu();
    if args.json {
        let v = serde_json::json!({
            "rom": args.rom.display().to_string(),
            "frames": r.frames,
            "steps": r.steps,
            "step_frames": args.step_frames,
            "render": format!("{:?}", args.render).to_lowercase(),
            "rounds": r.rounds.iter().map(|x| serde_json::json!({"wall_seconds": x.wall, "cpu_seconds": x.cpu})).collect::<Vec<_>>(),
            "frames_per_second": r.frames as f64 / wall,
            "steps_per_second": r.steps as f64 / wall,
            "cpu_frames_per_second": cpu.map(|c| r.frames as f64 / c),
            "cpu_steps_per_second": cpu.map(|c| r.steps as f64 / c),
            "state": r.state.map(|(size, save, load)| serde_json::json!({
                "bytes": size, "save_seconds": save, "load_seconds": load,
            })),
        });
        println!("{v}");
        return Ok(());
    }
    let steps_note = if args.step_frames > 1 {
        format!(
            ", {:.0} steps/s of {} frames",
            r.steps as f64 / wall,
            args.step_frames
        )
    } else {
        String::new()
    };
    println!(
        "{} frames, best of {} rounds: {wall:.3} s, {:.0} frames/s{steps_note} (render {:?})",
        r.frames,
        r.rounds.len(),
        r.frames as f64 / wall,
        args.render
    );
    if let Some(c) = cpu {
        println!("CPU time: {c:.3} s, {:.0} frames/s", r.frames as f64 / c);
    }
    if let Some((size, save, load)) = r.state {
        println!(
            "save_state {:.1} us, load_state {:.1} us, {size} bytes",
            save * 1e6,
            load * 1e6
        );
    }
    Ok(())
}
