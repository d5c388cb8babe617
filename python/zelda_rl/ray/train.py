"""RayJob entrypoint: training bursts of a zelda-rl run on a Ray cluster.

    python -m zelda_rl.ray.train --workers $RAY_WORKERS --envs-per-worker $ENVS_PER_WORKER \
        --batch-size $BATCH_SIZE --store $STORE --gateway $GATEWAY --rom $ROM \
        --run $RUN --bursts 1 --resume

Layout (the EnvPool/PufferLib pattern, with Rust doing the work):

- ``--workers`` rollout actors, one per worker slot, each hosting ``--envs-per-worker``
  Rust environments and a copy of the policy (``zelda_rl._core.RolloutWorker``). One call
  runs a whole PPO horizon, so Ray's per-call overhead (about 0.6 ms) is paid once per
  ``horizon x envs`` env steps. Each actor writes its segments to the store itself.
- one learner actor (``zelda_rl._core.Learner``): PPO updates, checkpoints, the evaluation
  by the judges and the reward model at the end of each burst; on a GPU when
  ``--backend tch-cuda`` and the cluster has one.
- the driver moves ObjectRefs only: the policy bytes are put in the object store once per
  update and read by every actor (the weight broadcast); the chunks go from the rollout
  actors to the learner without passing through the driver.

A rollout actor that dies (node lost, OOM, preempted) is restarted by Ray; the driver
restores its environments from the learner's snapshot of them at the current update
boundary and asks for the round again, so the run continues as if nothing happened (the
Rust test ``crates/train/tests/distributed.rs`` checks that the result is bit-identical).
A learner that dies is replaced by a new one that continues from the run's latest
checkpoint (or starts the run again if it has none yet); every rollout actor is put back
to that checkpoint's environments and the updates since are done again, with the same
result. Both kinds of loss are allowed ``--max-restarts`` times per job.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import sys
import threading
import time
import tomllib
from pathlib import Path
from typing import Any, Sequence


def backend(text: str) -> str:
    """``--backend``: refused at parse time (and so by ``cargo xtask gitops``), not on the learner."""
    name, _, device = text.partition(":")
    if name in ("flex", "tch-cpu") and not device or name == "tch-cuda" and (not device or device.isdigit()):
        return text
    raise argparse.ArgumentTypeError(f"unknown backend {text!r} (flex, tch-cpu, tch-cuda or tch-cuda:N)")


def build_parser() -> argparse.ArgumentParser:
    """The driver's command line (the GitOps validator parses the RayJob entrypoint with it)."""
    p = argparse.ArgumentParser(
        prog="python -m zelda_rl.ray.train",
        description="Run training bursts of a zelda-rl run on a Ray cluster.",
    )
    p.add_argument("--workers", type=int, required=True, help="rollout actors (RAY_WORKERS)")
    p.add_argument("--envs-per-worker", type=int, required=True, help="environments per rollout actor (ENVS_PER_WORKER)")
    p.add_argument("--batch-size", type=int, required=True, help="env steps per PPO update over all envs (BATCH_SIZE)")
    p.add_argument("--store", required=True, help="object store URL (STORE): s3://bucket/prefix or a folder")
    p.add_argument("--gateway", default=None, help="LLM judge gateway base URL (GATEWAY); empty: offline judge")
    p.add_argument("--rom", default=None, help="cartridge ROM file on every node (ROM); empty: the bundled mini-zelda")
    p.add_argument("--start-state", default=None, help="save state file every episode starts from")
    p.add_argument("--run", required=True, help="run id (RUN)")
    p.add_argument("--bursts", type=int, default=1, help="bursts to run in this job")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run if it exists (and run --bursts more bursts); without it the run must be new",
    )
    p.add_argument("--config", default=None, help="settings file (TOML), as for zelda-rl train")
    p.add_argument("--seed", type=int, default=None, help="seed of everything random")
    p.add_argument("--backend", default="flex", type=backend, help="learner backend: flex, tch-cpu, tch-cuda[:N]")
    p.add_argument(
        "--minibatches",
        type=int,
        default=None,
        help="PPO minibatches the batch must divide into (default: ppo.num_minibatches of --config, else 4)",
    )
    p.add_argument("--cpus-per-worker", type=float, default=1.0, help="CPUs Ray reserves per rollout actor")
    p.add_argument("--learner-cpus", type=float, default=1.0, help="CPUs Ray reserves for the learner")
    p.add_argument(
        "--learner-gpus", type=float, default=None, help="GPUs for the learner (default: 1 with a tch-cuda backend)"
    )
    p.add_argument("--eval-concurrency", type=int, default=32, help="segments judged at once")
    p.add_argument(
        "--max-restarts", type=int, default=3, help="times a lost rollout actor (per round) or the learner (per job) is replaced"
    )
    p.add_argument("--address", default=None, help="Ray address (default: RAY_ADDRESS, else auto)")
    p.add_argument("--json", action="store_true", help="print one JSON line per update and per burst on stdout")
    p.add_argument(
        "--metrics-addr",
        default=None,
        help="serve the job's Prometheus metrics on HOST:PORT (/metrics), as zelda-rl train --metrics-addr",
    )
    p.add_argument(
        "--metrics-linger",
        type=float,
        default=0.0,
        help="seconds /metrics stays up after the job ends, so the last scrape sees its final counts",
    )
    return p


