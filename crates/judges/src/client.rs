//! The OpenAI-compatible chat-completions client for one gateway route: concurrency limit,
//! per-attempt timeout, retries with seeded exponential backoff and jitter.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::Route;
use crate::config::{ConfigError, JudgesConfig, ResponseFormatStyle};
use crate::prompts::Message;

/// Why a call failed; the categories the evaluator counts and records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Could not connect, or the connection broke before a full response.
    Connection,
    /// No response within the per-attempt timeout.
    Timeout,
    /// HTTP 429.
    RateLimited,
    /// HTTP 5xx.
    ServerError,
    /// HTTP 4xx other than 429 (never retried).
    ClientError,
    /// A 200 whose body is not an OpenAI chat-completions response.
    MalformedResponse,
    /// The reply's content is not JSON or does not match the schema.
    SchemaMismatch,
    /// The segment cannot be judged (no states, a keyframe that is not a PNG).
    InvalidInput,
}

impl ErrorKind {
    /// Every kind, for metrics that list them all.
    pub const ALL: [ErrorKind; 8] = [
        ErrorKind::Connection,
        ErrorKind::Timeout,
        ErrorKind::RateLimited,
        ErrorKind::ServerError,
        ErrorKind::ClientError,
        ErrorKind::MalformedResponse,
        ErrorKind::SchemaMismatch,
        ErrorKind::InvalidInput,
    ];

    /// The snake_case name used in records and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Connection => "connection",
            ErrorKind::Timeout => "timeout",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::ServerError => "server_error",
            ErrorKind::ClientError => "client_error",
            ErrorKind::MalformedResponse => "malformed_response",
            ErrorKind::SchemaMismatch => "schema_mismatch",
            ErrorKind::InvalidInput => "invalid_input",
        }
    }

    /// Retried with backoff by the transport loop.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorKind::Connection
                | ErrorKind::Timeout
                | ErrorKind::RateLimited
                | ErrorKind::ServerError
        )
    }

    /// A bad reply rather than a failed transport: retried once, without backoff.
    pub fn is_bad_reply(self) -> bool {
        matches!(
            self,
            ErrorKind::MalformedResponse | ErrorKind::SchemaMismatch
        )
    }
}

/// A failed call, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{}{}: {message}", kind.name(), status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
pub struct CallError {
    /// The category.
    pub kind: ErrorKind,
    /// The HTTP status, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// What happened, for people.
    pub message: String,
    /// The server's `Retry-After`, when it sent one.
    #[serde(skip)]
    pub retry_after: Option<Duration>,
}

impl CallError {
    /// A new error without status.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            status: None,
            message: message.into(),
            retry_after: None,
        }
    }
}

/// Token counts the server reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, o: Usage) {
        self.prompt_tokens += o.prompt_tokens;
        self.completion_tokens += o.completion_tokens;
    }
}

/// A successful reply.
#[derive(Debug, Clone)]
pub struct Completion {
    /// The first choice's message content.
    pub content: String,
    /// The first choice's finish reason (`stop`, `length`, ...).
    pub finish_reason: Option<String>,
    /// Token counts, when reported.
    pub usage: Option<Usage>,
}

/// The result of one logical call, after transport retries.
#[derive(Debug)]
pub struct CallOutcome {
    /// The reply or the last error.
    pub result: Result<Completion, CallError>,
    /// HTTP attempts made (1 + retries).
    pub attempts: u32,
}

/// Backoff settings.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First backoff.
    pub base: Duration,
    /// Largest backoff.
    pub max: Duration,
    /// Largest `Retry-After` honoured.
    pub max_retry_after: Duration,
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1-based) of the call keyed `key`: the server's
    /// `Retry-After` when given (capped), else `min(max, base * 2^(retry-1))` with its upper
    /// half jittered. The jitter comes from `seed`, `key` and `retry` only, so a rerun waits
    /// the same and concurrent calls spread out.
    pub fn delay(
        &self,
        seed: u64,
        key: u64,
        retry: u32,
        retry_after: Option<Duration>,
    ) -> Duration {
        let unit = unit_random(seed, key, retry);
        if let Some(ra) = retry_after {
            // A little jitter on top, so calls told the same Retry-After do not return in lockstep.
            return ra.min(self.max_retry_after) + self.base.mul_f64(0.1 * unit);
        }
        let exp = self
            .base
            .saturating_mul(1u32 << (retry.saturating_sub(1)).min(30));
        let d = exp.min(self.max);
        d.mul_f64(0.5 + 0.5 * unit)
    }
}

