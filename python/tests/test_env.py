"""The Gymnasium environments over the Rust core (``zelda_rl._core``, built by
``maturin develop`` from crates/py), on the embedded mini-zelda cartridge."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))

try:
    # Through _core_module: an extension built with the LibTorch learner needs torch first.
    from zelda_rl import _core_module  # noqa: E402

    _core = _core_module()
except ImportError as e:  # a missing build is a failure, not a skip
    raise ImportError(
        f"zelda_rl._core is not built ({e}): cd python && VIRTUAL_ENV=../.venv ../.venv/bin/maturin develop"
    ) from e

import gymnasium as gym  # noqa: E402
from gymnasium.utils.env_checker import check_env  # noqa: E402
from gymnasium.vector import AutoresetMode  # noqa: E402

import zelda_rl  # noqa: E402
from zelda_rl.env import ZeldaEnv, ZeldaVectorEnv  # noqa: E402

# Index of the "episode progress" feature (steps / max_steps), after the 19 state
# features and "rooms this episode" (zelda::obs::write_features, layout version 1).
PROGRESS = 20


def test_check_env_passes_without_warnings():
    env = gym.make("ZeldaRL/MiniZelda-v0", render_mode="rgb_array")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)
    env.close()


def test_spaces():
    env = ZeldaEnv()
    assert env.observation_space["frames"].shape == (4, 72, 80)
    assert env.observation_space["frames"].dtype == np.uint8
    assert env.observation_space["features"].shape == (_core.FEATURES,)
    assert env.observation_space["features"].dtype == np.float32
    assert env.action_space.n == len(env.action_names) == 15
    assert env.action_names[0] == "noop"
    obs, info = env.reset(seed=0)
    assert obs in env.observation_space
    assert info["steps"] == 0 and info["mode"] == 0x0B


def _rollout(seed: int, steps: int):
    env = ZeldaEnv()
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    out = [(obs["frames"].copy(), obs["features"].copy(), 0.0, False, False)]
    for _ in range(steps):
        obs, r, term, trunc, info = env.step(env.action_space.sample())
        out.append((obs["frames"], obs["features"], r, term, trunc, info))
        if term or trunc:
            obs, _ = env.reset()
            out.append((obs["frames"], obs["features"]))
    return out


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def test_same_seed_same_observations_over_200_steps():
    a, b = _rollout(11, 200), _rollout(11, 200)
    assert len(a) == len(b) >= 201
    assert all(_same(x, y) for x, y in zip(a, b))
    # The run really moved: the frames are not all the first one.
    assert any(not np.array_equal(a[0][0], step[0]) for step in a[1:])


def test_vector_env_matches_single_envs_stepped_with_the_same_actions():
    n, seed = 3, 7
    # Two threads: the batch steps on the Rust pool with the GIL released.
    vec = ZeldaVectorEnv(n, threads=2)
    obs, infos = vec.reset(seed=seed)
    assert infos == {}
    assert vec.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    assert obs in vec.observation_space
    singles = [_core.Env(None, _core.episode_seed(seed, i, 1)) for i in range(n)]
    for i, env in enumerate(singles):
        frames, features = env.observation_now()
        assert np.array_equal(obs["frames"][i], frames)
        assert np.array_equal(obs["features"][i], features)
    rng = np.random.default_rng(5)
    for step in range(120):
        actions = rng.integers(0, vec.single_action_space.n, size=n)
        obs, rewards, term, trunc, infos = vec.step(actions)
        assert rewards.dtype == np.float32 and term.dtype == np.bool_ and trunc.dtype == np.bool_
        for i, env in enumerate(singles):
            frames, features, r, t, tr, info = env.step(int(actions[i]))
            assert np.array_equal(obs["frames"][i], frames), f"env {i} step {step}"
            assert np.array_equal(obs["features"][i], features), f"env {i} step {step}"
            assert rewards[i] == np.float32(r) and term[i] == t and trunc[i] == tr
            assert vec._vec.state(i) == {k: v for k, v in info.items() if k != "steps"}
        assert not (term.any() or trunc.any()), "an episode ended: the comparison needs a longer max_steps"


def test_vector_env_same_step_autoreset_keeps_the_final_observation():
    config = "[env]\nmax_steps = 5\n"
    vec = ZeldaVectorEnv(2, config_toml=config)
    vec.reset(seed=3)
    single = _core.Env(None, _core.episode_seed(3, 1, 1), config)
    for step in range(5):
        obs, rewards, term, trunc, infos = vec.step(np.array([1, 4]))
        frames, features, *_ = single.step(4)
    assert trunc.tolist() == [True, True] and term.tolist() == [False, False]
    assert infos["_final_obs"].tolist() == [True, True]
    final = infos["final_obs"][1]
    assert np.array_equal(final["frames"], frames) and np.array_equal(final["features"], features)
    assert final["features"][PROGRESS] == 1.0
    # The returned observation already is the next episode's first.
    assert obs["features"][1][PROGRESS] == 0.0
    assert infos["final_info"]["episode"]["l"].tolist() == [5, 5]
    assert infos["final_info"]["_episode"].tolist() == [True, True]
    # Episode 2 of env 1 is the one a single env seeded for it starts.
    single.reset(_core.episode_seed(3, 1, 2))
    assert np.array_equal(obs["frames"][1], single.observation_now()[0])
    obs, rewards, term, trunc, infos = vec.step(np.array([0, 0]))
    assert infos == {} and not trunc.any()


def test_make_vec_uses_the_rust_vector_env():
    vec = gym.make_vec("ZeldaRL/MiniZelda-v0", num_envs=2)
    assert isinstance(vec, ZeldaVectorEnv)
    obs, _ = vec.reset(seed=1)
    assert obs["frames"].shape == (2, 4, 72, 80) and obs["features"].shape == (2, _core.FEATURES)
    again, _ = vec.reset(seed=1)
    assert np.array_equal(obs["frames"], again["frames"])


def test_render_returns_the_rgb_screen():
    env = ZeldaEnv(render_mode="rgb_array")
    env.reset(seed=0)
    env.step(1)
    img = env.render()
    assert img.shape == (144, 160, 3) and img.dtype == np.uint8
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 1
    vec = ZeldaVectorEnv(2, render_mode="rgb_array")
    screens = vec.render()
    assert len(screens) == 2 and screens[0].shape == (144, 160, 3)


def test_bad_config_names_the_field():
    with pytest.raises(_core.ConfigError, match="frame_skipp"):
        ZeldaEnv(config_toml="[env]\nframe_skipp = 4\n")
    with pytest.raises(_core.ConfigError, match="env.press_frames"):
        ZeldaEnv(config_toml="[env]\npress_frames = 99\n")
    with pytest.raises(_core.ConfigError, match="reward.death"):
        ZeldaVectorEnv(2, config_toml="[reward]\ndeath = nan\n")
    with pytest.raises(_core.ConfigError, match="frame_stack"):
        ZeldaVectorEnv(2, config_toml='[env]\nframe_stack = "four"\n')
    with pytest.raises(ValueError, match="evn"):
        gym.make("ZeldaRL/MiniZelda-v0", config_toml="[evn]\nframe_skip = 4\n")


def test_explore_resets_need_the_vector_env():
    config = "[env]\nexplore_resets = 1.0\nmax_steps = 8\nexplore_steps = 3\n"
    with pytest.raises(ValueError, match="ZeldaVectorEnv"):
        ZeldaEnv(config_toml=config)
    vec = ZeldaVectorEnv(2, config_toml=config)
    vec.reset(seed=1)
    lengths, length = [], np.zeros(2, dtype=int)
    for t in range(40):
        _, _, term, trunc, _ = vec.step(np.array([t % 5, (t + 2) % 5]))
        length += 1
        for i in np.flatnonzero(term | trunc):
            lengths.append(int(length[i]))
            length[i] = 0
    # The first episode of each env starts at the start state (8 steps); later ones start
    # from the archive and last 3.
    assert 8 in lengths and 3 in lengths, lengths
    assert max(lengths) <= 8, lengths
    stats = vec.archive_stats()
    assert 0 < stats["states"] == stats["cells"], stats
    assert stats["state_bytes"] > 1000 * stats["states"], stats
    assert stats["rooms"] >= 1 and stats["progress"] == 0, stats
    capped = ZeldaVectorEnv(2, config_toml=config + "explore_cells = 1\n")
    capped.reset(seed=1)
    for t in range(40):
        capped.step(np.array([t % 5, (t + 2) % 5]))
    stats = capped.archive_stats()
    assert stats["states"] == 1 < stats["cells"], stats


def test_novelty_pays_in_the_vector_env_only():
    config = "[env]\nmax_steps = 30\n[reward]\nnovelty = 0.5\n"
    with pytest.raises(ValueError, match="reward.novelty"):
        ZeldaEnv(config_toml=config)
    vec = ZeldaVectorEnv(2, config_toml=config)
    vec.reset(seed=3)
    paid = []
    for t in range(60):
        vec.step(np.array([t % 5, (t * 3) % 5]))
        paid.append([vec.reward_components(i)["novelty"] for i in range(2)])
    paid = np.array(paid)
    # A cell the run has not seen pays the whole weight; one seen n times 0.5 / sqrt(1 + n).
    assert np.all((paid >= 0) & (paid <= 0.5)), paid
    assert (paid == 0.5).any(), paid
    assert paid[-20:].mean() < paid[:5].mean(), paid
    assert vec.archive_stats()["cells"] > 0


def test_config_changes_the_env(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("[env]\nframe_stack = 2\nstart_select = true\n[train]\nenvs = 3\n")
    env = ZeldaEnv(config_path=path)
    assert env.observation_space["frames"].shape == (2, 72, 80)
    assert "start" in env.action_names
    obs, _ = env.reset(seed=0)
    assert obs["frames"].shape == (2, 72, 80)


def test_bad_inputs_are_clear_errors(tmp_path):
    env = ZeldaEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action 15 is out of range 0..15"):
        env.step(15)
    with pytest.raises(_core.EnvError, match="cartridge"):
        ZeldaEnv(rom=b"\x00" * 100)
    with pytest.raises(TypeError, match="rom_path"):
        gym.make("ZeldaRL/LinksAwakening-v0")
    missing = tmp_path / "zelda.gb"
    with pytest.raises(FileNotFoundError, match="zelda.gb"):
        gym.make("ZeldaRL/LinksAwakening-v0", rom_path=missing)
    vec = ZeldaVectorEnv(2)
    with pytest.raises(ValueError, match=r"actions\[1\] = 99"):
        vec.step(np.array([0, 99]))
    with pytest.raises(ValueError, match="shape"):
        vec.step(np.array([0, 1, 2]))


def test_links_awakening_id_runs_a_given_rom(tmp_path):
    # Any cartridge works through the id; the test uses our own (no ROM is shipped).
    rom = tmp_path / "cart.gb"
    rom.write_bytes(_core.MINI_ZELDA)
    env = gym.make("ZeldaRL/LinksAwakening-v0", rom_path=rom)
    obs, _ = env.reset(seed=0)
    assert obs["frames"].shape == (4, 72, 80)


def test_snapshot_restore_continues_exactly():
    env = ZeldaEnv()
    env.reset(seed=4)
    for a in (1, 1, 3, 5):
        env.step(a)
    snap = env.snapshot()
    first = [env.step(a) for a in (2, 2, 4, 6, 1)]
    env.restore(snap)
    second = [env.step(a) for a in (2, 2, 4, 6, 1)]
    for x, y in zip(first, second):
        assert np.array_equal(x[0]["frames"], y[0]["frames"]) and x[1:] == y[1:]
    with pytest.raises(_core.EnvError, match="snapshot"):
        env.restore(b"garbage")


def test_ray_driver_imports_without_gymnasium_or_the_extension():
    code = (
        "import sys; sys.modules['gymnasium'] = None; sys.modules['zelda_rl._core'] = None; "
        "from zelda_rl.ray.train import build_parser; import zelda_rl; "
        "assert 'zelda_rl.env' not in sys.modules; print(build_parser().prog)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT / "python", capture_output=True, text=True, check=True
    )
    assert "zelda_rl.ray.train" in out.stdout
    assert zelda_rl.ZeldaEnv is ZeldaEnv


def test_step_info_matches_the_full_state_every_step():
    # step() rewrites only the entries that changed since the last step; the result must
    # equal the state decoded from scratch, and a caller mutating its info changes nothing.
    env = ZeldaEnv(config_toml="[env]\nmax_steps = 200\n")
    env.reset(seed=5)
    env.action_space.seed(5)
    for i in range(400):
        _, _, terminated, truncated, info = env.step(int(env.action_space.sample()))
        fresh = env._env.state()
        assert {k: v for k, v in info.items() if k != "steps"} == fresh, f"step {i}"
        assert list(info)[: len(fresh)] == list(fresh), "entry order"
        info["x"] = -1
        info.clear() if i % 7 == 0 else None
        if terminated or truncated:
            env.reset()