def effective_batch(batch_size: int, envs: int, minibatches: int) -> int:
    """The batch actually used: whole steps of every env, divisible into minibatches."""
    horizon = max(1, round(batch_size / envs))
    while (horizon * envs) % minibatches != 0:
        horizon += 1
    return horizon * envs


def settings_text(args: argparse.Namespace) -> str | None:
    if not args.config:
        return None
    try:
        return Path(args.config).read_text()
    except OSError as e:
        raise SystemExit(f"error: --config {args.config}: {e.strerror}") from None


def minibatches(args: argparse.Namespace, text: str | None) -> int:
    if args.minibatches is not None:
        return args.minibatches
    if text is None:
        return 4
    try:
        return int(tomllib.loads(text).get("ppo", {}).get("num_minibatches", 4))
    except tomllib.TOMLDecodeError as e:
        raise SystemExit(f"error: --config {args.config}: {e}") from None


def _read(path: str | None) -> bytes | None:
    return Path(path).read_bytes() if path else None


class RolloutActor:
    """A Ray actor around ``zelda_rl._core.RolloutWorker``."""

    def __init__(self, worker: int, spec: dict[str, Any]):
        self.worker = worker
        self.spec = spec
        self.inner = self._build()

    def _build(self) -> Any:
        from zelda_rl import _core_module

        _core = _core_module()

        spec = self.spec
        return _core.RolloutWorker(
            spec["store"],
            spec["run"],
            self.worker,
            spec["envs_per_worker"],
            spec["total_envs"],
            batch_size=spec["batch_size"],
            seed=spec["seed"],
            settings_toml=spec["settings_toml"],
            rom=_read(spec["rom"]),
            start_state=_read(spec["start_state"]),
            threads=spec["threads"],
        )

    def pid(self) -> int:
        return os.getpid()

    def restore(self, snapshot: bytes | None) -> None:
        if snapshot is not None:
            self.inner.restore(snapshot)

    def restart(self) -> None:
        """Back to the run's first state (a new learner found no checkpoint to go back to)."""
        self.inner = self._build()

    def collect(self, request: str, policy: bytes) -> tuple[str, bytes]:
        chunk = self.inner.collect(request, policy)
        return json.dumps({"worker": self.worker, "bytes": len(chunk)}), chunk


class LearnerActor:
    """A Ray actor around ``zelda_rl._core.Learner``."""

    def __init__(self, spec: dict[str, Any]):
        from zelda_rl import _core_module

        _core = _core_module()

        self.inner = _core.Learner(
            spec["store"],
            spec["run"],
            [spec["envs_per_worker"]] * spec["workers"],
            batch_size=spec["batch_size"],
            seed=spec["seed"],
            bursts=None if spec["resume"] else spec["bursts"],
            settings_toml=spec["settings_toml"],
            rom=_read(spec["rom"]),
            add_bursts=spec["bursts"] if spec["resume"] else None,
            restart_to=spec.get("restart_to"),
            gateway=spec["gateway"],
            eval_concurrency=spec["eval_concurrency"],
            backend=spec["backend"],
        )

    def status(self) -> dict[str, Any]:
        return json.loads(self.inner.status())

    def next_request(self) -> str | None:
        return self.inner.next_request()

    def worker_snapshot(self, w: int) -> bytes | None:
        return self.inner.worker_snapshot(w)

    def policy_bytes(self) -> bytes:
        return self.inner.policy_bytes()

    def update(self, *chunks: bytes) -> dict[str, Any]:
        return json.loads(self.inner.update(list(chunks)))

    def finish_burst(self) -> dict[str, Any]:
        return json.loads(self.inner.finish_burst())

    def metrics_text(self) -> str:
        return self.inner.metrics_text()


OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


class MetricsExporter:
    """Serves ``/metrics`` for the job from the driver (on the Ray head, where the RayJob
    runs it): the learner's registry, fetched after every update and burst so that a
    scrape never waits on the learner, plus the driver's own restart counters."""

    def __init__(self, addr: str):
        host, sep, port = addr.rpartition(":")
        if not sep or not port.isdigit():
            raise SystemExit(f"error: --metrics-addr {addr}: expected HOST:PORT")
        self._learner_text = "# EOF\n"
        self._driver = {"rollout_actor_restarts": 0, "learner_restarts": 0}
        self._lock = threading.Lock()
        exporter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if self.path.split("?", 1)[0] != "/metrics":
                    self.send_error(404, "zelda-rl metrics: GET /metrics")
                    return
                body = exporter.text().encode()
                self.send_response(200)
                self.send_header("Content-Type", OPENMETRICS)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        try:
            self.server = http.server.ThreadingHTTPServer((host.strip("[]") or "0.0.0.0", int(port)), Handler)
        except OSError as e:
            raise SystemExit(f"error: --metrics-addr {addr}: {e.strerror}") from None
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name="metrics", daemon=True).start()

    def set(self, learner_text: str, rollout_actor_restarts: int, learner_restarts: int) -> None:
        with self._lock:
            self._learner_text = learner_text
            self._driver = {"rollout_actor_restarts": rollout_actor_restarts, "learner_restarts": learner_restarts}

    def text(self) -> str:
        with self._lock:
            learner, driver = self._learner_text, dict(self._driver)
        own = "".join(
            f"# HELP zelda_rl_ray_{name} {what}\n# TYPE zelda_rl_ray_{name} counter\nzelda_rl_ray_{name}_total {driver[name]}\n"
            for name, what in (
                ("rollout_actor_restarts", "Rollout actors restored after a loss in this job."),
                ("learner_restarts", "Learners replaced after a loss in this job."),
            )
        )
        body = learner[: -len("# EOF\n")] if learner.endswith("# EOF\n") else learner
        return body + own + "# EOF\n"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class LearnerLost(Exception):
    """The learner actor died (not: its Rust code refused something)."""


def log(msg: str, **fields: Any) -> None:
    extra = " ".join(f"{k}={v}" for k, v in fields.items())
    print(f"zelda-rl-ray: {msg} {extra}".rstrip(), file=sys.stderr, flush=True)


