//! [`HudFeed`]: what a rollout loop keeps to publish its envs to the HUD.
//!
//! The loop calls [`HudFeed::observe`] for every env after every step (a few comparisons,
//! no allocation unless the env changed rooms), [`HudFeed::episode_finished`] for every
//! finished episode, and [`HudFeed::maybe_publish`] once per step, which copies the screens
//! only when the publisher wants an update (about five times a second).

use std::time::{Duration, Instant};

use crate::publisher::{
    EnvSnapshot, HudPublisher, PublishError, PublisherConfig, PublisherStats, Snapshot,
};
use crate::wire::{EnvUpdate, EpisodeUpdate, RoomRef};

/// One env after one step, as the loop sees it.
#[derive(Debug, Clone, Copy)]
pub struct EnvTick<'a> {
    /// The state after the step (after the automatic reset when the episode ended).
    pub state: &'a zelda::GameState,
    /// The step's total reward.
    pub reward: f32,
    /// The episode ended on this step (the state is then the next episode's first).
    pub done: bool,
    /// The env's current episode number (1-based).
    pub episode: u64,
    /// Steps into the current episode.
    pub step: u32,
}

#[derive(Debug, Clone)]
struct EnvTrack {
    view: Option<EnvUpdate>,
    ret: f32,
    last_room: Option<RoomRef>,
    entered: Vec<RoomRef>,
}

/// Per-env bookkeeping plus the publisher.
#[derive(Debug)]
pub struct HudFeed {
    publisher: HudPublisher,
    envs: Vec<EnvTrack>,
    env_steps: u64,
    rate_start: Instant,
    rate_steps: u64,
    steps_per_second: f64,
}

impl HudFeed {
    /// A feed for `n_envs` envs of `worker` in `run`, publishing to the HUD at `hud_url`.
    pub fn new(
        hud_url: &str,
        run: &str,
        worker: &str,
        n_envs: usize,
    ) -> Result<Self, PublishError> {
        Self::with_config(hud_url, run, worker, n_envs, PublisherConfig::default())
    }

    /// Like [`HudFeed::new`] with explicit publisher settings.
    pub fn with_config(
        hud_url: &str,
        run: &str,
        worker: &str,
        n_envs: usize,
        cfg: PublisherConfig,
    ) -> Result<Self, PublishError> {
        Ok(Self {
            publisher: HudPublisher::new(hud_url, run, worker, cfg)?,
            envs: vec![
                EnvTrack {
                    view: None,
                    ret: 0.0,
                    last_room: None,
                    entered: Vec::new()
                };
                n_envs
            ],
            env_steps: 0,
            rate_start: Instant::now(),
            rate_steps: 0,
            steps_per_second: 0.0,
        })
    }

    /// The publisher (for its endpoint and counts).
    pub fn publisher(&self) -> &HudPublisher {
        &self.publisher
    }

    /// Records env `i` after a step. Returns the room it entered, if it changed rooms (the
    /// caller may feed that to `Metrics::room_entered`).
    pub fn observe(&mut self, i: usize, t: EnvTick<'_>) -> Option<RoomRef> {
        self.env_steps += 1;
        self.rate_steps += 1;
        let e = &mut self.envs[i];
        e.ret = if t.done { 0.0 } else { e.ret + t.reward };
        let room = RoomRef::of(t.state);
        let changed = e.last_room != Some(room);
        if changed {
            e.last_room = Some(room);
            // Bounded: a worker whose HUD is away for long keeps only the latest rooms.
            if e.entered.len() < 1024 {
                e.entered.push(room);
            }
        }
        let s = t.state;
        e.view = Some(EnvUpdate {
            env: i as u32,
            episode: t.episode,
            step: t.step,
            room,
            x: s.x,
            y: s.y,
            health: s.health,
            max_hearts: s.max_hearts,
            rupees: s.rupees,
            keys: s.small_keys,
            instruments: s.instrument_count(),
            mode: s.mode,
            ret: e.ret,
            rooms_entered: Vec::new(),
            screen: None,
        });
        changed.then_some(room)
    }

    /// Queues a finished episode for the HUD's curves.
    pub fn episode_finished(&mut self, ep: EpisodeUpdate) {
        self.publisher.episode_finished(ep);
    }

    /// Publishes when the publisher wants an update; `screen(i)` gives env `i`'s current
    /// 160x144 frame (shade indices). Returns whether an update was handed over.
    pub fn maybe_publish<'s>(&mut self, screen: impl Fn(usize) -> &'s [u8]) -> bool {
        let dt = self.rate_start.elapsed();
        if dt >= Duration::from_secs(1) {
            self.steps_per_second = self.rate_steps as f64 / dt.as_secs_f64();
            self.rate_start = Instant::now();
            self.rate_steps = 0;
        }
        if !self.publisher.wants_update() {
            return false;
        }
        let envs = self.env_snapshots(&screen);
        if envs.is_empty() {
            return false;
        }
        self.publisher.publish(Snapshot {
            env_steps: self.env_steps,
            steps_per_second: self.steps_per_second,
            envs,
        });
        true
    }

    /// Every env seen so far with its screen, handing over the rooms entered since the
    /// last update.
    fn env_snapshots<'s>(&mut self, screen: &impl Fn(usize) -> &'s [u8]) -> Vec<EnvSnapshot> {
        self.envs
            .iter_mut()
            .enumerate()
            .filter_map(|(i, e)| {
                let mut view = e.view.clone()?;
                view.rooms_entered = std::mem::take(&mut e.entered);
                Some(EnvSnapshot {
                    view,
                    frame: screen(i).to_vec(),
                })
            })
            .collect()
    }

    /// Publishes the final view and waits up to `wait` for it to be delivered.
    pub fn finish<'s>(
        mut self,
        wait: Duration,
        screen: impl Fn(usize) -> &'s [u8],
    ) -> PublisherStats {
        // Force a last update regardless of the interval, so the HUD sees the end state.
        let envs = self.env_snapshots(&screen);
        if !envs.is_empty() {
            self.publisher.publish(Snapshot {
                env_steps: self.env_steps,
                steps_per_second: self.steps_per_second,
                envs,
            });
        }
        self.publisher.finish(wait)
    }
}
