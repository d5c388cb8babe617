//! Observations: stacked downscaled greyscale frames plus a vector of RAM features (which
//! ends with a local map of visited rooms).

use gameboy::{HEIGHT as SCREEN_HEIGHT, WIDTH as SCREEN_WIDTH};
use serde::{Deserialize, Serialize};

use crate::ram;
use crate::state::{GameState, Memory};

/// Observation frame height (the screen halved).
pub const FRAME_HEIGHT: usize = SCREEN_HEIGHT / 2;
/// Observation frame width (the screen halved).
pub const FRAME_WIDTH: usize = SCREEN_WIDTH / 2;
/// Pixels in one observation frame.
pub const FRAME_PIXELS: usize = FRAME_HEIGHT * FRAME_WIDTH;
/// Side of the square window of rooms around Link in the visited-rooms map.
pub const LOCAL_MAP_SIDE: usize = 5;
/// Length of the feature vector (layout version [`FEATURES_VERSION`]).
pub const FEATURES: usize = 30 + LOCAL_MAP_SIDE * LOCAL_MAP_SIDE;
/// Bumped whenever the meaning or order of the features changes (reward models and
/// checkpoints record it). Version 2 added the current room's status bits and the world's
/// progress.
pub const FEATURES_VERSION: u32 = 2;
/// The oldest [`FEATURES_VERSION`] whose [`write_state_features`] part is this one's
/// (version 2 changed only the rest), so a reward model, which reads only that part, of
/// any layout from this one on still fits. Set it to [`FEATURES_VERSION`] when that part
/// changes.
pub const STATE_FEATURES_SINCE: u32 = 1;
/// World progress at which its feature saturates (mini-zelda's whole game is 5).
const PROGRESS_SCALE: f32 = 64.0;

/// Halves a 160x144 frame of shade indices into 80x72 greys (mean of each 2x2 block); the
/// emulator's own observation, so env observations and `GameBoy::observation` agree.
pub use gameboy::downscale;

/// The last `n` observation frames, oldest first when written out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameStack {
    frames: Vec<u8>,
    next: usize,
    n: usize,
}

impl FrameStack {
    /// An all-black stack of `n` frames.
    pub fn new(n: usize) -> Self {
        Self {
            frames: vec![0; n * FRAME_PIXELS],
            next: 0,
            n,
        }
    }

    /// Frames in the stack.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Never true for a constructed stack.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Pushes a downscaled copy of `frame` (160x144 shades), dropping the oldest.
    pub fn push(&mut self, frame: &[u8]) {
        let slot = &mut self.frames[self.next * FRAME_PIXELS..][..FRAME_PIXELS];
        downscale(frame, slot);
        self.next = (self.next + 1) % self.n;
    }

    /// Fills every slot with `frame` (after a reset, so the stack holds no stale frames).
    pub fn fill(&mut self, frame: &[u8]) {
        self.push(frame);
        let newest = (self.next + self.n - 1) % self.n;
        let (src_start, len) = (newest * FRAME_PIXELS, FRAME_PIXELS);
        for i in 0..self.n {
            if i != newest {
                self.frames
                    .copy_within(src_start..src_start + len, i * FRAME_PIXELS);
            }
        }
    }

    /// Writes the frames oldest-first into `out` (`len() * FRAME_PIXELS` bytes).
    pub fn write_to(&self, out: &mut [u8]) {
        assert_eq!(out.len(), self.n * FRAME_PIXELS, "frame stack output size");
        for i in 0..self.n {
            let src = (self.next + i) % self.n;
            out[i * FRAME_PIXELS..][..FRAME_PIXELS]
                .copy_from_slice(&self.frames[src * FRAME_PIXELS..][..FRAME_PIXELS]);
        }
    }

    /// The newest frame.
    pub fn newest(&self) -> &[u8] {
        let i = (self.next + self.n - 1) % self.n;
        &self.frames[i * FRAME_PIXELS..][..FRAME_PIXELS]
    }
}

/// Episode-level counters the features include besides RAM.
#[derive(Debug, Clone, Copy, Default)]
pub struct EpisodeProgress {
    /// Agent steps taken this episode.
    pub steps: u32,
    /// Truncation limit.
    pub max_steps: u32,
    /// Distinct rooms entered this episode.
    pub rooms_this_episode: u32,
    /// Times the current (room, cell) was visited this episode.
    pub cell_visits: u32,
    /// [`crate::state::world_progress`] now.
    pub world_progress: u32,
}