class Driver:
    """Runs the rounds: broadcast the policy, collect one chunk per actor, update."""

    def __init__(self, ray: Any, args: argparse.Namespace, spec: dict[str, Any], metrics: MetricsExporter | None = None):
        self.ray = ray
        self.args = args
        self.spec = spec
        gpus = args.learner_gpus
        if gpus is None:
            gpus = 1 if args.backend.startswith("tch-cuda") else 0
        # Not restarted by Ray: a new learner needs the job's target (`restart_to`), which
        # the constructor arguments of the first one do not carry.
        self.learner_class = ray.remote(num_cpus=args.learner_cpus, num_gpus=gpus, max_restarts=0)(LearnerActor)
        self.learner = self.learner_class.remote(spec)
        actor = ray.remote(
            num_cpus=args.cpus_per_worker,
            max_restarts=args.max_restarts,
            # A call to a lost actor fails at once; the driver restores the actor and
            # asks again, so Ray must not replay it against a fresh actor.
            max_task_retries=0,
        )(RolloutActor)
        namespace_run = spec["run"].replace("/", "-")
        self.actors = [
            actor.options(name=f"zelda-rl-{namespace_run}-rollout-{w}").remote(w, spec)
            for w in range(args.workers)
        ]
        self.restarts = 0
        self.learner_restarts = 0
        self.target: int | None = None
        self.metrics = metrics

    def refresh_metrics(self) -> None:
        """Takes the learner's counts for `/metrics` (one small call per update)."""
        if self.metrics is not None:
            self.metrics.set(self._learner("metrics_text"), self.restarts, self.learner_restarts)

    def _learner(self, method: str, *args: Any) -> Any:
        """Calls the learner; its death is `LearnerLost`, its errors are raised as they are."""
        ray = self.ray
        try:
            return ray.get(getattr(self.learner, method).remote(*args))
        except ray.exceptions.RayActorError as e:
            if getattr(e, "actor_init_failed", False):
                raise  # the Rust constructor refused (settings, resume): not a loss
            raise LearnerLost(str(e)) from e

    def _learner_alive(self) -> bool:
        try:
            self._learner("status")
            return True
        except LearnerLost:
            return False

    def _restore(self, w: int) -> None:
        """Puts actor `w`'s envs back to the learner's snapshot, waiting while Ray restarts it."""
        ray = self.ray
        deadline = time.monotonic() + 120
        while True:
            try:
                ray.get(self.actors[w].restore.remote(self.learner.worker_snapshot.remote(w)))
                return
            except ray.exceptions.ActorUnavailableError as e:  # restarting: wait for it
                if time.monotonic() > deadline:
                    raise RuntimeError(f"rollout actor {w} did not come back in 120 s") from e
                time.sleep(0.5)
            except ray.exceptions.RayActorError as e:
                if not self._learner_alive():
                    raise LearnerLost(str(e)) from e
                raise

    def _recover(self, w: int, request: str, policy: Any, error: Exception) -> Any:
        """Restores actor `w` from the learner's snapshot and asks for the round again."""
        ray = self.ray
        for attempt in range(1, self.args.max_restarts + 1):
            self.restarts += 1
            log("rollout actor lost; restoring it from the learner's snapshot", worker=w, attempt=attempt, error=type(error).__name__)
            self._restore(w)
            meta, chunk = self.actors[w].collect.options(num_returns=2).remote(request, policy)
            try:
                ray.get(meta)
                return chunk
            except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as e:
                error = e
        raise RuntimeError(f"rollout actor {w} was lost {self.args.max_restarts + 1} times in one round") from error

    def _replace_learner(self, error: LearnerLost) -> None:
        """Starts a new learner from the latest checkpoint and puts every actor back to it."""
        ray = self.ray
        self.learner_restarts += 1
        if self.learner_restarts > self.args.max_restarts:
            raise RuntimeError(f"the learner was lost {self.learner_restarts} times in this job") from error
        log("learner lost; a new one continues from the latest checkpoint", attempt=self.learner_restarts)
        ray.kill(self.learner, no_restart=True)
        self.learner = self.learner_class.remote({**self.spec, "restart_to": self.target})
        status = self._learner("status")
        # Checkpoints are written after updates: a learner with no env steps found none.
        fresh = status["env_steps"] == 0
        for w, a in enumerate(self.actors):
            if fresh:  # no checkpoint yet: the run starts again
                ray.get(a.restart.remote())
            else:
                self._restore(w)
        log("learner replaced", burst=status["burst"], update=status["update"], from_start=fresh)

    def round(self, request: str) -> dict[str, Any]:
        ray = self.ray
        policy = self.learner.policy_bytes.remote()  # one object, read by every actor
        calls = [a.collect.options(num_returns=2).remote(request, policy) for a in self.actors]
        chunks = []
        for w, (meta, chunk) in enumerate(calls):
            try:
                ray.get(meta)  # small; the chunk itself goes straight to the learner
            except ray.exceptions.RayError as e:
                # The policy comes from the learner: if it died, every call fails.
                if not self._learner_alive():
                    raise LearnerLost(str(e)) from e
                if not isinstance(e, ray.exceptions.RayActorError):
                    raise
                chunk = self._recover(w, request, policy, e)
            chunks.append(chunk)
        return self._learner("update", *chunks)

    def run(self) -> int:
        status = self._learner("status")
        self.target = status["target_bursts"]
        if status["done"]:
            log("run already complete; nothing to do", run=self.spec["run"], bursts=status["burst"])
            return 0
        for w in range(len(self.actors)):
            self._restore(w)
        log(
            "training",
            run=self.spec["run"],
            burst=status["burst"],
            to_burst=status["target_bursts"],
            workers=self.args.workers,
            envs_per_worker=self.args.envs_per_worker,
            horizon=status["horizon"],
        )
        while True:
            try:
                request = self._learner("next_request")
                if request is None:
                    if self._learner("status")["done"]:
                        return 0
                    summary = self._learner("finish_burst")
                    summary["rollout_actor_restarts"] = self.restarts
                    summary["learner_restarts"] = self.learner_restarts
                    self.refresh_metrics()
                    self.emit("burst", summary)
                    continue
                report = self.round(request)
                self.refresh_metrics()
            except LearnerLost as e:
                lost: LearnerLost | None = e
                while lost is not None:  # the new one may be lost too
                    try:
                        self._replace_learner(lost)
                        lost = None
                    except LearnerLost as again:
                        lost = again
                continue
            self.emit("update", report)

    def emit(self, event: str, record: dict[str, Any]) -> None:
        if self.args.json:
            print(json.dumps({"event": event, **record}), flush=True)
        if event == "update":
            log(
                "update",
                burst=record["burst"],
                update=f"{record['update'] + 1}/{record['updates']}",
                env_steps=record["env_steps"],
                sps=f"{record['steps_per_second']:.0f}",
                reward=f"{record['mean_reward']:.4f}",
            )
        else:
            log(
                "burst done",
                burst=record["burst"],
                episodes=record["episodes"],
                mean_return=f"{record['mean_return']:.3f}",
                mean_rooms=f"{record['mean_rooms']:.2f}",
                reward_model=record.get("reward_model"),
            )


