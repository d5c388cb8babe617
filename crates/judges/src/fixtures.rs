//! Synthetic segments for tests, benchmarks and examples: plausible state sequences and
//! small valid PNG keyframes, all deterministic.

use zelda::{Direction, GameState, RoomKey};

/// A state in normal play on overworld room 0x12 with 3 hearts and 10 rupees.
pub fn play_state() -> GameState {
    GameState {
        mode: zelda::ram::GAME_MODE_PLAY,
        x: 80,
        y: 64,
        direction: Direction::Down,
        room: RoomKey {
            indoor: false,
            map: 0,
            room: 0x12,
        },
        indoor_grid: 0,
        health: 24,
        max_hearts: 3,
        rupees: 10,
        small_keys: 0,
        instruments: 0,
        dialog: 0,
        motion: 0,
        frame_counter: 0,
        deaths: 0,
        rooms_visited: 1,
    }
}

/// `n` states starting at `start`, Link walking right one pixel per step.
pub fn walk(start: GameState, n: usize) -> Vec<GameState> {
    (0..n)
        .map(|i| GameState {
            x: start.x.wrapping_add(i as u8),
            frame_counter: start.frame_counter.wrapping_add(i as u8),
            ..start
        })
        .collect()
}

/// A segment of `n` steps in which Link enters a new room, picks up rupees and a key,
/// reads a dialog, and takes a hit; `variant` shifts the room ids so segments differ.
pub fn eventful(n: usize, variant: u8) -> Vec<GameState> {
    let mut s = play_state();
    s.room.room = s.room.room.wrapping_add(variant);
    let mut out = walk(s, n);
    let len = out.len();
    for (i, st) in out.iter_mut().enumerate() {
        if i >= len / 4 {
            st.room.room = s.room.room.wrapping_add(1);
            st.rooms_visited = s.rooms_visited + 1;
        }
        if i >= len / 3 {
            st.rupees = s.rupees + 5;
        }
        if (len / 2..len / 2 + 3).contains(&i) {
            st.dialog = 0x09;
        }
        if i >= 2 * len / 3 {
            st.small_keys = 1;
            st.health = s.health - 4;
        }
    }
    out
}

/// A segment of `n` steps inside dungeon 1 in which Link gets and uses a small key.
pub fn dungeon(n: usize) -> Vec<GameState> {
    let mut s = play_state();
    s.room = RoomKey {
        indoor: true,
        map: 0x00,
        room: 0x05,
    };
    let mut out = walk(s, n);
    let len = out.len();
    for (i, st) in out.iter_mut().enumerate() {
        if (len / 3..2 * len / 3).contains(&i) {
            st.small_keys = 1;
        }
        if i >= 2 * len / 3 {
            st.room.room = 0x06;
            st.rooms_visited = s.rooms_visited + 1;
        }
    }
    out
}

/// A valid 8-bit greyscale PNG of `width` x `height` with a pattern chosen by `seed`
/// (uncompressed deflate blocks, so no compressor is needed).
pub fn png(width: u32, height: u32, seed: u8) -> Vec<u8> {
    let mut raw = Vec::with_capacity(((width + 1) * height) as usize);
    for y in 0..height {
        raw.push(0); // filter: none
        for x in 0..width {
            let shade = ((x / 8 + y / 8) as u8).wrapping_add(seed) % 4;
            raw.push([0xFF, 0xAA, 0x55, 0x00][shade as usize]);
        }
    }
    let mut zlib = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(0xFFFF).collect();
    for (i, block) in blocks.iter().enumerate() {
        zlib.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        zlib.extend_from_slice(&len.to_le_bytes());
        zlib.extend_from_slice(&(!len).to_le_bytes());
        zlib.extend_from_slice(block);
    }
    zlib.extend_from_slice(&adler32(&raw).to_be_bytes());

    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit greyscale, deflate, no interlace
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &zlib);
    chunk(&mut out, b"IEND", &[]);
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc_input = kind.to_vec();
    crc_input.extend_from_slice(data);
    out.extend_from_slice(&crc32(&crc_input).to_be_bytes());
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_png_reference_value() {
        // The CRC of an IEND chunk is fixed by the PNG specification.
        assert_eq!(crc32(b"IEND"), 0xAE42_6082);
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
    }

    #[test]
    fn png_has_the_right_header() {
        let p = png(160, 144, 1);
        assert!(p.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert_eq!(&p[12..16], b"IHDR");
        assert_eq!(u32::from_be_bytes(p[16..20].try_into().unwrap()), 160);
        assert_eq!(u32::from_be_bytes(p[20..24].try_into().unwrap()), 144);
        assert!(p.ends_with(&[0xAE, 0x42, 0x60, 0x82]));
    }
}
