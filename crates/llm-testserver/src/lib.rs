//! An OpenAI-compatible chat-completions server for tests and benchmarks.
//!
//! It speaks the wire format vLLM serves (`/v1/models`, `/v1/chat/completions`, also under a
//! route prefix such as `/vision/v1/chat/completions`, the way the llm-d gateway exposes
//! them), checks each request the way a strict server would (model, messages, content parts,
//! `data:image/png;base64` images, `response_format`), answers with JSON content generated
//! from the request's JSON schema, and reports `usage` token counts.
//!
//! A test queues [`Fault`]s, which the next requests (to one route, or to any) consume one
//! each: slow replies, 500s, 429 with `Retry-After`, dropped connections, malformed JSON
//! bodies, content that is not JSON or violates the schema.
//!
//! Token counts are approximate, as no tokenizer is involved: one token per 4 bytes of text
//! (rounded up) and [`IMAGE_TOKENS`] per image.

pub mod llama;
mod schema;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinSet;

pub use schema::{generate, violate};

/// Prompt tokens counted for each image part.
pub const IMAGE_TOKENS: u64 = 64;

/// One injected misbehaviour, consumed by one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// Wait this long (on top of the configured delay), then reply normally.
    Slow(Duration),
    /// HTTP 500 with an OpenAI-style error body.
    ServerError,
    /// This HTTP status with an OpenAI-style error body.
    Status(u16),
    /// HTTP 429 with this `Retry-After` header value (seconds or an HTTP date).
    TooManyRequests {
        /// The header value, sent verbatim.
        retry_after: String,
    },
    /// Close the connection without sending a response.
    Drop,
    /// HTTP 200 whose body is not JSON.
    MalformedJson,
    /// HTTP 200 whose content is JSON that violates the request's schema.
    SchemaViolation,
    /// HTTP 200 whose content is prose, not JSON.
    NotJsonContent,
    /// HTTP 200 with exactly this content.
    Content(String),
}

/// How the server behaves when no fault applies.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Time every reply takes before it is sent.
    pub delay: Duration,
    /// Model names the server serves; empty accepts any name.
    pub models: Vec<String>,
    /// Keep every request (body included) for [`TestServer::requests`]; off for benchmarks.
    pub record: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            delay: Duration::ZERO,
            models: Vec::new(),
            record: true,
        }
    }
}

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// The route prefix (`vision`, ...), `None` for plain `/v1/...`.
    pub route: Option<String>,
    /// The parsed JSON body, `None` when it was not JSON.
    pub body: Option<Value>,
    /// The fault applied to it, if any.
    pub fault: Option<Fault>,
    /// The HTTP status sent (0 when the connection was dropped).
    pub status: u16,
}

struct Shared {
    config: ServerConfig,
    faults: Mutex<HashMap<String, VecDeque<Fault>>>,
    log: Mutex<Vec<RecordedRequest>>,
    count: AtomicU64,
    next_id: AtomicU64,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
}

