//! The judge client against the in-repo OpenAI-compatible test server: the wire format on
//! every route, and each injected fault kind.

use std::time::{Duration, Instant};

use judges::fixtures::{dungeon, eventful, png};
use judges::{
    Backend, Comparison, ErrorKind, Judges, JudgesConfig, Keyframe, Route, SegmentInput, Status,
    Task, VisionScore,
};
use llm_testserver::{Fault, ServerConfig, TestServer};
use serde_json::Value;
use zelda::GameState;

fn fast_config() -> JudgesConfig {
    JudgesConfig {
        timeout_s: 5.0,
        backoff_base_s: 0.01,
        backoff_max_s: 0.05,
        max_retries: 3,
        ..JudgesConfig::default()
    }
}

fn models(cfg: &JudgesConfig) -> Vec<String> {
    Route::ALL
        .iter()
        .map(|r| cfg.route(*r).model.clone())
        .collect()
}

async fn server(cfg: &JudgesConfig) -> TestServer {
    TestServer::start(ServerConfig {
        models: models(cfg),
        ..ServerConfig::default()
    })
    .await
    .expect("start the test server")
}

struct Seg {
    id: String,
    states: Vec<GameState>,
    frames: Vec<Vec<u8>>,
}

impl Seg {
    fn new(id: &str, states: Vec<GameState>) -> Self {
        Self {
            id: id.to_string(),
            states,
            frames: (0..6).map(|i| png(160, 144, i)).collect(),
        }
    }

    fn keyframes(&self) -> Vec<Keyframe<'_>> {
        self.frames
            .iter()
            .enumerate()
            .map(|(i, p)| Keyframe {
                step: 10 * i as u64,
                png: p,
            })
            .collect()
    }
}

macro_rules! input {
    ($seg:expr, $keys:expr) => {
        SegmentInput {
            id: &$seg.id,
            first_step: 1000,
            states: &$seg.states,
            keyframes: &$keys,
        }
    };
}

