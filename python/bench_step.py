"""Python ``ZeldaEnv.step`` overhead over the Rust environment (issue 7 target: < 2 us/step).

    (cd python && ../.venv/bin/maturin develop --release)   # the build users get
    .venv/bin/python python/bench_step.py [--steps 20000] [--repeats 5]

Measure the release build, which is what ``pip install ./python`` and the wheels ship: the
test command's ``maturin develop`` builds the dev profile, whose PyO3 glue is compiled at
opt-level 1 and costs about 1 us more per step at ``frame_skip=24``.

The anchor, measured in the same run on the same environment, is ``_core.Env.bench_steps``:
Rust alone plays the actions (``_core.bench_actions``) from a snapshot, writing the
observation every step. Then the same actions are replayed from the same snapshot through

- ``_core.Env.step``: the PyO3 layer alone (new NumPy arrays, the info dict, the tuple);
- ``ZeldaEnv.step``: the Gymnasium env users call (the above plus the observation dict);

so all three do the same emulation, and the difference is the Python side. The steps are
cut into blocks; each block is timed ``--repeats`` times per contender, interleaved, and
the fastest time of each block counts (the machine is shared: the minimum over short runs
is the least disturbed one). ``_core.bench_rust_steps`` (a fresh env, its own seed)
is printed as a cross-check. Two settings: ``frame_skip=1``, where the emulator's share is
small enough to measure the overhead with little noise, and the default ``frame_skip=24``
(a real step: ``--steps / 10`` of them). Overhead per step = ``(python - rust) / steps``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from zelda_rl import _core_module  # noqa: E402
from zelda_rl.env import ZeldaEnv  # noqa: E402

_core = _core_module()  # (an extension built with `--features tch` needs torch first)

SEED = 1234
# Episodes do not end by the step limit, so the replays never depend on reset seeds.
LONG = "[env]\nmax_steps = 100000000\n"
CONFIGS = {
    "frame_skip=1": (LONG + "frame_skip = 1\npress_frames = 1\n", 1),
    "frame_skip=24 (default)": (LONG, 10),
}


def time_loop(step, reset, actions: list[int], gym_api: bool) -> float:
    """Seconds for ``step`` to play ``actions`` (``reset`` after an episode ends)."""
    start = time.perf_counter()
    if gym_api:
        for a in actions:
            _, _, terminated, truncated, _ = step(a)
            if terminated or truncated:
                reset()
    else:
        for a in actions:
            out = step(a)
            if out[3] or out[4]:
                reset(0)
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--blocks", type=int, default=20)
    p.add_argument("--repeats", type=int, default=15)
    args = p.parse_args()
    worst = 0.0
    for name, (config, divisor) in CONFIGS.items():
        n = args.steps // divisor
        env = ZeldaEnv(config_toml=config)
        env.reset(seed=SEED)
        core = env._env
        actions = _core.bench_actions(n, SEED, core.n_actions).tolist()
        best = {k: 0.0 for k in ("rust", "core", "gym")}
        block = max(1, n // args.blocks)
        for b in range(0, n, block):
            acts = actions[b : b + block]
            snap = env.snapshot()
            fastest = {k: float("inf") for k in best}
            for _ in range(args.repeats):
                env.restore(snap)
                fastest["rust"] = min(fastest["rust"], core.bench_steps(acts))
                env.restore(snap)
                fastest["core"] = min(fastest["core"], time_loop(core.step, core.reset, acts, False))
                env.restore(snap)
                fastest["gym"] = min(fastest["gym"], time_loop(env.step, env.reset, acts, True))
            for k in best:
                best[k] += fastest[k]
        best["fresh"] = min(_core.bench_rust_steps(n, SEED, None, config) for _ in range(3))
        us = {k: v / n * 1e6 for k, v in best.items()}
        print(f"{name}: {n} steps in {args.blocks} blocks, each the best of {args.repeats}")
        print(f"  Rust, same env (anchor) {us['rust']:9.3f} us/step")
        print(f"  Rust, fresh env         {us['fresh']:9.3f} us/step  (bench_rust_steps cross-check)")
        for key, label in (("core", "_core.Env.step         "), ("gym", "ZeldaEnv.step (gym)    ")):
            print(
                f"  {label} {us[key]:9.3f} us/step  overhead {us[key] - us['rust']:+.3f} us  "
                f"ratio {best[key] / best['rust']:.3f}"
            )
        worst = max(worst, us["gym"] - us["rust"])
    verdict = "meets" if worst < 2.0 else "misses"
    print(f"Python ZeldaEnv.step overhead: {worst:.3f} us/step (worst setting), {verdict} the < 2 us target")


if __name__ == "__main__":
    main()
