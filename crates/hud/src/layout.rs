//! Where a room goes on the HUD's stitched maps.
//!
//! - The overworld is Link's Awakening's 16x16 grid of screens, room id = row * 16 + col
//!   (mini-zelda uses its 4x4 top-left corner with the same ids).
//! - Dungeons (indoor maps 0x00..=0x07 and the colour dungeon 0xFF) go on their own 8x8
//!   canvas, placed by `wIndoorRoom` (DBAE), the room's position on the dungeon grid: the
//!   room ids of a dungeon are not laid out spatially, DBAE is (mini-zelda sets it to
//!   row * 8 + col as well).
//! - Other indoor maps (houses, caves) have no grid position; they get a 16-wide canvas per
//!   map keyed by room id, which keeps every room separate even if not spatial.

use serde::Serialize;
use telemetry::wire::RoomRef;

/// Playfield size of one room in pixels (the bottom 16 rows of the screen are the status
/// bar).
pub const ROOM_W: u32 = 160;
/// See [`ROOM_W`].
pub const ROOM_H: u32 = 128;

/// Where a room is drawn.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Place {
    /// Canvas id: `overworld` or `map-XX` (hex map id).
    pub canvas: String,
    /// Column on that canvas.
    pub col: u8,
    /// Row on that canvas.
    pub row: u8,
}

/// A canvas's id, title and grid size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Canvas {
    /// Id used in [`Place::canvas`].
    pub id: String,
    /// Title shown above it.
    pub title: String,
    /// Grid columns.
    pub cols: u8,
    /// Grid rows.
    pub rows: u8,
}

/// Whether an indoor map id is a dungeon (laid out by its grid position).
pub fn is_dungeon(map: u8) -> bool {
    map <= 0x07 || map == 0xFF
}

/// Where `room` is drawn.
pub fn place(room: &RoomRef) -> Place {
    if !room.indoor {
        return Place {
            canvas: "overworld".into(),
            col: room.room & 0x0F,
            row: room.room >> 4,
        };
    }
    let canvas = format!("map-{:02x}", room.map);
    if is_dungeon(room.map) {
        Place {
            canvas,
            col: room.grid & 0x07,
            row: (room.grid >> 3) & 0x07,
        }
    } else {
        Place {
            canvas,
            col: room.room & 0x0F,
            row: room.room >> 4,
        }
    }
}

/// The canvas a [`Place::canvas`] id names.
pub fn canvas(id: &str) -> Canvas {
    if id == "overworld" {
        return Canvas {
            id: id.into(),
            title: "Overworld".into(),
            cols: 16,
            rows: 16,
        };
    }
    let map = id
        .strip_prefix("map-")
        .and_then(|h| u8::from_str_radix(h, 16).ok())
        .unwrap_or(0);
    if is_dungeon(map) {
        let title = if map == 0xFF {
            "Color Dungeon (map 0xff)".to_string()
        } else {
            format!("Dungeon {} (map {map:#04x})", map + 1)
        };
        Canvas {
            id: id.into(),
            title,
            cols: 8,
            rows: 8,
        }
    } else {
        Canvas {
            id: id.into(),
            title: format!("Indoor map {map:#04x}"),
            cols: 16,
            rows: 16,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(indoor: bool, map: u8, room: u8, grid: u8) -> RoomRef {
        RoomRef {
            indoor,
            map,
            room,
            grid,
        }
    }

    #[test]
    fn overworld_follows_the_16x16_grid() {
        assert_eq!(
            place(&r(false, 0, 0x21, 0)),
            Place {
                canvas: "overworld".into(),
                col: 1,
                row: 2
            }
        );
        assert_eq!(
            place(&r(false, 0, 0xFF, 0)),
            Place {
                canvas: "overworld".into(),
                col: 15,
                row: 15
            }
        );
    }

    #[test]
    fn dungeons_use_the_grid_position() {
        // mini-zelda's dungeon: room 0x3B is at grid row 7, col 3.
        assert_eq!(
            place(&r(true, 0, 0x3B, 0x3B)),
            Place {
                canvas: "map-00".into(),
                col: 3,
                row: 7
            }
        );
        // A real dungeon room whose id is not its position.
        assert_eq!(
            place(&r(true, 3, 0x90, 0x12)),
            Place {
                canvas: "map-03".into(),
                col: 2,
                row: 2
            }
        );
        assert_eq!(canvas("map-03").title, "Dungeon 4 (map 0x03)");
        assert_eq!((canvas("map-03").cols, canvas("map-03").rows), (8, 8));
    }

    #[test]
    fn other_indoor_maps_use_the_room_id() {
        assert_eq!(
            place(&r(true, 0x10, 0xA3, 0)),
            Place {
                canvas: "map-10".into(),
                col: 3,
                row: 10
            }
        );
        assert_eq!(canvas("map-10").cols, 16);
        assert_eq!(canvas("overworld").title, "Overworld");
    }
}
