//! The live HUD: one web page showing every running agent.
//!
//! Workers POST [`telemetry::wire::WorkerUpdate`]s to `/api/publish` (see
//! [`telemetry::HudFeed`]); browsers get one JSON snapshot at a time over the WebSocket
//! `/api/live`, latest wins per browser (a `tokio::sync::watch` channel: a browser that is
//! slow to read simply skips snapshots, nothing waits for it). The page itself
//! (`static/`, embedded in the binary, no CDN, no build step) draws the screens, the room
//! maps, the curves, the judge scores and replays segments from the store.
//!
//! | route | what |
//! |---|---|
//! | `GET /` `/app.js` `/style.css` | the page |
//! | `POST /api/publish` | a worker update (JSON, at most 16 MiB) |
//! | `GET /api/live` | WebSocket: snapshots |
//! | `GET /api/state` | the current snapshot (JSON) |
//! | `GET /api/room?indoor=&map=&room=&grid=` | the latest screen seen in a room (PNG) |
//! | `GET /api/runs` | runs in the store and heard from |
//! | `GET /api/segments?run=` | a run's segments |
//! | `GET /api/replay?key=` | a segment's frames, states and rewards |
//! | `GET /api/keyframe?segment=` | a segment's last keyframe (PNG) |
//! | `GET /api/scores?run=` | the latest score lines of a run |
//! | `GET /healthz` | liveness |

pub mod browse;
pub mod layout;
pub mod live;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use episodes::Store;
use serde::Deserialize;
use telemetry::Metrics;
use telemetry::wire::{MAX_UPDATE_BYTES, RoomRef, WorkerUpdate};
use tokio::sync::{Mutex, watch};

use crate::browse::{BrowseError, ReplayCache};
use crate::live::Live;

static INDEX_HTML: &str = include_str!("../static/index.html");
static APP_JS: &str = include_str!("../static/app.js");
static STYLE_CSS: &str = include_str!("../static/style.css");

/// How the HUD is set up.
pub struct HudConfig {
    /// Where runs live.
    pub store: Store,
    /// The cartridge segments are replayed on.
    pub rom: Vec<u8>,
    /// What the page calls that cartridge.
    pub rom_name: String,
    /// The run shown first (else the one last heard from).
    pub run: Option<String>,
    /// Where the HUD counts what it does.
    pub metrics: Metrics,
}

struct Inner {
    live: std::sync::Mutex<Live>,
    dirty: std::sync::atomic::AtomicBool,
    tx: watch::Sender<Utf8Bytes>,
    store: Store,
    rom: Arc<Vec<u8>>,
    rom_name: String,
    run: Option<String>,
    metrics: Metrics,
    clients: AtomicUsize,
    replays: Mutex<ReplayCache>,
    keyframes: Mutex<HashMap<String, Vec<u8>>>,
    runs_cache: Mutex<Option<(std::time::Instant, Vec<String>)>>,
}

/// A running HUD's shared state (cheap to clone).
#[derive(Clone)]
pub struct Hud {
    inner: Arc<Inner>,
}

impl Hud {
    /// Builds the HUD and starts its snapshot task (needs a tokio runtime).
    pub fn new(cfg: HudConfig) -> Self {
        let live = Live::new();
        let (tx, _) = watch::channel(Utf8Bytes::from(live.snapshot_json()));
        let hud = Self {
            inner: Arc::new(Inner {
                live: std::sync::Mutex::new(live),
                dirty: std::sync::atomic::AtomicBool::new(false),
                tx,
                store: cfg.store,
                rom: Arc::new(cfg.rom),
                rom_name: cfg.rom_name,
                run: cfg.run,
                metrics: cfg.metrics,
                clients: AtomicUsize::new(0),
                replays: Mutex::new(ReplayCache::default()),
                keyframes: Mutex::new(HashMap::new()),
                runs_cache: Mutex::new(None),
            }),
        };
        let weak = Arc::downgrade(&hud.inner);
        tokio::spawn(async move {
            // At most ten snapshots a second, however many updates arrive.
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                let (json, envs) = {
                    let mut live = inner.live.lock().unwrap_or_else(|e| e.into_inner());
                    let changed = live.tick();
                    if !changed && !inner.dirty.swap(false, Ordering::AcqRel) {
                        continue;
                    }
                    (live.snapshot_json(), live.env_count())
                };
                inner.metrics.set_hud_envs(envs);
                inner.tx.send_replace(Utf8Bytes::from(json));
            }
        });
        hud
    }

    fn live(&self) -> std::sync::MutexGuard<'_, Live> {
        self.inner.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes in a worker update (what `POST /api/publish` does).
    pub fn apply(&self, update: WorkerUpdate) -> Result<(), String> {
        update.validate()?;
        self.live().apply(update);
        self.inner.dirty.store(true, Ordering::Release);
        Ok(())
    }

    /// The page and its API.
    pub fn router(&self) -> Router {
        Router::new()
            .route(
                "/",
                get(|| async { page(INDEX_HTML, "text/html; charset=utf-8") }),
            )
            .route(
                "/index.html",
                get(|| async { page(INDEX_HTML, "text/html; charset=utf-8") }),
            )
            .route(
                "/app.js",
                get(|| async { page(APP_JS, "text/javascript; charset=utf-8") }),
            )
            .route(
                "/style.css",
                get(|| async { page(STYLE_CSS, "text/css; charset=utf-8") }),
            )
            .route("/healthz", get(|| async { "ok\n" }))
            .route(
                "/api/publish",
                post(publish).layer(DefaultBodyLimit::max(MAX_UPDATE_BYTES)),
            )
            .route("/api/live", get(live_ws))
            .route("/api/state", get(state))
            .route("/api/info", get(info))
            .route("/api/room", get(room_art))
            .route("/api/runs", get(runs))
            .route("/api/segments", get(segments))
            .route("/api/replay", get(replay))
            .route("/api/keyframe", get(keyframe))
            .route("/api/scores", get(scores))
            .with_state(self.clone())
    }
}

