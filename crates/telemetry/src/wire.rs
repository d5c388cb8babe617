//! The HUD's wire format: what a worker POSTs to `<hud>/api/publish` (JSON).
//!
//! One [`WorkerUpdate`] carries the latest view of every env of a worker plus the episodes
//! that ended since the previous update. Screens are 160x144 2-bit greyscale PNGs
//! (`episodes::frames::encode_png`), base64-encoded.

use serde::{Deserialize, Serialize};

/// Version of this format; the HUD rejects others with a message naming both.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest update body the HUD accepts (a worker with 256 envs and busy screens stays far
/// below it).
pub const MAX_UPDATE_BYTES: usize = 16 << 20;

/// Where an agent is: a room of the overworld or of an indoor map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RoomRef {
    /// Indoors (`wIsIndoor`).
    pub indoor: bool,
    /// Indoor map id (`hMapId`; 0 outdoors).
    pub map: u8,
    /// Room id (`hMapRoom`).
    pub room: u8,
    /// Position on the indoor map's 8x8 grid (`wIndoorRoom`; 0 outdoors).
    pub grid: u8,
}

impl RoomRef {
    /// From a decoded state.
    pub fn of(state: &zelda::GameState) -> Self {
        Self {
            indoor: state.room.indoor,
            map: if state.room.indoor { state.room.map } else { 0 },
            room: state.room.room,
            grid: if state.room.indoor {
                state.indoor_grid
            } else {
                0
            },
        }
    }
}

/// The latest view of one environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvUpdate {
    /// Environment index within the worker.
    pub env: u32,
    /// Episode number (1-based).
    pub episode: u64,
    /// Steps into the episode.
    pub step: u32,
    /// Where Link is.
    pub room: RoomRef,
    /// Link's X in room pixels.
    pub x: u8,
    /// Link's Y in room pixels.
    pub y: u8,
    /// Health in eighths of a heart.
    pub health: u8,
    /// Heart containers.
    pub max_hearts: u8,
    /// Rupees.
    pub rupees: u16,
    /// Small keys.
    pub keys: u8,
    /// Instruments held.
    pub instruments: u32,
    /// `wGameplayType` (0x0B in play).
    pub mode: u8,
    /// Heuristic return of the episode so far.
    pub ret: f32,
    /// Rooms entered since the previous update, oldest first (so fast room changes between
    /// two updates still mark the map).
    #[serde(default)]
    pub rooms_entered: Vec<RoomRef>,
    /// The current screen, base64 PNG; absent when the worker sends positions only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screen: Option<String>,
}

/// One finished episode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpisodeUpdate {
    /// Environment index within the worker.
    pub env: u32,
    /// Episode number.
    pub episode: u64,
    /// Heuristic return.
    pub ret: f32,
    /// Steps.
    pub length: u32,
    /// Distinct rooms entered.
    pub rooms: u32,
    /// Instruments held at the end.
    pub instruments: u32,
    /// Ended inside the game rather than by the step limit.
    pub terminated: bool,
}

impl From<&rollout::EpisodeStats> for EpisodeUpdate {
    fn from(ep: &rollout::EpisodeStats) -> Self {
        Self {
            env: ep.env,
            episode: ep.episode,
            ret: ep.ret,
            length: ep.length,
            rooms: ep.rooms,
            instruments: ep.instruments,
            terminated: ep.terminated,
        }
    }
}

/// What a worker sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerUpdate {
    /// [`PROTOCOL_VERSION`].
    pub v: u32,
    /// Run id.
    pub run: String,
    /// Worker id (unique among the workers publishing to one HUD).
    pub worker: String,
    /// Increases with every update of this worker (a restarted worker starts again at 1).
    pub seq: u64,
    /// Env steps this worker took since it started.
    pub env_steps: u64,
    /// Its recent speed.
    pub steps_per_second: f64,
    /// Its environments.
    pub envs: Vec<EnvUpdate>,
    /// Episodes that ended since the previous delivered update.
    #[serde(default)]
    pub episodes: Vec<EpisodeUpdate>,
    /// Episodes dropped because the HUD was unreachable for long (bounded queue).
    #[serde(default)]
    pub dropped_episodes: u64,
}

impl WorkerUpdate {
    /// Checks what serde cannot: the version, ids, and sane sizes. Errors name the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.v != PROTOCOL_VERSION {
            return Err(format!(
                "v: protocol version {} is not supported (HUD speaks {PROTOCOL_VERSION})",
                self.v
            ));
        }
        let ok_id = |s: &str| {
            !s.is_empty()
                && s.len() <= 128
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if !ok_id(&self.run) {
            return Err(format!(
                "run: `{}` is not a run id (1-128 of A-Z a-z 0-9 - _ .)",
                self.run
            ));
        }
        if !ok_id(&self.worker) {
            return Err(format!(
                "worker: `{}` is not a worker id (1-128 of A-Z a-z 0-9 - _ .)",
                self.worker
            ));
        }
        if self.envs.len() > 4096 {
            return Err(format!(
                "envs: {} environments in one update (at most 4096)",
                self.envs.len()
            ));
        }
        for (i, e) in self.envs.iter().enumerate() {
            if e.rooms_entered.len() > 4096 {
                return Err(format!(
                    "envs[{i}].rooms_entered: {} entries (at most 4096)",
                    e.rooms_entered.len()
                ));
            }
            if !e.ret.is_finite() {
                return Err(format!("envs[{i}].ret: not a finite number"));
            }
        }
        if !self.steps_per_second.is_finite() || self.steps_per_second < 0.0 {
            return Err("steps_per_second: not a finite non-negative number".into());
        }
        Ok(())
    }
}
