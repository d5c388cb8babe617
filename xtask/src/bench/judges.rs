//! `cargo xtask bench judges`: the judge client against `llm-testserver` (a separate process)
//! with a fixed reply time, at a fixed concurrency.
//!
//! The anchor is the server-limited throughput, concurrency / reply time (64 / 50 ms =
//! 1280 calls/s): a client with no overhead of its own reaches it exactly. The target is at
//! least 95% of it. A second anchor, measured in the same run, is a bare reqwest loop that
//! posts one pre-encoded body and reads the reply without parsing it: what this machine
//! allows before any judge work. Client CPU per call comes from getrusage on this process
//! (the server's CPU is not in it). The shared-prefix share per task is printed too.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use judges::prefix;
use judges::{Judges, JudgesConfig, Keyframe, Route, SegmentInput, Status, Task};
use zelda::GameState;

/// Options of `cargo xtask bench judges`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Calls in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Fixed reply time of the test server, milliseconds.
    #[arg(long, default_value_t = 50)]
    delay_ms: u64,
    /// Measured calls per variant (after a warm-up).
    #[arg(long, default_value_t = 6400)]
    calls: u64,
    /// Worker threads of the client's runtime.
    #[arg(long, default_value_t = 2)]
    client_threads: usize,
    /// Worker threads of the server process.
    #[arg(long, default_value_t = 1)]
    server_threads: usize,
}

/// The server process; killed when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn build_server() -> anyhow::Result<std::path::PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(crate::repo_root())
        .args([
            "build",
            "--release",
            "-p",
            "llm-testserver",
            "--bin",
            "llm-testserver",
        ])
        .args(["--message-format", "json-render-diagnostics"])
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo build -p llm-testserver")?;
    if !out.status.success() {
        bail!("cargo build -p llm-testserver failed");
    }
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] == "compiler-artifact"
            && msg["target"]["name"] == "llm-testserver"
            && let Some(exe) = msg["executable"].as_str()
        {
            return Ok(exe.into());
        }
    }
    bail!("cargo did not report the llm-testserver executable")
}

fn start_server(exe: &std::path::Path, args: &Args) -> anyhow::Result<Server> {
    let mut child = Command::new(exe)
        .args(["--delay-ms", &args.delay_ms.to_string()])
        .args(["--threads", &args.server_threads.to_string()])
        .arg("--exit-on-stdin-eof")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", exe.display()))?;
    let stdout = child.stdout.take().context("server stdout")?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .context("reading the server's address")?;
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .with_context(|| format!("unexpected first line from the server: {line:?}"))?
        .to_string();
    Ok(Server { child, url })
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    if rc != 0 {
        return f64::NAN;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// A Game Boy-like 160x144 frame (2-bit greys, 8x8 tiles), PNG-compressed like real keyframes.
fn keyframe_png(seed: u32) -> Vec<u8> {
    let mut pixels = vec![0u8; 160 * 144];
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    let tiles: Vec<[u8; 64]> = (0..16)
        .map(|_| {
            std::array::from_fn(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                [0xFF, 0xAA, 0x55, 0x00][(x % 4) as usize]
            })
        })
        .collect();
    for ty in 0..18 {
        for tx in 0..20 {
            let tile =
                &tiles[((tx * 7 + ty * 3 + seed as usize) % 16) / if ty > 12 { 4 } else { 1 }];
            for py in 0..8 {
                for px in 0..8 {
                    pixels[(ty * 8 + py) * 160 + tx * 8 + px] = tile[py * 8 + px];
                }
            }
        }
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, 160, 144);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().expect("PNG header");
        w.write_image_data(&pixels).expect("PNG data");
    }
    out
}

struct Fixture {
    ids: Vec<String>,
    states: Vec<Vec<GameState>>,
    frames: Vec<Vec<u8>>,
}

impl Fixture {
    fn new(n: usize) -> Self {
        Self {
            ids: (0..n)
                .map(|i| format!("w{}-e{}/{}", i % 8, i % 4, i))
                .collect(),
            states: (0..n)
                .map(|i| judges::fixtures::eventful(64 + i % 64, i as u8))
                .collect(),
            frames: (0..8).map(keyframe_png).collect(),
        }
    }

