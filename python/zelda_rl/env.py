"""Gymnasium environments backed by the Rust core (``zelda_rl._core``).

- :class:`ZeldaEnv` is one environment (``gymnasium.Env``).
- :class:`ZeldaVectorEnv` is N environments stepped together in Rust, on a thread pool with
  the GIL released (``gymnasium.vector.VectorEnv``).

Observations are dicts: ``frames`` uint8 ``[stack, 72, 80]`` (the screen halved, greys,
oldest frame first) and ``features`` float32 ``[FEATURES]`` in [0, 1] (RAM state, the
current room's status bits and the world's progress, episode progress and the
visited-rooms map). Settings are the ``[env]`` and ``[reward]`` tables of a ``zelda-rl
train`` settings file, passed as TOML text (``config_toml``) or a path (``config_path``).
"""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from zelda_rl import _core_module

_core = _core_module()

#: The Game Boy runs at 4194304 / 70224 frames per second.
GB_FPS = 4194304 / 70224

__all__ = ["ZeldaEnv", "ZeldaVectorEnv", "load_inputs", "make_links_awakening", "make_links_awakening_vec"]


def _read(path: str | os.PathLike[str], what: str) -> bytes:
    """The bytes of ``path``, or an error that says which argument named it."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} {os.fspath(path)!r} does not exist") from None
    except OSError as e:
        raise OSError(f"{what} {os.fspath(path)!r} cannot be read: {e}") from e


def load_inputs(
    rom: bytes | None,
    rom_path: str | os.PathLike[str] | None,
    start_state: bytes | None,
    start_state_path: str | os.PathLike[str] | None,
    config_toml: str | None,
    config_path: str | os.PathLike[str] | None,
) -> tuple[bytes | None, bytes | None, str | None]:
    """Resolves the (bytes or path) pairs of the constructors into ``(rom, start_state,
    config_toml)``; giving both forms of one input is an error."""
    for a, b, name in (
        (rom, rom_path, "rom"),
        (start_state, start_state_path, "start_state"),
        (config_toml, config_path, "config_toml"),
    ):
        if a is not None and b is not None:
            raise ValueError(f"give {name} or {name.replace('_toml', '')}_path, not both")
    if rom_path is not None:
        rom = _read(rom_path, "rom_path")
    if start_state_path is not None:
        start_state = _read(start_state_path, "start_state_path")
    if config_path is not None:
        config_toml = _read(config_path, "config_path").decode("utf-8")
    return rom, start_state, config_toml


def _observation_space(stack: int) -> spaces.Dict:
    """The observation space of one environment."""
    return spaces.Dict(
        {
            "frames": spaces.Box(0, 255, (stack, _core.FRAME_HEIGHT, _core.FRAME_WIDTH), np.uint8),
            "features": spaces.Box(0.0, 1.0, (_core.FEATURES,), np.float32),
        }
    )


class ZeldaEnv(gym.Env[dict[str, np.ndarray], int]):
    """Link's Awakening (or the embedded mini-zelda cartridge) as a Gymnasium environment.

    Args:
        rom: cartridge bytes (default: the embedded mini-zelda); or ``rom_path``.
        start_state: save state every episode starts from (needed by games with a file
            menu, like Link's Awakening); or ``start_state_path``.
        config_toml: settings text (``[env]``, ``[reward]``); or ``config_path``.
        render_mode: ``None`` or ``"rgb_array"`` (``render()`` returns the 144x160 screen).
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 2}

    def __init__(
        self,
        rom: bytes | None = None,
        *,
        rom_path: str | os.PathLike[str] | None = None,
        start_state: bytes | None = None,
        start_state_path: str | os.PathLike[str] | None = None,
        config_toml: str | None = None,
        config_path: str | os.PathLike[str] | None = None,
        render_mode: str | None = None,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode {render_mode!r} is not one of {self.metadata['render_modes']}")
        rom, start_state, config_toml = load_inputs(
            rom, rom_path, start_state, start_state_path, config_toml, config_path
        )
        self._env = _core.Env(rom, 0, config_toml, start_state)
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": GB_FPS / self._env.frame_skip}
        self.observation_space = _observation_space(self._env.frame_stack)
        self.action_space = spaces.Discrete(self._env.n_actions)
        #: Action names in index order (``NOOP``, ``UP``, ..., ``A``, ``B``, ...).
        self.action_names: list[str] = list(self._env.action_names)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Starts a new episode; the emulator seed comes from ``np_random``, so the same
        ``seed`` gives the same episode and ``seed=None`` continues the sequence."""
        super().reset(seed=seed)
        frames, features = self._env.reset(int(self.np_random.integers(0, 2**63)))
        info = self._env.state()
        info["steps"] = 0
        return {"frames": frames, "features": features}, info

    def step(self, action: int) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Plays one action (``frame_skip`` emulator frames); ``info`` is the decoded game
        state plus ``steps`` (steps taken this episode)."""
        return self._env.step_gym(action)

    def render(self) -> np.ndarray | None:
        """The current screen, RGB uint8 ``[144, 160, 3]``, when ``render_mode="rgb_array"``."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='rgb_array'")
            return None
        return self._env.render()

    def reward_components(self) -> dict[str, float]:
        """The last step's reward by component (new_room, new_cell, rupee, ...)."""
        return self._env.reward_components()

    def snapshot(self) -> bytes:
        """Everything needed to continue this environment exactly."""
        return self._env.snapshot()

    def restore(self, snapshot: bytes) -> None:
        """Continues from :meth:`snapshot` bytes of an environment with the same settings."""
        self._env.restore(snapshot)


class ZeldaVectorEnv(VectorEnv):
    """``num_envs`` environments stepped as one batch in Rust (``rollout::VecEnv``).

    Autoreset is **same-step** (``metadata["autoreset_mode"] == AutoresetMode.SAME_STEP``),
    as in the Rust training loop: when a step ends an episode, that environment is reset in
    the same step, the returned observation is the new episode's first, and the last one is
    in ``infos["final_obs"][i]`` (mask ``infos["_final_obs"]``), with the episode's return,
    length and final game state in ``infos["final_info"]``. (Gymnasium's own vector envs
    default to next-step autoreset; wrappers that require it will refuse this env.)

    Seeding: sub-environment ``i`` starts its episode ``k`` with the emulator seed
    ``_core.episode_seed(seed, i, k)``; ``reset(seed=s)`` rebuilds the batch with base seed
    ``s``, ``reset()`` starts new episodes continuing each sequence.
    """

    metadata: dict[str, Any] = {
        "autoreset_mode": AutoresetMode.SAME_STEP,
        "render_modes": ["rgb_array"],
    }

    def __init__(
        self,
        num_envs: int,
        rom: bytes | None = None,
        *,
        rom_path: str | os.PathLike[str] | None = None,
        start_state: bytes | None = None,
        start_state_path: str | os.PathLike[str] | None = None,
        config_toml: str | None = None,
        config_path: str | os.PathLike[str] | None = None,
        threads: int = 1,
        seed: int = 0,
        render_mode: str | None = None,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode {render_mode!r} is not one of {self.metadata['render_modes']}")
        rom, start_state, config_toml = load_inputs(
            rom, rom_path, start_state, start_state_path, config_toml, config_path
        )
        self._rom, self._config_toml, self._threads = rom, config_toml, threads
        self._vec = _core.VecEnv(num_envs, rom, seed, config_toml, threads, start_state)
        # Later rebuilds (reset with a seed) start from this state instead of booting again.
        self._start_state = start_state if start_state is not None else self._vec.start_state()
        self.num_envs = num_envs
        self.render_mode = render_mode
        self.single_observation_space = _observation_space(self._vec.frame_stack)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.single_action_space = spaces.Discrete(self._vec.n_actions)
        self.action_space = batch_space(self.single_action_space, num_envs)
        #: Action names in index order.
        self.action_names: list[str] = list(self._vec.action_names)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Resets every environment; with an int ``seed`` the batch restarts from that base
        seed (the same seed gives the same observations)."""
        if options:
            raise ValueError(f"options are not supported (got {sorted(options)})")
        if seed is not None and not isinstance(seed, (int, np.integer)):
            raise ValueError("seed must be one int (sub-environment seeds derive from it)")
        super().reset(seed=seed)
        if seed is not None:
            self._vec = _core.VecEnv(
                self.num_envs, self._rom, int(seed), self._config_toml, self._threads, self._start_state
            )
            frames, features = self._vec.observation_now()
        else:
            frames, features = self._vec.reset()
        self._vec.take_episodes()
        return {"frames": frames, "features": features}, {}

    def step(
        self, actions: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Steps every environment with its action (same-step autoreset, see the class)."""
        acts = np.asarray(actions, dtype=np.int64)
        if acts.shape != (self.num_envs,):
            raise ValueError(f"actions must have shape ({self.num_envs},), got {acts.shape}")
        frames, features, rewards, terminated, truncated = self._vec.step(acts)
        infos: dict[str, Any] = {}
        episodes = self._vec.take_episodes()
        for ep in episodes:
            i = ep["env"]
            final_frames, final_features = self._vec.final_observation(i)
            final_info = dict(ep["state"])
            final_info["episode"] = {"r": ep["return"], "l": ep["length"]}
            final_info["instruments"] = ep["instruments"]
            final_info["rooms_this_episode"] = ep["rooms"]
            infos = self._add_info(
                infos,
                {"final_obs": {"frames": final_frames, "features": final_features}, "final_info": final_info},
                i,
            )
        return {"frames": frames, "features": features}, rewards, terminated, truncated, infos

    def render(self) -> tuple[np.ndarray, ...] | None:
        """Every environment's current screen (RGB uint8 ``[144, 160, 3]`` each)."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='rgb_array'")
            return None
        return tuple(self._vec.render(i) for i in range(self.num_envs))

    def reward_components(self, i: int) -> dict[str, float]:
        """Env ``i``'s last step's reward by component name."""
        return self._vec.reward_components(i)

    def archive_stats(self) -> dict[str, int]:
        """The Go-Explore archive (``[env] explore_resets`` or ``[reward] novelty``): ``cells``
        reached, ``states`` kept to start episodes from (at most ``explore_cells``), their
        ``state_bytes``, the ``rooms`` the cells lie in and the most world ``progress`` a
        cell holds; with ``[env] explore_ladder``, the goal ladder's ``ladder_cells``, its
        ``ladder_top`` rung, its ``ladder_frontier`` and the frontier's counted
        ``ladder_frontier_tries`` and ``ladder_frontier_wins``."""
        return self._vec.archive_stats()

    def snapshot(self) -> bytes:
        """Everything needed to continue these environments exactly."""
        return self._vec.snapshot()

    def restore(self, snapshot: bytes) -> None:
        """Continues from :meth:`snapshot` bytes (same ROM, size, seed and settings)."""
        self._vec.restore(snapshot)


_LA_HELP = (
    "ZeldaRL/LinksAwakening-v0 needs rom_path= (your own Link's Awakening ROM; none is shipped) "
    "and usually start_state_path= (a save state taken in play, after the file menu)"
)


def make_links_awakening(rom_path: str | os.PathLike[str] | None = None, **kwargs: Any) -> ZeldaEnv:
    """Entry point of ``ZeldaRL/LinksAwakening-v0``: a :class:`ZeldaEnv` on the ROM at ``rom_path``."""
    if rom_path is None:
        raise TypeError(_LA_HELP)
    return ZeldaEnv(rom_path=rom_path, **kwargs)


def make_links_awakening_vec(
    num_envs: int, rom_path: str | os.PathLike[str] | None = None, **kwargs: Any
) -> ZeldaVectorEnv:
    """Vector entry point of ``ZeldaRL/LinksAwakening-v0`` (``gymnasium.make_vec``)."""
    if rom_path is None:
        raise TypeError(_LA_HELP)
    return ZeldaVectorEnv(num_envs, rom_path=rom_path, **kwargs)
