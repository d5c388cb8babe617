//! Every Prometheus metric zelda-rl exports, behind one typed handle.
//!
//! Names follow the Prometheus conventions: the `zelda_rl_` prefix, the unit in the name
//! (`_seconds`, `_bytes`, `_steps`), counters end in `_total`. Every process registers all
//! families (a family a process never touches stays at zero or empty), so one dashboard
//! works whichever process is scraped. [`metric_names`] lists the exposed sample names;
//! `cargo xtask gitops` checks the Grafana dashboard against it.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// The prefix of every metric name.
pub const PREFIX: &str = "zelda_rl";

/// Judge routes the gateway serves (label values of the judge metrics).
pub const JUDGE_ROUTES: [&str; 4] = ["vision", "dialog", "puzzle", "state"];

/// Judge error kinds (`judges::ErrorKind::name` of every kind), pre-created at zero.
pub const JUDGE_ERROR_KINDS: [&str; 8] = [
    "connection",
    "timeout",
    "rate_limited",
    "server_error",
    "client_error",
    "malformed_response",
    "schema_mismatch",
    "invalid_input",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndLabels {
    end: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RewardLabels {
    component: String,
    sign: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteKindLabels {
    route: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

/// Outcomes of the evaluator's segments (label values of `zelda_rl_evaluator_segments_total`).
pub const EVALUATOR_OUTCOMES: [&str; 5] = ["ok", "partial", "failed", "invalid_segment", "skipped"];

type FCounter = Counter<f64, AtomicU64>;
type FGauge = Gauge<f64, AtomicU64>;
type HistFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn judge_latency_histogram() -> Histogram {
    // 10 ms .. ~5.5 min, the evaluator's own buckets: test servers answer in milliseconds,
    // a loaded 32B model in minutes.
    Histogram::new(exponential_buckets(0.01, 2.0, 16))
}

/// One learner update's numbers (the fields of the PPO learner's `UpdateStats` that are
/// worth a time series).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LearnerStats {
    /// Clipped surrogate loss.
    pub policy_loss: f64,
    /// Value loss.
    pub value_loss: f64,
    /// Mean policy entropy.
    pub entropy: f64,
    /// Approximate KL divergence between the old and the new policy.
    pub approx_kl: f64,
    /// Share of samples whose ratio was clipped.
    pub clip_fraction: f64,
    /// Explained variance of the value head.
    pub explained_variance: f64,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
    /// Learning rate used.
    pub learning_rate: f64,
    /// Wall time of the update in seconds.
    pub duration_seconds: f64,
}

struct RateWindow {
    start: Instant,
    steps: u64,
}

struct Inner {
    registry: Registry,
    env_steps: Counter,
    env_steps_per_second: FGauge,
    rate: Mutex<RateWindow>,
    episodes: Family<EndLabels, Counter>,
    episode_return: Histogram,
    episode_length: Histogram,
    episode_rooms: Histogram,
    rooms_visited: Gauge,
    rooms_seen: Mutex<HashSet<u16>>,
    explore_cells: Gauge,
    explore_states: Gauge,
    explore_state_bytes: Gauge,
    explore_progress: Gauge,
    explore_ladder_cells: Gauge,
    explore_ladder_top: Gauge,
    explore_ladder_frontier: Gauge,
    explorer_episodes: Counter,
    explorer_instrument_episodes: Counter,
    reward: Family<RewardLabels, FCounter>,
    segments_written: Counter,
    segment_bytes: Counter,
    evaluator_segments: Family<OutcomeLabels, Counter>,
    evaluator_pending: Gauge,
    judge_duration: HistFamily<RouteLabels>,
    judge_errors: Family<RouteKindLabels, Counter>,
    judge_tokens: Family<RouteKindLabels, Counter>,
    learner_updates: Counter,
    learner_policy_loss: FGauge,
    learner_value_loss: FGauge,
    learner_entropy: FGauge,
    learner_approx_kl: FGauge,
    learner_clip_fraction: FGauge,
    learner_explained_variance: FGauge,
    learner_grad_norm: FGauge,
    learner_learning_rate: FGauge,
    learner_update_duration: Histogram,
    hud_updates: Counter,
    hud_update_bytes: Counter,
    hud_rejected: Counter,
    hud_clients: Gauge,
    hud_envs: Gauge,
}

/// The metrics of one process. Cheap to clone; every method is thread-safe and
/// non-blocking (atomic updates; the two small mutexes guard a rate window and a room set).
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every family, with the reward components and judge routes/error kinds
    /// known in advance pre-created at zero (so `rate()` sees them from the first scrape).
    pub fn new() -> Self {
        Self::with_labels(&zelda::RewardConfig::NAMES, &JUDGE_ROUTES)
    }

    /// Like [`Metrics::new`] with explicit reward component names and judge routes.
    pub fn with_labels(components: &[&str], routes: &[&str]) -> Self {
        let mut r = Registry::with_prefix(PREFIX);
        let env_steps = Counter::default();
        r.register(
            "env_steps",
            "Environment steps taken (agent actions)",
            env_steps.clone(),
        );
        let env_steps_per_second = FGauge::default();
        r.register(
            "env_steps_per_second",
            "Environment steps per second over the last second or more",
            env_steps_per_second.clone(),
        );
        let episodes = Family::<EndLabels, Counter>::default();
        r.register(
            "episodes",
            "Episodes finished, by how they ended",
            episodes.clone(),
        );
        for end in ["terminated", "truncated"] {
            let _ = episodes.get_or_create(&EndLabels { end });
        }
        let episode_return = Histogram::new([
            -20.0, -10.0, -5.0, -2.0, -1.0, 0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0,
            200.0, 500.0,
        ]);
        r.register(
            "episode_return",
            "Undiscounted heuristic return of finished episodes",
            episode_return.clone(),
        );
        let episode_length = Histogram::new(exponential_buckets(16.0, 2.0, 13));
        r.register_with_unit(
            "episode_length",
            "Length of finished episodes in agent steps",
            Unit::Other("steps".into()),
            episode_length.clone(),
        );
        let episode_rooms = Histogram::new([
            1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0, 48.0, 64.0, 128.0, 256.0,
        ]);
        r.register(
            "episode_rooms",
            "Distinct rooms entered in finished episodes",
            episode_rooms.clone(),
        );
        let rooms_visited = Gauge::default();
        r.register(
            "rooms_visited",
            "Distinct rooms entered by any environment of this process since it started",
            rooms_visited.clone(),
        );
        let explore_cells = Gauge::default();
        r.register(
            "explore_cells",
            "Cells (room areas, with the keys and instruments held and the world's progress) in the Go-Explore archive, summed over rollout workers",
            explore_cells.clone(),
        );
        let explore_states = Gauge::default();
        r.register(
            "explore_states",
            "Archived cells whose save state is kept, so episodes can start there (at most env.explore_cells per worker)",
            explore_states.clone(),
        );
        let explore_state_bytes = Gauge::default();
        r.register(
            "explore_state_bytes",
            "Bytes of the packed save states the Go-Explore archive keeps (carried in every env snapshot)",
            explore_state_bytes.clone(),
        );
        let explore_progress = Gauge::default();
        r.register(
            "explore_progress",
            "The most world progress (chests opened, doors unlocked, switches pressed) any Go-Explore archive cell holds, over rollout workers",
            explore_progress.clone(),
        );
        let explore_ladder_cells = Gauge::default();
        r.register(
            "explore_ladder_cells",
            "Archive cells on the goal ladder (env.explore_ladder), summed over rollout workers",
            explore_ladder_cells.clone(),
        );
        let explore_ladder_top = Gauge::default();
        r.register(
            "explore_ladder_top_rung",
            "The goal ladder's highest rung (archive returns from gaining an instrument), over rollout workers",
            explore_ladder_top.clone(),
        );
        let explore_ladder_frontier = Gauge::default();
        r.register(
            "explore_ladder_frontier_rung",
            "The goal ladder's frontier: the furthest rung from the goal the policy's ladder starts are drawn from, over rollout workers",
            explore_ladder_frontier.clone(),
        );
        let explorer_episodes = Counter::default();
        r.register(
            "explorer_episodes",
            "Finished episodes of the random explorers (env.explorers), counted at the end of each burst",
            explorer_episodes.clone(),
        );
        let explorer_instrument_episodes = Counter::default();
        r.register(
            "explorer_instrument_episodes",
            "Explorers' finished episodes that gained an instrument, counted at the end of each burst",
            explorer_instrument_episodes.clone(),
        );
        let reward = Family::<RewardLabels, FCounter>::default();
        r.register(
            "reward",
            "Sum of heuristic reward by component; negative rewards are counted under sign=negative as magnitudes",
            reward.clone(),
        );
        for c in components {
            for sign in ["positive", "negative"] {
                let _ = reward.get_or_create(&RewardLabels {
                    component: (*c).to_string(),
                    sign,
                });
            }
        }
        let segments_written = Counter::default();
        r.register(
            "segments_written",
            "Episode segments newly written to the store",
            segments_written.clone(),
        );
        let segment_bytes = Counter::default();
        r.register_with_unit(
            "segment",
            "Encoded bytes of segments written",
            Unit::Bytes,
            segment_bytes.clone(),
        );
        let evaluator_segments = Family::<OutcomeLabels, Counter>::default();
        r.register(
            "evaluator_segments",
            "Segments (or pairs) the evaluator finished, by outcome",
            evaluator_segments.clone(),
        );
        for outcome in EVALUATOR_OUTCOMES {
            let _ = evaluator_segments.get_or_create(&OutcomeLabels {
                outcome: outcome.into(),
            });
        }
        let evaluator_pending = Gauge::default();
        r.register(
            "evaluator_pending",
            "Segments (or pairs) the evaluator still has to judge",
            evaluator_pending.clone(),
        );
        let judge_duration: HistFamily<RouteLabels> =
            Family::new_with_constructor(judge_latency_histogram);
        r.register_with_unit(
            "judge_request_duration",
            "Judge call latency by gateway route, retries included",
            Unit::Seconds,
            judge_duration.clone(),
        );
        let judge_errors = Family::<RouteKindLabels, Counter>::default();
        r.register(
            "judge_errors",
            "Failed judge calls by route and error kind",
            judge_errors.clone(),
        );
        let judge_tokens = Family::<RouteKindLabels, Counter>::default();
        r.register(
            "judge_tokens",
            "Tokens the judges reported, by route and kind (prompt, completion)",
            judge_tokens.clone(),
        );
        for route in routes {
            let _ = judge_duration.get_or_create(&RouteLabels {
                route: (*route).to_string(),
            });
            for kind in JUDGE_ERROR_KINDS {
                let _ = judge_errors.get_or_create(&RouteKindLabels {
                    route: (*route).to_string(),
                    kind: kind.into(),
                });
            }
            for kind in ["prompt", "completion"] {
                let _ = judge_tokens.get_or_create(&RouteKindLabels {
                    route: (*route).to_string(),
                    kind: kind.into(),
                });
            }
        }
        let learner_updates = Counter::default();
        r.register(
            "learner_updates",
            "PPO updates done",
            learner_updates.clone(),
        );
        let mut gauge = |name: &str, help: &str| {
            let g = FGauge::default();
            r.register(name, help, g.clone());
            g
        };
        let learner_policy_loss = gauge(
            "learner_policy_loss",
            "Clipped surrogate loss of the last update",
        );
        let learner_value_loss = gauge("learner_value_loss", "Value loss of the last update");
        let learner_entropy = gauge("learner_entropy", "Mean policy entropy of the last update");
        let learner_approx_kl = gauge(
            "learner_approx_kl",
            "Approximate KL(old || new) of the last update",
        );
        let learner_clip_fraction = gauge(
            "learner_clip_fraction",
            "Share of samples clipped in the last update",
        );
        let learner_explained_variance = gauge(
            "learner_explained_variance",
            "Explained variance of the value head",
        );
        let learner_grad_norm = gauge("learner_grad_norm", "Gradient norm before clipping");
        let learner_learning_rate =
            gauge("learner_learning_rate", "Learning rate of the last update");
        let learner_update_duration = Histogram::new(exponential_buckets(0.05, 2.0, 12));
        r.register_with_unit(
            "learner_update_duration",
            "Wall time of one PPO update",
            Unit::Seconds,
            learner_update_duration.clone(),
        );
        let hud_updates = Counter::default();
        r.register(
            "hud_updates",
            "Worker updates the HUD accepted",
            hud_updates.clone(),
        );
        let hud_update_bytes = Counter::default();
        r.register_with_unit(
            "hud_update",
            "Bytes of worker updates the HUD accepted",
            Unit::Bytes,
            hud_update_bytes.clone(),
        );
        let hud_rejected = Counter::default();
        r.register(
            "hud_rejected_updates",
            "Worker updates the HUD rejected as malformed",
            hud_rejected.clone(),
        );
        let hud_clients = Gauge::default();
        r.register(
            "hud_clients",
            "Browsers connected to the HUD's live feed",
            hud_clients.clone(),
        );
        let hud_envs = Gauge::default();
        r.register(
            "hud_envs",
            "Environments the HUD currently shows (heard from in the last minute)",
            hud_envs.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                registry: r,
                env_steps,
                env_steps_per_second,
                rate: Mutex::new(RateWindow {
                    start: Instant::now(),
                    steps: 0,
                }),
                episodes,
                episode_return,
                episode_length,
                episode_rooms,
                rooms_visited,
                rooms_seen: Mutex::new(HashSet::new()),
                explore_cells,
                explore_states,
                explore_state_bytes,
                explore_progress,
                explore_ladder_cells,
                explore_ladder_top,
                explore_ladder_frontier,
                explorer_episodes,
                explorer_instrument_episodes,
                reward,
                segments_written,
                segment_bytes,
                evaluator_segments,
                evaluator_pending,
                judge_duration,
                judge_errors,
                judge_tokens,
                learner_updates,
                learner_policy_loss,
                learner_value_loss,
                learner_entropy,
                learner_approx_kl,
                learner_clip_fraction,
                learner_explained_variance,
                learner_grad_norm,
                learner_learning_rate,
                learner_update_duration,
                hud_updates,
                hud_update_bytes,
                hud_rejected,
                hud_clients,
                hud_envs,
            }),
        }
    }

    // ---- rollout workers ----

    /// `n` environment steps were taken (call once per batch step with the env count).
    /// Also refreshes `zelda_rl_env_steps_per_second` once a second has passed.
    pub fn env_steps(&self, n: u64) {
        self.inner.env_steps.inc_by(n);
        let mut w = self.inner.rate.lock().unwrap_or_else(|e| e.into_inner());
        w.steps += n;
        let dt = w.start.elapsed().as_secs_f64();
        if dt >= 1.0 {
            self.inner.env_steps_per_second.set(w.steps as f64 / dt);
            w.start = Instant::now();
            w.steps = 0;
        }
    }

    /// An episode ended: its return, length in steps, distinct rooms, and whether it ended
    /// inside the game (`terminated`) or by the step limit.
    pub fn episode_finished(&self, ret: f64, length: u64, rooms: u64, terminated: bool) {
        let end = if terminated {
            "terminated"
        } else {
            "truncated"
        };
        self.inner.episodes.get_or_create(&EndLabels { end }).inc();
        self.inner.episode_return.observe(ret);
        self.inner.episode_length.observe(length as f64);
        self.inner.episode_rooms.observe(rooms as f64);
    }

    /// An environment is in `room` (cheap when already seen; call on room changes).
    pub fn room_entered(&self, room: zelda::RoomKey) {
        let mut seen = self
            .inner
            .rooms_seen
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if seen.insert(room.global_index()) {
            self.inner.rooms_visited.set(seen.len() as i64);
        }
    }

    /// The Go-Explore archive now: cells reached, states kept and their bytes (summed over
    /// rollout workers), and the most world progress a cell holds.
    pub fn explore_archive(&self, cells: u64, states: u64, state_bytes: u64, progress: u64) {
        let g = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.inner.explore_cells.set(g(cells));
        self.inner.explore_states.set(g(states));
        self.inner.explore_state_bytes.set(g(state_bytes));
        self.inner.explore_progress.set(g(progress));
    }

    /// The goal ladder now: cells on it (summed over rollout workers), its top rung and
    /// its frontier rung (the most of any worker).
    pub fn explore_ladder(&self, cells: u64, top: u64, frontier: u64) {
        let g = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.inner.explore_ladder_cells.set(g(cells));
        self.inner.explore_ladder_top.set(g(top));
        self.inner.explore_ladder_frontier.set(g(frontier));
    }

    /// `episodes` more explorer episodes finished, `instrument` of them gaining an
    /// instrument.
    pub fn explorer_episodes(&self, episodes: u64, instrument: u64) {
        self.inner.explorer_episodes.inc_by(episodes);
        self.inner.explorer_instrument_episodes.inc_by(instrument);
    }

    /// One step's (or many steps' summed) weighted reward components, in
    /// `zelda::RewardConfig::NAMES` order.
    pub fn rewards(&self, components: &[f32]) {
        for (name, &v) in zelda::RewardConfig::NAMES.iter().zip(components) {
            self.reward_component(name, f64::from(v));
        }
    }

    /// Counts per-component (positive, negative) sums gathered by [`add_reward_parts`], in
    /// `zelda::RewardConfig::NAMES` order.
    pub fn reward_parts(&self, parts: &[(f64, f64)]) {
        for (name, &(positive, negative)) in zelda::RewardConfig::NAMES.iter().zip(parts) {
            self.reward_component(name, positive);
            self.reward_component(name, negative);
        }
    }

    /// Adds `value` to one reward component's counter.
    pub fn reward_component(&self, component: &str, value: f64) {
        if value == 0.0 || !value.is_finite() {
            return;
        }
        let sign = if value > 0.0 { "positive" } else { "negative" };
        self.inner
            .reward
            .get_or_create(&RewardLabels {
                component: component.to_string(),
                sign,
            })
            .inc_by(value.abs());
    }

    /// A segment of `bytes` encoded bytes was newly written to the store.
    pub fn segment_written(&self, bytes: u64) {
        self.inner.segments_written.inc();
        self.inner.segment_bytes.inc_by(bytes);
    }

    /// `n` segments of `bytes` encoded bytes in all were newly written (totals reported by
    /// the segment exporter).
    pub fn segments_written(&self, n: u64, bytes: u64) {
        self.inner.segments_written.inc_by(n);
        self.inner.segment_bytes.inc_by(bytes);
    }

    // ---- evaluator / judges ----

    /// A judge call on `route` finished after `seconds` (retries included): `Ok` or the
    /// error kind's name (`timeout`, `rate_limited`, ... as `judges::ErrorKind::name`).
    /// Calls per route are the histogram's `_count`; the error rate is
    /// `zelda_rl_judge_errors_total / zelda_rl_judge_request_duration_seconds_count`.
    pub fn judge_call(&self, route: &str, seconds: f64, result: Result<(), &str>) {
        let route_s = route.to_string();
        self.inner
            .judge_duration
            .get_or_create(&RouteLabels {
                route: route_s.clone(),
            })
            .observe(seconds);
        if let Err(kind) = result {
            self.inner
                .judge_errors
                .get_or_create(&RouteKindLabels {
                    route: route_s,
                    kind: kind.to_string(),
                })
                .inc();
        }
    }

    /// Token counts one judge call reported.
    pub fn judge_tokens(&self, route: &str, prompt: u64, completion: u64) {
        for (kind, n) in [("prompt", prompt), ("completion", completion)] {
            self.inner
                .judge_tokens
                .get_or_create(&RouteKindLabels {
                    route: route.to_string(),
                    kind: kind.into(),
                })
                .inc_by(n);
        }
    }

    /// The evaluator finished a segment (or pair): `outcome` is one of
    /// [`EVALUATOR_OUTCOMES`] (`ok`, `partial`, `failed`, `invalid_segment`, `skipped`).
    pub fn evaluator_segment(&self, outcome: &str) {
        self.inner
            .evaluator_segments
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// Segments (or pairs) the evaluator still has to judge.
    pub fn set_evaluator_pending(&self, n: u64) {
        self.inner
            .evaluator_pending
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    // ---- learner ----

    /// One PPO update finished.
    pub fn learner_update(&self, s: &LearnerStats) {
        let i = &self.inner;
        i.learner_updates.inc();
        i.learner_policy_loss.set(s.policy_loss);
        i.learner_value_loss.set(s.value_loss);
        i.learner_entropy.set(s.entropy);
        i.learner_approx_kl.set(s.approx_kl);
        i.learner_clip_fraction.set(s.clip_fraction);
        i.learner_explained_variance.set(s.explained_variance);
        i.learner_grad_norm.set(s.grad_norm);
        i.learner_learning_rate.set(s.learning_rate);
        i.learner_update_duration.observe(s.duration_seconds);
    }

    // ---- HUD ----

    /// The HUD accepted a worker update of `bytes` bytes.
    pub fn hud_update(&self, bytes: u64) {
        self.inner.hud_updates.inc();
        self.inner.hud_update_bytes.inc_by(bytes);
    }

    /// The HUD rejected a malformed update.
    pub fn hud_rejected(&self) {
        self.inner.hud_rejected.inc();
    }

    /// Browsers connected to the live feed.
    pub fn set_hud_clients(&self, n: usize) {
        self.inner.hud_clients.set(n as i64);
    }

    /// Environments on the HUD.
    pub fn set_hud_envs(&self, n: usize) {
        self.inner.hud_envs.set(n as i64);
    }

    /// The OpenMetrics text exposition of every family.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        encode(&mut out, &self.inner.registry).expect("writing to a String cannot fail");
        out
    }
}

/// Adds one env step's weighted reward components to per-component (positive, negative)
/// sums: `zelda_rl_reward_total` counts the two signs apart, so they are summed apart.
pub fn add_reward_parts(parts: &mut [(f64, f64)], components: &[f32]) {
    for (part, &c) in parts.iter_mut().zip(components) {
        if c > 0.0 {
            part.0 += f64::from(c);
        } else {
            part.1 += f64::from(c);
        }
    }
}

/// Every sample name a zelda-rl process can expose (every labelled family is pre-created
/// with its known label values in [`Metrics::with_labels`], so all of them are encoded) (`zelda_rl_env_steps_total`,
/// `zelda_rl_episode_return_bucket`, ...), derived from the registry's own exposition so it
/// cannot drift from the code: counters with `_total`, histograms with `_bucket`, `_sum`
/// and `_count`, gauges as they are.
pub fn metric_names() -> Vec<String> {
    let text = Metrics::new().encode();
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
            continue;
        };
        match kind {
            "counter" => out.push(format!("{name}_total")),
            "histogram" => {
                for suffix in ["_bucket", "_sum", "_count"] {
                    out.push(format!("{name}{suffix}"));
                }
            }
            _ => out.push(name.to_string()),
        }
    }
    out.sort();
    out.dedup();
    out
}

