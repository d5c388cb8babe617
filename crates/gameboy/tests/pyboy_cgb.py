#!/usr/bin/env python3
"""Runs a CGB cartridge in PyBoy 2.8.1 (CGB mode, its own CGB boot ROM, sound off) for a
number of frames and writes what the Rust CGB test compares (crates/gameboy/tests/cgb.rs):

    20 bytes of work RAM at C0C0 (the cartridge's results), then the screen as 160x144x3
    bytes of 5-bit colour channels (PyBoy scales RGB555 to 8 bits as `v << 3`).

Usage: pyboy_cgb.py ROM FRAMES OUT
"""

import os
import sys

os.environ.setdefault("PYSDL2_DLL_PATH", "")  # never look for a display library
import logging  # noqa: E402

logging.getLogger("pyboy").setLevel(logging.ERROR)

import numpy as np  # noqa: E402
from pyboy import PyBoy  # noqa: E402


def main() -> int:
    rom, frames, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    pb = PyBoy(rom, window="null", cgb=True, sound_emulated=False)
    try:
        pb.tick(frames, True)
        results = bytes(pb.memory[0xC0C0:0xC0D4])
        screen = np.asarray(pb.screen.ndarray)[:, :, :3] >> 3
        with open(out, "wb") as f:
            f.write(results)
            f.write(screen.astype(np.uint8).tobytes())
    finally:
        pb.stop(save=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