/// Counts a request as in flight until dropped (also when its connection is dropped).
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn new(shared: &'a Shared) -> Self {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
        Self(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The key of the fault queue that applies to requests on every route.
const ANY_ROUTE: &str = "*";

/// A running server; dropping it stops the server.
pub struct TestServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
}

impl TestServer {
    /// Binds `127.0.0.1` on a free port and starts serving on the current tokio runtime.
    pub async fn start(config: ServerConfig) -> std::io::Result<Self> {
        Self::bind("127.0.0.1:0".parse().expect("valid address"), config).await
    }

    /// Binds `addr` and starts serving on the current tokio runtime.
    pub async fn bind(addr: SocketAddr, config: ServerConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config,
            faults: Mutex::new(HashMap::new()),
            log: Mutex::new(Vec::new()),
            count: AtomicU64::new(0),
            next_id: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
        });
        let (stop_tx, stop_rx) = oneshot::channel();
        tokio::spawn(accept_loop(listener, router(shared.clone()), stop_rx));
        Ok(Self {
            addr,
            shared,
            stop: Some(stop_tx),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, the gateway base URL for clients.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues faults for the next requests to `route` (`Some("vision")`), or to any route
    /// (`None`); route-specific faults are used first.
    pub fn push_faults(&self, route: Option<&str>, faults: impl IntoIterator<Item = Fault>) {
        let mut map = self.shared.faults.lock().expect("fault queue lock");
        map.entry(route.unwrap_or(ANY_ROUTE).to_string())
            .or_default()
            .extend(faults);
    }

    /// Faults queued and not consumed yet, over all routes.
    pub fn pending_faults(&self) -> usize {
        let map = self.shared.faults.lock().expect("fault queue lock");
        map.values().map(VecDeque::len).sum()
    }

    /// Every chat-completions request received so far (when recording is on).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.log.lock().expect("log lock").clone()
    }

    /// Number of chat-completions requests received so far (recorded or not).
    pub fn request_count(&self) -> u64 {
        self.shared.count.load(Ordering::Relaxed)
    }

    /// The most chat-completions requests that were being handled at the same time.
    pub fn max_in_flight(&self) -> u64 {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    /// Stops accepting connections and closes the open ones.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Lets a handler close its own connection (the `Drop` fault).
#[derive(Clone)]
struct ConnKill(Arc<Notify>);

async fn accept_loop(listener: TcpListener, app: Router, mut stop: oneshot::Receiver<()>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                conns.spawn(serve_connection(stream, app.clone()));
            }
            // Reap finished connections so the set does not grow without bound.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.abort_all();
}

async fn serve_connection(stream: tokio::net::TcpStream, app: Router) {
    let kill = Arc::new(Notify::new());
    let handle = ConnKill(kill.clone());
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(handle.clone());
            let mut app = app.clone();
            tower_service::Service::call(&mut app, req)
        });
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    // Dropping the connection future closes the socket with no response written.
    tokio::select! {
        _ = conn => {}
        _ = kill.notified() => {}
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/models", get(models))
        .route("/{route}/v1/models", get(models_routed))
        .route("/v1/chat/completions", post(chat))
        .route("/{route}/v1/chat/completions", post(chat_routed))
        .with_state(shared)
}

async fn models(State(shared): State<Arc<Shared>>) -> Response {
    let data: Vec<Value> = shared
        .config
        .models
        .iter()
        .map(|id| json!({"id": id, "object": "model", "created": unix_now(), "owned_by": "llm-testserver"}))
        .collect();
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

async fn models_routed(State(shared): State<Arc<Shared>>, Path(_route): Path<String>) -> Response {
    models(State(shared)).await
}

async fn chat(
    State(shared): State<Arc<Shared>>,
    kill: axum::Extension<ConnKill>,
    body: Bytes,
) -> Response {
    handle_chat(shared, None, kill.0, body).await
}

async fn chat_routed(
    State(shared): State<Arc<Shared>>,
    Path(route): Path<String>,
    kill: axum::Extension<ConnKill>,
    body: Bytes,
) -> Response {
    handle_chat(shared, Some(route), kill.0, body).await
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn take_fault(shared: &Shared, route: Option<&str>) -> Option<Fault> {
    let mut map = shared.faults.lock().expect("fault queue lock");
    if let Some(route) = route
        && let Some(f) = map.get_mut(route).and_then(VecDeque::pop_front)
    {
        return Some(f);
    }
    map.get_mut(ANY_ROUTE).and_then(VecDeque::pop_front)
}

fn error_response(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({"error": {"message": message, "type": kind, "code": status.as_u16()}});
    (status, axum::Json(body)).into_response()
}

async fn handle_chat(
    shared: Arc<Shared>,
    route: Option<String>,
    kill: ConnKill,
    body: Bytes,
) -> Response {
    shared.count.fetch_add(1, Ordering::Relaxed);
    let _in_flight = InFlight::new(&shared);
    let fault = take_fault(&shared, route.as_deref());
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let record = |status: u16| {
        if shared.config.record {
            shared.log.lock().expect("log lock").push(RecordedRequest {
                route: route.clone(),
                body: parsed.clone(),
                fault: fault.clone(),
                status,
            });
        }
    };

    let mut delay = shared.config.delay;
    if let Some(Fault::Slow(extra)) = &fault {
        delay += *extra;
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }

    match &fault {
        Some(Fault::Drop) => {
            record(0);
            kill.0.notify_one();
            // The connection task drops this future together with the socket.
            std::future::pending::<()>().await;
            unreachable!("the connection is closed before this resolves")
        }
        Some(Fault::ServerError) => {
            record(500);
            return error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_server_error",
                "injected fault: internal server error",
            );
        }
        Some(Fault::Status(code)) => {
            let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            record(status.as_u16());
            return error_response(status, "injected_fault", "injected fault: status");
        }
        Some(Fault::TooManyRequests { retry_after }) => {
            record(429);
            let mut resp = error_response(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_exceeded",
                "injected fault: too many requests",
            );
            if let Ok(v) = HeaderValue::from_str(retry_after) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return resp;
        }
        Some(Fault::MalformedJson) => {
            record(200);
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                "{\"id\": \"chatcmpl-broken\", \"choices\": [{\"message\": ",
            )
                .into_response();
        }
        _ => {}
    }

    let Some(request) = parsed.as_ref() else {
        record(400);
        return error_response(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "request body is not valid JSON",
        );
    };
    let checked = match check_request(request, &shared.config.models) {
        Ok(c) => c,
        Err((status, msg)) => {
            record(status.as_u16());
            return error_response(status, "invalid_request_error", &msg);
        }
    };

    let seed = fnv1a(&body);
    let content = match &fault {
        Some(Fault::SchemaViolation) => match &checked.schema {
            Some(schema) => violate(schema, seed).to_string(),
            None => "[]".to_string(),
        },
        Some(Fault::NotJsonContent) => {
            "Sure! Here is my assessment of the segment: it looks fine.".to_string()
        }
        Some(Fault::Content(c)) => c.clone(),
        _ => match &checked.schema {
            Some(schema) => generate(schema, seed).to_string(),
            None if checked.json_object => "{}".to_string(),
            None => "OK".to_string(),
        },
    };
    let (content, finish) = truncate_to_tokens(content, checked.max_tokens);
    let completion_tokens = text_tokens(&content);
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    record(200);
    let reply = json!({
        "id": format!("chatcmpl-{id:016x}"),
        "object": "chat.completion",
        "created": unix_now(),
        "model": checked.model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "logprobs": null,
            "finish_reason": finish,
        }],
        "usage": {
            "prompt_tokens": checked.prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": checked.prompt_tokens + completion_tokens,
        },
    });
    axum::Json(reply).into_response()
}

