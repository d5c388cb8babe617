"""mini-zelda in PyBoy: the scripted input files under scripts/ must drive the cartridge's
Link's Awakening RAM exactly as documented in cartridges/mini-zelda/README.md.

Every test replays a committed script (the same files the Rust emulator will replay) and
asserts exact values, so a change in the cartridge or the harness makes them fail.
"""

from __future__ import annotations

import hashlib
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))

from pyboy_runner import (  # noqa: E402
    GREYS,
    RAM_DUMP_SIZE,
    Runner,
    ScriptError,
    load_script,
    parse_script,
)

ROM = REPO / "cartridges" / "mini-zelda" / "mini-zelda.gb"
SCRIPTS = HERE / "scripts"

# Link's Awakening addresses (see the cartridge README).
LINK_X, LINK_Y, LINK_DIR = 0xFF98, 0xFF99, 0xFF9E
GAME_OVER_STAGE, FRAME_COUNTER, ROOM, MAP = 0xFF9C, 0xFFE7, 0xFFF6, 0xFFF7
MOTION, TRANSITION, SWORD, SHIELD, DIALOG = 0xC11C, 0xC124, 0xC137, 0xC15B, 0xC19F
B_SLOT, A_SLOT, DEATHS_LO, DEATHS_HI = 0xDB00, 0xDB01, 0xDB57, 0xDB58
HEALTH, MAX_HEARTS, RUPEES_HI, RUPEES_LO = 0xDB5A, 0xDB5B, 0xDB5D, 0xDB5E
INSTRUMENT, MODE, INDOOR, INDOOR_ROOM = 0xDB65, 0xDB95, 0xDBA5, 0xDBAE
KILLS, INVINCIBLE, KEYS = 0xDBB5, 0xDBC7, 0xDBD0
ENT_X, ENT_Y, ENT_HP, ENT_TYPE, ENT_FLASH = 0xC200, 0xC210, 0xC360, 0xC3A0, 0xC420
# mini-zelda's own diagnostics.
DBG_VBLANK_LINES, DBG_LATE, STATE = 0xC0A2, 0xC0A3, 0xC0A5
ST_PLAY, ST_DIALOG = 2, 4

WATCH = [
    LINK_X, LINK_Y, LINK_DIR, GAME_OVER_STAGE, FRAME_COUNTER, ROOM, MAP, MOTION, TRANSITION, SWORD,
    SHIELD, DIALOG, B_SLOT, A_SLOT, DEATHS_LO, DEATHS_HI, HEALTH, MAX_HEARTS, RUPEES_HI, RUPEES_LO,
    INSTRUMENT, MODE, INDOOR, INDOOR_ROOM, KILLS, INVINCIBLE, KEYS, ENT_TYPE, ENT_HP, ENT_FLASH,
    DBG_VBLANK_LINES, DBG_LATE, STATE,
    0xD812, 0xD821, 0xD822, 0xD920, 0xD923, 0xD92B, 0xD933, 0xD93B,
]


class Trace:
    """Per-frame values of the WATCH addresses over one scripted run (index = frame)."""

    def __init__(self, runner: Runner):
        self.runner = runner
        self.rows: list[dict[int, int]] = []

    def record(self, r: Runner) -> None:
        mem = r.pyboy.memory
        self.rows.append({a: mem[a] for a in WATCH})

    def __getitem__(self, addr: int) -> list[int]:
        return [row[addr] for row in self.rows]

    def at(self, frame: int, addr: int) -> int:
        return self.rows[frame][addr]

    def first(self, addr: int, pred) -> int:
        """First frame whose value satisfies `pred`."""
        for f, row in enumerate(self.rows):
            if pred(row[addr]):
                return f
        raise AssertionError(f"{addr:04X} never satisfied the condition")

    def changes(self, addr: int) -> list[int]:
        """The value sequence with consecutive repeats collapsed."""
        out: list[int] = []
        for v in self[addr]:
            if not out or out[-1] != v:
                out.append(v)
        return out