fn bodies(server: &TestServer, route: &str) -> Vec<Value> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.route.as_deref() == Some(route))
        .filter_map(|r| r.body)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_speaks_the_wire_format() {
    let cfg = fast_config();
    let srv = server(&cfg).await;
    let judges = Judges::gateway(&srv.base_url(), cfg.clone()).unwrap();
    let seg = Seg::new("w0-e1/7", eventful(40, 0));
    let keys = seg.keyframes();
    let input = input!(seg, keys);
    let dseg = Seg::new("w0-e2/8", dungeon(30));
    let dkeys = dseg.keyframes();
    let dinput = input!(dseg, dkeys);

    let v = judges.vision(&input).await;
    let s = judges.state(&input).await;
    let p = judges.puzzle(&dinput).await;
    let d = judges.dialog(&input).await;
    let cv = judges.compare(Task::VisionCompare, &input, &dinput).await;
    let cs = judges.compare(Task::StateCompare, &input, &dinput).await;

    assert_eq!(v.status, Status::Ok, "{v:?}");
    assert_eq!(s.status, Status::Ok, "{s:?}");
    assert_eq!(p.status, Status::Ok, "{p:?}");
    assert_eq!(d.status, Status::Ok, "{d:?}");
    assert_eq!(cv.status, Status::Ok, "{cv:?}");
    assert_eq!(cs.status, Status::Ok, "{cs:?}");
    assert_eq!(v.backend, Backend::Gateway);
    assert_eq!(v.model, "Qwen/Qwen2.5-VL-32B-Instruct");
    assert_eq!(p.model, "Qwen/Qwen2.5-32B-Instruct");
    assert_eq!(d.model, "Qwen/Qwen2.5-7B-Instruct");
    assert!(v.prompt.starts_with("v1/"), "{}", v.prompt);
    assert_eq!(v.attempts, 1);
    let usage = v.usage.expect("usage is recorded");
    assert!(
        usage.prompt_tokens > 4 * 64 && usage.completion_tokens > 0,
        "{usage:?}"
    );

    for (route, n) in [("vision", 2), ("state", 2), ("puzzle", 1), ("dialog", 1)] {
        let b = bodies(&srv, route);
        assert_eq!(b.len(), n, "{route}");
        for body in &b {
            assert_eq!(body["temperature"], 0.0, "{route}");
            assert_eq!(body["seed"], 0, "{route}");
            assert_eq!(body["stream"], false, "{route}");
            assert!(body["max_tokens"].as_u64().unwrap() <= 256, "{route}");
            assert_eq!(body["response_format"]["type"], "json_schema", "{route}");
            assert_eq!(
                body["response_format"]["json_schema"]["strict"], true,
                "{route}"
            );
            assert_eq!(body["messages"][0]["role"], "system", "{route}");
        }
    }
    let vision = bodies(&srv, "vision");
    let parts = vision[0]["messages"][1]["content"].as_array().unwrap();
    assert_eq!(parts[0]["type"], "text");
    let images: Vec<&Value> = parts.iter().filter(|p| p["type"] == "image_url").collect();
    assert_eq!(images.len(), 4, "keyframes are capped at the configured 4");
    assert!(
        images[0]["image_url"]["url"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,iVBORw0KGgo")
    );
    let compare_parts = vision[1]["messages"][1]["content"].as_array().unwrap();
    assert_eq!(
        compare_parts
            .iter()
            .filter(|p| p["type"] == "image_url")
            .count(),
        8
    );
    assert_eq!(
        vision[1]["response_format"]["json_schema"]["name"],
        "comparison"
    );
    // Both vision requests share the same system message: the prefix the gateway hashes.
    assert_eq!(
        vision[0]["messages"][0],
        bodies(&srv, "vision")[0]["messages"][0]
    );
    let state = bodies(&srv, "state");
    assert!(
        state[0]["messages"][1]["content"]
            .as_str()
            .unwrap()
            .contains("step 1000 (start)")
    );

    // The record serialises to the JSON the evaluator writes.
    let json = serde_json::to_value(&v).unwrap();
    assert_eq!(json["backend"], "gateway");
    assert_eq!(json["route"], "vision");
    assert_eq!(json["status"], "ok");
    assert!(json["result"]["progress"].as_u64().unwrap() <= 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_are_listed_per_route() {
    let cfg = fast_config();
    let srv = server(&cfg).await;
    let Judges::Gateway(gw) =
        Judges::gateway(&format!("{}/", srv.base_url()), cfg.clone()).unwrap()
    else {
        unreachable!()
    };
    for route in Route::ALL {
        let listed = gw.client(route).list_models().await.unwrap();
        assert!(
            listed.contains(&cfg.route(route).model),
            "{route:?}: {listed:?}"
        );
        assert!(
            gw.client(route)
                .url()
                .ends_with(&format!("/{}/v1/chat/completions", route.name()))
        );
    }
}

async fn vision_once(
    srv: &TestServer,
    cfg: JudgesConfig,
) -> (judges::JudgeRecord<VisionScore>, Duration) {
    let judges = Judges::gateway(&srv.base_url(), cfg).unwrap();
    let seg = Seg::new("w1-e0/0", eventful(20, 1));
    let keys = seg.keyframes();
    let t = Instant::now();
    let r = judges.vision(&input!(seg, keys)).await;
    (r, t.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_until_success() {
    let cfg = fast_config();
    let srv = server(&cfg).await;
    srv.push_faults(Some("vision"), [Fault::ServerError, Fault::Status(503)]);
    let (r, _) = vision_once(&srv, cfg).await;
    assert_eq!(r.status, Status::Ok, "{r:?}");
    assert_eq!(r.attempts, 3);
    assert_eq!(srv.request_count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_beyond_the_retry_budget_are_recorded() {
    let mut cfg = fast_config();
    cfg.max_retries = 2;
    let srv = server(&cfg).await;
    srv.push_faults(None, vec![Fault::ServerError; 5]);
    let (r, _) = vision_once(&srv, cfg).await;
    assert_eq!(r.status, Status::Failed);
    let e = r.error.unwrap();
    assert_eq!((e.kind, e.status), (ErrorKind::ServerError, Some(500)));
    assert!(e.message.contains("injected fault"), "{}", e.message);
    assert_eq!(r.attempts, 3);
    assert_eq!(srv.request_count(), 3, "1 attempt + 2 retries");
    assert!(r.result.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_honour_retry_after() {
    let cfg = fast_config();
    let srv = server(&cfg).await;
    srv.push_faults(
        Some("vision"),
        [Fault::TooManyRequests {
            retry_after: "1".into(),
        }],
    );
    let (r, took) = vision_once(&srv, cfg.clone()).await;
    assert_eq!(r.status, Status::Ok, "{r:?}");
    assert_eq!(r.attempts, 2);
    assert!(
        took >= Duration::from_secs(1),
        "waited {took:?}, less than Retry-After"
    );
    assert!(took < Duration::from_secs(3), "waited {took:?}");

    // An HTTP-date Retry-After is honoured too.
    let when = std::time::SystemTime::now() + Duration::from_secs(2);
    srv.push_faults(
        Some("vision"),
        [Fault::TooManyRequests {
            retry_after: httpdate_fmt(when),
        }],
    );
    let (r, took) = vision_once(&srv, cfg.clone()).await;
    assert_eq!(r.status, Status::Ok, "{r:?}");
    assert!(took >= Duration::from_millis(900), "waited {took:?}");

    // Without a usable Retry-After, the backoff applies and the rate limit is recorded.
    let mut cfg = cfg;
    cfg.max_retries = 1;
    srv.push_faults(
        None,
        vec![
            Fault::TooManyRequests {
                retry_after: "soon".into()
            };
            2
        ],
    );
    let (r, took) = vision_once(&srv, cfg).await;
    assert_eq!(
        r.error.as_ref().map(|e| e.kind),
        Some(ErrorKind::RateLimited),
        "{r:?}"
    );
    assert_eq!(r.attempts, 2);
    assert!(took < Duration::from_secs(1), "{took:?}");
}

fn httpdate_fmt(t: std::time::SystemTime) -> String {
    // RFC 7231 IMF-fixdate, as servers send it.
    let secs = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let days = secs / 86_400;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mon = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(month - 1) as usize];
    format!("{weekday}, {d:02} {mon} {year} {h:02}:{m:02}:{s:02} GMT")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_are_retried_then_recorded() {
    let cfg = fast_config();
    let srv = server(&cfg).await;
    srv.push_faults(Some("vision"), [Fault::Drop]);
    let (r, _) = vision_once(&srv, cfg.clone()).await;
    assert_eq!(r.status, Status::Ok, "{r:?}");
    assert_eq!(r.attempts, 2);
    assert_eq!(srv.request_count(), 2);

    srv.push_faults(Some("vision"), vec![Fault::Drop; 4]);
    let (r, _) = vision_once(&srv, cfg).await;
    let e = r.error.unwrap();
    assert_eq!(e.kind, ErrorKind::Connection, "{e}");
    assert_eq!(r.attempts, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_replies_time_out_and_are_retried() {
    let mut cfg = fast_config();
    cfg.timeout_s = 0.3;
    let srv = server(&cfg).await;
    srv.push_faults(Some("vision"), [Fault::Slow(Duration::from_secs(3))]);
    let (r, took) = vision_once(&srv, cfg.clone()).await;
    assert_eq!(r.status, Status::Ok, "{r:?}");
    assert_eq!(r.attempts, 2);
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(2),
        "{took:?}"
    );

    cfg.max_retries = 1;
    srv.push_faults(Some("vision"), vec![Fault::Slow(Duration::from_secs(3)); 2]);
    let (r, _) = vision_once(&srv, cfg).await;
    let e = r.error.unwrap();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    assert_eq!(r.attempts, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_errors_are_never_retried() {
    let cfg = fast_config();
    let srv = server(&cfg).await;
    srv.push_faults(None, [Fault::Status(400)]);
    let (r, _) = vision_once(&srv, cfg.clone()).await;
    let e = r.error.unwrap();
    assert_eq!((e.kind, e.status), (ErrorKind::ClientError, Some(400)));
    assert_eq!(r.attempts, 1);
    assert_eq!(srv.request_count(), 1);

    // A model the server does not serve: vLLM answers 404.
    let mut wrong = cfg;
    wrong.routes.vision.model = "no-such-model".into();
    let (r, _) = vision_once(&srv, wrong).await;
    let e = r.error.unwrap();
    assert_eq!((e.kind, e.status), (ErrorKind::ClientError, Some(404)));
    assert!(e.message.contains("no-such-model"), "{}", e.message);
    assert_eq!(srv.request_count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_are_retried_once_then_recorded() {
    let cfg = fast_config();
    let srv = server(&cfg).await;
    srv.push_faults(Some("vision"), [Fault::MalformedJson]);
    let (r, _) = vision_once(&srv, cfg.clone()).await;
    assert_eq!(r.status, Status::Ok, "{r:?}");
    assert_eq!(r.attempts, 2);

    srv.push_faults(Some("vision"), vec![Fault::MalformedJson; 3]);
    let (r, _) = vision_once(&srv, cfg).await;
    let e = r.error.unwrap();
    assert_eq!(e.kind, ErrorKind::MalformedResponse, "{e}");
    assert!(
        e.message.contains("not a chat-completions response"),
        "{}",
        e.message
    );
    assert_eq!(r.attempts, 2, "retried once, not with the transport budget");
    assert_eq!(srv.pending_faults(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_violations_are_retried_once_with_the_next_seed() {
    let cfg = fast_config();
    let srv = server(&cfg).await;
    srv.push_faults(Some("vision"), [Fault::SchemaViolation]);
    let (r, _) = vision_once(&srv, cfg.clone()).await;
    assert_eq!(r.status, Status::Ok, "{r:?}");
    assert_eq!(r.attempts, 2);
    let seeds: Vec<u64> = bodies(&srv, "vision")
        .iter()
        .map(|b| b["seed"].as_u64().unwrap())
        .collect();
    assert_eq!(seeds, vec![0, 1]);
    let usage = r.usage.unwrap();
    assert!(usage.completion_tokens > 0);

    srv.push_faults(
        Some("vision"),
        [Fault::SchemaViolation, Fault::NotJsonContent],
    );
    let (r, _) = vision_once(&srv, cfg.clone()).await;
    let e = r.error.unwrap();
    assert_eq!(e.kind, ErrorKind::SchemaMismatch, "{e}");
    assert!(
        e.message.contains("Sure! Here is my assessment"),
        "the content is quoted: {}",
        e.message
    );
    assert_eq!(r.attempts, 2);
    assert!(
        r.usage.is_some(),
        "tokens of failed replies are still counted"
    );

    // A reply cut off at max_tokens says so.
    let mut short = cfg;
    short.routes.vision.max_tokens = 5;
    let (r, _) = vision_once(&srv, short).await;
    let e = r.error.unwrap();
    assert_eq!(e.kind, ErrorKind::SchemaMismatch);
    assert!(e.message.contains("cut off at max_tokens"), "{}", e.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_are_parsed_into_typed_results() {
    let cfg = fast_config();
    let srv = server(&cfg).await;
    let judges = Judges::gateway(&srv.base_url(), cfg).unwrap();
    let seg = Seg::new("a", eventful(20, 0));
    let other = Seg::new("b", eventful(20, 3));
    let keys = seg.keyframes();
    let okeys = other.keyframes();
    srv.push_faults(
        Some("vision"),
        [Fault::Content(
            r#"{"summary":"found a key","progress":7,"novelty":5,"danger":2}"#.into(),
        )],
    );
    let v = judges.vision(&input!(seg, keys)).await;
    assert_eq!(
        v.result,
        Some(VisionScore {
            summary: "found a key".into(),
            progress: 7,
            novelty: 5,
            danger: 2
        })
    );
    srv.push_faults(
        Some("state"),
        [Fault::Content(
            r#"{"analysis":"b found more","more_progress":"second"}"#.into(),
        )],
    );
    let c = judges
        .compare(
            Task::StateCompare,
            &input!(seg, keys),
            &input!(other, okeys),
        )
        .await;
    assert_eq!(
        c.result,
        Some(Comparison {
            analysis: "b found more".into(),
            more_progress: judges::Preference::Second
        })
    );
    let body = &bodies(&srv, "state")[0];
    let text = body["messages"][1]["content"].as_str().unwrap();
    assert!(
        text.find("First segment: a").unwrap() < text.find("Second segment: b").unwrap(),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_route_concurrency_limit_holds() {
    let mut cfg = fast_config();
    cfg.routes.vision.concurrency = 3;
    let srv = TestServer::start(ServerConfig {
        models: models(&cfg),
        delay: Duration::from_millis(100),
        record: false,
    })
    .await
    .unwrap();
    let judges = Judges::gateway(&srv.base_url(), cfg).unwrap();
    let seg = Seg::new("c", eventful(20, 0));
    let keys = seg.keyframes();
    let input = input!(seg, keys);
    let t = Instant::now();
    let calls: Vec<_> = (0..12).map(|_| judges.vision(&input)).collect();
    let records = futures_join_all(calls).await;
    let took = t.elapsed();
    assert!(records.iter().all(|r| r.status == Status::Ok));
    assert_eq!(srv.max_in_flight(), 3);
    assert!(
        took >= Duration::from_millis(400),
        "12 calls, 3 at a time, 100 ms each: {took:?}"
    );
}

async fn futures_join_all<F: std::future::Future>(futs: Vec<F>) -> Vec<F::Output> {
    // A tiny join_all on the current task, so no extra dependency is needed.
    let mut futs: Vec<_> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in futs.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter()
        .map(|o| o.expect("every future completed"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_gateway_is_recorded_as_a_connection_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut cfg = fast_config();
    cfg.max_retries = 2;
    let judges = Judges::gateway(&format!("http://{addr}"), cfg).unwrap();
    let seg = Seg::new("u", eventful(20, 0));
    let keys = seg.keyframes();
    let r = judges.state(&input!(seg, keys)).await;
    let e = r.error.unwrap();
    assert_eq!(e.kind, ErrorKind::Connection, "{e}");
    assert!(e.message.contains(&addr.to_string()), "{}", e.message);
    assert_eq!(r.attempts, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_segments_are_recorded_without_a_request() {
    let cfg = fast_config();
    let srv = server(&cfg).await;
    let judges = Judges::gateway(&srv.base_url(), cfg).unwrap();
    let empty = SegmentInput {
        id: "empty",
        first_step: 0,
        states: &[],
        keyframes: &[],
    };
    let r = judges.vision(&empty).await;
    assert_eq!(
        r.error.as_ref().map(|e| e.kind),
        Some(ErrorKind::InvalidInput)
    );
    let states = eventful(10, 0);
    let frames = [Keyframe {
        step: 2,
        png: b"not a png",
    }];
    let bad = SegmentInput {
        id: "bad",
        first_step: 0,
        states: &states,
        keyframes: &frames,
    };
    let r = judges.compare(Task::VisionCompare, &bad, &bad).await;
    let e = r.error.unwrap();
    assert_eq!(e.kind, ErrorKind::InvalidInput);
    assert!(
        e.message.contains("bad") && e.message.contains("step 2"),
        "{}",
        e.message
    );
    let r = judges.compare(Task::Vision, &bad, &bad).await;
    assert_eq!(r.error.map(|e| e.kind), Some(ErrorKind::InvalidInput));
    assert_eq!(srv.request_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_offline_judge_is_labelled_and_needs_no_server() {
    let judges = Judges::offline();
    let seg = Seg::new("o", eventful(40, 0));
    let keys = seg.keyframes();
    let input = input!(seg, keys);
    let v = judges.vision(&input).await;
    assert_eq!(
        (v.backend, v.model.as_str(), v.status),
        (Backend::Offline, "offline-heuristic-v1", Status::Ok)
    );
    let json = serde_json::to_value(&v).unwrap();
    assert_eq!(json["backend"], "offline");
    assert_eq!(json["attempts"], 0);
    let s = judges.state(&input).await;
    assert_eq!(s.result.unwrap().progress, 7);
    let c = judges.compare(Task::VisionCompare, &input, &input).await;
    assert_eq!(c.result.unwrap().more_progress, judges::Preference::Tie);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_can_bypass_the_gateway_prefix() {
    let mut cfg = fast_config();
    let srv = server(&cfg).await;
    cfg.routes.state.url = Some(srv.base_url());
    cfg.system_as_user = true;
    let judges = Judges::gateway("http://gateway.invalid", cfg).unwrap();
    let seg = Seg::new("direct", eventful(20, 0));
    let keys = seg.keyframes();
    let r = judges.state(&input!(seg, keys)).await;
    assert_eq!(r.status, Status::Ok, "{r:?}");
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        reqs[0].route,
        None,
        "sent to {}/v1/chat/completions",
        srv.base_url()
    );
    let body = reqs[0].body.as_ref().unwrap();
    assert_eq!(
        body["messages"].as_array().unwrap().len(),
        1,
        "system prompt folded into the user message"
    );
    assert!(
        body["messages"][0]["content"]
            .as_str()
            .unwrap()
            .starts_with("You are the state judge")
    );
}
