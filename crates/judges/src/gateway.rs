//! The gateway backend: one [`RouteClient`] per route, prompts, parsing and the
//! retry-once rule for replies that do not match the schema.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::client::{CallError, ErrorKind, RouteClient, Usage, call_key, response_format};
use crate::config::{ConfigError, JudgesConfig};
use crate::judgment::{
    Comparison, DialogAdvice, Judgment, PuzzlePlan, StateScore, VisionScore, parse_reply,
};
use crate::prompts::{self, Message, RenderOptions};
use crate::{Backend, JudgeRecord, Route, SegmentInput, Status, Task};

/// Clients for the four routes of one gateway.
#[derive(Debug, Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    base: String,
    config: JudgesConfig,
    clients: Vec<RouteClient>,
    formats: Vec<Value>,
}

fn schema_of(task: Task) -> (&'static str, Value) {
    match task {
        Task::Vision => (VisionScore::NAME, VisionScore::schema()),
        Task::State => (StateScore::NAME, StateScore::schema()),
        Task::Puzzle => (PuzzlePlan::NAME, PuzzlePlan::schema()),
        Task::Dialog => (DialogAdvice::NAME, DialogAdvice::schema()),
        Task::VisionCompare | Task::StateCompare => (Comparison::NAME, Comparison::schema()),
    }
}

fn task_index(task: Task) -> usize {
    Task::ALL
        .iter()
        .position(|t| *t == task)
        .expect("every task is in ALL")
}

fn route_index(route: Route) -> usize {
    Route::ALL
        .iter()
        .position(|r| *r == route)
        .expect("every route is in ALL")
}

impl Gateway {
    /// Clients for `{url}/{route}/v1/chat/completions`, sharing one connection pool.
    pub fn new(url: &str, config: JudgesConfig) -> Result<Self, ConfigError> {
        let pool: usize = Route::ALL
            .iter()
            .map(|r| config.route(*r).concurrency)
            .sum();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs_f64(config.connect_timeout_s))
            .pool_max_idle_per_host(pool)
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .user_agent(concat!("zelda-rl-judges/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError::Gateway {
                url: url.to_string(),
                message: format!("building the HTTP client: {e}"),
            })?;
        let clients = Route::ALL
            .iter()
            .map(|r| RouteClient::new(http.clone(), url, *r, &config))
            .collect::<Result<Vec<_>, _>>()?;
        let formats = Task::ALL
            .iter()
            .map(|t| {
                let (name, schema) = schema_of(*t);
                response_format(config.response_format, name, &schema)
            })
            .collect();
        Ok(Self {
            inner: Arc::new(Inner {
                base: crate::client::normalise_gateway(url)?,
                config,
                clients,
                formats,
            }),
        })
    }

    /// The gateway base URL.
    pub fn url(&self) -> &str {
        &self.inner.base
    }

    /// The configuration in use.
    pub fn config(&self) -> &JudgesConfig {
        &self.inner.config
    }

    /// The client of `route`.
    pub fn client(&self, route: Route) -> &RouteClient {
        &self.inner.clients[route_index(route)]
    }

    fn render_options(&self) -> RenderOptions {
        let c = &self.inner.config;
        RenderOptions {
            keyframes: c.keyframes,
            state_lines: c.state_lines,
            system_as_user: c.system_as_user,
        }
    }

    /// The messages a single-segment task sends (for inspection and prefix measurement).
    pub fn messages(&self, task: Task, input: &SegmentInput<'_>) -> Result<Vec<Message>, String> {
        prompts::messages(task, input, self.render_options())
    }

    /// The messages a compare task sends.
    pub fn compare_messages(
        &self,
        task: Task,
        a: &SegmentInput<'_>,
        b: &SegmentInput<'_>,
    ) -> Result<Vec<Message>, String> {
        prompts::compare_messages(task, a, b, self.render_options())
    }

    pub(crate) async fn judge<T: Judgment>(
        &self,
        task: Task,
        input: &SegmentInput<'_>,
    ) -> JudgeRecord<T> {
        let started = Instant::now();
        let messages = self.messages(task, input);
        self.run(task, messages, call_key(&[input.id, task.name()]), started)
            .await
    }

    pub(crate) async fn compare(
        &self,
        task: Task,
        a: &SegmentInput<'_>,
        b: &SegmentInput<'_>,
    ) -> JudgeRecord<Comparison> {
        let started = Instant::now();
        let messages = self.compare_messages(task, a, b);
        self.run(
            task,
            messages,
            call_key(&[a.id, b.id, task.name()]),
            started,
        )
        .await
    }

    /// Sends the call; a reply that is malformed or off-schema is retried once (with the
    /// next seed, since the same seed at temperature 0 would likely repeat it), then recorded.
    async fn run<T: Judgment>(
        &self,
        task: Task,
        messages: Result<Vec<Message>, String>,
        key: u64,
        started: Instant,
    ) -> JudgeRecord<T> {
        let client = self.client(task.route());
        let mut record = JudgeRecord {
            task,
            route: task.route(),
            backend: Backend::Gateway,
            model: client.model().to_string(),
            prompt: prompts::prompt(task).id.clone(),
            status: Status::Failed,
            result: None,
            error: None,
            attempts: 0,
            latency_s: 0.0,
            usage: None,
        };
        let messages = match messages {
            Ok(m) => m,
            Err(e) => {
                record.error = Some(CallError::new(ErrorKind::InvalidInput, e));
                record.latency_s = started.elapsed().as_secs_f64();
                return record;
            }
        };
        let format = &self.inner.formats[task_index(task)];
        let mut usage: Option<Usage> = None;
        for reply_try in 0..2u64 {
            let seed = self.inner.config.seed.wrapping_add(reply_try);
            let outcome = client.chat(&messages, format, seed, key).await;
            record.attempts += outcome.attempts;
            let error = match outcome.result {
                Ok(c) => {
                    if let Some(u) = c.usage {
                        *usage.get_or_insert_with(Usage::default) += u;
                    }
                    match parse_reply::<T>(&c.content) {
                        Ok(v) => {
                            record.status = Status::Ok;
                            record.result = Some(v);
                            record.error = None;
                            break;
                        }
                        Err(msg) => {
                            let msg = match c.finish_reason.as_deref() {
                                Some("length") => format!("{msg} (cut off at max_tokens)"),
                                _ => msg,
                            };
                            CallError::new(ErrorKind::SchemaMismatch, msg)
                        }
                    }
                }
                Err(e) => e,
            };
            let again = error.kind.is_bad_reply();
            tracing::debug!(route = task.route().name(), task = task.name(), error = %error, retry = again && reply_try == 0, "judge call failed");
            record.error = Some(error);
            if !again {
                break;
            }
        }
        record.usage = usage;
        record.latency_s = started.elapsed().as_secs_f64();
        record
    }
}
