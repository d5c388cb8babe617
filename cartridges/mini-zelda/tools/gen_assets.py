#!/usr/bin/env python3
"""Generate mini-zelda's data sources from readable pictures and maps.

Writes (next to main.c):
  assets.h  constants shared with main.c (metatile, tile, sprite, room and message ids)
  tables.c  bank-0 tables (metatile tiles and flags, warps)
  gfx.c     tile graphics, in ROM bank 2
  world.c   room records, messages, title and game-over screens, in ROM bank 3

The generated files are committed, so the cartridge builds with SDCC alone; run this
script after editing art.py or the maps below (`python3 tools/gen_assets.py`), and
tests/reference/test_mini_zelda.py checks that the committed files are up to date.
With `--map` it prints the ASCII world map used in README.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import art  # noqa: E402

HERE = Path(__file__).resolve().parent.parent

# --- metatiles -------------------------------------------------------------------------------

SOLID, HURT, WARP, LOCKED, CHEST, SWITCH, SHUTTER = 1, 2, 4, 8, 16, 32, 64

# name, map character, flags
METATILES = [
    ("GRASS", ".", 0),
    ("GRASS2", ",", 0),
    ("FLOWERS", "*", 0),
    ("SAND", ":", 0),
    ("TREE", "T", SOLID),
    ("BUSH", "b", SOLID),
    ("ROCK", "o", SOLID),
    ("WATER", "~", SOLID),
    ("CLIFF", "C", SOLID),
    ("CAVE", "D", WARP),
    ("SPIKES", "^", HURT),
    ("ROOF_L", "r", SOLID),
    ("ROOF_R", "R", SOLID),
    ("WALL_WINDOW", "w", SOLID),
    ("WALL_DOOR", "d", SOLID),
    ("FLOOR", "_", 0),
    ("WALL", "#", SOLID),
    ("BLOCK", "B", SOLID),
    ("DOORWAY", "O", 0),
    ("KEYBLOCK", "K", SOLID | LOCKED),
    ("SHUTTER", "H", SOLID | SHUTTER),
    ("SWITCH", "s", SWITCH),
    ("SWITCH_DOWN", "S", 0),
    ("CHEST", "c", SOLID | CHEST),
    ("CHEST_OPEN", "e", SOLID),
    ("BLACK", "X", SOLID),
]
MT_INDEX = {name: i for i, (name, _, _) in enumerate(METATILES)}
MT_CHAR = {ch: i for i, (_, ch, _) in enumerate(METATILES)}

# --- objects ---------------------------------------------------------------------------------

OBJ_TYPES = ["NONE", "OCTOROK", "SLIME", "OLDMAN", "RUPEE", "RUPEE5", "HEART", "INSTRUMENT"]
OBJ = {name: i for i, name in enumerate(OBJ_TYPES)}

# --- world -----------------------------------------------------------------------------------
# Each room: 10x8 metatiles. Exits R, L, U, D name a room key or a warp ("W0"); None = wall.
# Objects: (type, x, y) with x, y the object's centre in pixels.
# Overworld room ids follow LA's 16x16 grid (row*16 + col); indoor ids are the position on
# the dungeon's 8x8 grid (row*8 + col), which is also what DBAE holds.

OVERWORLD = {
    0x00: dict(
        map="""
TTTTTTTTTT
TT,..T..TT
T..b....TT
T.,...,...
T..T.....,
TT.....b.T
TTT,..,TTT
TTTT..TTTT
""",
        exits=dict(R=0x01, D=0x10),
        objs=[("RUPEE", 88, 40)],
    ),
    0x01: dict(
        map="""
TTTTTTTTTT
T..*...,.T
T.,..b...T
...,....*.
.....*....
T.b.....,T
T..*..,..T
TTTT..TTTT
""",
        exits=dict(L=0x00, R=0x02, D=0x11),
        objs=[("HEART", 120, 40), ("OCTOROK", 56, 88)],
    ),
    0x02: dict(
        map="""
