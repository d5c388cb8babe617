"""The Ray driver's GPU learner path without Ray: ``_core.Learner`` on a LibTorch backend
(``tch-cpu``, or ``tch-cuda`` with ``ZELDA_RL_TEST_CUDA=1``) in a process that has imported
torch, fed by flex ``RolloutWorker``s, for one whole burst.

It needs an extension built with ``--features tch`` against the torch of the Python that
runs it: scripts/test builds it so wherever it installs torch (tests/requirements-torch.txt,
where the disk has room); elsewhere the test skips. By hand:
``cd python && LIBTORCH_USE_PYTORCH=1 maturin develop --features tch``
in a venv with torch, then ``python -m pytest python/tests/test_tch_learner.py``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))

torch = pytest.importorskip("torch", reason="torch is not installed")

import zelda_rl  # noqa: E402

_core = zelda_rl._core_module()
BACKEND = "tch-cuda" if os.environ.get("ZELDA_RL_TEST_CUDA") else "tch-cpu"
SMALL = (
    "[train]\nsteps_per_burst = 192\n"
    "[ppo]\nnum_minibatches = 2\nupdate_epochs = 1\n"
    "[segments]\nsteps = 16\nkeyframe_interval = 8\n"
    "[reward_model]\nenabled = false\n"
)


def _learner(store: str, run: str, backend: str):
    try:
        return _core.Learner(
            store, run, [2, 2], batch_size=64, seed=3, bursts=1, settings_toml=SMALL, backend=backend
        )
    except Exception as e:  # the error type is the train error's; the message says why
        if "needs the `tch` cargo feature" in str(e):
            pytest.skip(f"extension built without the tch feature: {e}")
        raise


def _burst(tmp_path: Path, backend: str) -> tuple[dict, bytes, int]:
    store = str(tmp_path / backend)
    learner = _learner(store, "r", backend)
    workers = [_core.RolloutWorker(store, "r", w, 2, 4, batch_size=64, seed=3, settings_toml=SMALL) for w in range(2)]
    updates = 0
    while (request := learner.next_request()) is not None:
        policy = learner.policy_bytes()
        report = json.loads(learner.update([w.collect(request, policy) for w in workers]))
        assert report, "an update reports its losses"
        updates += 1
    summary = json.loads(learner.finish_burst())
    assert updates == json.loads(learner.status())["updates_per_burst"]
    assert json.loads(learner.status())["done"]
    assert (tmp_path / backend / "r/checkpoints/latest.json").is_file(), "a checkpoint was written"
    return summary, learner.policy_bytes(), updates


def test_libtorch_learner_runs_a_burst_with_flex_workers(tmp_path: Path):
    if BACKEND == "tch-cuda" and not torch.cuda.is_available():
        pytest.fail("ZELDA_RL_TEST_CUDA is set but torch sees no GPU")
    summary, policy, updates = _burst(tmp_path, BACKEND)
    flex_summary, flex_policy, flex_updates = _burst(tmp_path, "flex")
    # The flex workers ran every policy the LibTorch learner sent them (the policy bytes
    # are backend-neutral), and the burst has the flex run's shape.
    assert updates == flex_updates > 0
    assert summary["env_steps"] == flex_summary["env_steps"] == 64 * updates
    assert len(policy) == len(flex_policy)
