"""The Ray driver (the RayJob entrypoint) on a real local Ray cluster: rollout actors and a
learner actor run bursts end to end, a rollout actor or the learner killed mid-run is
replaced without changing the result, and the next job continues the run."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))

from zelda_rl.ray.train import MetricsExporter, build_parser, effective_batch, job_spec  # noqa: E402

ENTRYPOINT = (
    "--workers 30 --envs-per-worker 6 --batch-size 32768 --store s3://zelda/runs "
    "--gateway http://gateway:80 --rom /roms/zelda.gb --run prod-1 --bursts 1 --resume"
)
SMALL = (
    "[train]\nsteps_per_burst = 320\ncheckpoint_every = 4\n"
    "[ppo]\nnum_minibatches = 2\nupdate_epochs = 1\n"
    "[segments]\nsteps = 16\nkeyframe_interval = 8\n"
    "[reward_model]\nmin_samples = 4\n"
)
RAY = str(Path(sys.executable).parent / "ray")
# Ray 2.60 turns token authentication on by default; the test cluster is loopback-only.
ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def test_entrypoint_parses_and_sizes_the_job(tmp_path):
    args = build_parser().parse_args(ENTRYPOINT.split())
    assert (args.workers, args.envs_per_worker, args.resume) == (30, 6, True)
    (tmp_path / "zelda.gb").write_bytes(b"x")
    args.rom = str(tmp_path / "zelda.gb")
    spec = job_spec(args)
    assert spec["total_envs"] == 180
    # 32768 is not a multiple of 180 envs: whole steps per env, divisible into 4 minibatches.
    assert spec["batch_size"] == 32760
    assert spec["gateway"] == "http://gateway:80"


def test_batch_follows_the_configs_minibatches(tmp_path):
    cfg = tmp_path / "s.toml"
    cfg.write_text("[ppo]\nnum_minibatches = 6\n")
    args = build_parser().parse_args(f"--workers 2 --envs-per-worker 2 --batch-size 30 --store x --run r --config {cfg}".split())
    assert job_spec(args)["batch_size"] % 6 == 0


def test_effective_batch():
    assert effective_batch(4096, 9, 4) % 36 == 0
    assert effective_batch(16384, 108, 4) == 16416
    assert effective_batch(8, 64, 4) == 64


def test_bad_command_lines_are_refused_before_the_cluster(capsys, tmp_path):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--workers", "2"])
    assert "--envs-per-worker" in capsys.readouterr().err
    base = "--workers 1 --envs-per-worker 1 --batch-size 8 --store x --run r".split()
    for good in ("flex", "tch-cpu", "tch-cuda", "tch-cuda:1"):
        assert build_parser().parse_args(base + ["--backend", good]).backend == good
    for bad in ("cuda", "tch-cuda:x", "flex:0"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(base + ["--backend", bad])
        assert f"unknown backend '{bad}'" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="--rom /nowhere.gb: no such file"):
        job_spec(build_parser().parse_args(base + ["--rom", "/nowhere.gb"]))
    with pytest.raises(SystemExit, match="must be at least 1"):
        job_spec(build_parser().parse_args(base[:1] + ["0"] + base[2:]))
    with pytest.raises(SystemExit, match="--metrics-addr 9108: expected HOST:PORT"):
        MetricsExporter("9108")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit, match=f"--metrics-addr 127.0.0.1:{port}: Address already in use"):
            MetricsExporter(f"127.0.0.1:{port}")


@pytest.fixture(scope="module")
def cluster():
    """A real Ray head on 127.0.0.1 with 2 CPUs, stopped afterwards."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = [RAY, "start", "--head", "--num-cpus", "2", "--node-ip-address", "127.0.0.1",
             "--port", str(port), "--include-dashboard", "false", "--disable-usage-stats"]
    out = subprocess.run(start, env=ENV, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([RAY, "stop", "--force"], env=ENV, capture_output=True, timeout=120)


def driver(address: str, store: Path, run: str, cfg: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "zelda_rl.ray.train", "--address", address,
        "--workers", "2", "--envs-per-worker", "2", "--batch-size", "32",
        "--store", str(store), "--run", run, "--config", str(cfg), "--seed", "3",
        "--cpus-per-worker", "0.5", "--learner-cpus", "0.5", "--json", *extra,
    ]


def run_job(cmd: list[str], kills: list[tuple[int, str]] = (), on_event=None):
    """Runs one driver job; `kills` SIGKILLs the process of an actor of that class once
    that many update events have been printed; `on_event` sees each event as it comes.
    Returns (returncode, events, stderr)."""
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.extend(proc.stderr), daemon=True)
    reader.start()
    events, pending, killed = [], list(kills), []
    for line in proc.stdout:
        if line.startswith("{"):
            events.append(json.loads(line))
            if on_event is not None:
                on_event(events[-1])
        updates = sum(e["event"] == "update" for e in events)
        while pending and updates >= pending[0][0]:
            killed.append(kill_actor(pending.pop(0)[1]))
    rc = proc.wait(timeout=600)
    reader.join(timeout=30)
    assert not pending and all(killed), f"not killed: {pending}, pids {killed}"
    return rc, events, "".join(err)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def samples(text: str) -> dict[str, float]:
    """The samples of an OpenMetrics exposition, keyed by name{labels}."""
    assert text.endswith("# EOF\n"), text[-200:]
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def kill_actor(actor_class: str) -> int | None:
    # Ray names an actor's worker process after the actor class.
    prefix = f"ray::{actor_class}".encode()
    for pid in sorted(int(p) for p in os.listdir("/proc") if p.isdigit()):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if cmdline.startswith(prefix):
            os.kill(pid, signal.SIGKILL)
            return pid
    return None