def job_spec(args: argparse.Namespace) -> dict[str, Any]:
    """What every actor needs, checked before anything starts on the cluster."""
    if args.workers < 1 or args.envs_per_worker < 1:
        raise SystemExit("error: --workers and --envs-per-worker must be at least 1")
    if args.bursts < 1:
        raise SystemExit("error: --bursts must be at least 1")
    for flag, path in (("--rom", args.rom), ("--start-state", args.start_state)):
        if path and not os.path.isfile(path):
            raise SystemExit(f"error: {flag} {path}: no such file (it must exist on every Ray node)")
    text = settings_text(args)
    envs = args.workers * args.envs_per_worker
    return {
        "store": args.store,
        "run": args.run,
        "workers": args.workers,
        "envs_per_worker": args.envs_per_worker,
        "total_envs": envs,
        "batch_size": effective_batch(args.batch_size, envs, minibatches(args, text)),
        "seed": args.seed,
        "bursts": args.bursts,
        "resume": args.resume,
        "settings_toml": text,
        "rom": args.rom or None,
        "start_state": args.start_state or None,
        "gateway": args.gateway or None,
        "eval_concurrency": args.eval_concurrency,
        "backend": args.backend,
        "threads": max(1, int(args.cpus_per_worker)),
    }


def rust_error(text: str) -> str:
    """The ``zelda_rl._core`` error of a remote traceback, with the lines that continue it
    (a TOML error shows the line and field below its first line); else the whole text."""
    lines = text.splitlines()
    for i in range(len(lines) - 1, -1, -1):
        line = lines[i].strip()
        if ": " in line and line.split(": ", 1)[0].endswith(("_core.TrainError", "_core.EnvError")):
            return "\n".join([line.split(": ", 1)[1], *lines[i + 1 :]]).rstrip()
    return text


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    spec = job_spec(args)

    # Bound before Ray starts: a taken port fails the job at once.
    metrics = MetricsExporter(args.metrics_addr) if args.metrics_addr else None

    import ray  # imported here so build_parser() works without Ray installed

    address = args.address or os.environ.get("RAY_ADDRESS") or "auto"
    ray.init(address=address, namespace="zelda-rl", log_to_driver=True)
    try:
        return Driver(ray, args, spec, metrics).run()
    except (ray.exceptions.RayTaskError, ray.exceptions.RayActorError, LearnerLost, RuntimeError) as e:
        # The Rust error (bad settings, refused resume, store failure) is the message; Ray
        # wraps it in the remote traceback.
        print(f"error: {rust_error(str(e))}", file=sys.stderr)
        return 1
    finally:
        if metrics is not None:
            time.sleep(max(0.0, args.metrics_linger))
            metrics.close()
        ray.shutdown()


if __name__ == "__main__":
    sys.exit(main())
