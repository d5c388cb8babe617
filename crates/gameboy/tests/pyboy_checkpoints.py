#!/usr/bin/env python3
"""Replays input scripts in PyBoy and writes RAM and screen checkpoints for the Rust
differential test (crates/gameboy/tests/differential.rs).

Usage: pyboy_checkpoints.py ROM OUT SCRIPT:FRAMES:EVERY [SCRIPT:FRAMES:EVERY ...]

For each script, frames are run one by one from a fresh PyBoy (post-boot start, see
tests/reference/pyboy_runner.py); after every frame whose count is a multiple of EVERY,
and after the last, a record is appended to OUT:
    u32 script index, u32 frames run, 8319 bytes RAM (C000-DFFF, FF80-FFFE), 23040 shades.
"""

import struct
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tests" / "reference"))

from pyboy_runner import Runner, load_script  # noqa: E402


def main() -> int:
    rom, out = sys.argv[1], sys.argv[2]
    with open(out, "wb") as f:
        for index, spec in enumerate(sys.argv[3:]):
            path, frames, every = spec.rsplit(":", 2)
            frames, every = int(frames), int(every)
            script = load_script(path)
            with Runner(rom, boot="post") as r:
                for n in range(1, frames + 1):
                    checkpoint = n % every == 0 or n == frames
                    r.run(1, script, render_last=checkpoint)
                    if checkpoint:
                        f.write(struct.pack("<II", index, n))
                        f.write(r.ram())
                        f.write(r.shades())
    return 0


if __name__ == "__main__":
    sys.exit(main())