    fn keyframes(&self) -> Vec<Keyframe<'_>> {
        self.frames
            .iter()
            .enumerate()
            .map(|(i, p)| Keyframe {
                step: 16 * i as u64,
                png: p,
            })
            .collect()
    }
}

struct Measured {
    calls: u64,
    failed: u64,
    wall: Duration,
    cpu_s: f64,
}

impl Measured {
    fn per_s(&self) -> f64 {
        self.calls as f64 / self.wall.as_secs_f64()
    }
}

async fn judge_loop(
    judges: &Judges,
    fx: &Arc<Fixture>,
    task: Task,
    calls: u64,
    concurrency: usize,
) -> Measured {
    let next = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    // One tokio task per worker, so the client's work spreads over every runtime thread.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (judges, fx, next, failed) = (judges.clone(), fx.clone(), next.clone(), failed.clone());
        tasks.spawn(async move {
            let keys = fx.keyframes();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= calls {
                    break;
                }
                let k = i as usize % fx.ids.len();
                let input = SegmentInput {
                    id: &fx.ids[k],
                    first_step: i * 64,
                    states: &fx.states[k],
                    keyframes: &keys,
                };
                let ok = match task {
                    Task::Vision => judges.vision(&input).await.status == Status::Ok,
                    _ => judges.state(&input).await.status == Status::Ok,
                };
                if !ok {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    Measured {
        calls,
        failed: failed.load(Ordering::Relaxed),
        wall: t0.elapsed(),
        cpu_s: cpu_seconds() - cpu0,
    }
}

async fn raw_loop(
    url: &str,
    body: bytes::Bytes,
    calls: u64,
    concurrency: usize,
) -> anyhow::Result<Measured> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .tcp_nodelay(true)
        .build()?;
    let next = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (http, url, body, next, failed) = (
            http.clone(),
            url.to_string(),
            body.clone(),
            next.clone(),
            failed.clone(),
        );
        tasks.spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < calls {
                let ok = match http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if !ok {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    Ok(Measured {
        calls,
        failed: failed.load(Ordering::Relaxed),
        wall: t0.elapsed(),
        cpu_s: cpu_seconds() - cpu0,
    })
}

fn report(name: &str, m: &Measured, anchor: f64) {
    println!(
        "  {name:<34} {:>8.1} calls/s  ratio {:>5.3}  client CPU {:>6.1} µs/call  failed {}  ({} calls in {:.2} s)",
        m.per_s(),
        m.per_s() / anchor,
        m.cpu_s / m.calls as f64 * 1e6,
        m.failed,
        m.calls,
        m.wall.as_secs_f64()
    );
}

fn prefix_table(cfg: &JudgesConfig, fx: &Fixture) -> anyhow::Result<()> {
    let judges = Judges::gateway("http://127.0.0.1:9", cfg.clone())?;
    let Judges::Gateway(gw) = &judges else {
        unreachable!("a gateway was built")
    };
    let keys = fx.keyframes();
    let inputs: Vec<SegmentInput<'_>> = (0..fx.ids.len())
        .map(|i| SegmentInput {
            id: &fx.ids[i],
            first_step: i as u64 * 64,
            states: &fx.states[i],
            keyframes: &keys,
        })
        .collect();
    println!(
        "shared prompt prefix per task ({} synthetic segments each; bytes of prompt text, and",
        inputs.len()
    );
    println!("estimated tokens = text bytes / 4 + Qwen2.5-VL image tokens):");
    for task in Task::ALL {
        let reqs = inputs
            .iter()
            .enumerate()
            .map(|(i, a)| {
                if task.is_compare() {
                    gw.compare_messages(task, a, &inputs[(i + 1) % inputs.len()])
                } else {
                    gw.messages(task, a)
                }
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(anyhow::Error::msg)?;
        let p = prefix::measure(task, &reqs);
        println!(
            "  /{:<7} {:<15} shared {:>5} of {:>7.0} bytes = {:>5.1}%   ~{:>6.0} tokens/request, shared {:>5.1}%",
            task.route().name(),
            task.name(),
            p.shared_bytes,
            p.mean_bytes,
            100.0 * p.byte_share,
            p.mean_tokens,
            100.0 * p.token_share
        );
    }
    Ok(())
}

/// Runs the benchmark.
pub fn run(args: &Args) -> anyhow::Result<()> {
    if args.concurrency == 0 || args.delay_ms == 0 || args.calls == 0 {
        bail!("--concurrency, --delay-ms and --calls must be above 0");
    }
    let exe = build_server()?;
    let server = start_server(&exe, args)?;
    let anchor = args.concurrency as f64 / (args.delay_ms as f64 / 1000.0);

    let mut cfg = JudgesConfig::default();
    for r in Route::ALL {
        cfg.route_mut(r).concurrency = args.concurrency;
    }
    cfg.timeout_s = 30.0;
    let fx = Arc::new(Fixture::new(64));
    prefix_table(&cfg, &fx)?;

    let judges = Judges::gateway(&server.url, cfg.clone())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads.max(1))
        .enable_all()
        .build()?;
    let raw_body = {
        let Judges::Gateway(gw) = &judges else {
            unreachable!("a gateway was built")
        };
        let keys = fx.keyframes();
        let input = SegmentInput {
            id: &fx.ids[0],
            first_step: 0,
            states: &fx.states[0],
            keyframes: &keys,
        };
        let msgs = gw
            .messages(Task::Vision, &input)
            .map_err(anyhow::Error::msg)?;
        let body = serde_json::json!({
            "model": cfg.routes.vision.model, "messages": msgs, "temperature": 0.0, "seed": 0,
            "max_tokens": cfg.routes.vision.max_tokens, "stream": false,
        });
        bytes::Bytes::from(serde_json::to_vec(&body)?)
    };
    println!();
    println!(
        "judge client vs llm-testserver: concurrency {}, reply time {} ms, {} calls per variant,",
        args.concurrency, args.delay_ms, args.calls
    );
    println!(
        "client runtime {} threads, server {} thread(s); vision requests carry 4 keyframes ({} bytes of PNG each on average)",
        args.client_threads,
        args.server_threads,
        fx.frames.iter().map(Vec::len).sum::<usize>() / fx.frames.len()
    );
    println!(
        "anchor: server-limited throughput {} / {} s = {anchor:.0} calls/s",
        args.concurrency,
        args.delay_ms as f64 / 1000.0
    );
    let vision_url = format!("{}/vision/v1/chat/completions", server.url);
    let (raw, vision, state) = rt.block_on(async {
        // Warm-up: open every connection and fault in every code path once.
        let _ = judge_loop(
            &judges,
            &fx,
            Task::Vision,
            2 * args.concurrency as u64,
            args.concurrency,
        )
        .await;
        let _ = judge_loop(
            &judges,
            &fx,
            Task::State,
            2 * args.concurrency as u64,
            args.concurrency,
        )
        .await;
        let raw = raw_loop(&vision_url, raw_body, args.calls, args.concurrency).await?;
        let vision = judge_loop(&judges, &fx, Task::Vision, args.calls, args.concurrency).await;
        let state = judge_loop(&judges, &fx, Task::State, args.calls, args.concurrency).await;
        anyhow::Ok((raw, vision, state))
    })?;
    report("bare reqwest loop (second anchor)", &raw, anchor);
    report("judges /vision (4 keyframes)", &vision, anchor);
    report("judges /state", &state, anchor);
    println!(
        "judges /vision vs bare reqwest loop: {:.3}; target: judges /vision >= 0.95 of {anchor:.0} calls/s: {}",
        vision.per_s() / raw.per_s(),
        if vision.per_s() / anchor >= 0.95 {
            "met"
        } else {
            "NOT met"
        }
    );
    if let Some(stdin) = server.child.stdin.as_ref() {
        let _ = (&*stdin).flush();
    }
    drop(server);
    if vision.failed + state.failed + raw.failed > 0 {
        bail!("{} calls failed", vision.failed + state.failed + raw.failed);
    }
    Ok(())
}