def latest_checkpoint(store: Path, run: str) -> bytes:
    latest = json.loads((store / run / "checkpoints" / "latest.json").read_text())
    return (store / latest["key"]).read_bytes()


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def without_latency(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: without_latency(x) for k, x in v.items() if k != "latency_s"}
    if isinstance(v, list):
        return [without_latency(x) for x in v]
    return v


def scores(store: Path) -> dict[str, list[Any]]:
    """The run's scores, but for the judges' wall-clock latencies."""
    return {
        k: [without_latency(json.loads(line)) for line in v.splitlines() if line.strip()]
        for k, v in tree(store / "r" / "scores").items()
    }


def segments(store: Path, run: str) -> dict[str, bytes]:
    return tree(store / run / "segments")


def test_bursts_on_a_real_cluster_survive_a_killed_rollout_actor(cluster, tmp_path):
    cfg = tmp_path / "small.toml"
    cfg.write_text(SMALL)

    # A: two bursts in one job, undisturbed, its /metrics scraped after each burst.
    a = tmp_path / "a"
    port = free_port()
    scraped: list[dict[str, float]] = []

    def scrape(event: dict[str, Any]) -> None:
        if event["event"] == "burst":
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
                assert r.headers["Content-Type"].startswith("application/openmetrics-text")
                scraped.append(samples(r.read().decode()))

    metrics = ("--metrics-addr", f"127.0.0.1:{port}", "--metrics-linger", "5")
    rc, events, err = run_job(driver(cluster, a, "r", cfg, "--bursts", "2", *metrics), on_event=scrape)
    assert rc == 0, err[-4000:]
    bursts = [e for e in events if e["event"] == "burst"]
    assert [b["burst"] for b in bursts] == [0, 1]
    assert all(b["env_steps"] == 320 and b["segments_written"] > 0 for b in bursts)
    assert bursts[1]["reward_model"] == "r/reward-models/b0001.rm"
    # TensorBoard scalars, as zelda-rl train writes them.
    assert list((a / "r" / "tensorboard").glob("events.out.tfevents.*")), "no TensorBoard events"
    # Prometheus metrics of the whole job, from the learner's counts of every chunk.
    assert [m["zelda_rl_env_steps_total"] for m in scraped] == [320, 640]
    assert [m["zelda_rl_learner_updates_total"] for m in scraped] == [10, 20]
    assert [m["zelda_rl_segments_written_total"] for m in scraped] == [
        sum(b["segments_written"] for b in bursts[: i + 1]) for i in range(2)
    ]
    assert [m["zelda_rl_segment_bytes_total"] for m in scraped] == [
        sum(b["segment_bytes"] for b in bursts[: i + 1]) for i in range(2)
    ]
    assert scraped[0]["zelda_rl_segment_bytes_total"] > 0
    last = scraped[-1]
    assert last["zelda_rl_rooms_visited"] >= 1
    assert last['zelda_rl_evaluator_segments_total{outcome="ok"}'] > 0
    assert sum(v for k, v in last.items() if k.startswith("zelda_rl_reward_total{")) > 0
    assert last["zelda_rl_ray_rollout_actor_restarts_total"] == 0 == last["zelda_rl_ray_learner_restarts_total"]

    # B: one job per burst, as the RayJob runs it. In the first, the learner dies before
    # the first checkpoint (the run starts again), a rollout actor dies, then the learner
    # dies after the checkpoint of update 4 (the updates since are done again); in the
    # second, the learner dies after the burst-0 checkpoint.
    b = tmp_path / "b"
    kills = [(1, "LearnerActor"), (3, "RolloutActor"), (7, "LearnerActor")]
    rc, events, err = run_job(driver(cluster, b, "r", cfg, "--bursts", "1", "--resume"), kills)
    assert rc == 0, err[-4000:]
    assert "rollout actor lost" in err and "learner lost" in err, err[-4000:]
    burst = [e for e in events if e["event"] == "burst"]
    assert len(burst) == 1 and burst[0]["rollout_actor_restarts"] >= 1 and burst[0]["learner_restarts"] == 2
    updates = [e["update"] for e in events if e["event"] == "update"]
    assert updates[:2] == [0, 0] and updates[-1] == 9 and updates.count(4) == 2, updates
    rc, events, err = run_job(driver(cluster, b, "r", cfg, "--bursts", "1", "--resume"), [(2, "LearnerActor")])
    assert rc == 0, err[-4000:]
    assert [e["burst"] for e in events if e["event"] == "burst"] == [1]

    # The losses changed nothing: same weights, optimiser, envs, segments, scores and
    # reward models.
    assert latest_checkpoint(a, "r") == latest_checkpoint(b, "r")
    assert segments(a, "r") == segments(b, "r")
    assert tree(a / "r" / "reward-models") == tree(b / "r" / "reward-models")
    assert scores(a) == scores(b)

    # Starting the run again without --resume is refused, and says how to continue.
    rc, _, err = run_job(driver(cluster, a, "r", cfg, "--bursts", "3"))
    assert rc != 0 and "error: run `r` already has checkpoints" in err and "--resume" in err, err[-3000:]
    # Settings errors name the field.
    cfg.write_text("[train]\nstepz = 3\n")
    rc, _, err = run_job(driver(cluster, tmp_path / "c", "r", cfg, "--bursts", "1"))
    assert rc != 0 and "error: settings: settings_toml" in err and "stepz" in err, err[-3000:]


def test_remote_errors_keep_their_continuation_lines():
    from zelda_rl.ray.train import rust_error

    text = (
        "ray::LearnerActor.__init__()\n  File \"train.py\", line 1\n"
        "_core.TrainError: settings: settings_toml: TOML parse error at line 2, column 1\n"
        "  |\n2 | stepz = 3\n  | ^^^^^\nunknown field `stepz`\n"
    )
    msg = rust_error(text)
    assert msg.startswith("settings: settings_toml: TOML parse error") and "unknown field `stepz`" in msg
    assert rust_error("something else") == "something else"
