//! The HUD's live picture: the latest view of every env, the rooms seen so far with their
//! art, finished episodes and throughput, turned into one JSON snapshot for the browsers.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use serde::Serialize;
use telemetry::wire::{EnvUpdate, RoomRef, WorkerUpdate};

use crate::layout::{self, Canvas, Place};

/// Envs not heard from for this long leave the screen grid and the map (their worker
/// stopped); the rooms they visited stay shaded.
pub const ENV_TIMEOUT: Duration = Duration::from_secs(60);
/// Room art is refreshed from an agent's screen at most this often per room.
pub const ART_REFRESH: Duration = Duration::from_secs(3);
/// Episodes kept for the curves.
pub const MAX_EPISODES: usize = 2000;
/// Throughput samples kept (one per second).
pub const MAX_THROUGHPUT: usize = 900;
/// Screens sent to browsers per snapshot (the map still shows every agent).
pub const MAX_SCREENS: usize = 64;

const PLAY_MODE: u8 = 0x0B;

struct EnvEntry {
    run: String,
    view: EnvUpdate,
    screen: Option<String>,
    seen: Instant,
    /// The update sequence number since which the env has been in its current room.
    room_since: u64,
    seq: u64,
}

struct RoomEntry {
    visits: u64,
    art: Option<Bytes>,
    art_version: u64,
    art_at: Option<Instant>,
}

struct WorkerEntry {
    run: String,
    env_steps: u64,
    steps_per_second: f64,
    seen: Instant,
    updates: u64,
    dropped_episodes: u64,
}

/// A finished episode as the curves need it.
#[derive(Debug, Clone, Serialize)]
pub struct EpisodePoint {
    /// Seconds since the HUD started.
    pub t: f64,
    /// Run.
    pub run: String,
    /// Worker id.
    pub worker: String,
    /// Env index.
    pub env: u32,
    /// Episode number.
    pub episode: u64,
    /// Return.
    pub ret: f32,
    /// Steps.
    pub length: u32,
    /// Distinct rooms.
    pub rooms: u32,
}

/// Everything live.
pub struct Live {
    started: Instant,
    envs: BTreeMap<(String, u32), EnvEntry>,
    rooms: BTreeMap<RoomRef, RoomEntry>,
    workers: BTreeMap<String, WorkerEntry>,
    episodes: VecDeque<EpisodePoint>,
    episodes_total: u64,
    throughput: VecDeque<(f64, f64)>,
    last_sample: Option<Instant>,
    art_counter: u64,
    runs: BTreeSet<String>,
    last_run: Option<String>,
}

impl Default for Live {
    fn default() -> Self {
        Self::new()
    }
}

/// Env view as sent to browsers.
#[derive(Serialize)]
struct EnvOut<'a> {
    id: String,
    run: &'a str,
    worker: &'a str,
    #[serde(flatten)]
    view: &'a EnvUpdate,
    place: Place,
    age_s: f64,
}

#[derive(Serialize)]
struct RoomOut {
    #[serde(flatten)]
    room: RoomRef,
    place: Place,
    visits: u64,
    art: u64,
}

#[derive(Serialize)]
struct WorkerOut<'a> {
    worker: &'a str,
    run: &'a str,
    env_steps: u64,
    steps_per_second: f64,
    updates: u64,
    dropped_episodes: u64,
    age_s: f64,
}

#[derive(Serialize)]
struct Totals {
    envs: usize,
    workers: usize,
    env_steps: u64,
    steps_per_second: f64,
    episodes: u64,
    rooms: usize,
}

#[derive(Serialize)]
struct SnapshotOut<'a> {
    t: f64,
    runs: Vec<&'a str>,
    last_run: Option<&'a str>,
    totals: Totals,
    workers: Vec<WorkerOut<'a>>,
    envs: Vec<EnvOut<'a>>,
    rooms: Vec<RoomOut>,
    canvases: Vec<Canvas>,
    episodes: Vec<&'a EpisodePoint>,
    throughput: Vec<(f64, f64)>,
}

