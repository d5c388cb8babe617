//! One end-to-end evaluator run, score and compare mode, against a real OpenAI-compatible
//! LLM server: llama-cpp-python with Gemma 3 270M (tests/llm/README.md). Two segments, one
//! with a dialog box and one in a dungeon, so every route and both compare tasks are asked.
//! The small text-only model judges poorly; what is checked is that every call goes over
//! the wire, grammar-constrained replies parse into the typed results, and the lines record
//! model, tokens, attempts and status.
//!
//! Needs `tests/requirements.txt` in `.venv` (scripts/test installs it):
//! `cargo test -p evaluator --test real_llm -- --ignored --nocapture`.

mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use episodes::Store;
use evaluator::{Metrics, Mode, Options, PreferenceLine, ScoreLine};
use judges::{ErrorKind, JudgeRecord, Judges, JudgesConfig, ResponseFormatStyle, Route, Status};
use llm_testserver::llama::{LlamaServer, MODEL_ALIAS, python};

fn check_record<T>(name: &str, r: &JudgeRecord<T>, ok: &mut usize, log: &str) {
    let ctx = || format!("{name}: {:?} {:?}\nserver log:\n{log}", r.status, r.error);
    assert_eq!(r.model, MODEL_ALIAS, "{}", ctx());
    assert!(r.attempts >= 1, "{}", ctx());
    let usage = r
        .usage
        .unwrap_or_else(|| panic!("usage is recorded: {}", ctx()));
    assert!(usage.completion_tokens > 0, "{}", ctx());
    match r.status {
        Status::Ok => *ok += 1,
        Status::Failed => {
            let e = r.error.as_ref().unwrap();
            // The wire must work; only the small model's content may miss the schema.
            assert_eq!(e.kind, ErrorKind::SchemaMismatch, "{}", ctx());
            assert_eq!(r.attempts, 2, "retried once: {}", ctx());
        }
    }
}

#[test]
#[ignore = "needs tests/requirements.txt in .venv; scripts/test runs it"]
fn evaluator_run_against_llama_cpp_gemma() {
    let t0 = Instant::now();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("real-llm");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let server = LlamaServer::start(&python(&root), &dir).unwrap_or_else(|e| panic!("{e}"));
    let ready = t0.elapsed();

    // llama-cpp-python: {"type":"json_object","schema":...}, no system role in Gemma's chat
    // format, no route prefixes.
    let mut cfg = JudgesConfig {
        response_format: ResponseFormatStyle::JsonObject,
        system_as_user: true,
        timeout_s: 600.0,
        max_retries: 1,
        ..JudgesConfig::default()
    };
    for r in Route::ALL {
        let rc = cfg.route_mut(r);
        rc.model = MODEL_ALIAS.into();
        rc.url = Some(server.url().to_string());
        rc.concurrency = 1;
        rc.max_tokens = 128;
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let store = Store::open("memory://").unwrap();
    rt.block_on(async {
        common::put(
            &store,
            &common::segment("llm", 0, 0, 0, 40, common::Kind::Eventful),
        )
        .await;
        common::put(
            &store,
            &common::segment("llm", 0, 1, 0, 40, common::Kind::Dungeon),
        )
        .await;
    });
    let judges = Judges::gateway("http://gateway.unused", cfg).unwrap();
    let mut opts = Options {
        run: "llm".into(),
        judges,
        mode: Mode::Score,
        concurrency: 1,
        out: "scores.jsonl".into(),
        retry_failed: false,
        seed: 0,
        progress: false,
    };
    let metrics = Metrics::new();
    let t = Instant::now();
    let scored = rt
        .block_on(evaluator::evaluate(&store, &opts, &metrics))
        .unwrap();
    let score_s = t.elapsed();
    opts.mode = Mode::Compare;
    opts.out = "preferences.jsonl".into();
    let t = Instant::now();
    let compared = rt
        .block_on(evaluator::evaluate(&store, &opts, &metrics))
        .unwrap();
    let compare_s = t.elapsed();

    let scores = rt.block_on(store.get("llm/scores/scores.jsonl")).unwrap();
    let prefs = rt
        .block_on(store.get("llm/scores/preferences.jsonl"))
        .unwrap();
    println!("server ready after {:.1} s", ready.as_secs_f64());
    println!("score run {:.1} s: {scored:?}", score_s.as_secs_f64());
    println!("{}", String::from_utf8_lossy(&scores));
    println!("compare run {:.1} s: {compared:?}", compare_s.as_secs_f64());
    println!("{}", String::from_utf8_lossy(&prefs));
    println!("total {:.1} s", t0.elapsed().as_secs_f64());

    let log = server.log_tail();
    let lines: Vec<ScoreLine> = std::str::from_utf8(&scores)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    let mut ok = 0;
    let mut asked = 0;
    for l in &lines {
        assert_eq!(l.evaluator.backend, judges::Backend::Gateway);
        let j = &l.judges;
        check_record("vision", j.vision.as_ref().unwrap(), &mut ok, &log);
        check_record("state", j.state.as_ref().unwrap(), &mut ok, &log);
        asked += 2;
        if let Some(p) = &j.puzzle {
            check_record("puzzle", p, &mut ok, &log);
            asked += 1;
        }
        if let Some(d) = &j.dialog {
            check_record("dialog", d, &mut ok, &log);
            asked += 1;
        }
    }
    assert!(
        lines[0].judges.dialog.is_some(),
        "the eventful segment asks /dialog"
    );
    assert!(
        lines[1].judges.puzzle.is_some(),
        "the dungeon segment asks /puzzle"
    );
    let pairs: Vec<PreferenceLine> = std::str::from_utf8(&prefs)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(pairs.len(), 1);
    check_record(
        "vision_compare",
        pairs[0].judges.vision_compare.as_ref().unwrap(),
        &mut ok,
        &log,
    );
    check_record(
        "state_compare",
        pairs[0].judges.state_compare.as_ref().unwrap(),
        &mut ok,
        &log,
    );
    asked += 2;
    assert_eq!(asked, 8);
    // The schema becomes a grammar on this server, so most replies parse; the vision calls
    // reach this text-only model without their text.
    assert!(
        ok >= 4,
        "only {ok} of {asked} judge calls returned a schema-valid reply"
    );
    let m = metrics.encode();
    assert!(
        m.contains("zelda_rl_judge_request_duration_seconds_count{route=\"puzzle\"} 1"),
        "{m}"
    );
}