def play(name: str, extra_frames: int = 0, setup=None) -> Trace:
    script = load_script(SCRIPTS / f"{name}.txt")
    r = Runner(ROM)
    t = Trace(r)
    if setup:
        setup(r)
    r.run(script.last_frame() + 1 + extra_frames, script, render_last=True, on_frame=t.record)
    return t


@pytest.fixture(scope="module")
def walkthrough() -> Trace:
    t = play("walkthrough")
    yield t
    t.runner.close()


def assert_no_lag(t: Trace) -> None:
    assert t.at(-1, DBG_LATE) == 0, "an update ran into the next frame"
    assert max(t[DBG_VBLANK_LINES]) < 10, "VBlank work spilled past VBlank"
    fc = t[FRAME_COUNTER]
    started = t.first(FRAME_COUNTER, lambda v: v != 0)
    for f in range(started + 1, len(fc)):
        assert fc[f] == (fc[f - 1] + 1) & 0xFF, f"frame counter skipped at frame {f}"


# ---- the harness itself -----------------------------------------------------------------


def test_script_format_errors_name_file_and_line(tmp_path):
    s = parse_script("# comment\n\n0 -\n10 a+RIGHT  # both\n12 Start\n", "x.txt")
    assert s.entries == ((0, 0), (10, 0x11), (12, 0x08))
    assert s.buttons_at(11) == 0x11 and s.buttons_at(9) == 0 and s.last_frame() == 12
    for text, msg in [
        ("5 A\n5 B\n", "x.txt:2: frame 5 does not follow frame 5"),
        ("0 JUMP\n", "x.txt:1: unknown button 'JUMP'"),
        ("zero A\n", "x.txt:1: frame 'zero' is not a decimal number"),
        ("1\n", "x.txt:1: expected `<frame> <buttons>`"),
    ]:
        with pytest.raises(ScriptError) as e:
            parse_script(text, "x.txt")
        assert msg in str(e.value)


def test_post_boot_state_matches_dmg():
    """The harness's boot ROM reaches 0x100 in frame 0 with the DMG post-boot registers."""
    with Runner(ROM) as r:
        seen = {}

        def at_entry(_):
            rf = r.pyboy.register_file
            seen.update(A=rf.A, F=rf.F, BC=(rf.B << 8) | rf.C, DE=(rf.D << 8) | rf.E, HL=rf.HL, SP=rf.SP)
            seen.update(frame=r.frame, LY=r.pyboy.memory[0xFF44], LCDC=r.pyboy.memory[0xFF40])

        r.pyboy.hook_register(0, 0x100, at_entry, None)
        r.step()
        assert seen == dict(A=0x01, F=0xB0, BC=0x0013, DE=0x00D8, HL=0x014D, SP=0xFFFE, frame=0, LY=0, LCDC=0x91)


def test_cli_writes_ram_dump_and_png(tmp_path):
    ram, png = tmp_path / "ram.bin", tmp_path / "shot.png"
    subprocess.run(
        [sys.executable, str(HERE / "pyboy_runner.py"), "--rom", str(ROM), "--input", str(SCRIPTS / "boot.txt"),
         "--dump-ram", str(ram), "--screenshot", str(png)],
        check=True, capture_output=True,
    )
    dump = ram.read_bytes()
    assert len(dump) == RAM_DUMP_SIZE == 0x2000 + 0x7F
    assert dump[MODE - 0xC000] == 0x0B and dump[0x2000 + (ROOM - 0xFF80)] == 0x21
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    w, h, depth, colour = struct.unpack(">IIBB", data[16:26])
    assert (w, h, depth, colour) == (160, 144, 8, 0)
    idat = data[data.index(b"IDAT") + 4 : data.index(b"IEND") - 8]
    rows = zlib.decompress(idat)
    pixels = b"".join(rows[y * 161 + 1 : (y + 1) * 161] for y in range(144))
    assert set(pixels) == set(GREYS), "a playing screen uses all four greys and nothing else"
    bad = subprocess.run(
        [sys.executable, str(HERE / "pyboy_runner.py"), "--rom", str(ROM), "--input", str(tmp_path / "nope.txt")],
        capture_output=True, text=True,
    )
    assert bad.returncode == 2 and "nope.txt" in bad.stderr


# ---- the cartridge ----------------------------------------------------------------------


