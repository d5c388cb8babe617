//! The game's RAM map: every address the project reads, with its meaning.
//!
//! Source of every address and value: the zladx disassembly (`zladx/LADX-Disassembly`,
//! `src/constants/memory/{wram,hram}.asm` and `src/constants/{gameplay,dialog,directions}.asm`),
//! as collected in `shared/research/domain.md` section 1. The DMG game uses the same
//! addresses for all of these (checked against DMG-targeted projects there). The label in
//! each comment is the disassembly's name.

/// `hLinkPositionX`: Link's X in pixels inside the current room screen.
pub const LINK_X: u16 = 0xFF98;
/// `hLinkPositionY`: Link's Y in pixels inside the current room screen.
pub const LINK_Y: u16 = 0xFF99;
/// `hLinkDirection`: 0 right, 1 left, 2 up, 3 down (`directions.asm`).
pub const LINK_DIRECTION: u16 = 0xFF9E;
/// `hFrameCounter`: increments once per game frame, wraps 0xFF -> 0x00.
pub const FRAME_COUNTER: u16 = 0xFFE7;
/// `hMapRoom`: room id on the active map (overworld: row * 16 + column).
pub const MAP_ROOM: u16 = 0xFFF6;
/// `hMapId`: indoor map id (0x00 Tail Cave ... 0x07 Turtle Rock, 0xFF Color Dungeon).
pub const MAP_ID: u16 = 0xFFF7;
/// `wIsIndoor`: 0 overworld, 1 interior (houses, caves, dungeons).
pub const IS_INDOOR: u16 = 0xDBA5;
/// `wIndoorRoom`: position of the current room on the current indoor map's grid.
pub const INDOOR_ROOM: u16 = 0xDBAE;
/// `wHealth`: 8 units per heart (0x04 = half a heart).
pub const HEALTH: u16 = 0xDB5A;
/// `wMaxHearts`: number of heart containers.
pub const MAX_HEARTS: u16 = 0xDB5B;
/// `wRupeeCountHigh`: hundreds digit, BCD.
pub const RUPEES_HIGH: u16 = 0xDB5D;
/// `wRupeeCountLow`: tens and units, BCD.
pub const RUPEES_LOW: u16 = 0xDB5E;
/// `wSmallKeysCount`: small keys for the current dungeon.
pub const SMALL_KEYS: u16 = 0xDBD0;
/// `wHasInstrument1`: first of eight per-dungeon flag bytes (DB65..=DB6C).
pub const INSTRUMENT_FLAGS: u16 = 0xDB65;
/// Bit of an instrument flag byte meaning "has this dungeon's instrument".
pub const INSTRUMENT_BIT: u8 = 0x02;
/// `wGameplayType`: 0x0B normal play, 0x0C inventory; see [`GAME_MODE_PLAY`].
pub const GAME_MODE: u16 = 0xDB95;
/// `wGameplayType` value for normal play in the world.
pub const GAME_MODE_PLAY: u8 = 0x0B;
/// `wGameplayType` value while the inventory subscreen is open.
pub const GAME_MODE_INVENTORY: u8 = 0x0C;
/// `wDialogState`: low bits 0 closed, 0x09 "press A to continue", 0x0C "press A to close";
/// bit 7 means the box is drawn at the bottom.
pub const DIALOG_STATE: u16 = 0xC19F;
/// `wLinkMotionState`: 0x07 when Link passes out (health reached 0).
pub const LINK_MOTION_STATE: u16 = 0xC11C;
/// `wLinkMotionState` value for "passed out" (death).
pub const MOTION_PASSED_OUT: u8 = 0x07;
/// `wDeathCount`: low byte; the high byte follows.
pub const DEATH_COUNT: u16 = 0xDB57;
/// `wOverworldRoomStatus`: one status byte per overworld room.
pub const OVERWORLD_ROOM_STATUS: u16 = 0xD800;
/// `wIndoorARoomStatus`: one status byte per room of the "indoors A" maps.
pub const INDOOR_A_ROOM_STATUS: u16 = 0xD900;
/// `wIndoorBRoomStatus`: one status byte per room of the "indoors B" maps (map ids 0x06..=0x19).
pub const INDOOR_B_ROOM_STATUS: u16 = 0xDA00;
/// Room-status bit meaning "visited" (`gameplay.asm`).
pub const ROOM_VISITED_BIT: u8 = 0x80;
/// Every room-status byte: the overworld, indoors A and indoors B tables, back to back.
pub const ROOM_STATUS: std::ops::Range<u16> = OVERWORLD_ROOM_STATUS..INDOOR_B_ROOM_STATUS + 0x100;

/// Mask of the dialog state's low bits (bit 7 only says where the box is drawn).
pub const DIALOG_STATE_MASK: u8 = 0x7F;
/// Dialog states that wait for the A button.
pub const DIALOG_WAITING_FOR_A: [u8; 2] = [0x09, 0x0C];

/// Decodes a two-digit BCD byte; a nibble above 9 (never written by the game) reads as 9.
pub fn bcd(byte: u8) -> u16 {
    let hi = u16::from((byte >> 4).min(9));
    let lo = u16::from((byte & 0x0F).min(9));
    hi * 10 + lo
}

/// Which 256-byte room-status table an indoor map's rooms live in.
///
/// The game keeps three tables: overworld, "indoors A" and "indoors B" (maps 0x06..=0x19,
/// `maps.asm`). The DX-only Color Dungeon (0xFF) has its own overrides, not modelled.
pub fn room_status_table(indoor: bool, map: u8) -> u16 {
    match (indoor, map) {
        (false, _) => OVERWORLD_ROOM_STATUS,
        (true, 0x06..=0x19) => INDOOR_B_ROOM_STATUS,
        (true, _) => INDOOR_A_ROOM_STATUS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcd_decodes_digits() {
        assert_eq!(bcd(0x00), 0);
        assert_eq!(bcd(0x09), 9);
        assert_eq!(bcd(0x10), 10);
        assert_eq!(bcd(0x99), 99);
        assert_eq!(bcd(0x3A), 39);
    }

    #[test]
    fn status_tables() {
        assert_eq!(room_status_table(false, 0x00), 0xD800);
        assert_eq!(room_status_table(true, 0x00), 0xD900);
        assert_eq!(room_status_table(true, 0x05), 0xD900);
        assert_eq!(room_status_table(true, 0x06), 0xDA00);
        assert_eq!(room_status_table(true, 0x19), 0xDA00);
        assert_eq!(room_status_table(true, 0x1A), 0xD900);
    }
}
