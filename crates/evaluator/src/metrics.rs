//! Prometheus metrics of an evaluator run, served on `/metrics` when asked.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use judges::{ErrorKind, JudgeRecord, Route};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// `route` label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    /// `vision`, `dialog`, `puzzle` or `state`.
    pub route: String,
}

/// `route` and error `kind` labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// The route.
    pub route: String,
    /// An [`ErrorKind`] name.
    pub kind: String,
}

/// `route` and token `kind` (`prompt`, `completion`) labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    /// The route.
    pub route: String,
    /// `prompt` or `completion`.
    pub kind: String,
}

/// `outcome` label of segment counts.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// `ok`, `partial`, `failed`, `invalid_segment` or `skipped`.
    pub outcome: String,
}

/// One judge call as [`Metrics`] forwards it to a [`JudgeSink`].
#[derive(Debug, Clone, Copy)]
pub struct JudgeCall<'a> {
    /// The route asked.
    pub route: &'a str,
    /// Wall time of the call, retries included.
    pub seconds: f64,
    /// The error kind's name when it failed.
    pub error: Option<&'a str>,
    /// Prompt and completion tokens, when the server reported them.
    pub tokens: Option<(u64, u64)>,
}

/// Also receives every judge call (e.g. `zelda-rl train`'s process-wide metrics, which
/// outlive one evaluation).
pub type JudgeSink = Arc<dyn Fn(&JudgeCall<'_>) + Send + Sync>;

fn latency_histogram() -> Histogram {
    // 10 ms to about 5.5 min: test servers answer in milliseconds, a loaded 32B model in minutes.
    Histogram::new(exponential_buckets(0.01, 2.0, 16))
}

/// The evaluator's metrics. Cheap to clone (shared).
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    latency: Family<RouteLabel, Histogram, fn() -> Histogram>,
    errors: Family<ErrorLabels, Counter>,
    tokens: Family<TokenLabels, Counter>,
    segments: Family<OutcomeLabel, Counter>,
    pending: Gauge,
    sink: Option<JudgeSink>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        Self::build(None)
    }

    /// Metrics that also hand every judge call to `sink`.
    pub fn with_sink(sink: JudgeSink) -> Self {
        Self::build(Some(sink))
    }

    fn build(sink: Option<JudgeSink>) -> Self {
        let mut registry = Registry::default();
        let latency = Family::<RouteLabel, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let errors = Family::<ErrorLabels, Counter>::default();
        let tokens = Family::<TokenLabels, Counter>::default();
        let segments = Family::<OutcomeLabel, Counter>::default();
        let pending = Gauge::default();
        registry.register(
            "zelda_rl_judge_request_duration_seconds",
            "Wall time of judge calls per route, retries and waits included",
            latency.clone(),
        );
        registry.register(
            "zelda_rl_judge_errors",
            "Failed judge calls per route and error kind",
            errors.clone(),
        );
        registry.register(
            "zelda_rl_judge_tokens",
            "Tokens reported by judge servers",
            tokens.clone(),
        );
        registry.register(
            "zelda_rl_evaluator_segments",
            "Segments (or pairs) finished, by outcome",
            segments.clone(),
        );
        registry.register(
            "zelda_rl_evaluator_pending",
            "Segments (or pairs) still to judge",
            pending.clone(),
        );
        // Every route and error kind shows up from the start, so a dashboard sees zeros
        // rather than missing series.
        for route in Route::ALL {
            let _ = latency.get_or_create(&RouteLabel {
                route: route.name().into(),
            });
            for kind in ErrorKind::ALL {
                let _ = errors.get_or_create(&ErrorLabels {
                    route: route.name().into(),
                    kind: kind.name().into(),
                });
            }
        }
        Self {
            inner: Arc::new(Inner {
                registry,
                latency,
                errors,
                tokens,
                segments,
                pending,
                sink,
            }),
        }
    }

    /// Records one judge call.
    pub fn observe<T>(&self, record: &JudgeRecord<T>) {
        if let Some(sink) = &self.inner.sink {
            sink(&JudgeCall {
                route: record.route.name(),
                seconds: record.latency_s,
                error: record.error.as_ref().map(|e| e.kind.name()),
                tokens: record
                    .usage
                    .as_ref()
                    .map(|u| (u.prompt_tokens, u.completion_tokens)),
            });
        }
        let route = record.route.name().to_string();
        self.inner
            .latency
            .get_or_create(&RouteLabel {
                route: route.clone(),
            })
            .observe(record.latency_s);
        if let Some(e) = &record.error {
            self.inner
                .errors
                .get_or_create(&ErrorLabels {
                    route: route.clone(),
                    kind: e.kind.name().into(),
                })
                .inc();
        }
        if let Some(u) = &record.usage {
            self.inner
                .tokens
                .get_or_create(&TokenLabels {
                    route: route.clone(),
                    kind: "prompt".into(),
                })
                .inc_by(u.prompt_tokens);
            self.inner
                .tokens
                .get_or_create(&TokenLabels {
                    route,
                    kind: "completion".into(),
                })
                .inc_by(u.completion_tokens);
        }
    }

    /// Counts a finished segment (or pair).
    pub fn finished(&self, outcome: &str) {
        self.inner
            .segments
            .get_or_create(&OutcomeLabel {
                outcome: outcome.into(),
            })
            .inc();
    }

    /// Sets how many segments (or pairs) are still to judge.
    pub fn set_pending(&self, n: u64) {
        self.inner.pending.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.inner.registry)
            .expect("writing to a String cannot fail");
        out
    }

    /// Serves `GET /metrics` on `addr` until the returned handle is dropped or aborted;
    /// returns the bound address (port 0 picks one).
    pub async fn serve(&self, addr: SocketAddr) -> std::io::Result<(SocketAddr, MetricsServer)> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        let metrics = self.clone();
        let app = Router::new().route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        metrics.encode(),
                    )
                        .into_response()
                }
            }),
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok((bound, MetricsServer(task)))
    }
}

/// The running metrics endpoint; stops when dropped.
#[derive(Debug)]
pub struct MetricsServer(tokio::task::JoinHandle<()>);

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.0.abort();
    }
}