TTTTTTTTTT
T~~~~~~..T
T~~~~~~~.T
..~~~~~...
..........
T.*...b..T
T,..o...,T
CCCCCCCCCC
""",
        exits=dict(L=0x01, R=0x03),
        objs=[("RUPEE", 136, 24)],
    ),
    0x03: dict(
        map="""
TTTTTTTTTT
~~~~~~~~~T
~~~~~~~~~T
.,~~~~..,T
.........T
..o...~~~T
T.*...~~~T
TTTT..TTTT
""",
        exits=dict(L=0x02, D=0x13),
        objs=[],
    ),
    0x10: dict(
        map="""
TTTT..TTTT
T.,....b.T
T..T.,...T
T.......,.
T,.b......
T....T...T
T.,.....,T
TTTT..TTTT
""",
        exits=dict(U=0x00, R=0x11, D=0x20),
        objs=[("OCTOROK", 104, 88)],
    ),
    0x11: dict(
        map="""
TTTT..TTTT
T.rR...rRT
T.wd...wdT
.....:....
..*..:..*.
T....:...T
T.b..:.b.T
TTTT::TTTT
""",
        exits=dict(U=0x01, L=0x10, R=0x12, D=0x21),
        objs=[("RUPEE", 24, 104)],
    ),
    0x12: dict(
        map="""
CCCCCCCCCC
CCCCDCCCCC
o..:::...o
...:,:....
..........
T,.....,.T
T..b..b..T
TTTT..TTTT
""",
        exits=dict(L=0x11, R=0x13, D=0x22),
        warp="W0",
        objs=[],
    ),
    0x13: dict(
        map="""
TTTT..TTTT
To..,..o.T
T..o...o.T
.....o...T
..,......T
T.o...o..T
T...,..o.T
TTTT..TTTT
""",
        exits=dict(L=0x12, U=0x03, D=0x23),
        objs=[("OCTOROK", 56, 88), ("RUPEE", 104, 24)],
    ),
    0x20: dict(
        map="""
TTTT..TTTT
T.....,..T
T.BB^^BB.T
T.^^..^^..
T.^^..^^..
T.BB^^BB.T
T..,.....T
TTTT..TTTT
""",
        exits=dict(U=0x10, R=0x21, D=0x30),
        objs=[("RUPEE5", 80, 64)],
    ),
    0x21: dict(
        map="""
TTTT..TTTT
T..rR....T
T*.wd..*.T
..........
..........
T.*....,.T
T..,...*.T
TTTT..TTTT
""",
        exits=dict(U=0x11, L=0x20, R=0x22, D=0x31),
        objs=[("OLDMAN", 120, 88)],
    ),
    0x22: dict(
        map="""
TTTT..TTTT
T,....,..T
T..b..b..T
..........
..........
T..b..b..T
T.,....,.T
TTTT..TTTT
""",
        exits=dict(L=0x21, U=0x12, R=0x23, D=0x32),
        objs=[("RUPEE", 40, 40), ("RUPEE", 120, 40), ("OCTOROK", 104, 104)],
    ),
    0x23: dict(
        map="""
TTTT..TTTT
T.::::~~~~
T.::::~~~~
.::::~~~~~
.::::~~~~~
T.::::~~~~
T,.:::~~~~
TTTT..TTTT
""",
        exits=dict(L=0x22, U=0x13, D=0x33),
        objs=[("RUPEE", 40, 88)],
    ),
    0x30: dict(
        map="""
TTTT..TTTT
T~~.,..~~T
T~..b...~T
T..~~~....
T.,~~~....
T~......~T
T~~.b..~~T
TTTTTTTTTT
""",
        exits=dict(U=0x20, R=0x31),
        objs=[("RUPEE", 104, 104)],
    ),
    0x31: dict(
        map="""
TTTT..TTTT
T..,.....T
T.b..*.b.T
.........,
..,.......
T.b..*.b.T
T....,...T
TTTTTTTTTT
""",
        exits=dict(U=0x21, L=0x30, R=0x32),
        objs=[("OCTOROK", 104, 88)],
    ),
    0x32: dict(
        map="""