/// A uniform number in [0, 1) from the inputs (SplitMix64).
fn unit_random(seed: u64, key: u64, n: u32) -> f64 {
    let mut z = seed ^ key.rotate_left(17) ^ u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// FNV-1a of a string: a stable call key from a segment id and task.
pub fn call_key(parts: &[&str]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for p in parts {
        for &b in p.as_bytes().iter().chain([0u8].iter()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

#[derive(Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    messages: &'a [Message],
    temperature: f32,
    seed: u64,
    max_tokens: u32,
    response_format: &'a Value,
    stream: bool,
}

#[derive(Deserialize)]
struct ChatResponse {
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: ChoiceMessage,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    #[serde(default)]
    content: Option<String>,
}

/// Builds the `response_format` object for a schema.
pub fn response_format(style: ResponseFormatStyle, name: &str, schema: &Value) -> Value {
    match style {
        ResponseFormatStyle::JsonSchema => serde_json::json!({
            "type": "json_schema",
            "json_schema": {"name": name, "schema": schema, "strict": true},
        }),
        ResponseFormatStyle::JsonObject => {
            serde_json::json!({"type": "json_object", "schema": schema})
        }
    }
}

/// Checks a gateway base URL and strips trailing slashes.
pub fn normalise_gateway(url: &str) -> Result<String, ConfigError> {
    let bad = |message: &str| ConfigError::Gateway {
        url: url.to_string(),
        message: message.to_string(),
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("the scheme must be http or https"));
    }
    if parsed.host_str().is_none() {
        return Err(bad("there is no host"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad("a query or fragment is not allowed"));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// The client of one route.
#[derive(Debug, Clone)]
pub struct RouteClient {
    http: reqwest::Client,
    route: Route,
    url: String,
    models_url: String,
    model: String,
    max_tokens: u32,
    timeout: Duration,
    seed: u64,
    policy: RetryPolicy,
    limit: Arc<Semaphore>,
}

impl RouteClient {
    /// A client for `{gateway}/{route}/v1/chat/completions` (or the route's own `url`),
    /// sharing `http`'s connection pool.
    pub fn new(
        http: reqwest::Client,
        gateway: &str,
        route: Route,
        cfg: &JudgesConfig,
    ) -> Result<Self, ConfigError> {
        let rc = cfg.route(route);
        let base = match &rc.url {
            Some(direct) => normalise_gateway(direct)?,
            None => format!("{}/{}", normalise_gateway(gateway)?, route.name()),
        };
        Ok(Self {
            http,
            route,
            url: format!("{base}/v1/chat/completions"),
            models_url: format!("{base}/v1/models"),
            model: rc.model.clone(),
            max_tokens: rc.max_tokens,
            timeout: cfg.timeout(),
            seed: cfg.seed,
            policy: RetryPolicy {
                max_retries: cfg.max_retries,
                base: Duration::from_secs_f64(cfg.backoff_base_s),
                max: Duration::from_secs_f64(cfg.backoff_max_s),
                max_retry_after: Duration::from_secs_f64(cfg.max_retry_after_s),
            },
            limit: Arc::new(Semaphore::new(rc.concurrency)),
        })
    }

    /// The route.
    pub fn route(&self) -> Route {
        self.route
    }

    /// The model name sent.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The chat-completions URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `GET {gateway}/{route}/v1/models`: the model ids the route serves (a reachability check).
    pub async fn list_models(&self) -> Result<Vec<String>, CallError> {
        #[derive(Deserialize)]
        struct Models {
            data: Vec<ModelId>,
        }
        #[derive(Deserialize)]
        struct ModelId {
            id: String,
        }
        let resp = self
            .http
            .get(&self.models_url)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| transport_error(&self.models_url, &e))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| transport_error(&self.models_url, &e))?;
        if !status.is_success() {
            return Err(status_error(status, None, &body));
        }
        let models: Models = serde_json::from_slice(&body).map_err(|e| {
            CallError::new(
                ErrorKind::MalformedResponse,
                format!("{}: not a model list: {e}", self.models_url),
            )
        })?;
        Ok(models.data.into_iter().map(|m| m.id).collect())
    }

    /// Sends one chat request, retrying transient failures with backoff. `seed` goes into
    /// the request; `key` identifies the call for the jitter.
    pub async fn chat(
        &self,
        messages: &[Message],
        response_format: &Value,
        seed: u64,
        key: u64,
    ) -> CallOutcome {
        let request = ChatRequest {
            model: &self.model,
            messages,
            temperature: 0.0,
            seed,
            max_tokens: self.max_tokens,
            response_format,
            stream: false,
        };
        let body = match serde_json::to_vec(&request) {
            Ok(b) => bytes::Bytes::from(b),
            Err(e) => {
                return CallOutcome {
                    result: Err(CallError::new(
                        ErrorKind::InvalidInput,
                        format!("encoding the request: {e}"),
                    )),
                    attempts: 0,
                };
            }
        };
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let result = {
                let _permit = self
                    .limit
                    .acquire()
                    .await
                    .expect("the semaphore is never closed");
                self.send_once(body.clone()).await
            };
            match result {
                Err(e) if e.kind.is_transient() && attempts <= self.policy.max_retries => {
                    let wait = self.policy.delay(self.seed, key, attempts, e.retry_after);
                    tracing::debug!(route = self.route.name(), attempt = attempts, error = %e, wait_s = wait.as_secs_f64(), "retrying");
                    tokio::time::sleep(wait).await;
                }
                result => return CallOutcome { result, attempts },
            }
        }
    }

    async fn send_once(&self, body: bytes::Bytes) -> Result<Completion, CallError> {
        let resp = self
            .http
            .post(&self.url)
            .header(CONTENT_TYPE, "application/json")
            .timeout(self.timeout)
            .body(body)
            .send()
            .await
            .map_err(|e| transport_error(&self.url, &e))?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| transport_error(&self.url, &e))?;
        if !status.is_success() {
            return Err(status_error(status, retry_after, &bytes));
        }
        let parsed: ChatResponse = serde_json::from_slice(&bytes).map_err(|e| {
            CallError::new(
                ErrorKind::MalformedResponse,
                format!(
                    "{}: the body is not a chat-completions response: {e}; body: {}",
                    self.url,
                    excerpt(&bytes)
                ),
            )
        })?;
        let choice = parsed.choices.into_iter().next().ok_or_else(|| {
            CallError::new(
                ErrorKind::MalformedResponse,
                format!("{}: the response has no choices", self.url),
            )
        })?;
        let content = choice.message.content.ok_or_else(|| {
            CallError::new(
                ErrorKind::MalformedResponse,
                format!("{}: the first choice has no content", self.url),
            )
        })?;
        Ok(Completion {
            content,
            finish_reason: choice.finish_reason,
            usage: parsed.usage,
        })
    }
}

fn excerpt(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    let mut out: String = s.chars().take(200).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    format!("{out:?}")
}

fn transport_error(url: &str, e: &reqwest::Error) -> CallError {
    use std::error::Error as _;
    let mut message = format!("{url}: {e}");
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else {
        ErrorKind::Connection
    };
    CallError::new(kind, message)
}

fn status_error(status: StatusCode, retry_after: Option<Duration>, body: &[u8]) -> CallError {
    let kind = if status == StatusCode::TOO_MANY_REQUESTS {
        ErrorKind::RateLimited
    } else if status.is_server_error() {
        ErrorKind::ServerError
    } else {
        ErrorKind::ClientError
    };
    // OpenAI-style servers explain themselves in {"error": {"message": ...}}.
    let detail = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| excerpt(body));
    CallError {
        kind,
        status: Some(status.as_u16()),
        message: format!("HTTP {status}: {detail}"),
        retry_after,
    }
}

