//! What the rollout workers, the learner and the evaluator publish about themselves.
//!
//! - [`Metrics`]: every Prometheus metric family of zelda-rl (names `zelda_rl_*`, units in
//!   the names, `_total` counters) behind a small typed API, and [`serve_metrics`] /
//!   [`metrics_router`] to expose them on `/metrics`.
//! - [`HudFeed`] / [`HudPublisher`]: the client side of the live HUD. Workers POST their
//!   envs' screens and positions to `zelda-rl hud`; the publisher never blocks training
//!   (latest update wins, bounded rate, failures logged once and retried later).
//! - [`tensorboard`]: a writer of real TensorBoard event files (TFRecord framing, masked
//!   CRC32C, `Event`/`Summary` protobufs encoded by hand).

mod crc32c;
pub mod feed;
pub mod metrics;
pub mod publisher;
pub mod server;
pub mod tensorboard;
pub mod wire;

pub use feed::{EnvTick, HudFeed};
pub use metrics::{LearnerStats, Metrics, add_reward_parts, metric_names};
pub use publisher::{HudPublisher, PublishError, PublisherConfig, PublisherStats};
pub use server::{MetricsServer, metrics_router, serve_metrics};
pub use tensorboard::{EventFile, EventWriter, Scalars};
