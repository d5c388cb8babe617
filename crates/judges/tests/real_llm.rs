//! The judge client end to end against a real OpenAI-compatible LLM server:
//! llama-cpp-python's server with Gemma 3 270M (tests/llm/README.md says where both come
//! from). The model is small and text-only, so its judgments are poor and images are
//! ignored; what this checks is the wire format, grammar-constrained JSON replies parsed
//! into typed results, and what gets recorded (model, usage, attempts, status).
//!
//! Needs `tests/requirements.txt` installed in `.venv` (scripts/test does it), so it is
//! ignored by a plain `cargo test`; run it with
//! `cargo test -p judges --test real_llm -- --ignored --nocapture`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use judges::fixtures::{dungeon, eventful, png};
use judges::{
    Backend, ErrorKind, Judges, JudgesConfig, Keyframe, ResponseFormatStyle, Route, SegmentInput,
    Task,
};
use llm_testserver::llama::{LlamaServer, MODEL_ALIAS, python};
use serde_json::Value;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
#[ignore = "needs tests/requirements.txt in .venv; scripts/test runs it"]
fn every_route_against_llama_cpp_gemma() {
    let t0 = Instant::now();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("real-llm");
    std::fs::create_dir_all(&dir).unwrap();
    let server = LlamaServer::start(&python(&repo_root()), &dir).unwrap_or_else(|e| panic!("{e}"));
    let url = server.url().to_string();
    let ready = t0.elapsed();

    // llama-cpp-python takes {"type":"json_object","schema":...} and turns the schema into a
    // grammar; Gemma's chat format has no system role; this server has no route prefixes.
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
        rc.url = Some(url.clone());
        rc.concurrency = 1;
        // The replies are 20 to 80 tokens; a runaway string fails sooner.
        rc.max_tokens = 128;
    }
    let judges = Judges::gateway("http://gateway.unused", cfg).unwrap();

    let frames: Vec<Vec<u8>> = (0..4).map(|i| png(160, 144, i)).collect();
    let keys: Vec<Keyframe<'_>> = frames
        .iter()
        .enumerate()
        .map(|(i, p)| Keyframe {
            step: 8 * i as u64,
            png: p,
        })
        .collect();
    let (busy, dun) = (eventful(32, 0), dungeon(24));
    let a = SegmentInput {
        id: "w0-e0/0",
        first_step: 0,
        states: &busy,
        keyframes: &keys,
    };
    let b = SegmentInput {
        id: "w0-e1/0",
        first_step: 0,
        states: &dun,
        keyframes: &keys,
    };

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let records: Vec<(Task, Value, std::time::Duration)> = rt.block_on(async {
        let mut out = Vec::new();
        macro_rules! call {
            ($task:expr, $fut:expr) => {{
                let t = Instant::now();
                let r = $fut.await;
                out.push(($task, serde_json::to_value(&r).unwrap(), t.elapsed()));
            }};
        }
        call!(Task::State, judges.state(&a));
        call!(Task::Puzzle, judges.puzzle(&b));
        call!(Task::Dialog, judges.dialog(&a));
        call!(Task::Vision, judges.vision(&a));
        call!(
            Task::StateCompare,
            judges.compare(Task::StateCompare, &a, &b)
        );
        call!(
            Task::VisionCompare,
            judges.compare(Task::VisionCompare, &a, &b)
        );
        out
    });

    let jsonl: String = records.iter().map(|(_, v, _)| format!("{v}\n")).collect();
    std::fs::write(dir.join("records.jsonl"), &jsonl).unwrap();
    println!(
        "server ready after {:.1} s; records in {}",
        ready.as_secs_f64(),
        dir.join("records.jsonl").display()
    );
    for (task, v, took) in &records {
        println!("{:<15} {:>6.1} s  {v}", task.name(), took.as_secs_f64());
    }
    println!("total {:.1} s", t0.elapsed().as_secs_f64());

    let mut ok = 0;
    for (task, v, _) in &records {
        let ctx = format!("{}: {v}\nserver log:\n{}", task.name(), server.log_tail());
        assert_eq!(
            v["backend"],
            serde_json::to_value(Backend::Gateway).unwrap(),
            "{ctx}"
        );
        assert_eq!(v["model"], MODEL_ALIAS, "{ctx}");
        assert!(v["attempts"].as_u64().unwrap() >= 1, "{ctx}");
        let usage = &v["usage"];
        assert!(
            usage["completion_tokens"].as_u64().unwrap_or(0) > 0,
            "usage is recorded: {ctx}"
        );
        if !task.uses_images() {
            // The folded system prompt and rubric alone are several hundred tokens.
            assert!(
                usage["prompt_tokens"].as_u64().unwrap_or(0) > 300,
                "the prompt arrived: {ctx}"
            );
        }
        if v["status"] == "ok" {
            ok += 1;
            assert!(v["result"].is_object(), "{ctx}");
        } else {
            // Transport and wire format must work; only the small model's content may miss.
            let kind: ErrorKind = serde_json::from_value(v["error"]["kind"].clone()).unwrap();
            assert_eq!(kind, ErrorKind::SchemaMismatch, "{ctx}");
            assert_eq!(
                v["attempts"], 2,
                "a reply off the schema is retried once: {ctx}"
            );
        }
    }
    // The schema becomes a grammar on this server, so most replies parse; the vision calls
    // reach this text-only model without their text (its chat format drops content parts).
    assert!(
        ok >= 3,
        "only {ok} of 6 judge calls returned a schema-valid reply:\n{jsonl}"
    );
}
