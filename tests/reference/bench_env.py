#!/usr/bin/env python3
"""The env-step anchor for `cargo xtask bench env`: PyBoy doing the work one agent step of
our environment does, the way PokemonRedExperiments-style envs do it in Python.

Per step: press the action's buttons for 8 frames, release for 16 (no rendering), render
the 24th frame, downscale it to 72x80 greyscale into a 4-frame stack, and read the RAM
the environment reads (position, room, health, rupees, keys, instruments, dialog, motion,
deaths, and the three 256-byte room-status tables for the visited count and local map).

Prints one JSON object: {"steps": N, "wall_seconds": T, "steps_per_second": R}.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pyboy_runner import Runner  # noqa: E402

# The 15 default actions as button masks (A=1, B=2, RIGHT=16, LEFT=32, UP=64, DOWN=128).
ACTIONS = [0, 16, 32, 64, 128, 1, 2, 17, 33, 65, 129, 18, 34, 66, 130]
SINGLE = (0xFF98, 0xFF99, 0xFF9E, 0xFFF6, 0xFFF7, 0xDBA5, 0xDBAE, 0xDB5A, 0xDB5B, 0xDB5D,
          0xDB5E, 0xDBD0, 0xDB95, 0xC19F, 0xC11C, 0xFFE7, 0xDB57, 0xDB58)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rom", required=True)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    with Runner(args.rom) as r:
        pb = r.pyboy
        for _ in range(3600):
            if pb.memory[0xDB95] == 0x0B:
                break
            pb.tick(1, False, False)
        else:
            raise SystemExit("the ROM never reached play mode")
        stack = np.zeros((4, 72, 80), dtype=np.uint8)
        features = np.zeros(55, dtype=np.float32)

        def step() -> None:
            r.set_buttons(ACTIONS[rng.randrange(len(ACTIONS))])
            pb.tick(8, False, False)
            r.set_buttons(0)
            pb.tick(16, True, False)
            grey = pb.screen.ndarray[:, :, 0]
            stack[:-1] = stack[1:]
            stack[-1] = grey.reshape(72, 2, 80, 2).mean(axis=(1, 3)).astype(np.uint8)
            values = [pb.memory[a] for a in SINGLE]
            flags = np.frombuffer(bytes(pb.memory[0xD800:0xDB00]), dtype=np.uint8)
            visited = int(np.count_nonzero(flags & 0x80))
            room = values[3]
            row, col = room >> 4, room & 15
            local = [
                (flags[(row + dr) * 16 + col + dc] & 0x80) != 0
                if 0 <= row + dr < 16 and 0 <= col + dc < 16 else False
                for dr in range(-2, 3) for dc in range(-2, 3)
            ]
            features[:18] = np.asarray(values, dtype=np.float32) / 255.0
            features[18] = visited / 64.0
            features[22:] = np.asarray(local, dtype=np.float32)

        for _ in range(args.warmup):
            step()
        t0 = time.perf_counter()
        for _ in range(args.steps):
            step()
        wall = time.perf_counter() - t0
    print(json.dumps({"steps": args.steps, "wall_seconds": wall, "steps_per_second": args.steps / wall}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