impl Live {
    /// Empty.
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            envs: BTreeMap::new(),
            rooms: BTreeMap::new(),
            workers: BTreeMap::new(),
            episodes: VecDeque::new(),
            episodes_total: 0,
            throughput: VecDeque::new(),
            last_sample: None,
            art_counter: 0,
            runs: BTreeSet::new(),
            last_run: None,
        }
    }

    fn t(&self, at: Instant) -> f64 {
        at.duration_since(self.started).as_secs_f64()
    }

    /// Takes in a (validated) worker update.
    pub fn apply(&mut self, u: WorkerUpdate) {
        let now = Instant::now();
        let t = self.t(now);
        self.runs.insert(u.run.clone());
        self.last_run = Some(u.run.clone());
        let w = self.workers.entry(u.worker.clone()).or_insert(WorkerEntry {
            run: u.run.clone(),
            env_steps: 0,
            steps_per_second: 0.0,
            seen: now,
            updates: 0,
            dropped_episodes: 0,
        });
        w.run = u.run.clone();
        w.env_steps = u.env_steps;
        w.steps_per_second = u.steps_per_second;
        w.seen = now;
        w.updates += 1;
        w.dropped_episodes = u.dropped_episodes;
        for mut view in u.envs {
            for r in view
                .rooms_entered
                .drain(..)
                .chain(std::iter::once(view.room))
            {
                self.rooms.entry(r).or_insert(RoomEntry {
                    visits: 0,
                    art: None,
                    art_version: 0,
                    art_at: None,
                });
            }
            let key = (u.worker.clone(), view.env);
            let prev = self.envs.get(&key);
            let room_since = match prev {
                Some(p) if p.view.room == view.room && p.seq < u.seq => p.room_since,
                _ => u.seq,
            };
            if let Some(room) = self.rooms.get_mut(&view.room) {
                room.visits += 1;
                // Art only from a screen in normal play that has been in this room since an
                // earlier update: a screen taken mid-transition shows half of the last room.
                let settled = room_since < u.seq && view.mode == PLAY_MODE;
                let stale = room
                    .art_at
                    .is_none_or(|a| now.duration_since(a) >= ART_REFRESH);
                if settled
                    && stale
                    && let Some(png) = view
                        .screen
                        .as_deref()
                        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
                {
                    self.art_counter += 1;
                    room.art = Some(Bytes::from(png));
                    room.art_version = self.art_counter;
                    room.art_at = Some(now);
                }
            }
            let screen = view.screen.take();
            self.envs.insert(
                key,
                EnvEntry {
                    run: u.run.clone(),
                    view,
                    screen,
                    seen: now,
                    room_since,
                    seq: u.seq,
                },
            );
        }
        for ep in u.episodes {
            self.episodes_total += 1;
            self.episodes.push_back(EpisodePoint {
                t,
                run: u.run.clone(),
                worker: u.worker.clone(),
                env: ep.env,
                episode: ep.episode,
                ret: ep.ret,
                length: ep.length,
                rooms: ep.rooms,
            });
            if self.episodes.len() > MAX_EPISODES {
                self.episodes.pop_front();
            }
        }
    }

    /// Drops envs and workers not heard from lately and samples throughput once a second.
    /// Returns whether anything changed.
    pub fn tick(&mut self) -> bool {
        let now = Instant::now();
        let before = (self.envs.len(), self.workers.len());
        self.envs
            .retain(|_, e| now.duration_since(e.seen) < ENV_TIMEOUT);
        self.workers
            .retain(|_, w| now.duration_since(w.seen) < ENV_TIMEOUT);
        let mut changed = before != (self.envs.len(), self.workers.len());
        if self
            .last_sample
            .is_none_or(|s| now.duration_since(s) >= Duration::from_secs(1))
        {
            self.last_sample = Some(now);
            if !self.workers.is_empty() {
                let sps: f64 = self.workers.values().map(|w| w.steps_per_second).sum();
                let t = self.t(now);
                self.throughput.push_back((t, sps));
                if self.throughput.len() > MAX_THROUGHPUT {
                    self.throughput.pop_front();
                }
                changed = true;
            }
        }
        changed
    }

    /// Live env count.
    pub fn env_count(&self) -> usize {
        self.envs.len()
    }

    /// The run most recently heard from.
    pub fn last_run(&self) -> Option<&str> {
        self.last_run.as_deref()
    }

    /// Runs heard from since the HUD started.
    pub fn runs(&self) -> impl Iterator<Item = &str> {
        self.runs.iter().map(String::as_str)
    }

    /// The latest art of a room: (PNG, version).
    pub fn room_art(&self, room: &RoomRef) -> Option<(Bytes, u64)> {
        self.rooms
            .get(room)
            .and_then(|r| r.art.clone().map(|a| (a, r.art_version)))
    }

    /// The snapshot every browser gets, as JSON.
    pub fn snapshot_json(&self) -> String {
        let now = Instant::now();
        let mut canvases = BTreeSet::new();
        let rooms: Vec<RoomOut> = self
            .rooms
            .iter()
            .map(|(r, e)| {
                let place = layout::place(r);
                canvases.insert(place.canvas.clone());
                RoomOut {
                    room: *r,
                    place,
                    visits: e.visits,
                    art: e.art_version,
                }
            })
            .collect();
        let envs: Vec<EnvOut<'_>> = self
            .envs
            .iter()
            .map(|((worker, env), e)| {
                let place = layout::place(&e.view.room);
                canvases.insert(place.canvas.clone());
                EnvOut {
                    id: format!("{worker}/{env}"),
                    run: &e.run,
                    worker,
                    view: &e.view,
                    place,
                    age_s: now.duration_since(e.seen).as_secs_f64(),
                }
            })
            .collect();
        // Screens travel beside the views (the views are borrowed and carry none).
        let screens: Vec<Option<&str>> = self
            .envs
            .values()
            .enumerate()
            .map(|(i, e)| {
                if i < MAX_SCREENS {
                    e.screen.as_deref()
                } else {
                    None
                }
            })
            .collect();
        let mut canvases: Vec<Canvas> = canvases.iter().map(|c| layout::canvas(c)).collect();
        // Overworld first, then maps by id.
        canvases.sort_by_key(|c| (c.id != "overworld", c.id.clone()));
        let out = SnapshotOut {
            t: self.t(now),
            runs: self.runs.iter().map(String::as_str).collect(),
            last_run: self.last_run.as_deref(),
            totals: Totals {
                envs: self.envs.len(),
                workers: self.workers.len(),
                env_steps: self.workers.values().map(|w| w.env_steps).sum(),
                steps_per_second: self.workers.values().map(|w| w.steps_per_second).sum(),
                episodes: self.episodes_total,
                rooms: self.rooms.len(),
            },
            workers: self
                .workers
                .iter()
                .map(|(id, w)| WorkerOut {
                    worker: id,
                    run: &w.run,
                    env_steps: w.env_steps,
                    steps_per_second: w.steps_per_second,
                    updates: w.updates,
                    dropped_episodes: w.dropped_episodes,
                    age_s: now.duration_since(w.seen).as_secs_f64(),
                })
                .collect(),
            envs,
            rooms,
            canvases,
            episodes: self.episodes.iter().rev().take(500).rev().collect(),
            throughput: self.throughput.iter().copied().collect(),
        };
        let mut v = serde_json::to_value(&out).expect("snapshot serialises");
        if let Some(arr) = v.get_mut("envs").and_then(|e| e.as_array_mut()) {
            for (e, s) in arr.iter_mut().zip(screens) {
                if let (Some(obj), Some(s)) = (e.as_object_mut(), s) {
                    obj.insert("screen".into(), serde_json::Value::String(s.to_string()));
                }
            }
        }
        serde_json::to_string(&v).expect("snapshot serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use telemetry::wire::{EpisodeUpdate, PROTOCOL_VERSION};

    fn view(env: u32, room: u8, screen: Option<&str>) -> EnvUpdate {
        EnvUpdate {
            env,
            episode: 1,
            step: 5,
            room: RoomRef {
                indoor: false,
                map: 0,
                room,
                grid: 0,
            },
            x: 80,
            y: 64,
            health: 24,
            max_hearts: 3,
            rupees: 0,
            keys: 0,
            instruments: 0,
            mode: PLAY_MODE,
            ret: 1.0,
            rooms_entered: vec![RoomRef {
                indoor: false,
                map: 0,
                room: 0x22,
                grid: 0,
            }],
            screen: screen.map(str::to_string),
        }
    }

    fn update(seq: u64, envs: Vec<EnvUpdate>) -> WorkerUpdate {
        WorkerUpdate {
            v: PROTOCOL_VERSION,
            run: "r1".into(),
            worker: "0".into(),
            seq,
            env_steps: seq * 10,
            steps_per_second: 100.0,
            envs,
            episodes: vec![EpisodeUpdate {
                env: 0,
                episode: 1,
                ret: 2.0,
                length: 9,
                rooms: 2,
                instruments: 0,
                terminated: false,
            }],
            dropped_episodes: 0,
        }
    }

    #[test]
    fn rooms_art_and_snapshot() {
        let mut live = Live::new();
        let png = base64::engine::general_purpose::STANDARD.encode(b"png-bytes");
        live.apply(update(1, vec![view(0, 0x21, Some(&png))]));
        // First update in a room: no art yet (it may be mid-transition).
        let r21 = RoomRef {
            indoor: false,
            map: 0,
            room: 0x21,
            grid: 0,
        };
        assert!(live.room_art(&r21).is_none());
        live.apply(update(2, vec![view(0, 0x21, Some(&png))]));
        let (art, v) = live.room_art(&r21).unwrap();
        assert_eq!(&art[..], b"png-bytes");
        assert!(v > 0);
        let snap: serde_json::Value = serde_json::from_str(&live.snapshot_json()).unwrap();
        assert_eq!(snap["totals"]["envs"], 1);
        assert_eq!(snap["totals"]["rooms"], 2, "{snap}");
        assert_eq!(snap["totals"]["episodes"], 2);
        assert_eq!(snap["envs"][0]["id"], "0/0");
        assert_eq!(snap["envs"][0]["screen"], png.as_str());
        assert_eq!(snap["envs"][0]["place"]["canvas"], "overworld");
        assert_eq!(snap["envs"][0]["place"]["col"], 1);
        assert_eq!(snap["envs"][0]["place"]["row"], 2);
        assert_eq!(snap["canvases"][0]["id"], "overworld");
        assert_eq!(snap["last_run"], "r1");
    }
}
