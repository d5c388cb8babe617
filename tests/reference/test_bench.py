"""The two benchmark cartridges run as described in their READMEs (in PyBoy, post-boot)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))

from pyboy_runner import Runner, parse_script  # noqa: E402

VBLANKS, LOOPS, JOY, BANK_BYTE, BANK = 0xC0A0, 0xC0A2, 0xC0A8, 0xC0A9, 0xC0AA


def rom(name: str) -> Path:
    return REPO / "cartridges" / name / f"{name}.gb"


def table(bank: int, i: int) -> int:
    return (i * bank + bank * 0x11) & 0xFF


@pytest.mark.parametrize("name, vblanks_per_loop", [("bench-halt", 1), ("bench-cpu", 3)])
def test_bench_loop_rate(name, vblanks_per_loop):
    data = rom(name).read_bytes()
    assert len(data) == 65536 and data[0x147] == 0x01 and data[0x148] == 0x01, "MBC1, 64 KiB"
    with Runner(rom(name)) as r:
        r.run(60)
        v0, l0 = r.peek16(VBLANKS), r.peek16(LOOPS)
        assert v0 > 40, "running by frame 60"
        for _ in range(300):
            v, lp = r.peek16(VBLANKS), r.peek16(LOOPS)
            r.step()
            assert r.peek16(VBLANKS) == v + 1, "exactly one VBlank per frame"
            assert r.peek16(LOOPS) - lp in ((1,) if vblanks_per_loop == 1 else (0, 1))
            # The loop's MBC1 read: bank 2 or 3 (alternating), entry = loop index. A frame can
            # end after the read but before the loop counts itself, so either index may hold.
            n = r.peek16(LOOPS)
            assert any(
                r.peek(BANK) == 2 + (i & 1) and r.peek(BANK_BYTE) == table(2 + (i & 1), i & 0xFF) for i in (n, n - 1)
            )
        loops = r.peek16(LOOPS) - l0
        assert loops * vblanks_per_loop == 300, f"{loops} loops in 300 VBlanks"


def test_bench_joypad_moves_sprites():
    script = parse_script("0 -\n100 A\n130 -\n")
    with Runner(rom("bench-halt")) as r:
        r.run(100, script)
        y0 = r.peek(0xC000)
        r.run(30, script)
        assert r.peek(JOY) == 0x01, "A pressed"
        r.run(10, script)
        assert r.peek(JOY) == 0x00
        assert r.peek(0xC000) - y0 == 30, "sprite 0 moved down one pixel per loop while A was held"
