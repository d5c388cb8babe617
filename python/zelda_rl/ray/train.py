"""RayJob entrypoint: one training burst of a zelda-rl run on a Ray cluster.

    python -m zelda_rl.ray.train --workers $RAY_WORKERS --envs-per-worker $ENVS_PER_WORKER \
        --batch-size $BATCH_SIZE --store $STORE --gateway $GATEWAY --rom $ROM \
        --run $RUN --bursts 1 --resume

What this version does: it schedules the burst as one Ray task that runs the Rust
training loop (``zelda-rl train``) with ``workers x envs-per-worker`` environments on the
node Ray places it on, and waits for it. The run's state lives in the store (segments,
scores, reward models, checkpoints), so bursts started by successive RayJobs continue one
run, and a task that dies (node lost, preempted) is retried by Ray and resumes from the
latest checkpoint.

Limit (issue 7, still open): the environments of a burst run in one process on one node;
rollout actors spread over the worker pods, each hosting Rust envs through the PyO3
module, are the next step. The configuration names are already the final ones.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from typing import Sequence


def build_parser() -> argparse.ArgumentParser:
    """The driver's command line (the GitOps validator parses the RayJob entrypoint with it)."""
    p = argparse.ArgumentParser(
        prog="python -m zelda_rl.ray.train",
        description="Run training bursts of a zelda-rl run on a Ray cluster.",
    )
    p.add_argument("--workers", type=int, required=True, help="rollout workers (RAY_WORKERS)")
    p.add_argument("--envs-per-worker", type=int, required=True, help="environments per worker (ENVS_PER_WORKER)")
    p.add_argument("--batch-size", type=int, required=True, help="env steps per PPO update over all envs (BATCH_SIZE)")
    p.add_argument("--store", required=True, help="object store URL (STORE): s3://bucket/prefix or a folder")
    p.add_argument("--gateway", default=None, help="LLM judge gateway base URL (GATEWAY); empty: offline judge")
    p.add_argument("--rom", default=None, help="cartridge ROM file (ROM); empty: the bundled mini-zelda")
    p.add_argument("--start-state", default=None, help="save state every episode starts from")
    p.add_argument("--run", required=True, help="run id (RUN)")
    p.add_argument("--bursts", type=int, default=1, help="bursts to run in this job")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run if it exists (and run --bursts more bursts); without it the run must be new",
    )
    p.add_argument("--config", default=None, help="settings file (TOML) for zelda-rl train")
    p.add_argument("--seed", type=int, default=None, help="seed of everything random")
    p.add_argument("--backend", default="flex", help="learner backend: flex, tch-cpu, tch-cuda[:N]")
    p.add_argument("--minibatches", type=int, default=4, help="PPO minibatches (the batch is rounded to divide into them)")
    p.add_argument("--address", default=None, help="Ray address (default: RAY_ADDRESS, else auto)")
    p.add_argument(
        "--zelda-rl",
        default=os.environ.get("ZELDA_RL_BIN", "zelda-rl"),
        help="the zelda-rl binary (ZELDA_RL_BIN)",
    )
    p.add_argument("--max-retries", type=int, default=2, help="times Ray retries a burst whose node died")
    return p


def effective_batch(batch_size: int, envs: int, minibatches: int) -> int:
    """The batch actually used: whole steps of every env, divisible into minibatches."""
    horizon = max(1, round(batch_size / envs))
    while (horizon * envs) % minibatches != 0:
        horizon += 1
    return horizon * envs


def train_command(args: argparse.Namespace) -> list[str]:
    """The ``zelda-rl train`` command line a burst runs."""
    envs = args.workers * args.envs_per_worker
    if envs < 1:
        raise SystemExit("--workers and --envs-per-worker must be at least 1")
    cmd = [
        args.zelda_rl,
        "train",
        "--store",
        args.store,
        "--run",
        args.run,
        "--envs",
        str(envs),
        "--batch-size",
        str(effective_batch(args.batch_size, envs, args.minibatches)),
        "--backend",
        args.backend,
    ]
    # A resumed job adds bursts to where the run stands; a new one runs exactly --bursts.
    cmd += ["--add-bursts" if args.resume else "--bursts", str(args.bursts)]
    if args.gateway:
        cmd += ["--gateway", args.gateway]
    else:
        cmd += ["--offline"]
    if args.rom:
        cmd += ["--rom", args.rom]
    if args.start_state:
        cmd += ["--start-state", args.start_state]
    if args.config:
        cmd += ["--config", args.config]
    if args.seed is not None:
        cmd += ["--seed", str(args.seed)]
    return cmd


def _run_burst(cmd: list[str]) -> int:
    # A retry after a lost node runs the same command: with --add-bursts it finishes the
    # interrupted burst from the latest checkpoint.
    print("running:", " ".join(cmd), flush=True)
    return subprocess.call(cmd)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cmd = train_command(args)
    if shutil.which(cmd[0]) is None and not os.path.isfile(cmd[0]):
        print(f"error: the zelda-rl binary `{cmd[0]}` is not on PATH (set --zelda-rl or ZELDA_RL_BIN)", file=sys.stderr)
        return 2

    import ray  # imported here so build_parser() works without Ray installed

    ray.init(address=args.address or os.environ.get("RAY_ADDRESS") or "auto")
    envs = args.workers * args.envs_per_worker
    cpus = max(1, min(envs, int(ray.cluster_resources().get("CPU", 1))))
    task = ray.remote(num_cpus=cpus, max_retries=args.max_retries, retry_exceptions=False)(_run_burst)
    rc = ray.get(task.remote(cmd))
    if rc != 0:
        print(f"error: zelda-rl train exited with status {rc}", file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())
