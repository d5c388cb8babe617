//! [`GameState`]: the part of the game's RAM the environment, rewards and judges look at,
//! decoded into typed fields, plus its plain-text description for the text judges.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::ram;

/// Read access to the CPU's view of memory, without side effects.
pub trait Memory {
    /// The byte at `addr`.
    fn peek(&self, addr: u16) -> u8;
}

impl<F: Fn(u16) -> u8> Memory for F {
    fn peek(&self, addr: u16) -> u8 {
        self(addr)
    }
}

/// The direction Link faces (`hLinkDirection`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// 0
    Right,
    /// 1
    Left,
    /// 2
    Up,
    /// 3
    Down,
}

impl Direction {
    /// Decodes `hLinkDirection`; values above 3 (not written by the game) keep the low bits.
    pub fn from_byte(b: u8) -> Self {
        match b & 3 {
            0 => Self::Right,
            1 => Self::Left,
            2 => Self::Up,
            _ => Self::Down,
        }
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Right => "right",
            Self::Left => "left",
            Self::Up => "up",
            Self::Down => "down",
        }
    }
}

/// Identifies one room of the whole game: which map and which room on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RoomKey {
    /// `wIsIndoor`.
    pub indoor: bool,
    /// `hMapId` (only meaningful indoors).
    pub map: u8,
    /// `hMapRoom`.
    pub room: u8,
}

impl RoomKey {
    /// A dense index over all rooms: the room-status table (0 overworld, 1 indoors A,
    /// 2 indoors B) times 256 plus the room id, as Magpie's tracker numbers them.
    pub fn global_index(self) -> u16 {
        let table = ram::room_status_table(self.indoor, self.map);
        (table - ram::OVERWORLD_ROOM_STATUS) + u16::from(self.room)
    }

    /// The room-status byte's address for this room.
    pub fn status_address(self) -> u16 {
        ram::room_status_table(self.indoor, self.map) + u16::from(self.room)
    }

    /// Human-readable name, e.g. `overworld room 0x12 (row 1, col 2)` or
    /// `dungeon 1 (map 0x00) room 0x05`.
    pub fn describe(self) -> String {
        if self.indoor {
            let place = match self.map {
                0x00..=0x07 => format!("dungeon {} (map {:#04x})", self.map + 1, self.map),
                m => format!("indoor map {m:#04x}"),
            };
            format!("{place} room {:#04x}", self.room)
        } else {
            format!(
                "overworld room {:#04x} (row {}, col {})",
                self.room,
                self.room >> 4,
                self.room & 0x0F
            )
        }
    }
}

/// How much the world has changed: the room-status bits set other than "visited", over
/// all three tables (chests opened, doors unlocked, switches pressed, owls talked to, in
/// Link's Awakening and in mini-zelda). It only grows as the game advances, so it tells
/// apart two visits to the same place before and after a step of progress.
pub fn world_progress(mem: &impl Memory) -> u32 {
    GameState::read_with_progress(mem).1
}

/// The decoded game state at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GameState {
    /// `wGameplayType` (0x0B normal play).
    pub mode: u8,
    /// Link's X in pixels within the room.
    pub x: u8,
    /// Link's Y in pixels within the room.
    pub y: u8,
    /// Direction Link faces.
    pub direction: Direction,
    /// Where Link is.
    pub room: RoomKey,
    /// `wIndoorRoom`: position on the indoor map's grid.
    pub indoor_grid: u8,
    /// Health in eighths of a heart.
    pub health: u8,
    /// Heart containers.
    pub max_hearts: u8,
    /// Rupees, decoded from BCD (0..=999).
    pub rupees: u16,
    /// Small keys for the current dungeon.
    pub small_keys: u8,
    /// Bit n set = has the instrument of dungeon n+1.
    pub instruments: u8,
    /// `wDialogState` (raw, bit 7 included).
    pub dialog: u8,
    /// `wLinkMotionState`.
    pub motion: u8,
    /// `hFrameCounter`.
    pub frame_counter: u8,
    /// Deaths on the current file.
    pub deaths: u16,
    /// Rooms whose "visited" bit is set, over all three room-status tables.
    pub rooms_visited: u16,
}

impl GameState {
    /// Reads every field from memory.
    pub fn read(mem: &impl Memory) -> Self {
        Self::read_with_progress(mem).0
    }

