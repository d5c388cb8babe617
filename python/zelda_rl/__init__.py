"""zelda-rl from Python: Gymnasium environments backed by the Rust core, and the Ray
driver (``python -m zelda_rl.ray.train``).

- ``zelda_rl.ZeldaEnv`` / ``zelda_rl.ZeldaVectorEnv`` (``zelda_rl.env``): the Gymnasium
  ``Env`` and ``VectorEnv`` over the PyO3 extension ``zelda_rl._core`` (built from
  ``crates/py`` by maturin).
- Registered ids: ``ZeldaRL/MiniZelda-v0`` (the embedded test cartridge) and
  ``ZeldaRL/LinksAwakening-v0`` (needs ``rom_path=``; no ROM is shipped), for
  ``gymnasium.make`` and ``gymnasium.make_vec`` (Rust-backed vector env).

Neither Gymnasium nor the compiled module is imported until used, so ``zelda_rl.ray``
works in an environment that has neither.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["ZeldaEnv", "ZeldaVectorEnv", "register_envs"]


def _core_module() -> Any:
    """The compiled extension ``zelda_rl._core``.

    A wheel built with the LibTorch learner (``--features tch``) links libtorch without a
    search path of its own: the ``torch`` package's copy, once imported, satisfies it, so
    it is imported first when the plain import cannot find libtorch.
    """
    try:
        from zelda_rl import _core
    except ImportError as e:
        if "libtorch" not in str(e) and "libc10" not in str(e):
            raise
        import torch  # noqa: F401

        from zelda_rl import _core
    return _core


def register_envs() -> None:
    """Registers the ZeldaRL ids with Gymnasium (idempotent; entry points load lazily)."""
    import gymnasium

    specs = {
        "ZeldaRL/MiniZelda-v0": ("zelda_rl.env:ZeldaEnv", "zelda_rl.env:ZeldaVectorEnv"),
        "ZeldaRL/LinksAwakening-v0": (
            "zelda_rl.env:make_links_awakening",
            "zelda_rl.env:make_links_awakening_vec",
        ),
    }
    for env_id, (entry, vector_entry) in specs.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(
                id=env_id,
                entry_point=entry,
                vector_entry_point=vector_entry,
                disable_env_checker=False,
            )


def __getattr__(name: str) -> Any:
    # PEP 562: the environment classes import the compiled module only when asked for.
    if name in ("ZeldaEnv", "ZeldaVectorEnv"):
        from zelda_rl import env

        return getattr(env, name)
    raise AttributeError(f"module 'zelda_rl' has no attribute {name!r}")


try:
    import gymnasium as _gymnasium  # noqa: F401
except ImportError:  # the Ray driver alone needs neither Gymnasium nor the extension
    pass
else:
    register_envs()
