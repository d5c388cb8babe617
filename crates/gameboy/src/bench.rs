//! Speed measurement shared by `zelda-rl emu bench` and `cargo xtask bench emu`, so both
//! time exactly the same work.

use std::time::Instant;

use crate::{Buttons, GameBoy, OBS_HEIGHT, OBS_WIDTH};

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// `run_frames(frames, false)`: raw emulation, no pixels.
    NoRender,
    /// RL steps: new buttons, `step_frames` frames with the last one rendered, and the
    /// 72x80 observation copied out.
    Step,
    /// Every frame rendered, no observation.
    RenderEvery,
}

/// Benchmark parameters.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Workload.
    pub workload: Workload,
    /// Frames per measured round (rounded up to whole steps).
    pub frames: u64,
    /// Frames per RL step.
    pub step_frames: u32,
    /// Frames run before measuring.
    pub warmup: u32,
    /// Measured rounds; the best counts.
    pub rounds: u32,
    /// save_state + load_state pairs to time after the rounds (0 = none).
    pub state_iterations: u32,
}

/// One measured round.
#[derive(Debug, Clone, Copy)]
pub struct Round {
    /// Wall-clock seconds.
    pub wall: f64,
    /// CPU seconds of this thread (Linux), if known.
    pub cpu: Option<f64>,
}

/// Results.
#[derive(Debug, Clone)]
pub struct Report {
    /// Frames per round.
    pub frames: u64,
    /// Steps per round.
    pub steps: u64,
    /// Every round.
    pub rounds: Vec<Round>,
    /// State size in bytes and best save / load seconds, if measured.
    pub state: Option<(usize, f64, f64)>,
}

impl Report {
    /// Best wall-clock seconds of a round.
    pub fn best_wall(&self) -> f64 {
        self.rounds
            .iter()
            .map(|r| r.wall)
            .fold(f64::INFINITY, f64::min)
    }

    /// Best CPU seconds of a round, if known.
    pub fn best_cpu(&self) -> Option<f64> {
        let b = self
            .rounds
            .iter()
            .filter_map(|r| r.cpu)
            .fold(f64::INFINITY, f64::min);
        b.is_finite().then_some(b)
    }
}

/// CPU time this thread has run, from `/proc/thread-self/schedstat` (nanoseconds).
pub fn thread_cpu_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e9)
}

/// Runs the benchmark on `gb`.
pub fn run(gb: &mut GameBoy, cfg: &Config) -> Report {
    let k = cfg.step_frames.max(1);
    gb.run_frames(cfg.warmup, false);
    let steps = cfg.frames.div_ceil(k as u64).max(1);
    let frames = steps * k as u64;
    let mut obs = [0u8; OBS_HEIGHT * OBS_WIDTH];
    let mut rounds = Vec::new();
    for _ in 0..cfg.rounds.max(1) {
        let cpu0 = thread_cpu_seconds();
        let start = Instant::now();
        match cfg.workload {
            Workload::NoRender => gb.run_frames(frames as u32, false),
            Workload::Step => {
                for i in 0..steps {
                    gb.set_buttons(Buttons(1 << (i % 8)));
                    gb.run_frames(k, true);
                    gb.observation(&mut obs);
                    std::hint::black_box(&obs);
                }
            }
            Workload::RenderEvery => {
                for _ in 0..frames {
                    gb.run_frame(true);
                }
            }
        }
        let wall = start.elapsed().as_secs_f64();
        let cpu = match (cpu0, thread_cpu_seconds()) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        };
        rounds.push(Round { wall, cpu });
    }
    let mut state = None;
    if cfg.state_iterations > 0 {
        let (mut save_best, mut load_best, mut size) = (f64::INFINITY, f64::INFINITY, 0);
        for _ in 0..cfg.state_iterations {
            let t = Instant::now();
            let s = gb.save_state();
            save_best = save_best.min(t.elapsed().as_secs_f64());
            size = s.len();
            let t = Instant::now();
            gb.load_state(&s).expect("a state just saved loads");
            load_best = load_best.min(t.elapsed().as_secs_f64());
            std::hint::black_box(&s);
        }
        state = Some((size, save_best, load_best));
    }
    Report {
        frames,
        steps,
        rounds,
        state,
    }
}