TTTT..TTTT
T*.*.*.*.T
T.*.*.*.*T
.*.*.*.*..
..*.*.*.*.
T*.*.*.*.T
T.*.*.*.*T
TTTTTTTTTT
""",
        exits=dict(U=0x22, L=0x31, R=0x33),
        objs=[("HEART", 72, 72), ("RUPEE", 136, 104)],
    ),
    0x33: dict(
        map="""
TTTT..~~~~
T.::::~~~~
T.::::~~~~
.::::~~~~~
.::::~~~~~
T.:::~~~~~
T..::~~~~~
TTTTTTTTTT
""",
        exits=dict(U=0x23, L=0x32),
        objs=[("RUPEE", 40, 88)],
    ),
}

# Tail-Cave-like dungeon: map id 0x00, rooms on an 8x8 grid.
DUNGEON = {
    0x3B: dict(  # entrance hall, row 7 col 3
        name="entrance",
        map="""
####OO####
#________#
#_B____B_#
#________#
#________#
#_B____B_#
#________#
####OO####
""",
        exits=dict(U=0x33, D="W1"),
        objs=[("SLIME", 40, 56)],
    ),
    0x33: dict(  # key room, row 6 col 3
        name="key room",
        map="""
####KK####
#________#
#__c_____#
#________O
#________O
#_B____B_#
#________#
####OO####
""",
        exits=dict(D=0x3B, U=0x2B, R=0x34),
        objs=[("OCTOROK", 104, 88)],
    ),
    0x34: dict(  # side room, row 6 col 4
        name="side room",
        map="""
##########
#________#
#_^^__^^_#
O________#
O________#
#_^^__^^_#
#________#
##########
""",
        exits=dict(L=0x33),
        objs=[("RUPEE5", 40, 56), ("RUPEE5", 120, 72), ("HEART", 80, 104), ("SLIME", 104, 40), ("SLIME", 56, 88)],
    ),
    0x2B: dict(  # switch puzzle, row 5 col 3
        name="switch room",
        map="""
####HH####
#________#
#_^^^^^^_#
#_^s___^_#
#_^^^^_^_#
#________#
#B______B#
####OO####
""",
        exits=dict(D=0x33, U=0x23),
        objs=[],
    ),
    0x23: dict(  # instrument room, row 4 col 3
        name="instrument room",
        map="""