/// Parses `Retry-After`: delay seconds (a decimal is accepted) or an HTTP date.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(1e6)));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 0.5 "), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("soon"), None);
        let later = SystemTime::now() + Duration::from_secs(30);
        let d = parse_retry_after(&httpdate::fmt_http_date(later)).unwrap();
        assert!(
            d > Duration::from_secs(27) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT"),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn backoff_grows_is_capped_and_is_deterministic() {
        let p = RetryPolicy {
            max_retries: 10,
            base: Duration::from_millis(100),
            max: Duration::from_millis(1000),
            max_retry_after: Duration::from_secs(5),
        };
        for retry in 1..=8 {
            let d = p.delay(7, 42, retry, None);
            let full =
                Duration::from_millis(100 * (1 << (retry - 1))).min(Duration::from_millis(1000));
            assert!(
                d >= full / 2 && d <= full,
                "retry {retry}: {d:?} vs {full:?}"
            );
            assert_eq!(d, p.delay(7, 42, retry, None));
        }
        let spread: std::collections::HashSet<Duration> =
            (0..50).map(|k| p.delay(7, k, 3, None)).collect();
        assert!(spread.len() > 40, "jitter spreads calls: {}", spread.len());
        let ra = p.delay(7, 1, 1, Some(Duration::from_secs(2)));
        assert!(
            ra >= Duration::from_secs(2) && ra < Duration::from_millis(2010),
            "{ra:?}"
        );
        let capped = p.delay(7, 1, 1, Some(Duration::from_secs(600)));
        assert!(capped < Duration::from_millis(5010), "{capped:?}");
    }

    #[test]
    fn gateway_urls_are_checked() {
        assert_eq!(
            normalise_gateway("http://gw:8080/").unwrap(),
            "http://gw:8080"
        );
        assert_eq!(
            normalise_gateway("https://gw/prefix").unwrap(),
            "https://gw/prefix"
        );
        for bad in ["gw:8080", "ftp://gw", "http://gw/?x=1", ""] {
            assert!(normalise_gateway(bad).is_err(), "{bad}");
        }
    }
}
