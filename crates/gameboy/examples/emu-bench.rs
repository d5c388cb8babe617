//! Benchmark runner for `cargo xtask bench emu` (built in the `bench` profile, so it does
//! not wait for the whole CLI). Prints one JSON object.
//!
//! Usage: emu-bench ROM no-render|step|render-every FRAMES STEP_FRAMES ROUNDS STATE_ITERATIONS

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 7 {
        eprintln!(
            "usage: emu-bench ROM no-render|step|render-every FRAMES STEP_FRAMES ROUNDS STATE_ITERATIONS"
        );
        std::process::exit(2);
    }
    let rom = std::fs::read(&args[1]).unwrap_or_else(|e| panic!("{}: {e}", args[1]));
    let workload = match args[2].as_str() {
        "no-render" => gameboy::bench::Workload::NoRender,
        "step" => gameboy::bench::Workload::Step,
        "render-every" => gameboy::bench::Workload::RenderEvery,
        other => panic!("unknown workload {other}"),
    };
    let num = |i: usize| -> u64 {
        args[i]
            .parse()
            .unwrap_or_else(|_| panic!("bad number {}", args[i]))
    };
    let cfg = gameboy::bench::Config {
        workload,
        frames: num(3),
        step_frames: num(4) as u32,
        warmup: 600,
        rounds: num(5) as u32,
        state_iterations: num(6) as u32,
    };
    let mut gb = gameboy::GameBoy::new(rom).unwrap_or_else(|e| panic!("{}: {e}", args[1]));
    let r = gameboy::bench::run(&mut gb, &cfg);
    let v = serde_json::json!({
        "frames": r.frames,
        "steps": r.steps,
        "wall_seconds": r.best_wall(),
        "cpu_seconds": r.best_cpu(),
        "state_bytes": r.state.map(|s| s.0),
        "save_seconds": r.state.map(|s| s.1),
        "load_seconds": r.state.map(|s| s.2),
    });
    println!("{v}");
}