/// Length of the state-only part of the features (what [`write_state_features`] writes):
/// everything a [`GameState`] alone determines, so it can be rebuilt from a stored segment.
pub const STATE_FEATURES: usize = 19;

/// Overworld rooms sit on a 16x16 grid (id = row * 16 + col). Indoor maps are taken as 8
/// wide (id = row * 8 + col): exact for mini-zelda's dungeon, an approximation for the real
/// game's, whose layouts come from per-dungeon tables. Returns (rows, cols).
fn room_grid(state: &GameState) -> (u8, u8) {
    if state.room.indoor { (32, 8) } else { (16, 16) }
}

/// Writes the [`STATE_FEATURES`] values derived from `state` alone, each in [0, 1]: x, y;
/// direction one-hot (4); health fraction; max hearts; rupees; small keys; instruments;
/// indoor; map id; room row; room column; dialog open; dialog waiting for A; passed out;
/// in play.
pub fn write_state_features(state: &GameState, out: &mut [f32]) {
    assert_eq!(out.len(), STATE_FEATURES, "state feature vector size");
    let b = |v: bool| if v { 1.0 } else { 0.0 };
    let max_health = f32::from(state.max_hearts.max(1)) * 8.0;
    let (rows, cols) = room_grid(state);
    let row = state.room.room / cols;
    let col = state.room.room % cols;
    out.copy_from_slice(&[
        f32::from(state.x) / 160.0,
        f32::from(state.y) / 144.0,
        b(state.direction == crate::Direction::Right),
        b(state.direction == crate::Direction::Left),
        b(state.direction == crate::Direction::Up),
        b(state.direction == crate::Direction::Down),
        (f32::from(state.health) / max_health).min(1.0),
        f32::from(state.max_hearts.min(16)) / 16.0,
        f32::from(state.rupees.min(999)) / 999.0,
        f32::from(state.small_keys.min(4)) / 4.0,
        state.instrument_count() as f32 / 8.0,
        b(state.room.indoor),
        if state.room.indoor {
            f32::from(state.room.map) / 255.0
        } else {
            0.0
        },
        f32::from(row) / f32::from(rows - 1),
        f32::from(col) / f32::from(cols - 1),
        b(state.dialog_open()),
        b(state.dialog_waiting_for_a()),
        b(state.passed_out()),
        b(state.in_play()),
    ]);
}

