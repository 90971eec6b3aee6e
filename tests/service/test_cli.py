"""The `rldojo` command as a user runs it: train, evaluate, listings, and one-line errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.service.conftest import ALICE, Server

RLDOJO = [sys.executable, "-c", "from service.cli import main; main()"]


def rldojo(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RAY_ADDRESS": "", "COLUMNS": "200"}
    env.pop("RAY_ADDRESS")
    return subprocess.run(
        [*RLDOJO, *args], capture_output=True, text=True, timeout=timeout, env=env
    )


@pytest.mark.lifecycle  # half a minute; README's train-and-evaluate lines too: make test-lifecycle
def test_train_then_evaluate_q_learning_on_the_books_grid(tmp_path: Path):
    trained = rldojo(
        "train", "q_learning", "--env", "rldojo/GridWorld-v0", "--stop-iters", "40",
        "--seed", "1", "--out", str(tmp_path), "--set", "alpha=0.1",
        "--mlflow-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-2000:]
    tracked = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")  # --mlflow-uri's store
    runs = tracked.search_runs([tracked.get_experiment_by_name("rldojo").experiment_id])
    assert [(run.data.tags["rldojo.job_id"], run.data.params["alpha"]) for run in runs] == [
        ("run", "0.1")
    ]
    # One progress line per iteration when not on a terminal (as in Ray Jobs logs).
    assert re.search(r"iter 40 +steps \d+ +return -?\d+\.\d\d +steps/s \d+", trained.stdout)
    best = re.search(r"best checkpoint: (\S+)", trained.stdout).group(1)
    assert Path(best).is_dir()
    trial = Path(best).parent
    assert (trial / "progress.csv").is_file() and list(trial.glob("events.out.tfevents.*"))

    video = tmp_path / "agent.mp4"
    evaluated = rldojo("evaluate", best, "--episodes", "5", "--json", "--video", str(video))
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    result = json.loads(evaluated.stdout)
    assert result["episodes"] == 5
    assert result["return_mean"] == 100.0 and result["returns"] == [100.0] * 5
    assert video.stat().st_size > 1000 and video.read_bytes()[4:8] == b"ftyp"


def test_listings():
    listed = rldojo("algorithms")
    assert listed.returncode == 0
    for name in ("policy_iteration", "value_iteration", "monte_carlo", "sarsa", "q_learning"):
        assert name in listed.stdout
    env_listing = rldojo("envs")
    assert env_listing.returncode == 0
    assert "rldojo/GridWorld-v0" in env_listing.stdout and "Discrete(25)" in env_listing.stdout
    assert "LunarLander-v3" in env_listing.stdout and "ALE/Pong-v5" in env_listing.stdout
    assert "A.L.E" not in env_listing.stderr + env_listing.stdout  # no banner that reads as trouble


def test_submit_takes_its_algorithm_from_the_spec_file(tmp_path: Path):
    spec = tmp_path / "job.json"
    spec.write_text(json.dumps({"algorithm": "q_learning", "stop": {"iterations": 2}}))
    # no server listens there: the command gets past its arguments and says so in one line
    done = rldojo("submit", "--spec", str(spec), "--url", "http://127.0.0.1:9", timeout=60)
    assert done.returncode != 0 and "Missing argument" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: cannot reach the server: [Errno 111] Connection refused"
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "ppo9", "--out", "x"], "unknown algorithm"),
        (["train", "q_learning", "--env", "Nope-v0", "--out", "x"], "unknown env"),
        (["train", "q_learning", "--set", "alpha", "--out", "x"], "--set expects key=value"),
        (["train", "q_learning", "--set", "gama=1", "--out", "x"], "config.gama: unknown key"),
        (["train", "--spec", "/no/such/spec.json", "--out", "x"], "no such file"),
        (["evaluate", "/no/such/checkpoint"], "no such checkpoint"),
        (["evaluate", "."], "not an algorithm checkpoint"),
    ],
)
def test_bad_input_prints_one_line_and_exits_non_zero(args, message):
    done = rldojo(*args, timeout=60)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr


def test_unusable_paths_and_malformed_values_are_one_line_errors(tmp_path: Path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    not_an_object = tmp_path / "spec.json"
    not_an_object.write_text("[1, 2]")
    cases = [
        (["pull", "abc123", "--out", "/proc/nope"], "--out /proc/nope"),
        (["train", "q_learning", "--out", str(a_file / "sub")], "Not a directory"),
        (["train", "--spec", str(not_an_object), "--out", str(tmp_path)], "a JSON object"),
        (["submit", "q_learning", "--env-set", "traps=[[1,1]"], "--env-set traps: not valid"),
        (["train", "q_learning", "--set", 'alpha={"x"', "--out", str(tmp_path)], "not valid JSON"),
    ]
    for args, message in cases:
        done = rldojo(*args, timeout=60)
        assert done.returncode != 0, args
        assert "Traceback" not in done.stderr + done.stdout, args
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (args, done.stderr)


def test_submit_follow_shows_each_iteration_with_its_speed(server: Server) -> None:
    env = {**os.environ, "RLDOJO_URL": server.url, "RLDOJO_TOKEN": ALICE, "COLUMNS": "200"}
    args = ["submit", "q_learning", "--env", "rldojo/GridWorld-v0", "--stop-iters", "3"]
    done = subprocess.run(
        [*RLDOJO, *args, "--follow"], capture_output=True, text=True, timeout=300, env=env
    )
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip()
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith(f"{job_id} SUCCEEDED")
    rows = [line for line in lines if line.startswith("iter ") or " iter " in line]
    assert len(rows) == 3, done.stderr
    assert all(re.search(r"iter \d  steps \d+  return -?\d+\.\d\d  steps/s \d+$", r) for r in rows)