    /// [`GameState::read`] and [`world_progress`] in one pass over the room-status tables.
    pub fn read_with_progress(mem: &impl Memory) -> (Self, u32) {
        let room = RoomKey {
            indoor: mem.peek(ram::IS_INDOOR) != 0,
            map: mem.peek(ram::MAP_ID),
            room: mem.peek(ram::MAP_ROOM),
        };
        let mut instruments = 0u8;
        for i in 0..8u16 {
            if mem.peek(ram::INSTRUMENT_FLAGS + i) & ram::INSTRUMENT_BIT != 0 {
                instruments |= 1 << i;
            }
        }
        let mut rooms_visited = 0u16;
        let mut progress = 0u32;
        for addr in ram::ROOM_STATUS {
            let status = mem.peek(addr);
            rooms_visited += u16::from(status & ram::ROOM_VISITED_BIT != 0);
            progress += (status & !ram::ROOM_VISITED_BIT).count_ones();
        }
        let state = GameState {
            mode: mem.peek(ram::GAME_MODE),
            x: mem.peek(ram::LINK_X),
            y: mem.peek(ram::LINK_Y),
            direction: Direction::from_byte(mem.peek(ram::LINK_DIRECTION)),
            room,
            indoor_grid: mem.peek(ram::INDOOR_ROOM),
            health: mem.peek(ram::HEALTH),
            max_hearts: mem.peek(ram::MAX_HEARTS),
            rupees: ram::bcd(mem.peek(ram::RUPEES_HIGH)) * 100
                + ram::bcd(mem.peek(ram::RUPEES_LOW)),
            small_keys: mem.peek(ram::SMALL_KEYS),
            instruments,
            dialog: mem.peek(ram::DIALOG_STATE),
            motion: mem.peek(ram::LINK_MOTION_STATE),
            frame_counter: mem.peek(ram::FRAME_COUNTER),
            deaths: u16::from_le_bytes([
                mem.peek(ram::DEATH_COUNT),
                mem.peek(ram::DEATH_COUNT + 1),
            ]),
            rooms_visited,
        };
        (state, progress)
    }

    /// In normal play (not a title, menu, cutscene or game-over screen).
    pub fn in_play(&self) -> bool {
        self.mode == ram::GAME_MODE_PLAY
    }

    /// A dialog box is open (or opening/closing).
    pub fn dialog_open(&self) -> bool {
        self.dialog & ram::DIALOG_STATE_MASK != 0
    }

    /// The dialog box waits for the A button.
    pub fn dialog_waiting_for_a(&self) -> bool {
        ram::DIALOG_WAITING_FOR_A.contains(&(self.dialog & ram::DIALOG_STATE_MASK))
    }

    /// Link has passed out (health reached 0).
    pub fn passed_out(&self) -> bool {
        self.motion == ram::MOTION_PASSED_OUT
    }

    /// Number of instruments collected.
    pub fn instrument_count(&self) -> u32 {
        self.instruments.count_ones()
    }

    /// Health in hearts (0.5 steps).
    pub fn hearts(&self) -> f32 {
        f32::from(self.health) / 8.0
    }

    /// Link's tile cell inside the room (16x16 pixel metatiles), for exploration counts.
    pub fn cell(&self) -> (u8, u8) {
        (self.x / 16, self.y / 16)
    }