fn page(body: &'static str, ctype: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, ctype),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        msg.into(),
    )
        .into_response()
}

fn browse_error(e: BrowseError) -> Response {
    let status = match e {
        BrowseError::BadRequest(_) => StatusCode::BAD_REQUEST,
        BrowseError::NotFound(_) => StatusCode::NOT_FOUND,
        BrowseError::Store(episodes::StoreError::NotFound { .. }) => StatusCode::NOT_FOUND,
        BrowseError::Store(_) => StatusCode::BAD_GATEWAY,
        BrowseError::Segment(_) => StatusCode::UNPROCESSABLE_ENTITY,
    };
    error(status, e.to_string())
}

fn json(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn publish(State(hud): State<Hud>, body: Bytes) -> Response {
    let len = body.len() as u64;
    let update: WorkerUpdate = match serde_json::from_slice(&body) {
        Ok(u) => u,
        Err(e) => {
            hud.inner.metrics.hud_rejected();
            return error(
                StatusCode::BAD_REQUEST,
                format!("update is not a WorkerUpdate: {e}"),
            );
        }
    };
    match hud.apply(update) {
        Ok(()) => {
            hud.inner.metrics.hud_update(len);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => {
            hud.inner.metrics.hud_rejected();
            error(StatusCode::BAD_REQUEST, format!("update rejected: {e}"))
        }
    }
}

async fn live_ws(State(hud): State<Hud>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| client(socket, hud))
}

struct ClientGuard(Hud);

impl Drop for ClientGuard {
    fn drop(&mut self) {
        let n = self.0.inner.clients.fetch_sub(1, Ordering::AcqRel) - 1;
        self.0.inner.metrics.set_hud_clients(n);
    }
}

async fn client(mut socket: WebSocket, hud: Hud) {
    let n = hud.inner.clients.fetch_add(1, Ordering::AcqRel) + 1;
    hud.inner.metrics.set_hud_clients(n);
    let _guard = ClientGuard(hud.clone());
    let mut rx = hud.inner.tx.subscribe();
    loop {
        // The snapshot is marked seen before the send: whatever arrives while this client
        // is slow to take it replaces it (latest wins), nothing queues.
        let snap = rx.borrow_and_update().clone();
        if socket.send(Message::Text(snap)).await.is_err() {
            return;
        }
        tokio::select! {
            changed = rx.changed() => if changed.is_err() { return },
            msg = socket.recv() => match msg {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                // Browsers send nothing else; pings are answered by axum.
                Some(Ok(_)) => {}
            },
        }
    }
}

async fn state(State(hud): State<Hud>) -> Response {
    let snap = hud.inner.tx.borrow().clone();
    json(snap.as_str().to_string())
}

async fn info(State(hud): State<Hud>) -> Response {
    let default_run = hud
        .inner
        .run
        .clone()
        .or_else(|| hud.live().last_run().map(str::to_string));
    json(
        serde_json::json!({
            "store": hud.inner.store.url(),
            "rom": hud.inner.rom_name,
            "run": default_run,
            "version": env!("CARGO_PKG_VERSION"),
        })
        .to_string(),
    )
}

#[derive(Deserialize)]
struct RoomQuery {
    indoor: u8,
    map: u8,
    room: u8,
    #[serde(default)]
    grid: u8,
}

async fn room_art(State(hud): State<Hud>, Query(q): Query<RoomQuery>) -> Response {
    let r = RoomRef {
        indoor: q.indoor != 0,
        map: q.map,
        room: q.room,
        grid: q.grid,
    };
    match hud.live().room_art(&r) {
        Some((png, _)) => (
            [
                (header::CONTENT_TYPE, "image/png"),
                (header::CACHE_CONTROL, "max-age=3600"),
            ],
            png,
        )
            .into_response(),
        None => error(StatusCode::NOT_FOUND, "no screen seen in that room yet"),
    }
}

#[derive(Deserialize)]
struct RunQuery {
    run: Option<String>,
}

impl RunQuery {
    fn run_or_default(&self, hud: &Hud) -> Option<String> {
        self.run
            .clone()
            .filter(|r| !r.is_empty())
            .or_else(|| hud.inner.run.clone())
            .or_else(|| hud.live().last_run().map(str::to_string))
    }
}

async fn runs(State(hud): State<Hud>) -> Response {
    let mut cache = hud.inner.runs_cache.lock().await;
    let fresh = cache
        .as_ref()
        .is_some_and(|(t, _)| t.elapsed() < Duration::from_secs(15));
    if !fresh {
        // A store with very many objects makes this listing slow; bound it and fall back
        // to the runs heard from.
        match tokio::time::timeout(Duration::from_secs(10), browse::list_runs(&hud.inner.store))
            .await
        {
            Ok(Ok(list)) => *cache = Some((std::time::Instant::now(), list)),
            Ok(Err(e)) => tracing::warn!(error = %e, "listing runs"),
            Err(_) => tracing::warn!("listing runs took over 10 s; showing the runs heard from"),
        }
    }
    let mut all: Vec<String> = cache.as_ref().map(|(_, l)| l.clone()).unwrap_or_default();
    drop(cache);
    all.extend(hud.live().runs().map(str::to_string));
    all.extend(hud.inner.run.clone());
    all.sort();
    all.dedup();
    json(serde_json::json!({ "runs": all }).to_string())
}

async fn segments(State(hud): State<Hud>, Query(q): Query<RunQuery>) -> Response {
    let Some(run) = q.run_or_default(&hud) else {
        return json(serde_json::json!({"run": null, "segments": [], "total": 0}).to_string());
    };
    match browse::list_segments(&hud.inner.store, &run).await {
        Ok((segs, total)) => {
            json(serde_json::json!({"run": run, "segments": segs, "total": total}).to_string())
        }
        Err(e) => browse_error(e),
    }
}

#[derive(Deserialize)]
struct KeyQuery {
    key: String,
}

async fn replay(State(hud): State<Hud>, Query(q): Query<KeyQuery>) -> Response {
    if let Err(e) = browse::check_segment_key(&q.key) {
        return browse_error(e);
    }
    if let Some(hit) = hud.inner.replays.lock().await.get(&q.key) {
        return json(hit.as_str().to_string());
    }
    let bytes = match hud.inner.store.get_opt(&q.key).await {
        Ok(Some(b)) => b,
        Ok(None) => {
            return error(
                StatusCode::NOT_FOUND,
                format!("no segment {} in the store", q.key),
            );
        }
        Err(e) => return browse_error(e.into()),
    };
    let rom = hud.inner.rom.clone();
    let key = q.key.clone();
    let result = tokio::task::spawn_blocking(move || -> Result<String, BrowseError> {
        let seg = episodes::Segment::decode(&bytes, &key)?;
        let replay = browse::replay_segment(&seg, &rom);
        Ok(serde_json::to_string(&replay).expect("replay serialises"))
    })
    .await;
    match result {
        Ok(Ok(body)) => {
            let body = Arc::new(body);
            hud.inner
                .replays
                .lock()
                .await
                .put(q.key.clone(), body.clone());
            json(body.as_str().to_string())
        }
        Ok(Err(e)) => browse_error(e),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("replay task failed: {e}"),
        ),
    }
}

