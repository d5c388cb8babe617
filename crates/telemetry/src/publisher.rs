//! The HUD publisher: a background thread that POSTs the latest [`WorkerUpdate`] to the HUD.
//!
//! It never blocks the caller. There is one pending slot: publishing while a send is in
//! flight replaces the pending update (the stale one is dropped and counted); screens are
//! PNG-encoded on the publisher's thread, not the caller's. Episode ends are events rather
//! than state, so they queue (bounded, oldest dropped and counted) and ride along with the
//! next update that is delivered. A failure is logged once at `warn`, retried with backoff
//! (1 s doubling to 10 s) while newer updates keep replacing the pending one, and the
//! recovery is logged at `info`.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::wire::{EnvUpdate, EpisodeUpdate, PROTOCOL_VERSION, WorkerUpdate};

/// Why a publisher could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The HUD URL is not an http(s) URL.
    #[error("HUD URL `{url}`: {reason}")]
    BadUrl {
        /// What was given.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The HTTP client or the thread could not start.
    #[error("HUD publisher: {0}")]
    Start(String),
}

/// Publisher settings.
#[derive(Debug, Clone)]
pub struct PublisherConfig {
    /// Least time between two updates offered (the HUD shows several per second).
    pub min_interval: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Episode ends kept while the HUD is unreachable.
    pub max_queued_episodes: usize,
    /// First retry delay after a failure (doubles up to `max_backoff`).
    pub backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
}

impl Default for PublisherConfig {
    fn default() -> Self {
        Self {
            min_interval: Duration::from_millis(200),
            timeout: Duration::from_secs(2),
            max_queued_episodes: 4096,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
        }
    }
}

/// What the publisher did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublisherStats {
    /// Updates the HUD accepted.
    pub sent: u64,
    /// Updates replaced by a newer one before they were sent.
    pub superseded: u64,
    /// Failed sends.
    pub failures: u64,
    /// Episode ends dropped from the bounded queue.
    pub dropped_episodes: u64,
}

/// One env's view as handed over by the caller: raw screen, encoded later.
#[derive(Debug, Clone)]
pub struct EnvSnapshot {
    /// Everything but the screen.
    pub view: EnvUpdate,
    /// 160x144 shade indices (0..=3), or empty for none.
    pub frame: Vec<u8>,
}

/// An update as handed over: encoded on the publisher thread.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Env steps taken by this worker.
    pub env_steps: u64,
    /// Recent speed.
    pub steps_per_second: f64,
    /// The envs.
    pub envs: Vec<EnvSnapshot>,
}

#[derive(Default)]
struct Slot {
    pending: Option<Snapshot>,
    episodes: VecDeque<EpisodeUpdate>,
    dropped_episodes: u64,
    closing: bool,
    in_flight: bool,
    stats: PublisherStats,
    last_offer: Option<Instant>,
}

struct Shared {
    slot: Mutex<Slot>,
    wake: Condvar,
}

/// Sends a worker's updates to the HUD from a background thread.
pub struct HudPublisher {
    shared: Arc<Shared>,
    cfg: PublisherConfig,
    thread: Option<JoinHandle<()>>,
    url: String,
}

impl std::fmt::Debug for HudPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HudPublisher")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Normalises a HUD base URL and returns the publish endpoint.
pub fn publish_endpoint(base: &str) -> Result<String, PublishError> {
    let bad = |reason: &str| PublishError::BadUrl {
        url: base.to_string(),
        reason: reason.to_string(),
    };
    let trimmed = base.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("http://")
        .or_else(|| trimmed.strip_prefix("https://"))
        .ok_or_else(|| {
            bad("must start with http:// or https:// (for example http://127.0.0.1:8080)")
        })?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(bad("has no host"));
    }
    if rest.contains(['?', '#', ' ']) {
        return Err(bad("must be a base URL without query, fragment or spaces"));
    }
    Ok(format!("{trimmed}/api/publish"))
}