    /// One paragraph describing the state for a text judge.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        let mode = match self.mode {
            ram::GAME_MODE_PLAY => "playing".to_string(),
            ram::GAME_MODE_INVENTORY => "inventory open".to_string(),
            0x00 => "title/intro".to_string(),
            m => format!("non-play screen (mode {m:#04x})"),
        };
        let _ = write!(
            s,
            "Mode: {mode}. Location: {}. Link at x={}, y={} facing {}. ",
            self.room.describe(),
            self.x,
            self.y,
            self.direction.name()
        );
        let _ = write!(
            s,
            "Health: {}/{} hearts. Rupees: {}. Small keys: {}. Instruments: {}. ",
            self.hearts(),
            self.max_hearts,
            self.rupees,
            self.small_keys,
            self.instrument_count()
        );
        let dialog = if self.dialog_waiting_for_a() {
            "open, waiting for A"
        } else if self.dialog_open() {
            "open"
        } else {
            "closed"
        };
        let _ = write!(
            s,
            "Dialog: {dialog}. Rooms visited: {}. Deaths: {}.",
            self.rooms_visited, self.deaths
        );
        if self.passed_out() {
            s.push_str(" Link has passed out.");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem_with(pairs: &[(u16, u8)]) -> impl Fn(u16) -> u8 + '_ {
        move |addr| {
            pairs
                .iter()
                .find(|(a, _)| *a == addr)
                .map(|(_, v)| *v)
                .unwrap_or(0)
        }
    }

    #[test]
    fn decodes_every_field() {
        let mem = mem_with(&[
            (ram::GAME_MODE, 0x0B),
            (ram::LINK_X, 80),
            (ram::LINK_Y, 64),
            (ram::LINK_DIRECTION, 2),
            (ram::IS_INDOOR, 1),
            (ram::MAP_ID, 0x00),
            (ram::MAP_ROOM, 0x05),
            (ram::INDOOR_ROOM, 0x12),
            (ram::HEALTH, 20),
            (ram::MAX_HEARTS, 3),
            (ram::RUPEES_HIGH, 0x01),
            (ram::RUPEES_LOW, 0x42),
            (ram::SMALL_KEYS, 1),
            (ram::INSTRUMENT_FLAGS, 0x03),
            (ram::INSTRUMENT_FLAGS + 7, 0x02),
            (ram::DIALOG_STATE, 0x89),
            (ram::LINK_MOTION_STATE, 0x07),
            (ram::FRAME_COUNTER, 0xFE),
            (ram::DEATH_COUNT, 0x02),
            (ram::DEATH_COUNT + 1, 0x01),
            (0xD800, 0x80),
            (0xD812, 0x90),
            (0xD905, 0x80),
            (0xDA00, 0x7F),
        ]);
        let s = GameState::read(&mem);
        assert_eq!(s.x, 80);
        assert_eq!(s.y, 64);
        assert_eq!(s.direction, Direction::Up);
        assert_eq!(
            s.room,
            RoomKey {
                indoor: true,
                map: 0,
                room: 5
            }
        );
        assert_eq!(s.room.global_index(), 0x105);
        assert_eq!(s.room.status_address(), 0xD905);
        assert_eq!(s.indoor_grid, 0x12);
        assert_eq!(s.health, 20);
        assert_eq!(s.hearts(), 2.5);
        assert_eq!(s.rupees, 142);
        assert_eq!(s.small_keys, 1);
        assert_eq!(s.instruments, 0b1000_0001);
        assert_eq!(s.instrument_count(), 2);
        assert!(s.dialog_open());
        assert!(s.dialog_waiting_for_a());
        assert!(s.passed_out());
        assert_eq!(s.deaths, 0x0102);
        assert_eq!(s.rooms_visited, 3);
        assert!(s.in_play());
        let text = s.describe();
        assert!(text.contains("dungeon 1 (map 0x00) room 0x05"), "{text}");
        assert!(text.contains("Health: 2.5/3 hearts"), "{text}");
        assert!(text.contains("Rupees: 142"), "{text}");
        assert!(text.contains("waiting for A"), "{text}");
        assert!(text.contains("passed out"), "{text}");
    }

    #[test]
    fn world_progress_counts_status_bits_other_than_visited() {
        let mem = mem_with(&[
            (0xD800, 0x80),
            (0xD812, 0x90),
            (0xD933, 0x94),
            (0xDAFF, 0x7F),
            // Outside the tables.
            (0xD7FF, 0xFF),
            (0xDB00, 0xFF),
        ]);
        assert_eq!(world_progress(&mem), 1 + 2 + 7);
        assert_eq!(world_progress(&mem_with(&[])), 0);
    }

    #[test]
    fn overworld_rooms_are_named_by_grid() {
        let key = RoomKey {
            indoor: false,
            map: 0x33,
            room: 0x12,
        };
        assert_eq!(key.global_index(), 0x012);
        assert_eq!(key.describe(), "overworld room 0x12 (row 1, col 2)");
    }

    #[test]
    fn state_round_trips_through_json() {
        let mem = mem_with(&[(ram::GAME_MODE, 0x0B), (ram::LINK_X, 3)]);
        let s = GameState::read(&mem);
        let json = serde_json::to_string(&s).unwrap();
        let back: GameState = serde_json::from_str(&json).unwrap();
        assert_eq!(s, back);
    }
}