def test_rom_header_and_banking():
    rom = ROM.read_bytes()
    assert len(rom) == 64 * 1024
    assert rom[0x147] == 0x01, "MBC1"
    assert rom[0x148] == 0x01, "64 KiB (4 banks)"
    assert rom[0x134:0x13D] == b"MINIZELDA"
    check = 0
    for b in rom[0x134:0x14D]:
        check = (check - b - 1) & 0xFF
    assert rom[0x14D] == check
    # The tile graphics live only in bank 2: what ends up in VRAM came through an MBC1 switch.
    sys.path.insert(0, str(REPO / "cartridges" / "mini-zelda" / "tools"))
    import gen_assets

    a = gen_assets.build()
    tiles = b"".join(a["bg"].data)
    assert rom.find(tiles) == 2 * 0x4000
    assert rom[: 2 * 0x4000].find(tiles[16 * 40 : 16 * 48]) == -1


def test_generated_sources_are_up_to_date():
    gen = REPO / "cartridges" / "mini-zelda" / "tools" / "gen_assets.py"
    res = subprocess.run([sys.executable, str(gen), "--check"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_boot_reaches_play():
    t = play("boot")
    try:
        start = t.first(MODE, lambda v: v == 0x0B)
        assert start == 135, "tiles, title screen (auto-start after 60 frames), fade-in"
        assert t.changes(MODE) == [0x00, 0x0B]
        assert t.at(start, ROOM) == 0x21 and t.at(start, INDOOR) == 0 and t.at(start, MAP) == 0x00
        assert (t.at(start, LINK_X), t.at(start, LINK_Y), t.at(start, LINK_DIR)) == (80, 64, 3)
        assert (t.at(start, HEALTH), t.at(start, MAX_HEARTS)) == (24, 3)
        assert (t.at(start, B_SLOT), t.at(start, A_SLOT)) == (0x04, 0x01)
        assert t.at(start, 0xD821) == 0x80
        assert t.at(-1, STATE) == ST_PLAY
        assert_no_lag(t)
        # Vision check material: the start room shows the HUD with three full hearts.
        shades = t.runner.shades()
        hud = shades[128 * 160 :]
        assert hud.count(3) > 100 and hud.count(0) > 800
    finally:
        t.runner.close()


def test_walk_right_changes_room_at_the_edge():
    t = play("walk_right")
    try:
        start = t.first(MODE, lambda v: v == 0x0B)
        enter = t.first(ROOM, lambda v: v == 0x22)
        xs = t[LINK_X][start + 1 : enter]
        assert all(b - a in (0, 1) for a, b in zip(xs, xs[1:])) and xs[-1] == 154 and xs[0] <= 81
        assert t.at(enter, LINK_X) == 6, "enters the next room at the west edge"
        assert t.at(enter - 1, 0xD822) == 0 and t.at(enter, 0xD822) == 0x80
        assert t.at(enter, 0xD821) == 0x80
        assert t.at(-1, LINK_X) > 6
        assert_no_lag(t)
    finally:
        t.runner.close()


def test_spikes_take_one_heart():
    t = play("spikes")
    try:
        assert t.changes(ROOM) == [0x00, 0x21, 0x20]
        hit = t.first(HEALTH, lambda v: v == 16)
        assert t.at(hit - 1, HEALTH) == 24, "8 units = one heart per spike hit"
        assert t.at(hit, INVINCIBLE) == 48 and t.at(hit + 10, INVINCIBLE) == 38
        assert t.changes(HEALTH)[-2:] == [24, 16]
        assert t.at(-1, HEALTH) == 16
    finally:
        t.runner.close()


def test_rupees_count_in_bcd():
    t = play("rupee")
    try:
        assert t.changes(RUPEES_LO) == [0x00, 0x01, 0x02]
        assert set(t[RUPEES_HI]) == {0}
    finally:
        t.runner.close()


@pytest.mark.parametrize(
    "before, after",
    [((0x00, 0x09), (0x00, 0x11)), ((0x00, 0x99), (0x01, 0x01)), ((0x09, 0x98), (0x09, 0x99)), ((0x09, 0x99), (0x09, 0x99))],
)
def test_rupee_bcd_carry_and_cap(before, after):
    """Collect two rupees starting from a poked count: BCD carries and the 999 cap."""

    script = load_script(SCRIPTS / "rupee.txt")
    with Runner(ROM) as r:
        r.run(200, script)
        assert (r.peek(RUPEES_HI), r.peek(RUPEES_LO)) == (0, 0)
        r.pyboy.memory[RUPEES_HI], r.pyboy.memory[RUPEES_LO] = before
        r.run(script.last_frame() + 1 - 200, script)
        assert (r.peek(RUPEES_HI), r.peek(RUPEES_LO)) == after


def test_npc_dialog_opens_waits_and_closes():
    t = play("npc")
    try:
        assert t.changes(DIALOG) == [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x09, 0x0A, 0x0B, 0x06, 0x0C, 0x0E, 0x0F, 0x00]
        opened = t.first(DIALOG, lambda v: v != 0)
        closed = opened + t[DIALOG][opened:].index(0)
        assert [t.at(f, DIALOG) for f in range(opened, opened + 6)] == [1, 2, 3, 4, 5, 6], "one opening state per frame"
        assert t[DIALOG].count(0x09) >= 20 and t[DIALOG].count(0x0C) >= 20, "waits for A"
        # Link cannot move while the box is open (the script holds LEFT then).
        assert len({(t.at(f, LINK_X), t.at(f, LINK_Y)) for f in range(opened, closed + 1)}) == 1
        assert all(t.at(f, STATE) == ST_DIALOG for f in range(opened, closed))
        assert t.at(-1, LINK_X) < t.at(closed, LINK_X), "free to move after closing"
    finally:
        t.runner.close()


def test_shield_is_the_b_item():
    t = play("shield")
    try:
        assert t.changes(SHIELD) == [0, 1, 0]
        on = t.first(SHIELD, lambda v: v == 1)
        assert t.at(on, B_SLOT) == 0x04
        assert t.at(-1, LINK_X) - t.at(on, LINK_X) == 30, "Link walks with the shield up"
    finally:
        t.runner.close()


def test_shield_blocks_the_slime():
    t = play("shield_block")
    try:
        up = t.first(SHIELD, lambda v: v == 1)
        down = up + t[SHIELD][up:].index(0)
        assert all(t.at(f, HEALTH) == 24 for f in range(up, down)), "no damage while the shield faces the slime"
        assert max(t[ENT_FLASH][up:down]) == 16, "the slime bounced off the shield"
        assert t.at(-1, HEALTH) == 20, "without the shield the slime does half a heart"
    finally:
        t.runner.close()


def test_sword_kills_the_slime():
    t = play("sword")
    try:
        assert t.changes(SWORD) == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0], "two swings"
        swing = t.first(SWORD, lambda v: v == 1)
        assert [t.at(swing + k, SWORD) for k in (0, 3, 4, 8, 12, 16)] == [1, 1, 2, 3, 4, 0], "4 frames per swing state"
        assert t.changes(KILLS) == [0, 1]
        inside = t.first(ROOM, lambda v: v == 0x3B)
        hp = [t.at(f, ENT_HP) for f in range(inside, len(t.rows))]
        assert [v for i, v in enumerate(hp) if i == 0 or hp[i - 1] != v] == [2, 1, 0], "two hits for a slime"
        assert t.at(-1, ENT_TYPE) == 0, "the slime is gone (after its poof)"
    finally:
        t.runner.close()


def test_dungeon_entrance():
    t = play("dungeon")
    try:
        inside = t.first(INDOOR, lambda v: v == 1)
        assert (t.at(inside, ROOM), t.at(inside, MAP), t.at(inside, INDOOR_ROOM)) == (0x3B, 0x00, 0x3B)
        assert t.at(inside - 1, ROOM) == 0x12 and t.at(inside - 1, INDOOR) == 0
        assert t.at(inside - 1, 0xD93B) == 0 and t.at(inside, 0xD93B) == 0x80
        assert t.at(inside, 0xD812) == 0x80
        assert (t.at(inside, LINK_X), t.at(inside, LINK_Y)) == (80, 104)
        assert t.at(-1, STATE) == ST_PLAY and t.at(-1, INDOOR) == 1
    finally:
        t.runner.close()


def test_walkthrough_key_door_switch_instrument(walkthrough):
    t = walkthrough
    assert t.changes(ROOM) == [0x00, 0x21, 0x22, 0x12, 0x3B, 0x33, 0x2B, 0x23]
    assert t.changes(KEYS) == [0, 1, 0], "key from the chest, spent on the locked door"
    got_key = t.first(KEYS, lambda v: v == 1)
    assert t.at(got_key, ROOM) == 0x33 and t.at(got_key, 0xD933) == 0x90, "chest opened (0x10)"
    opened = t.first(0xD933, lambda v: v & 0x04)
    assert t.at(opened, KEYS) == 0 and t.at(opened, ROOM) == 0x33
    pressed = t.first(0xD92B, lambda v: v & 0x04)
    assert t.at(pressed, ROOM) == 0x2B and t.at(pressed, 0xD923) == 0, "switch before the instrument room"
    got = t.first(INSTRUMENT, lambda v: v & 0x02)
    assert t.at(got, ROOM) == 0x23 and t.at(got, INDOOR_ROOM) == 0x23 and t.at(got, 0xD923) == 0x80
    assert t.at(got, INSTRUMENT) == 0x02
    assert t.changes(DIALOG)[:3] == [0x00, 0x01, 0x02] and t.changes(DIALOG)[-4:] == [0x0C, 0x0E, 0x0F, 0x00]
    closed = got + t[DIALOG][got:].index(0)
    assert t.at(-1, LINK_Y) == t.at(closed, LINK_Y) + 20, "play continues after the message"
    assert t.at(-1, HEALTH) == 24 and t.at(-1, RUPEES_LO) == 0x01
    assert_no_lag(t)


def test_death_game_over_and_restart():
    t = play("death")
    try:
        assert t.changes(HEALTH) == [0, 24, 16, 8, 0, 24]
        zero = [f for f in range(1, len(t.rows)) if t.at(f, HEALTH) == 0 and t.at(f - 1, HEALTH) == 8][0]
        assert t.at(zero, MOTION) == 0x07 and t.at(zero - 1, MOTION) == 0x00
        assert (t.at(zero - 1, DEATHS_LO), t.at(zero, DEATHS_LO), t.at(zero, DEATHS_HI)) == (0, 1, 0)
        assert t.at(zero, GAME_OVER_STAGE) == 1
        over = t.first(GAME_OVER_STAGE, lambda v: v == 2)
        assert over - zero > 64, "passed-out animation first"
        assert all(t.at(f, MOTION) == 0x07 for f in range(zero, over + 1))
        back = over + t[MOTION][over:].index(0)
        assert t.at(back, HEALTH) == 24 and t.at(back, GAME_OVER_STAGE) == 0
        end = len(t.rows) - 1
        assert (t.at(end, ROOM), t.at(end, INDOOR), t.at(end, LINK_X), t.at(end, LINK_Y)) == (0x21, 0, 80, 64)
        assert (t.at(end, HEALTH), t.at(end, DEATHS_LO), t.at(end, MODE), t.at(end, STATE)) == (24, 1, 0x0B, ST_PLAY)
        assert_no_lag(t)
    finally:
        t.runner.close()


def test_runs_are_deterministic():
    """Two runs of the same script give the same RAM and the same picture."""
    script = load_script(SCRIPTS / "sword.txt")
    outs = []
    for _ in range(2):
        with Runner(ROM) as r:
            r.run(script.last_frame() + 1, script)
            outs.append((r.ram(), hashlib.sha1(r.shades()).hexdigest()))
    assert outs[0] == outs[1]


def test_every_script_parses_and_replays_without_lag():
    names = sorted(p.stem for p in SCRIPTS.glob("*.txt"))
    assert {"boot", "walk_right", "spikes", "rupee", "npc", "shield", "shield_block", "sword", "walkthrough", "death"} <= set(names)
    for n in names:
        t = play(n)
        try:
            assert_no_lag(t)
        finally:
            t.runner.close()