/// What the server needs from a valid request.
struct Checked {
    model: String,
    schema: Option<Value>,
    json_object: bool,
    max_tokens: Option<u64>,
    prompt_tokens: u64,
}

type Rejection = (StatusCode, String);

fn bad(msg: impl Into<String>) -> Rejection {
    (StatusCode::BAD_REQUEST, msg.into())
}

/// Validates a chat-completions request the way a strict OpenAI-compatible server does.
fn check_request(req: &Value, models: &[String]) -> Result<Checked, Rejection> {
    let obj = req
        .as_object()
        .ok_or_else(|| bad("body must be a JSON object"))?;
    let model = obj
        .get("model")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("field `model` must be a string"))?;
    if !models.is_empty() && !models.iter().any(|m| m == model) {
        return Err((
            StatusCode::NOT_FOUND,
            format!("The model `{model}` does not exist."),
        ));
    }
    let messages = obj
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| bad("field `messages` must be a non-empty array"))?;
    let mut prompt_tokens = 0u64;
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        if !matches!(role, "system" | "user" | "assistant") {
            return Err(bad(format!(
                "messages[{i}].role must be system, user or assistant"
            )));
        }
        match m.get("content") {
            Some(Value::String(s)) => prompt_tokens += text_tokens(s),
            Some(Value::Array(parts)) => {
                for (j, part) in parts.iter().enumerate() {
                    prompt_tokens += check_part(part)
                        .map_err(|e| bad(format!("messages[{i}].content[{j}]: {e}")))?;
                }
            }
            _ => {
                return Err(bad(format!(
                    "messages[{i}].content must be a string or an array of parts"
                )));
            }
        }
    }
    if let Some(t) = obj.get("temperature")
        && !t.is_number()
    {
        return Err(bad("field `temperature` must be a number"));
    }
    if let Some(s) = obj.get("seed")
        && !s.is_i64()
        && !s.is_u64()
    {
        return Err(bad("field `seed` must be an integer"));
    }
    let max_tokens = match obj.get("max_tokens") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|&n| n > 0)
                .ok_or_else(|| bad("field `max_tokens` must be a positive integer"))?,
        ),
    };
    let (schema, json_object) = match obj.get("response_format") {
        None | Some(Value::Null) => (None, false),
        Some(rf) => match rf.get("type").and_then(Value::as_str) {
            Some("text") => (None, false),
            Some("json_object") => (rf.get("schema").cloned(), true),
            Some("json_schema") => {
                let js = rf
                    .get("json_schema")
                    .ok_or_else(|| bad("response_format.json_schema is required"))?;
                if js.get("name").and_then(Value::as_str).is_none() {
                    return Err(bad("response_format.json_schema.name must be a string"));
                }
                let schema = js
                    .get("schema")
                    .filter(|s| s.is_object())
                    .ok_or_else(|| bad("response_format.json_schema.schema must be an object"))?;
                (Some(schema.clone()), true)
            }
            _ => {
                return Err(bad(
                    "response_format.type must be text, json_object or json_schema",
                ));
            }
        },
    };
    Ok(Checked {
        model: model.to_string(),
        schema,
        json_object,
        max_tokens,
        prompt_tokens,
    })
}

