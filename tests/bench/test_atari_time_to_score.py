"""The time-to-score bench at toy scale: train, curve, standard-protocol scores, the record."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.bench  # a minute of training and scoring: make test-bench


def test_the_toy_run_trains_scores_and_writes_json_png_and_markdown(tmp_path: Path) -> None:
    out = tmp_path / "toy"
    command = [sys.executable, str(ROOT / "bench" / "atari_time_to_score.py"), "--toy"]
    command += ["--minutes", "0.2", "--episodes", "1", "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=400, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["curve"] and record["curve"][-1]["env_steps"] > 0
    assert record["run"]["env_steps_per_s"] > 0 and record["run"]["updates"] > 0
    assert set(record["run"]["time_to_score"]) == {"18.0"}  # Pong's target
    for name in ("final", "best"):
        score = record["scores"][name]
        assert score["protocol"] == "standard" and score["returns"]
        # every toy episode is cut at 400 frames; the HNS is Pong's arithmetic
        assert score["human_normalized"] == pytest.approx((score["return_mean"] + 20.7) / 35.3)
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    table = out.with_suffix(".md").read_text()
    assert "time to a mean return of 18" in table and "standard protocol" in table
