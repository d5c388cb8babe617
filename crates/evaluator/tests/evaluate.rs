//! The evaluator end to end on a store: offline and against the test server (faults,
//! metrics), compare mode, corrupt segments, reruns.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use episodes::Store;
use evaluator::{LineStatus, Metrics, Mode, Options, PreferenceLine, ScoreLine};
use judges::{Backend, ErrorKind, Judges, JudgesConfig, Route, Status};
use llm_testserver::{Fault, ServerConfig, TestServer};

fn options(run: &str, judges: Judges) -> Options {
    Options {
        run: run.into(),
        judges,
        mode: Mode::Score,
        concurrency: 4,
        out: "scores.jsonl".into(),
        retry_failed: false,
        seed: 0,
        progress: false,
    }
}

fn fast_config() -> JudgesConfig {
    JudgesConfig {
        timeout_s: 5.0,
        backoff_base_s: 0.01,
        backoff_max_s: 0.02,
        max_retries: 2,
        ..JudgesConfig::default()
    }
}

async fn read_lines<T: serde::de::DeserializeOwned>(store: &Store, key: &str) -> (Bytes, Vec<T>) {
    let bytes = store.get(key).await.expect("output exists");
    let text = std::str::from_utf8(&bytes).unwrap();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "every line ends with a newline"
    );
    let lines = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (bytes, lines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_run_scores_every_segment_once_and_reruns_are_no_ops() {
    let store = Store::open("memory://").unwrap();
    let keys = common::populate(&store, "r1", 9, 48).await;
    store
        .put_new(
            "r1/segments/009-000/00000000.seg",
            Bytes::from_static(b"not a segment"),
        )
        .await
        .unwrap();
    // Objects that are not segments are not judged.
    store
        .put_new("r1/segments/README.txt", Bytes::from_static(b"hello"))
        .await
        .unwrap();
    let metrics = Metrics::new();
    let s = evaluator::evaluate(&store, &options("r1", Judges::offline()), &metrics)
        .await
        .unwrap();
    assert_eq!(
        (s.items, s.judged, s.skipped, s.invalid, s.ok, s.lines),
        (10, 10, 0, 1, 9, 10),
        "{s:?}"
    );
    assert_eq!(s.out_key, "r1/scores/scores.jsonl");

    let (bytes, lines) = read_lines::<ScoreLine>(&store, &s.out_key).await;
    let segs: Vec<&str> = lines.iter().map(|l| l.segment.key.as_str()).collect();
    let mut sorted = segs.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(segs, sorted, "one line per segment, sorted");
    for l in &lines {
        assert_eq!((l.schema.as_str(), l.version), ("zelda-rl-scores", 1));
        assert_eq!(l.evaluator.backend, Backend::Offline);
        if l.status == LineStatus::InvalidSegment {
            assert_eq!(l.segment.key, "r1/segments/009-000/00000000.seg");
            let err = l.error.as_deref().unwrap();
            assert!(
                err.contains("009-000/00000000.seg") && err.contains("zstd"),
                "{err}"
            );
            assert_eq!((l.segment.worker, l.segment.env), (9, 0));
            continue;
        }
        assert!(keys.contains(&l.segment.key));
        let v = l.judges.vision.as_ref().unwrap();
        assert_eq!(v.model, "offline-heuristic-v1");
        assert!(l.combined.is_some());
        let steps = l.segment.steps.unwrap();
        assert_eq!(steps.last - steps.first + 1, 48);
    }
    let dungeon = lines
        .iter()
        .find(|l| l.segment.worker == 0 && l.segment.env == 1)
        .unwrap();
    assert!(
        dungeon
            .judges
            .puzzle
            .as_ref()
            .unwrap()
            .ok()
            .unwrap()
            .puzzle_advanced
    );
    assert!(dungeon.judges.dialog.is_none());
    let busy = lines
        .iter()
        .find(|l| l.segment.worker == 0 && l.segment.env == 0)
        .unwrap();
    assert!(busy.judges.dialog.is_some() && busy.judges.puzzle.is_none());
    assert!(
        metrics
            .encode()
            .contains("zelda_rl_evaluator_segments_total{outcome=\"invalid_segment\"} 1")
    );

    let again = evaluator::evaluate(&store, &options("r1", Judges::offline()), &Metrics::new())
        .await
        .unwrap();
    assert_eq!(
        (again.skipped, again.judged, again.lines),
        (10, 0, 10),
        "{again:?}"
    );
    let (bytes2, _) = read_lines::<ScoreLine>(&store, &s.out_key).await;
    assert_eq!(
        bytes, bytes2,
        "a rerun leaves the output byte for byte the same"
    );

    // A new segment is picked up by the next run; the others keep their lines.
    common::put(
        &store,
        &common::segment("r1", 7, 7, 0, 48, common::Kind::Idle),
    )
    .await;
    let more = evaluator::evaluate(&store, &options("r1", Judges::offline()), &Metrics::new())
        .await
        .unwrap();
    assert_eq!(
        (more.skipped, more.judged, more.lines),
        (10, 1, 11),
        "{more:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_run_records_judge_failures_and_exports_metrics() {
    let cfg = fast_config();
    let models: Vec<String> = Route::ALL
        .iter()
        .map(|r| cfg.route(*r).model.clone())
        .collect();
    let srv = TestServer::start(ServerConfig {
        models,
        ..ServerConfig::default()
    })
    .await
    .unwrap();
    let store = Store::open("memory://").unwrap();
    common::populate(&store, "r2", 6, 32).await;
    // Two vision calls get a non-retryable 400; one state call a reply off the schema twice.
    srv.push_faults(Some("vision"), [Fault::Status(400), Fault::Status(400)]);
    srv.push_faults(
        Some("state"),
        [Fault::SchemaViolation, Fault::NotJsonContent],
    );
    let metrics = Metrics::new();
    let (addr, _server) = metrics.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let mut opts = options("r2", Judges::gateway(&srv.base_url(), cfg).unwrap());
    opts.concurrency = 1;
    let s = evaluator::evaluate(&store, &opts, &metrics).await.unwrap();
    assert_eq!((s.judged, s.lines), (6, 6), "{s:?}");
    // Segments go one at a time: the first has its vision and state calls fail, the second
    // its vision call.
    assert_eq!((s.partial, s.ok), (2, 4), "{s:?}");

    let (_, lines) = read_lines::<ScoreLine>(&store, &s.out_key).await;
    let vision_errors: Vec<_> = lines
        .iter()
        .filter_map(|l| l.judges.vision.as_ref()?.error.as_ref())
        .collect();
    assert_eq!(vision_errors.len(), 2);
    assert!(
        vision_errors
            .iter()
            .all(|e| e.kind == ErrorKind::ClientError && e.status == Some(400))
    );
    let state_errors: Vec<_> = lines
        .iter()
        .filter_map(|l| l.judges.state.as_ref()?.error.as_ref())
        .collect();
    assert_eq!(state_errors.len(), 1);
    assert_eq!(state_errors[0].kind, ErrorKind::SchemaMismatch);
    for l in &lines {
        assert_eq!(l.evaluator.backend, Backend::Gateway);
        assert_eq!(
            l.evaluator.gateway.as_deref(),
            Some(srv.base_url().as_str())
        );
        let v = l.judges.vision.as_ref().unwrap();
        assert_eq!(v.model, "Qwen/Qwen2.5-VL-32B-Instruct");
        if v.status == Status::Ok {
            assert!(v.usage.unwrap().prompt_tokens > 0);
        }
    }
    assert_eq!(lines[0].status, LineStatus::Partial);
    assert!(
        lines[0].combined.is_none(),
        "neither progress judge answered"
    );
    assert_eq!(lines[1].status, LineStatus::Partial);
    let combined = lines[1]
        .combined
        .as_ref()
        .expect("the judges that answered still combine");
    assert_eq!(combined.from, ["state", "puzzle"]);

    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let vision_calls = 6;
    assert!(
        text.contains(&format!(
            "zelda_rl_judge_request_duration_seconds_count{{route=\"vision\"}} {vision_calls}"
        )),
        "{text}"
    );
    assert!(
        text.contains("zelda_rl_judge_errors_total{route=\"vision\",kind=\"client_error\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("zelda_rl_judge_errors_total{route=\"state\",kind=\"schema_mismatch\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("zelda_rl_judge_errors_total{route=\"dialog\",kind=\"timeout\"} 0"),
        "{text}"
    );
    assert!(
        text.contains("zelda_rl_evaluator_segments_total{outcome=\"partial\"} 2"),
        "{text}"
    );
    assert!(text.contains("zelda_rl_evaluator_pending 0"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_gateway_is_recorded_and_retry_failed_fixes_it() {
    let store = Store::open("memory://").unwrap();
    common::populate(&store, "r3", 5, 32).await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let cfg = JudgesConfig {
        max_retries: 1,
        ..fast_config()
    };
    let opts = options(
        "r3",
        Judges::gateway(&format!("http://{closed}"), cfg.clone()).unwrap(),
    );
    let s = evaluator::evaluate(&store, &opts, &Metrics::new())
        .await
        .unwrap();
    assert_eq!((s.judged, s.failed, s.lines), (5, 5, 5), "{s:?}");
    let (_, lines) = read_lines::<ScoreLine>(&store, &s.out_key).await;
    for l in &lines {
        let e = l.judges.state.as_ref().unwrap().error.as_ref().unwrap();
        assert_eq!(e.kind, ErrorKind::Connection, "{e}");
        assert!(e.message.contains(&closed.to_string()), "{}", e.message);
        assert!(l.combined.is_none());
    }

    // Without --retry-failed a rerun keeps the recorded failures.
    let s = evaluator::evaluate(&store, &opts, &Metrics::new())
        .await
        .unwrap();
    assert_eq!((s.skipped, s.judged), (5, 0));

    let models: Vec<String> = Route::ALL
        .iter()
        .map(|r| cfg.route(*r).model.clone())
        .collect();
    let srv = TestServer::start(ServerConfig {
        models,
        ..ServerConfig::default()
    })
    .await
    .unwrap();
    let mut retry = options("r3", Judges::gateway(&srv.base_url(), cfg).unwrap());
    retry.retry_failed = true;
    let s = evaluator::evaluate(&store, &retry, &Metrics::new())
        .await
        .unwrap();
    assert_eq!((s.judged, s.ok, s.lines), (5, 5, 5), "{s:?}");
    let (_, lines) = read_lines::<ScoreLine>(&store, &s.out_key).await;
    assert!(lines.iter().all(|l| l.status == LineStatus::Ok));
    let unique: BTreeSet<&str> = lines.iter().map(|l| l.segment.segment.as_str()).collect();
    assert_eq!(unique.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_mode_writes_preference_pairs() {
    let store = Store::open("memory://").unwrap();
    common::populate(&store, "r4", 9, 32).await;
    let mut opts = options("r4", Judges::offline());
    opts.mode = Mode::Compare;
    opts.out = Mode::Compare.default_out().into();
    opts.seed = 3;
    let s = evaluator::evaluate(&store, &opts, &Metrics::new())
        .await
        .unwrap();
    assert_eq!(
        (s.items, s.unpaired, s.judged, s.lines),
        (4, 1, 4, 4),
        "{s:?}"
    );
    assert_eq!(s.out_key, "r4/scores/preferences.jsonl");
    let (_, lines) = read_lines::<PreferenceLine>(&store, &s.out_key).await;
    let mut seen = BTreeSet::new();
    for l in &lines {
        assert_eq!((l.schema.as_str(), l.version), ("zelda-rl-preferences", 1));
        assert_eq!(l.pair, format!("{}|{}", l.first.segment, l.second.segment));
        assert_eq!(
            l.first.index, l.second.index,
            "pairs share the segment index"
        );
        assert!(
            seen.insert(l.first.key.clone()) && seen.insert(l.second.key.clone()),
            "a segment is in one pair"
        );
        let label = l.label.as_ref().unwrap();
        assert!([0.0, 0.5, 1.0].contains(&label.first_wins), "{label:?}");
        assert_eq!(label.from, ["vision_compare", "state_compare"]);
        assert_eq!(
            l.judges.vision_compare.as_ref().unwrap().backend,
            Backend::Offline
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.label.as_ref().unwrap().first_wins != 0.5),
        "some pair has a winner"
    );
    let again = evaluator::evaluate(&store, &opts, &Metrics::new())
        .await
        .unwrap();
    assert_eq!((again.skipped, again.judged, again.lines), (4, 0, 4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_options_and_stores_are_clear_errors() {
    let store = Store::open("memory://").unwrap();
    let mut opts = options("a/b", Judges::offline());
    let e = evaluator::evaluate(&store, &opts, &Metrics::new())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("run id `a/b`"), "{e}");
    opts.run = "ok".into();
    opts.out = "../x".into();
    let e = evaluator::evaluate(&store, &opts, &Metrics::new())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("output name"), "{e}");
    opts.out = "scores.jsonl".into();
    opts.concurrency = 0;
    assert!(
        evaluator::evaluate(&store, &opts, &Metrics::new())
            .await
            .is_err()
    );

    // A run without segments ends with an empty output.
    opts.concurrency = 2;
    let s = evaluator::evaluate(&store, &opts, &Metrics::new())
        .await
        .unwrap();
    assert_eq!((s.items, s.lines), (0, 0));
    assert_eq!(store.get("ok/scores/scores.jsonl").await.unwrap().len(), 0);
    let _ = Duration::ZERO;
}
