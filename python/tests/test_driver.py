"""The Ray driver's command line: the RayJob entrypoint parses, and the ``zelda-rl train``
command it builds really runs a burst and continues the run on the next job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))

from zelda_rl.ray.train import build_parser, effective_batch, train_command  # noqa: E402

ENTRYPOINT = (
    "--workers 30 --envs-per-worker 6 --batch-size 32768 --store s3://zelda/runs "
    "--gateway http://gateway:80 --rom /roms/zelda.gb --run prod-1 --bursts 1 --resume"
)


def zelda_rl_bin() -> str:
    path = os.environ.get("ZELDA_RL_BIN") or str(ROOT / "target" / "debug" / "zelda-rl")
    if not os.path.isfile(path):
        pytest.fail(f"{path} is missing: build it first (cargo build -p zelda-rl) or set ZELDA_RL_BIN")
    return path


def test_entrypoint_maps_to_train_flags():
    args = build_parser().parse_args(ENTRYPOINT.split())
    cmd = train_command(args)
    assert cmd[1] == "train"
    flags = dict(zip(cmd[2::2], cmd[3::2]))
    assert flags["--envs"] == "180"
    # 32768 is not a multiple of 180 envs: whole steps per env, divisible into 4 minibatches.
    assert flags["--batch-size"] == "32760"
    assert flags["--add-bursts"] == "1" and "--bursts" not in flags
    assert flags["--gateway"] == "http://gateway:80" and flags["--rom"] == "/roms/zelda.gb"


def test_effective_batch():
    assert effective_batch(4096, 9, 4) % 36 == 0
    assert effective_batch(16384, 108, 4) == 16416
    assert effective_batch(8, 64, 4) == 64


def test_missing_required_flag_is_an_error(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--workers", "2"])
    assert "--envs-per-worker" in capsys.readouterr().err


def test_commands_run_a_burst_then_continue_the_run(tmp_path):
    cfg = tmp_path / "small.toml"
    cfg.write_text(
        "[train]\nsteps_per_burst = 64\ncheckpoint_every = 0\n"
        "[ppo]\nupdate_epochs = 1\n"
        "[segments]\nsteps = 16\nkeyframe_interval = 8\n"
        "[reward_model]\nmin_samples = 4\n"
    )
    base = (
        f"--workers 2 --envs-per-worker 2 --batch-size 32 --store {tmp_path / 'runs'} "
        f"--run ray-test --config {cfg} --zelda-rl {zelda_rl_bin()} --seed 3"
    ).split()
    for job in range(2):
        argv = base + ["--bursts", "1"] + (["--resume"] if job else [])
        cmd = train_command(build_parser().parse_args(argv)) + ["--json"]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-3000:]
        bursts = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
        assert [b["burst"] for b in bursts] == [job], out.stdout
        assert bursts[0]["env_steps"] == 64 and bursts[0]["segments_written"] >= 4
    latest = json.loads((tmp_path / "runs/ray-test/checkpoints/latest.json").read_text())
    assert latest["burst"] == 2
    # Job 2 found scores of both bursts and trained a reward model on them.
    assert (tmp_path / "runs/ray-test/reward-models/b0001.rm").is_file()
    # Without --resume, asking for more bursts than the run has is refused: it exists.
    cmd = train_command(build_parser().parse_args(base + ["--bursts", "3"]))
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode != 0 and "--resume" in out.stderr
