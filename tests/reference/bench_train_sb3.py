#!/usr/bin/env python3
"""The training anchor for `cargo xtask bench train`: PokemonRedExperiments' stack
(Stable-Baselines3 PPO over PyBoy environments, one process per env, sound off) on
mini-zelda, doing what one step of `zelda-rl train` does: a 24-frame action (8 pressed),
the last frame rendered and downscaled into a 4x72x80 stack, the RAM features, an
exploration reward on new rooms and new (room, x/16, y/16) cells; PPO with the same batch,
minibatches and epochs.

Needs stable-baselines3 (and torch) next to pyboy: the test venv has them where
scripts/test installed tests/requirements-torch.txt (torch is gigabytes, so only where the
disk has room); any other venv with `pip install -r tests/requirements-torch.txt
pyboy==2.8.1` works through `cargo xtask bench train --anchor-python PATH`.

Prints one JSON object: {"env_steps", "wall_seconds", "steps_per_second", ...}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

ACTIONS = [0, 16, 32, 64, 128, 1, 2, 17, 33, 65, 129, 18, 34, 66, 130]
SINGLE = (0xFF98, 0xFF99, 0xFF9E, 0xFFF6, 0xFFF7, 0xDBA5, 0xDBAE, 0xDB5A, 0xDB5B, 0xDB5D,
          0xDB5E, 0xDBD0, 0xDB95, 0xC19F, 0xC11C, 0xFFE7, 0xDB57, 0xDB58)


def make_env(rom: str, seed: int, max_steps: int):
    import gymnasium as gym
    from gymnasium import spaces

    from pyboy_runner import Runner

    class PyBoyZelda(gym.Env):
        metadata = {"render_modes": []}

        def __init__(self) -> None:
            self.runner = Runner(rom).__enter__()
            self.pb = self.runner.pyboy
            for _ in range(3600):
                if self.pb.memory[0xDB95] == 0x0B:
                    break
                self.pb.tick(1, False, False)
            import io

            buf = io.BytesIO()
            self.pb.save_state(buf)
            self.start = buf.getvalue()
            self.observation_space = spaces.Dict({
                "frames": spaces.Box(0, 255, (4, 72, 80), np.uint8),
                "features": spaces.Box(0.0, 1.0, (55,), np.float32),
            })
            self.action_space = spaces.Discrete(len(ACTIONS))
            self.stack = np.zeros((4, 72, 80), dtype=np.uint8)
            self.features = np.zeros(55, dtype=np.float32)
            self.rng = np.random.default_rng(seed)

        def _observe(self) -> dict:
            pb = self.pb
            grey = pb.screen.ndarray[:, :, 0]
            self.stack[:-1] = self.stack[1:]
            self.stack[-1] = grey.reshape(72, 2, 80, 2).mean(axis=(1, 3)).astype(np.uint8)
            values = [pb.memory[a] for a in SINGLE]
            flags = np.frombuffer(bytes(pb.memory[0xD800:0xDB00]), dtype=np.uint8)
            room = values[3]
            row, col = room >> 4, room & 15
            local = [
                (flags[(row + dr) * 16 + col + dc] & 0x80) != 0
                if 0 <= row + dr < 16 and 0 <= col + dc < 16 else False
                for dr in range(-2, 3) for dc in range(-2, 3)
            ]
            self.features[:18] = np.asarray(values, dtype=np.float32) / 255.0
            self.features[18] = int(np.count_nonzero(flags & 0x80)) / 64.0
            self.features[22:] = np.asarray(local, dtype=np.float32)
            self.cell = (values[5], values[3], values[0] // 16, values[1] // 16)
            return {"frames": self.stack.copy(), "features": self.features.copy()}

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            import io

            self.pb.load_state(io.BytesIO(self.start))
            for _ in range(int(self.rng.integers(0, 30))):
                self.pb.tick(1, False, False)
            self.rooms, self.cells, self.t = set(), set(), 0
            self.stack[:] = 0
            obs = self._observe()
            self.rooms.add(self.cell[:2])
            self.cells.add(self.cell)
            return obs, {}

        def step(self, action):
            self.runner.set_buttons(ACTIONS[int(action)])
            self.pb.tick(8, False, False)
            self.runner.set_buttons(0)
            self.pb.tick(16, True, False)
            obs = self._observe()
            reward = -0.0001
            if self.cell[:2] not in self.rooms:
                self.rooms.add(self.cell[:2])
                reward += 1.0
            if self.cell not in self.cells:
                self.cells.add(self.cell)
                reward += 0.02
            self.t += 1
            dead = self.pb.memory[0xC11C] == 0x07
            return obs, reward, bool(dead), self.t >= max_steps, {}

    return PyBoyZelda


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rom", required=True)
    ap.add_argument("--envs", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--minibatches", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--steps", type=int, default=4096, help="measured env steps (all envs)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", help="torch device of the PPO update (cpu, cuda)")
    args = ap.parse_args()

    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import SubprocVecEnv

    torch.set_num_threads(args.threads)
    n_steps = args.batch_size // args.envs
    fns = [
        (lambda i=i: make_env(args.rom, args.seed + i, 2048)())
        for i in range(args.envs)
    ]
    venv = SubprocVecEnv(fns, start_method="fork")
    model = PPO(
        "MultiInputPolicy", venv, n_steps=n_steps, batch_size=args.batch_size // args.minibatches,
        n_epochs=args.epochs, learning_rate=2.5e-4, gamma=0.995, ent_coef=0.01, seed=args.seed,
        device=args.device, verbose=0,
    )
    # Warm-up: one update (process start, first allocations).
    model.learn(total_timesteps=args.batch_size, reset_num_timesteps=True)
    t0 = time.perf_counter()
    model.learn(total_timesteps=args.steps, reset_num_timesteps=False)
    wall = time.perf_counter() - t0
    done = model.num_timesteps - args.batch_size
    venv.close()
    print(json.dumps({
        "env_steps": done, "wall_seconds": wall, "steps_per_second": done / wall,
        "envs": args.envs, "batch_size": args.batch_size, "torch": torch.__version__,
        "device": str(model.device),
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
