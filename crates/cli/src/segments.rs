//! `zelda-rl segments ls|show|replay`: look at stored segments.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use episodes::{Segment, Store};

use crate::common::{StoreArgs, runtime};

/// `zelda-rl segments ...`
#[derive(Debug, Subcommand)]
pub enum SegmentsCommand {
    /// List stored segments (of one run, or all).
    Ls(LsArgs),
    /// Print a segment's metadata and a summary of what happened in it.
    Show(ShowArgs),
    /// Replay a segment from its start state and check it bit for bit; optionally write an
    /// animated GIF of it.
    Replay(ReplayArgs),
}

/// Options of `segments ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Only this run.
    #[arg(long)]
    run: Option<String>,
}

/// Options of `segments show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Segment key in the store, or a local `.seg` file.
    segment: String,
    #[command(flatten)]
    store: StoreArgs,
    /// Print the metadata as JSON.
    #[arg(long)]
    json: bool,
}

/// Options of `segments replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Segment key in the store, or a local `.seg` file.
    segment: String,
    #[command(flatten)]
    store: StoreArgs,
    /// The ROM it was recorded on (default: the bundled mini-zelda).
    #[arg(long, env = "ROM")]
    rom: Option<PathBuf>,
    /// Write the replay as an animated GIF (one frame per agent step).
    #[arg(long)]
    gif: Option<PathBuf>,
}

/// Runs `zelda-rl segments ...`.
pub fn run(cmd: SegmentsCommand) -> Result<()> {
    match cmd {
        SegmentsCommand::Ls(a) => ls(a),
        SegmentsCommand::Show(a) => show(a),
        SegmentsCommand::Replay(a) => replay(a),
    }
}

fn ls(args: LsArgs) -> Result<()> {
    let store = args.store.open()?;
    let prefix = match &args.run {
        Some(run) => episodes::segment::segments_prefix(run),
        None => String::new(),
    };
    let objects = runtime()?.block_on(store.list(&prefix))?;
    let mut n = 0;
    for o in objects.iter().filter(|o| o.key.ends_with(".seg")) {
        println!("{:>9}  {}", o.size, o.key);
        n += 1;
    }
    eprintln!("{n} segments in {}", store.url());
    Ok(())
}

/// Loads a segment from a local file or the store.
pub fn load(segment: &str, store: &Store) -> Result<Segment> {
    let path = std::path::Path::new(segment);
    let bytes = if path.is_file() {
        std::fs::read(path).with_context(|| format!("reading {}", path.display()))?
    } else {
        runtime()?.block_on(store.get(segment))?.to_vec()
    };
    Ok(Segment::decode(&bytes, segment)?)
}

fn show(args: ShowArgs) -> Result<()> {
    let seg = load(&args.segment, &args.store.open()?)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&seg.meta)?);
        return Ok(());
    }
    let m = &seg.meta;
    println!("segment   {}", seg.id());
    println!(
        "cartridge {} (SHA-1 {})",
        m.cartridge_title, m.cartridge_sha1
    );
    println!(
        "emulator  {}   config {}",
        m.emulator_version,
        &m.config_hash[..12]
    );
    println!(
        "steps     {} (episode {} steps {}..{}, env step {}), ended: {}",
        m.steps,
        m.episode,
        m.episode_step,
        m.episode_step + m.steps,
        m.global_step,
        m.ended
            .map_or("no".into(), |e| format!("{e:?}").to_lowercase())
    );
    println!("policy    {}   keyframes {}", m.policy, m.keyframes.len());
    println!("return    {:.3}", seg.total_reward());
    let comps = m.reward_components.len().max(1);
    for (i, name) in m.reward_components.iter().enumerate() {
        let sum: f32 = seg.rewards.iter().skip(i).step_by(comps).sum();
        if sum != 0.0 {
            println!("  {name:<11} {sum:+.3}");
        }
    }
    println!("start     {}", m.start.describe());
    if let Some(end) = seg.states.last() {
        println!("end       {}", end.describe());
    }
    let mut rooms: Vec<_> = seg.states.iter().map(|s| s.room).collect();
    rooms.sort();
    rooms.dedup();
    println!("rooms     {}", rooms.len());
    Ok(())
}

fn replay(args: ReplayArgs) -> Result<()> {
    let seg = load(&args.segment, &args.store.open()?)?;
    let rom = match &args.rom {
        Some(p) => std::fs::read(p).with_context(|| format!("reading ROM {}", p.display()))?,
        None => zelda::MINI_ZELDA.to_vec(),
    };
    let mut frames: Vec<Vec<u8>> = Vec::new();
    let report = episodes::replay(&seg, &rom, |_, frame| {
        if args.gif.is_some() {
            frames.push(frame.to_vec());
        }
    })?;
    println!(
        "replay of {} matches: {} steps, {} keyframes identical",
        seg.id(),
        report.steps,
        report.keyframes
    );
    if let Some(out) = &args.gif {
        write_gif(out, &frames)?;
        println!("wrote {} ({} frames)", out.display(), frames.len());
    }
    Ok(())
}

/// Writes frames of DMG shades as an animated GIF (100 ms per agent step), atomically.
fn write_gif(out: &std::path::Path, frames: &[Vec<u8>]) -> Result<()> {
    if frames.is_empty() {
        bail!("no frames to write");
    }
    let palette = [
        0xFF, 0xFF, 0xFF, 0xAA, 0xAA, 0xAA, 0x55, 0x55, 0x55, 0x00, 0x00, 0x00,
    ];
    let mut buf = Vec::new();
    {
        let mut enc = gif::Encoder::new(
            &mut buf,
            gameboy::WIDTH as u16,
            gameboy::HEIGHT as u16,
            &palette,
        )?;
        enc.set_repeat(gif::Repeat::Infinite)?;
        for f in frames {
            let mut frame = gif::Frame::from_indexed_pixels(
                gameboy::WIDTH as u16,
                gameboy::HEIGHT as u16,
                f.iter().map(|s| s & 3).collect::<Vec<u8>>(),
                None,
            );
            frame.delay = 10;
            enc.write_frame(&frame)?;
        }
    }
    crate::common::write_atomic(out, &buf)
}