impl HudPublisher {
    /// Starts publishing to the HUD at `base_url` as `worker` of `run`.
    pub fn new(
        base_url: &str,
        run: &str,
        worker: &str,
        cfg: PublisherConfig,
    ) -> Result<Self, PublishError> {
        let endpoint = publish_endpoint(base_url)?;
        let client = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .build()
            .map_err(|e| PublishError::Start(e.to_string()))?;
        let shared = Arc::new(Shared {
            slot: Mutex::new(Slot::default()),
            wake: Condvar::new(),
        });
        let thread = {
            let shared = shared.clone();
            let cfg = cfg.clone();
            let (run, worker, endpoint) = (run.to_string(), worker.to_string(), endpoint.clone());
            std::thread::Builder::new()
                .name("hud-publisher".into())
                .spawn(move || sender(shared, client, cfg, endpoint, run, worker))
                .map_err(|e| PublishError::Start(e.to_string()))?
        };
        Ok(Self {
            shared,
            cfg,
            thread: Some(thread),
            url: endpoint,
        })
    }

    /// The endpoint updates go to.
    pub fn endpoint(&self) -> &str {
        &self.url
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.shared.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether an update is wanted now: the interval passed and nothing is waiting to be
    /// sent. Checking first saves copying screens that would only be replaced.
    pub fn wants_update(&self) -> bool {
        let s = self.lock();
        s.pending.is_none()
            && s.last_offer
                .is_none_or(|t| t.elapsed() >= self.cfg.min_interval)
    }

    /// Hands over the latest view (replacing a pending one). Never blocks on the network.
    pub fn publish(&self, snapshot: Snapshot) {
        let mut s = self.lock();
        if s.pending.replace(snapshot).is_some() {
            s.stats.superseded += 1;
        }
        s.last_offer = Some(Instant::now());
        drop(s);
        self.shared.wake.notify_one();
    }

    /// Queues an episode end for the next delivered update.
    pub fn episode_finished(&self, ep: EpisodeUpdate) {
        let mut s = self.lock();
        if s.episodes.len() >= self.cfg.max_queued_episodes {
            s.episodes.pop_front();
            s.dropped_episodes += 1;
            s.stats.dropped_episodes += 1;
        }
        s.episodes.push_back(ep);
    }

    /// Counts so far.
    pub fn stats(&self) -> PublisherStats {
        self.lock().stats
    }

    /// Sends what is pending (waiting at most `wait`), stops the thread and returns the
    /// counts.
    pub fn finish(mut self, wait: Duration) -> PublisherStats {
        let deadline = Instant::now() + wait;
        {
            let mut s = self.lock();
            while (s.pending.is_some() || s.in_flight) && Instant::now() < deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                s = self
                    .shared
                    .wake
                    .wait_timeout(s, left.min(Duration::from_millis(50)))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
        self.stop();
        self.stats()
    }

    fn stop(&mut self) {
        self.lock().closing = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for HudPublisher {
    fn drop(&mut self) {
        self.stop();
    }
}

fn encode(
    snapshot: Snapshot,
    run: &str,
    worker: &str,
    seq: u64,
    episodes: Vec<EpisodeUpdate>,
    dropped: u64,
) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let envs = snapshot
        .envs
        .into_iter()
        .map(|s| {
            let mut v = s.view;
            if s.frame.len() == gameboy::WIDTH * gameboy::HEIGHT {
                v.screen = Some(b64.encode(episodes::frames::encode_png(&s.frame)));
            }
            v
        })
        .collect();
    let update = WorkerUpdate {
        v: PROTOCOL_VERSION,
        run: run.to_string(),
        worker: worker.to_string(),
        seq,
        env_steps: snapshot.env_steps,
        steps_per_second: if snapshot.steps_per_second.is_finite() {
            snapshot.steps_per_second
        } else {
            0.0
        },
        envs,
        episodes,
        dropped_episodes: dropped,
    };
    serde_json::to_vec(&update).expect("updates serialise")
}

fn sender(
    shared: Arc<Shared>,
    client: reqwest::Client,
    cfg: PublisherConfig,
    endpoint: String,
    run: String,
    worker: String,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "HUD publisher: no runtime; nothing will be published");
            return;
        }
    };
    let mut seq = 0u64;
    let mut failing_since: Option<Instant> = None;
    let mut backoff = cfg.backoff;
    let mut retry_at: Option<Instant> = None;
    loop {
        // Wait for work (or the retry time), then take the latest snapshot and the queue.
        let (snapshot, episodes, dropped) = {
            let mut s = shared.slot.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if s.closing && (s.pending.is_none() || failing_since.is_some()) {
                    return;
                }
                let retry_ok = retry_at.is_none_or(|t| Instant::now() >= t);
                if s.pending.is_some() && (retry_ok || s.closing) {
                    break;
                }
                let wait = retry_at
                    .map(|t| t.saturating_duration_since(Instant::now()))
                    .unwrap_or(Duration::from_secs(3600))
                    .max(Duration::from_millis(1));
                s = shared
                    .wake
                    .wait_timeout(s, wait)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            s.in_flight = true;
            let snap = s.pending.take().expect("checked");
            let eps: Vec<_> = s.episodes.drain(..).collect();
            (snap, eps, s.dropped_episodes)
        };
        seq += 1;
        let body = encode(snapshot, &run, &worker, seq, episodes.clone(), dropped);
        let result = rt.block_on(async {
            let resp = client
                .post(&endpoint)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let status = resp.status();
            if status.is_success() {
                Ok(())
            } else {
                let text = resp.text().await.unwrap_or_default();
                Err(format!("HTTP {status}: {}", text.trim()))
            }
        });
        let mut s = shared.slot.lock().unwrap_or_else(|e| e.into_inner());
        s.in_flight = false;
        match result {
            Ok(()) => {
                s.stats.sent += 1;
                if let Some(since) = failing_since.take() {
                    tracing::info!(
                        endpoint,
                        after_s = since.elapsed().as_secs(),
                        "HUD reachable again"
                    );
                }
                backoff = cfg.backoff;
                retry_at = None;
            }
            Err(e) => {
                s.stats.failures += 1;
                // The episodes go back to the front of the queue, still bounded.
                for ep in episodes.into_iter().rev() {
                    if s.episodes.len() >= cfg.max_queued_episodes {
                        s.dropped_episodes += 1;
                        s.stats.dropped_episodes += 1;
                        continue;
                    }
                    s.episodes.push_front(ep);
                }
                if failing_since.is_none() {
                    tracing::warn!(endpoint, error = %e, "HUD publish failed; training goes on, retrying in the background");
                    failing_since = Some(Instant::now());
                } else {
                    tracing::debug!(endpoint, error = %e, "HUD publish failed again");
                }
                retry_at = Some(Instant::now() + backoff);
                backoff = (backoff * 2).min(cfg.max_backoff);
            }
        }
        drop(s);
        shared.wake.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            publish_endpoint("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080/api/publish"
        );
        assert_eq!(
            publish_endpoint("http://hud:8080/").unwrap(),
            "http://hud:8080/api/publish"
        );
        assert_eq!(
            publish_endpoint("https://hud.example/x").unwrap(),
            "https://hud.example/x/api/publish"
        );
        for bad in ["127.0.0.1:8080", "ftp://x", "http://", "http://x?y=1"] {
            let e = publish_endpoint(bad).unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
    }

    #[test]
    fn an_unreachable_hud_never_blocks_and_keeps_counts() {
        // A port nothing listens on: bind, take the port, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cfg = PublisherConfig {
            min_interval: Duration::ZERO,
            timeout: Duration::from_millis(200),
            max_queued_episodes: 3,
            backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(40),
        };
        let p = HudPublisher::new(&format!("http://127.0.0.1:{port}"), "r", "0", cfg).unwrap();
        let t0 = Instant::now();
        for i in 0..200u64 {
            p.publish(Snapshot {
                env_steps: i,
                steps_per_second: 1.0,
                envs: Vec::new(),
            });
            p.episode_finished(EpisodeUpdate {
                env: 0,
                episode: i,
                ret: 0.0,
                length: 1,
                rooms: 1,
                instruments: 0,
                terminated: false,
            });
        }
        assert!(
            t0.elapsed() < Duration::from_millis(100),
            "publishing blocked: {:?}",
            t0.elapsed()
        );
        std::thread::sleep(Duration::from_millis(300));
        let stats = p.finish(Duration::from_millis(100));
        assert_eq!(stats.sent, 0);
        assert!(stats.failures >= 1, "{stats:?}");
        assert!(stats.superseded >= 150, "{stats:?}");
        assert!(stats.dropped_episodes >= 197, "{stats:?}");
    }
}
