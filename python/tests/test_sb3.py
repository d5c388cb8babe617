"""A short Stable-Baselines3 PPO run on the Gymnasium env: the env works with the RL
library most users start from (Dict observation: CNN on the frames, MLP on the features).

SB3 needs torch (about 4.7 GB with its CUDA libraries): scripts/test installs both
(tests/requirements-torch.txt) where the disk has room, and the test skips where they are
not importable.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))

sb3 = pytest.importorskip("stable_baselines3", reason="stable-baselines3 and torch are not installed")

import gymnasium as gym  # noqa: E402
from stable_baselines3.common.env_checker import check_env as sb3_check_env  # noqa: E402
from stable_baselines3.common.env_util import make_vec_env  # noqa: E402

import zelda_rl  # noqa: E402,F401  (registers the ids)


def test_sb3_accepts_the_env():
    env = gym.make("ZeldaRL/MiniZelda-v0")
    sb3_check_env(env.unwrapped, warn=True)
    env.close()


def test_sb3_ppo_learns_for_a_few_updates_and_acts():
    venv = make_vec_env("ZeldaRL/MiniZelda-v0", n_envs=2, seed=0)
    model = sb3.PPO("MultiInputPolicy", venv, n_steps=32, batch_size=32, n_epochs=1, seed=0, device="cpu", verbose=0)
    # The Dict observation gets SB3's NatureCNN on the uint8 frames and an MLP on the features.
    assert type(model.policy.features_extractor).__name__ == "CombinedExtractor"
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(total_timesteps=128)
    assert model.num_timesteps >= 128
    assert any(not (a == b).all() for a, b in zip(before, model.policy.parameters())), "no weight changed"
    obs = venv.reset()
    actions, _ = model.predict(obs, deterministic=True)
    assert actions.shape == (2,) and np.all((0 <= actions) & (actions < venv.action_space.n))
    venv.close()