/// A human-readable table of [`metric_names`] with their help text (for docs).
pub fn describe() -> String {
    let text = Metrics::new().encode();
    let mut out = String::new();
    let mut help = std::collections::BTreeMap::new();
    let mut kinds = std::collections::BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            if let Some((n, h)) = rest.split_once(' ') {
                help.insert(n.to_string(), h.to_string());
            }
        } else if let Some(rest) = line.strip_prefix("# TYPE ")
            && let Some((n, k)) = rest.split_once(' ')
        {
            kinds.insert(n.to_string(), k.to_string());
        }
    }
    for (name, kind) in &kinds {
        let shown = if kind == "counter" {
            format!("{name}_total")
        } else {
            name.clone()
        };
        let _ = writeln!(
            out,
            "| `{shown}` | {kind} | {} |",
            help.get(name).map_or("", String::as_str)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_conventions() {
        let names = metric_names();
        assert!(names.len() > 30, "{names:?}");
        for n in &names {
            assert!(n.starts_with("zelda_rl_"), "{n}");
            assert!(!n.contains("_total_"), "{n}");
        }
        for want in [
            "zelda_rl_env_steps_total",
            "zelda_rl_env_steps_per_second",
            "zelda_rl_episodes_total",
            "zelda_rl_episode_return_bucket",
            "zelda_rl_episode_length_steps_bucket",
            "zelda_rl_episode_rooms_count",
            "zelda_rl_rooms_visited",
            "zelda_rl_reward_total",
            "zelda_rl_segments_written_total",
            "zelda_rl_segment_bytes_total",
            "zelda_rl_evaluator_segments_total",
            "zelda_rl_evaluator_pending",
            "zelda_rl_judge_request_duration_seconds_bucket",
            "zelda_rl_judge_request_duration_seconds_count",
            "zelda_rl_judge_errors_total",
            "zelda_rl_judge_tokens_total",
            "zelda_rl_learner_policy_loss",
            "zelda_rl_learner_approx_kl",
            "zelda_rl_learner_entropy",
            "zelda_rl_learner_update_duration_seconds_sum",
            "zelda_rl_hud_clients",
            "zelda_rl_explore_cells",
            "zelda_rl_explore_state_bytes",
            "zelda_rl_explore_ladder_frontier_rung",
            "zelda_rl_explorer_episodes_total",
        ] {
            assert!(
                names.iter().any(|n| n == want),
                "{want} missing from {names:?}"
            );
        }
    }

    #[test]
    fn values_show_up_in_the_exposition() {
        let m = Metrics::new();
        m.env_steps(10);
        m.episode_finished(3.5, 100, 4, false);
        m.room_entered(zelda::RoomKey {
            indoor: false,
            map: 0,
            room: 0x21,
        });
        m.room_entered(zelda::RoomKey {
            indoor: false,
            map: 0,
            room: 0x21,
        });
        m.room_entered(zelda::RoomKey {
            indoor: true,
            map: 0,
            room: 0x23,
        });
        m.reward_component("rupee", 2.0);
        m.reward_component("health", -0.5);
        m.judge_call("vision", 0.2, Ok(()));
        m.judge_call("state", 1.0, Err("timeout"));
        m.learner_update(&LearnerStats {
            approx_kl: 0.02,
            entropy: 1.9,
            ..LearnerStats::default()
        });
        m.segment_written(1234);
        m.explore_archive(326, 300, 912_345, 3);
        m.explore_ladder(40, 7, 2);
        m.explorer_episodes(12, 3);
        m.explorer_episodes(5, 0);
        let text = m.encode();
        for line in [
            "zelda_rl_explore_ladder_cells 40",
            "zelda_rl_explore_ladder_top_rung 7",
            "zelda_rl_explore_ladder_frontier_rung 2",
            "zelda_rl_explorer_episodes_total 17",
            "zelda_rl_explorer_instrument_episodes_total 3",
            "zelda_rl_explore_cells 326",
            "zelda_rl_explore_states 300",
            "zelda_rl_explore_state_bytes 912345",
            "zelda_rl_explore_progress 3",
            "zelda_rl_env_steps_total 10",
            "zelda_rl_episodes_total{end=\"truncated\"} 1",
            "zelda_rl_rooms_visited 2",
            "zelda_rl_reward_total{component=\"rupee\",sign=\"positive\"} 2.0",
            "zelda_rl_reward_total{component=\"health\",sign=\"negative\"} 0.5",
            "zelda_rl_judge_errors_total{route=\"state\",kind=\"timeout\"} 1",
            "zelda_rl_judge_request_duration_seconds_count{route=\"vision\"} 1",
            "zelda_rl_learner_approx_kl 0.02",
            "zelda_rl_segment_bytes_total 1234",
            "zelda_rl_episode_length_steps_count 1",
        ] {
            assert!(text.lines().any(|l| l == line), "`{line}` not in:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