/// Checks one content part; returns its prompt tokens.
fn check_part(part: &Value) -> Result<u64, String> {
    match part.get("type").and_then(Value::as_str) {
        Some("text") => part
            .get("text")
            .and_then(Value::as_str)
            .map(text_tokens)
            .ok_or_else(|| "text part needs a string `text`".to_string()),
        Some("image_url") => {
            let url = part
                .get("image_url")
                .and_then(|u| u.get("url"))
                .and_then(Value::as_str)
                .ok_or_else(|| "image_url part needs `image_url.url`".to_string())?;
            let b64 = url
                .strip_prefix("data:image/png;base64,")
                .ok_or_else(|| "image url must be a data:image/png;base64 URI".to_string())?;
            let png = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| format!("image is not valid base64: {e}"))?;
            if !png.starts_with(b"\x89PNG\r\n\x1a\n") {
                return Err("image data is not a PNG".to_string());
            }
            Ok(IMAGE_TOKENS)
        }
        _ => Err("part type must be text or image_url".to_string()),
    }
}

/// The approximate token count of a text: 4 bytes per token, rounded up.
pub fn text_tokens(s: &str) -> u64 {
    (s.len() as u64).div_ceil(4)
}

fn truncate_to_tokens(content: String, max_tokens: Option<u64>) -> (String, &'static str) {
    match max_tokens {
        Some(max) if text_tokens(&content) > max => {
            let mut cut = usize::try_from(max * 4)
                .unwrap_or(usize::MAX)
                .min(content.len());
            while !content.is_char_boundary(cut) {
                cut -= 1;
            }
            (content[..cut].to_string(), "length")
        }
        _ => (content, "stop"),
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