##########
#________#
#_B____B_#
#________#
#________#
#_B____B_#
#________#
####OO####
""",
        exits=dict(D=0x2B),
        objs=[("INSTRUMENT", 80, 48)],
    ),
}

# Warps: target (map, room id), Link's x, y, facing (0 right, 1 left, 2 up, 3 down).
WARPS = {
    "W0": (("in", 0x3B), 80, 104, 2),  # cave door in 0x12 -> dungeon entrance
    "W1": (("ow", 0x12), 72, 46, 3),  # dungeon entrance south door -> in front of the cave
}
START = (("ow", 0x21), 80, 64, 3)
RESPAWN = START

MESSAGES = {
    "OLDMAN": [("IT'S DANGEROUS", "TO GO ALONE!"), ("THE CAVE LIES", "TO THE NORTHEAST")],
    "INSTRUMENT": [("YOU GOT THE FULL", "MOON CELLO!")],
}

TITLE_TEXT = {5: "MINI-ZELDA", 7: "A TINY QUEST", 13: "PRESS START"}
GAMEOVER_TEXT = {6: "GAME OVER", 9: "PRESS START"}

ROOM_SIZE = 128
MAX_OBJS = 8


# --- helpers ---------------------------------------------------------------------------------


def grid(text: str, w: int, h: int, what: str) -> list[str]:
    rows = [r for r in text.strip("\n").split("\n")]
    if len(rows) != h or any(len(r) != w for r in rows):
        raise SystemExit(f"{what}: expected {w}x{h}, got {[len(r) for r in rows]}")
    return rows


def tile_2bpp(rows: list[str], palette: str) -> bytes:
    out = bytearray()
    for r in rows:
        lo = hi = 0
        for x, ch in enumerate(r):
            v = palette.index(ch)
            lo |= (v & 1) << (7 - x)
            hi |= ((v >> 1) & 1) << (7 - x)
        out += bytes([lo, hi])
    return bytes(out)


def split16(rows: list[str]) -> list[list[str]]:
    """16x16 picture -> [top-left, bottom-left, top-right, bottom-right] 8x8 pictures."""
    tl = [r[:8] for r in rows[:8]]
    bl = [r[:8] for r in rows[8:]]
    tr = [r[8:] for r in rows[:8]]
    br = [r[8:] for r in rows[8:]]
    return [tl, bl, tr, br]


BG_PAL = ".-+#"
OBJ_PAL = ".w+#"


class BgTiles:
    def __init__(self):
        self.data: list[bytes] = []
        self.index: dict[bytes, int] = {}

    def add(self, data: bytes) -> int:
        if data not in self.index:
            self.index[data] = len(self.data)
            self.data.append(data)
        return self.index[data]


def font_tile(glyph: list[str]) -> bytes:
    rows = ["." + g.replace("#", "#") + ".." for g in glyph] + ["........"]
    return tile_2bpp(rows, BG_PAL)


def build():
    bg = BgTiles()
    consts: list[tuple[str, int]] = []
    # Tile 0 is the blank (white) tile: font space, HUD background.
    bg.add(tile_2bpp(["........"] * 8, BG_PAL))
    charmap = {" ": 0}
    for ch, glyph in art.FONT.items():
        charmap[ch] = bg.add(font_tile(glyph))
    for name, pic in art.HUD_ART.items():
        consts.append((f"T_{name}", bg.add(tile_2bpp(grid(pic, 8, 8, name), BG_PAL))))
    mt_tiles = []
    for name, _, _ in METATILES:
        rows = grid(art.METATILE_ART[name], 16, 16, name)
        tl, bl, tr, br = split16(rows)
        mt_tiles.append([bg.add(tile_2bpp(t, BG_PAL)) for t in (tl, tr, bl, br)])
    if len(bg.data) > 256:
        raise SystemExit(f"too many BG tiles: {len(bg.data)}")
    for ch in "ABX":
        consts.append((f"T_CHAR_{ch}", charmap[ch]))
    for d in "0123456789":
        consts.append((f"T_DIGIT_{d}", charmap[d]))

    # Sprites: 4 tiles each (8x16 halves) except the 8x16 ones (2 tiles).
    obj = bytearray()
    spr_ids = []
    for name, pic in art.SPRITE_ART.items():
        width = len(pic.strip("\n").split("\n")[0])
        rows = grid(pic, width, 16, name)
        tile_no = len(obj) // 16
        if width == 16:
            for t in split16(rows):
                obj += tile_2bpp(t, OBJ_PAL)
        else:
            obj += tile_2bpp(rows[:8], OBJ_PAL) + tile_2bpp(rows[8:], OBJ_PAL)
        spr_ids.append((f"S_{name}", tile_no))
    if len(obj) // 16 > 128:
        raise SystemExit("too many sprite tiles")

    # Rooms.
    rooms = []  # (key, record)
    keys = [("ow", rid) for rid in sorted(OVERWORLD)] + [("in", rid) for rid in DUNGEON]
    index = {k: i for i, k in enumerate(keys)}
    warp_names = sorted(WARPS)

    def exit_code(kind, target):
        if target is None:
            return 0xFF
        if isinstance(target, str):
            return 0x80 | warp_names.index(target)
        return index[(kind, target)]

    for kind, rid in keys:
        spec = (OVERWORLD if kind == "ow" else DUNGEON)[rid]
        rows = grid(spec["map"], 10, 8, f"room {kind} {rid:02X}")
        cells = []
        for r in rows:
            for ch in r:
                if ch not in MT_CHAR:
                    raise SystemExit(f"room {rid:02X}: unknown map character {ch!r}")
                cells.append(MT_CHAR[ch])
        ex = spec["exits"]
        exits = [exit_code(kind, ex.get(d)) for d in "RLUD"]
        # Validate that every edge exit is open on both sides and every wall edge is closed.
        def solid(c):
            return METATILES[c][2] & SOLID

        for d, code in zip("RLUD", exits):
            if d in "RL":
                col = 9 if d == "R" else 0
                edge = [cells[r * 10 + col] for r in (3, 4)]
            else:
                row = 0 if d == "U" else 7
                edge = [cells[row * 10 + c] for c in (4, 5)]
            is_door = [not solid(c) or METATILES[c][2] & (LOCKED | SHUTTER) for c in edge]
            if code != 0xFF and not all(is_door):
                raise SystemExit(f"room {rid:02X}: exit {d} is blocked by {edge}")
            if code < 0x80 and code != 0xFF:
                tkind, trid = keys[code]
                back = {"R": "L", "L": "R", "U": "D", "D": "U"}[d]
                tspec = (OVERWORLD if tkind == "ow" else DUNGEON)[trid]
                if tspec["exits"].get(back) != rid:
                    raise SystemExit(f"room {rid:02X} exit {d} -> {trid:02X} has no way back")
        objs = spec["objs"]
        if len(objs) > MAX_OBJS:
            raise SystemExit(f"room {rid:02X}: too many objects")
        for t, x, y in objs:
            c = cells[(y // 16) * 10 + x // 16]
            if solid(c):
                raise SystemExit(f"room {rid:02X}: object {t} at ({x},{y}) sits on a solid tile")
        warp = spec.get("warp")
        rec = bytearray(cells)
        rec += bytes(exits)
        rec += bytes([rid, 1 if kind == "in" else 0, rid if kind == "in" else 0, 0xFF if warp is None else warp_names.index(warp)])
        for t, x, y in objs:
            rec += bytes([OBJ[t], x, y])
        rec += bytes(ROOM_SIZE - len(rec))
        rooms.append(((kind, rid), bytes(rec), spec))

    # Messages: [pages] then pages x 2 lines x 16 tile ids.
    msg_blob = bytearray()
    msg_offsets = {}
    for name, pages in MESSAGES.items():
        msg_offsets[name] = len(msg_blob)
        msg_blob.append(len(pages))
        for l1, l2 in pages:
            for line in (l1, l2):
                if len(line) > 16:
                    raise SystemExit(f"message {name}: line too long: {line!r}")
                msg_blob += bytes(charmap[c] for c in line.ljust(16))

    def text_screen(texts: dict[int, str], rows_n: int, fill: int, border_tree: bool) -> bytes:
        scr = [[fill] * 20 for _ in range(rows_n)]
        if border_tree:
            tree = mt_tiles[MT_INDEX["TREE"]]
            for c in range(10):
                for r0 in (0, rows_n - 2):
                    scr[r0][2 * c], scr[r0][2 * c + 1] = tree[0], tree[1]
                    scr[r0 + 1][2 * c], scr[r0 + 1][2 * c + 1] = tree[2], tree[3]
            grass = mt_tiles[MT_INDEX["GRASS2"]]
            for r in range(2, rows_n - 2):
                for c in range(20):
                    if r in (2, rows_n - 3) or c in (0, 19):
                        scr[r][c] = grass[(r % 2) * 2 + c % 2]
        for r, t in texts.items():
            start = (20 - len(t)) // 2
            for i, ch in enumerate(t):
                scr[r][start + i] = charmap[ch]
        return bytes(v for row in scr for v in row)

    title = text_screen(TITLE_TEXT, 18, 0, True)
    black = mt_tiles[MT_INDEX["BLACK"]][0]
    gameover = text_screen(GAMEOVER_TEXT, 16, black, False)

    return dict(
        bg=bg,
        charmap=charmap,
        consts=consts,
        mt_tiles=mt_tiles,
        obj=bytes(obj),
        spr_ids=spr_ids,
        rooms=rooms,
        index=index,
        warp_names=warp_names,
        msg_blob=bytes(msg_blob),
        msg_offsets=msg_offsets,
        title=title,
        gameover=gameover,
    )


def c_bytes(data: bytes, indent: str = "    ") -> str:
    lines = []
    for i in range(0, len(data), 16):
        lines.append(indent + ", ".join(f"0x{b:02X}" for b in data[i : i + 16]) + ",")
    return "\n".join(lines)


HEADER = "/* Generated by tools/gen_assets.py from tools/art.py and the maps in it; do not edit. */\n"


def render(a) -> dict[str, str]:
    out = {}
    h = [HEADER, "#ifndef ASSETS_H\n#define ASSETS_H\n\n#include <stdint.h>\n\n"]
    h.append("/* Metatile ids (room map cells). */\n")
    for i, (name, ch, _) in enumerate(METATILES):
        h.append(f"#define MT_{name} {i} /* '{ch}' */\n")
    h.append(f"#define MT_COUNT {len(METATILES)}\n\n/* Metatile flags. */\n")
    for n, v in (("SOLID", SOLID), ("HURT", HURT), ("WARP", WARP), ("LOCKED", LOCKED), ("CHEST", CHEST), ("SWITCH", SWITCH), ("SHUTTER", SHUTTER)):
        h.append(f"#define MF_{n} 0x{v:02X}\n")
    h.append("\n/* Background tile ids (0x8800 addressing: 0-127 at 9000, 128-255 at 8800). */\n")
    h.append(f"#define NUM_BG_TILES {len(a['bg'].data)}\n#define T_BLANK 0\n")
    for n, v in a["consts"]:
        h.append(f"#define {n} {v}\n")
    h.append("\n/* Sprite tile ids (8x16 OBJ mode, tiles at 8000). */\n")
    h.append(f"#define NUM_OBJ_TILES {len(a['obj']) // 16}\n")
    for n, v in a["spr_ids"]:
        h.append(f"#define {n} {v}\n")
    h.append("\n/* Object types in room records. */\n")
    for i, n in enumerate(OBJ_TYPES):
        h.append(f"#define OBJ_{n} {i}\n")
    h.append(f"\n/* Rooms: index into rooms[] (bank 3). */\n#define NUM_ROOMS {len(a['rooms'])}\n#define ROOM_SIZE {ROOM_SIZE}\n")
    h.append("#define R_EXITS 80\n#define R_ID 84\n#define R_INDOOR 85\n#define R_GRID 86\n#define R_WARP 87\n#define R_OBJS 88\n")
    h.append(f"#define MAX_OBJS {MAX_OBJS}\n")
    for (kind, rid), _, spec in a["rooms"]:
        h.append(f"#define ROOM_{'OW' if kind == 'ow' else 'IN'}_{rid:02X} {a['index'][(kind, rid)]}\n")
    (skind, srid), sx, sy, sdir = START
    h.append(f"#define START_ROOM {a['index'][(skind, srid)]}\n#define START_X {sx}\n#define START_Y {sy}\n#define START_DIR {sdir}\n")
    h.append(f"#define NUM_WARPS {len(a['warp_names'])}\n")
    h.append("\n/* Messages: offsets into messages[] (bank 3). */\n")
    for n, off in a["msg_offsets"].items():
        h.append(f"#define MSG_{n} {off}\n")
    h.append(
        "\n/* Bank 2. */\nextern const uint8_t bg_tiles[NUM_BG_TILES * 16];\nextern const uint8_t obj_tiles[NUM_OBJ_TILES * 16];\n"
        "/* Bank 3. */\nextern const uint8_t rooms[NUM_ROOMS * ROOM_SIZE];\n"
        f"extern const uint8_t messages[{len(a['msg_blob'])}];\nextern const uint8_t title_map[360];\nextern const uint8_t gameover_map[320];\n"
        "/* Bank 0. */\nextern const uint8_t metatile_tiles[MT_COUNT * 4];\nextern const uint8_t metatile_flags[MT_COUNT];\n"
        "extern const uint8_t warp_table[NUM_WARPS * 4];\n"
        "\n#define GFX_BANK 2\n#define WORLD_BANK 3\n\n#endif\n"
    )
    out["assets.h"] = "".join(h)

    t = [HEADER, '#include "assets.h"\n\n']
    t.append("/* Tiles of each metatile: top-left, top-right, bottom-left, bottom-right. */\n")
    t.append("const uint8_t metatile_tiles[MT_COUNT * 4] = {\n")
    for (name, _, _), tiles in zip(METATILES, a["mt_tiles"]):
        t.append(f"    {', '.join(str(x) for x in tiles)}, /* {name} */\n")
    t.append("};\n\nconst uint8_t metatile_flags[MT_COUNT] = {\n")
    for name, _, flags in METATILES:
        t.append(f"    0x{flags:02X}, /* {name} */\n")
    t.append("};\n\n/* Warps: room index, x, y, facing. */\nconst uint8_t warp_table[NUM_WARPS * 4] = {\n")
    for w in a["warp_names"]:
        (kind, rid), x, y, d = WARPS[w]
        t.append(f"    {a['index'][(kind, rid)]}, {x}, {y}, {d}, /* {w} */\n")
    t.append("};\n")
    out["tables.c"] = "".join(t)

    g = [HEADER, '#include "assets.h"\n\n#pragma constseg BANK2\n\n']
    g.append("const uint8_t bg_tiles[NUM_BG_TILES * 16] = {\n" + c_bytes(b"".join(a["bg"].data)) + "\n};\n\n")
    g.append("const uint8_t obj_tiles[NUM_OBJ_TILES * 16] = {\n" + c_bytes(a["obj"]) + "\n};\n")
    out["gfx.c"] = "".join(g)

    w = [HEADER, '#include "assets.h"\n\n#pragma constseg BANK3\n\n']
    w.append("/* Room records: 80 metatiles, exits R L U D (room index, 0x80|warp, 0xFF none), id,\n"
             " * indoor flag, dungeon grid position, warp of the CAVE cell, then (type, x, y) objects. */\n")
    w.append("const uint8_t rooms[NUM_ROOMS * ROOM_SIZE] = {\n")
    for (kind, rid), rec, spec in a["rooms"]:
        w.append(f"    /* {'overworld' if kind == 'ow' else 'dungeon'} room {rid:02X} */\n" + c_bytes(rec) + "\n")
    w.append("};\n\n")
    w.append(f"const uint8_t messages[{len(a['msg_blob'])}] = {{\n" + c_bytes(a["msg_blob"]) + "\n};\n\n")
    w.append("const uint8_t title_map[360] = {\n" + c_bytes(a["title"]) + "\n};\n\n")
    w.append("const uint8_t gameover_map[320] = {\n" + c_bytes(a["gameover"]) + "\n};\n")
    out["world.c"] = "".join(w)
    return out


def world_map() -> str:
    """ASCII map of the overworld and the dungeon (for README.md)."""
    lines = ["Overworld (room ids = LA grid row*16+col; map chars below):", ""]
    for row in range(4):
        maps = [grid(OVERWORLD[row * 16 + c]["map"], 10, 8, "") for c in range(4)]
        lines.append("   ".join(f"  room {row * 16 + c:02X}  " for c in range(4)))
        for r in range(8):
            lines.append("   ".join(f" {maps[c][r]} " for c in range(4)))
        lines.append("")
    lines.append("Dungeon (map 00, DBA5=1; ids = grid row*8+col):")
    lines.append("")
    order = [[None, 0x23, None], [None, 0x2B, None], [None, 0x33, 0x34], [None, 0x3B, None]]
    for row in order:
        maps = [grid(DUNGEON[r]["map"], 10, 8, "") if r is not None else [" " * 10] * 8 for r in row]
        lines.append("   ".join((f"  room {r:02X}  " if r is not None else " " * 12) for r in row))
        for i in range(8):
            lines.append("   ".join(f" {m[i]} " for m in maps))
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    if "--map" in sys.argv:
        print(world_map())
        return 0
    files = render(build())
    check = "--check" in sys.argv
    stale = []
    for name, text in files.items():
        path = HERE / name
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print("stale generated files: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