#[derive(Deserialize)]
struct SegmentQuery {
    segment: String,
}

async fn keyframe(State(hud): State<Hud>, Query(q): Query<SegmentQuery>) -> Response {
    let key = match browse::key_from_id(&q.segment) {
        Ok(k) => k,
        Err(e) => return browse_error(e),
    };
    let mut cache = hud.inner.keyframes.lock().await;
    match browse::keyframe(&hud.inner.store, &key, &mut cache).await {
        Ok(png) => (
            [
                (header::CONTENT_TYPE, "image/png"),
                (header::CACHE_CONTROL, "max-age=3600"),
            ],
            png,
        )
            .into_response(),
        Err(e) => browse_error(e),
    }
}

async fn scores(State(hud): State<Hud>, Query(q): Query<RunQuery>) -> Response {
    let Some(run) = q.run_or_default(&hud) else {
        return json(
            serde_json::json!({"run": null, "scores": [], "total": 0, "problems": []}).to_string(),
        );
    };
    match browse::read_scores(&hud.inner.store, &run).await {
        Ok((scores, total, problems)) => json(
            serde_json::json!({"run": run, "scores": scores, "total": total, "problems": problems})
                .to_string(),
        ),
        Err(e) => browse_error(e),
    }
}

/// Serves the HUD on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    hud: Hud,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, hud.router())
        .with_graceful_shutdown(shutdown)
        .await
}

/// Resolves on Ctrl-C or SIGTERM (what Kubernetes sends before killing a pod).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
