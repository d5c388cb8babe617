"""PyBoy side of `cargo xtask bench emu`: the same workloads as the Rust `emu-bench` runner.

Usage: python -c <this file> ROM no-render|step|state FRAMES STEP_FRAMES STATE_ITERATIONS
Prints one JSON object. Sound off, no window, 600 warm-up frames (which also cover
PyBoy's own boot ROM animation, so both sides measure the running game).
"""

import io
import json
import logging
import os
import sys
import time

os.environ.setdefault("PYSDL2_DLL_PATH", "")
logging.getLogger("pyboy").setLevel(logging.ERROR)

import numpy as np  # noqa: E402
from pyboy import PyBoy  # noqa: E402

BUTTONS = ("a", "b", "select", "start", "right", "left", "up", "down")


def main() -> None:
    rom, mode = sys.argv[1], sys.argv[2]
    frames, k, state_iterations = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    pb = PyBoy(rom, window="null", sound_emulated=False, log_level="ERROR")
    pb.set_emulation_speed(0)
    pb.tick(600, False, False)
    out = {}
    if mode == "no-render":
        c0, t0 = time.thread_time(), time.perf_counter()
        pb.tick(frames, False, False)
        out.update(frames=frames, steps=frames, wall_seconds=time.perf_counter() - t0, cpu_seconds=time.thread_time() - c0)
    elif mode == "step":
        steps = -(-frames // k)
        held = None
        c0, t0 = time.thread_time(), time.perf_counter()
        for i in range(steps):
            b = BUTTONS[i % 8]
            if held:
                pb.button_release(held)
            pb.button_press(b)
            held = b
            pb.tick(k, True, False)
            a = pb.screen.ndarray[:, :, 0].astype(np.uint16)
            obs = ((a[0::2, 0::2] + a[0::2, 1::2] + a[1::2, 0::2] + a[1::2, 1::2]) // 4).astype(np.uint8)
            obs = obs.copy()
        out.update(
            frames=steps * k, steps=steps, wall_seconds=time.perf_counter() - t0, cpu_seconds=time.thread_time() - c0
        )
    elif mode == "state":
        save_best = load_best = float("inf")
        size = 0
        for _ in range(state_iterations):
            buf = io.BytesIO()
            t0 = time.perf_counter()
            pb.save_state(buf)
            save_best = min(save_best, time.perf_counter() - t0)
            size = buf.tell()
            buf.seek(0)
            t0 = time.perf_counter()
            pb.load_state(buf)
            load_best = min(load_best, time.perf_counter() - t0)
        out.update(state_bytes=size, save_seconds=save_best, load_seconds=load_best)
    else:
        raise SystemExit(f"unknown mode {mode}")
    pb.stop(save=False)
    print(json.dumps(out))


main()