/// Writes the feature vector (layout version [`FEATURES_VERSION`]) into `out`.
///
/// Every value lies in [0, 1]. Layout: the [`STATE_FEATURES`] of [`write_state_features`];
/// rooms this episode; episode progress; visits to the current cell; the current room's
/// status bits 0x01 to 0x40 (chest opened, doors and shutters opened, switches pressed;
/// the visited bit is left out) and the world's progress (those bits over all rooms, the
/// archive's `progress`); then the visited flags of the 5x5 rooms around Link (row-major,
/// on the room grid, 0 outside it).
///
/// The room's own bits are there because the screen shows them only in a few pixels (an
/// opened shutter), and a policy that cannot tell a pressed switch from an unpressed one
/// learns one way out of the room for both.
pub fn write_features(
    state: &GameState,
    progress: &EpisodeProgress,
    mem: &impl Memory,
    out: &mut [f32],
) {
    assert_eq!(out.len(), FEATURES, "feature vector size");
    let b = |v: bool| if v { 1.0 } else { 0.0 };
    write_state_features(state, &mut out[..STATE_FEATURES]);
    let (rows, cols) = room_grid(state);
    let row = state.room.room / cols;
    let col = state.room.room % cols;
    let head = [
        (progress.rooms_this_episode.min(64) as f32) / 64.0,
        if progress.max_steps > 0 {
            (progress.steps as f32 / progress.max_steps as f32).min(1.0)
        } else {
            0.0
        },
        ((1 + progress.cell_visits.min(1000)) as f32).ln() / 1001f32.ln(),
    ];
    out[STATE_FEATURES..STATE_FEATURES + head.len()].copy_from_slice(&head);
    let mut i = STATE_FEATURES + head.len();
    let status = mem.peek(state.room.status_address());
    for bit in 0..7 {
        out[i] = b(status & (1 << bit) != 0);
        i += 1;
    }
    out[i] = (progress.world_progress as f32 / PROGRESS_SCALE).min(1.0);
    i += 1;
    let table = ram::room_status_table(state.room.indoor, state.room.map);
    let half = (LOCAL_MAP_SIDE / 2) as i32;
    for dr in -half..=half {
        for dc in -half..=half {
            let (r, c) = (i32::from(row) + dr, i32::from(col) + dc);
            out[i] = if (0..i32::from(rows)).contains(&r) && (0..i32::from(cols)).contains(&c) {
                let addr = table + (r * i32::from(cols) + c) as u16;
                b(mem.peek(addr) & ram::ROOM_VISITED_BIT != 0)
            } else {
                0.0
            };
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downscale_averages_2x2_blocks() {
        let mut frame = vec![0u8; SCREEN_WIDTH * SCREEN_HEIGHT];
        // Top-left block: shades 0,1 / 2,3 -> (255+170+85+0)/4 = 127.
        frame[0] = 0;
        frame[1] = 1;
        frame[SCREEN_WIDTH] = 2;
        frame[SCREEN_WIDTH + 1] = 3;
        // Last block all black.
        for (y, x) in [(142, 158), (142, 159), (143, 158), (143, 159)] {
            frame[y * SCREEN_WIDTH + x] = 3;
        }
        let mut out = vec![0u8; FRAME_PIXELS];
        downscale(&frame, &mut out);
        assert_eq!(out[0], 127);
        assert_eq!(out[1], 255);
        assert_eq!(out[FRAME_PIXELS - 1], 0);
    }

    #[test]
    fn frame_stack_orders_oldest_first() {
        let mut stack = FrameStack::new(3);
        let mk = |shade: u8| vec![shade; SCREEN_WIDTH * SCREEN_HEIGHT];
        stack.fill(&mk(0));
        stack.push(&mk(1));
        stack.push(&mk(3));
        let mut out = vec![0u8; 3 * FRAME_PIXELS];
        stack.write_to(&mut out);
        assert_eq!(out[0], 255);
        assert_eq!(out[FRAME_PIXELS], 170);
        assert_eq!(out[2 * FRAME_PIXELS], 0);
        assert_eq!(stack.newest()[0], 0);
        stack.push(&mk(2));
        stack.write_to(&mut out);
        assert_eq!(
            [out[0], out[FRAME_PIXELS], out[2 * FRAME_PIXELS]],
            [170, 0, 85]
        );
    }

    #[test]
    fn features_are_in_unit_range_and_map_is_local() {
        let mem = |addr: u16| match addr {
            ram::LINK_X => 80,
            ram::MAP_ROOM => 0x11,
            ram::HEALTH => 24,
            ram::MAX_HEARTS => 3,
            0xD800 | 0xD833 => 0x80,
            // The current room: visited, chest opened and a door opened.
            0xD811 => 0x80 | 0x10 | 0x04,
            0xD905 => 0x01,
            _ => 0,
        };
        let state = GameState::read(&mem);
        let mut out = [f32::NAN; FEATURES];
        let progress = EpisodeProgress {
            steps: 10,
            max_steps: 100,
            rooms_this_episode: 2,
            cell_visits: 3,
            world_progress: crate::state::world_progress(&mem),
        };
        write_features(&state, &progress, &mem, &mut out);
        assert!(out.iter().all(|v| (0.0..=1.0).contains(v)), "{out:?}");
        assert_eq!(out[0], 0.5);
        assert_eq!(out[6], 1.0);
        // Bits 0x01..0x40 of room 0x11's status, then progress (three bits set in all).
        assert_eq!(&out[22..29], &[0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0]);
        assert_eq!(out[29], 3.0 / 64.0);
        let map = &out[30..];
        // Room 0x11 is the centre (index 12); 0x00 is up-left (index 6); 0x33 is two down,
        // two right (index 24).
        assert_eq!(map[12], 1.0);
        assert_eq!(map[6], 1.0);
        assert_eq!(map[24], 1.0);
        assert_eq!(map.iter().sum::<f32>(), 3.0);
    }
}
