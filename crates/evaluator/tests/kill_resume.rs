//! Kill the evaluator (SIGKILL, as an OOM kill or a node loss would) at seeded moments while
//! it judges a run against the test server, rerun it each time, and check that the run
//! ends with exactly one line per segment: 0 lost, 0 duplicated.
//!
//! The evaluator runs in a child process: this test binary itself, started on the ignored
//! `child_evaluator` test with the job in an environment variable.

mod common;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use episodes::Store;
use evaluator::{LineStatus, Metrics, Mode, Options, ScoreLine};
use judges::{Judges, JudgesConfig};
use llm_testserver::{ServerConfig, TestServer};

const CHILD_ENV: &str = "ZELDA_RL_EVALUATOR_TEST_CHILD";
const RUN: &str = "kill-run";
const SEGMENTS: u32 = 96;

#[test]
#[ignore = "child process of kill_and_resume_loses_and_duplicates_nothing"]
fn child_evaluator() {
    // Started by hand without the job: nothing to do.
    let Ok(job) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (store_url, gateway) = job.split_once('|').expect("job is STORE|GATEWAY");
    let store = Store::open(store_url).unwrap();
    let cfg = JudgesConfig {
        timeout_s: 10.0,
        backoff_base_s: 0.01,
        backoff_max_s: 0.05,
        ..JudgesConfig::default()
    };
    let opts = Options {
        run: RUN.into(),
        judges: Judges::gateway(gateway, cfg).unwrap(),
        mode: Mode::Score,
        concurrency: 2,
        out: "scores.jsonl".into(),
        retry_failed: false,
        seed: 0,
        progress: false,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let summary = rt
        .block_on(evaluator::evaluate(&store, &opts, &Metrics::new()))
        .unwrap();
    println!("CHILD-SUMMARY {}", serde_json::to_string(&summary).unwrap());
}

fn child(store_url: &str, gateway: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "child_evaluator",
        "--ignored",
        "--nocapture",
        "--test-threads",
        "1",
    ])
    .env(CHILD_ENV, format!("{store_url}|{gateway}"))
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    cmd
}

/// The output file, if there is one: it must always be whole, with unique segments.
fn check_output(rt: &tokio::runtime::Runtime, store: &Store) -> Option<Vec<ScoreLine>> {
    let bytes = rt
        .block_on(store.get_opt(&format!("{RUN}/scores/scores.jsonl")))
        .unwrap()?;
    let text = std::str::from_utf8(&bytes).expect("UTF-8");
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "the output is never cut short"
    );
    let lines: Vec<ScoreLine> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("torn line ({e}): {l}")))
        .collect();
    let unique: BTreeSet<&str> = lines.iter().map(|l| l.segment.key.as_str()).collect();
    assert_eq!(unique.len(), lines.len(), "a segment has two lines");
    Some(lines)
}

fn parts(rt: &tokio::runtime::Runtime, store: &Store) -> usize {
    rt.block_on(store.list(&format!("{RUN}/scores/scores.jsonl.parts/")))
        .unwrap()
        .len()
}

#[test]
fn kill_and_resume_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store_url = format!("file://{}", dir.path().display());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let store = Store::open(&store_url).unwrap();
    let keys = rt.block_on(common::populate(&store, RUN, SEGMENTS, 32));
    let server = rt
        .block_on(TestServer::start(ServerConfig {
            delay: Duration::from_millis(50),
            record: false,
            ..ServerConfig::default()
        }))
        .unwrap();

    // Seeded kill times (xorshift), 120 to 420 ms after each start; a whole run takes
    // about 96 segments / 2 at a time x 50 ms = 2.4 s.
    let mut x: u32 = 0x2545_F491;
    let mut interrupted = 0;
    let mut progress = Vec::new();
    for _ in 0..6 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let after = Duration::from_millis(120 + u64::from(x % 300));
        let mut proc = child(&store_url, &server.base_url()).spawn().unwrap();
        std::thread::sleep(after);
        let finished_already = proc.try_wait().unwrap().is_some();
        proc.kill().ok();
        proc.wait().unwrap();
        let n = parts(&rt, &store);
        if !finished_already && n < SEGMENTS as usize {
            interrupted += 1;
        }
        progress.push(n);
        check_output(&rt, &store);
    }
    assert!(
        interrupted >= 3,
        "the kills must land mid-run to test anything: parts after each {progress:?}"
    );
    assert!(
        progress.windows(2).all(|w| w[0] <= w[1]),
        "written lines are never lost: {progress:?}"
    );

    let t = Instant::now();
    let out = child(&store_url, &server.base_url()).output().unwrap();
    assert!(out.status.success(), "the final run completes");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("CHILD-SUMMARY"), "{stdout}");
    assert!(t.elapsed() < Duration::from_secs(120));

    let lines = check_output(&rt, &store).expect("the output exists");
    let got: Vec<&str> = lines.iter().map(|l| l.segment.key.as_str()).collect();
    let want: Vec<&str> = keys.iter().map(String::as_str).collect();
    assert_eq!(got, want, "exactly one line per segment, in segment order");
    assert!(
        lines.iter().all(|l| l.status == LineStatus::Ok),
        "no judge failed"
    );
    assert_eq!(parts(&rt, &store), SEGMENTS as usize);
    println!(
        "parts after each kill: {progress:?}; server saw {} requests",
        server.request_count()
    );
}
