"""The prepared GPU call, checked on the CPU: its stages and the commands its steps start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "gpu_session.sh"


def _run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )


def test_help_and_a_wrong_stage() -> None:
    shown = _run("--help")
    assert shown.returncode == 0 and "checks" in shown.stdout and "pong" in shown.stdout
    wrong = _run("everything")
    assert wrong.returncode == 2 and "stage must be checks, pong or all" in wrong.stderr


def test_a_dry_run_lists_every_step_with_its_command(tmp_path: Path) -> None:
    done = _run("all", DRY_RUN="1", OUT=str(tmp_path))
    assert done.returncode == 0, done.stderr
    log = (tmp_path / "session.log").read_text()
    assert "-k cuda_graph tests/algorithms/test_dqn.py" in log
    assert "bench/gpu_dqn.py --only learners" in log
    assert "bench/atari_time_to_score.py --game pong --minutes 4 --gpus 1" in log
    assert log.rstrip().endswith("done")


@pytest.mark.parametrize("bench", ["gpu_dqn.py", "atari_time_to_score.py"])
def test_the_benches_it_runs_start(bench: str) -> None:
    started = subprocess.run(
        [sys.executable, str(ROOT / "bench" / bench), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert started.returncode == 0, started.stderr[-2000:]
    assert "usage:" in started.stdout
