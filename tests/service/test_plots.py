"""Learning-curve plots: the drawing function on hand-made rows, `rldojo plot` on a finished job
(through the real server) and on its results directory, and `GET /v1/jobs/{id}/curve.png`.

The CLI runs in-process (typer's runner: the same command, without a second interpreter start).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import httpx
import matplotlib.image
from typer.testing import CliRunner

from algorithms.common import metrics
from service import plots
from service.cli import app
from service.client import Client
from tests.service.conftest import ALICE, BOB, Server

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _row(trial: str, steps: float, value: float | None) -> dict[str, object]:
    return {"trial_id": trial, metrics.ENV_STEPS: steps, metrics.EPISODE_RETURN_MEAN: value}


def test_curves_group_trials_skip_gaps_and_smooth(tmp_path: Path) -> None:
    rows = [
        _row("a", 10, math.nan),  # no episode finished yet: not a point
        _row("a", 20, 0.0),
        _row("b", 20, 5.0),
        _row("a", 30, 3.0),
        _row("a", 40, 6.0),
        _row("b", 40, None),
    ]
    drawn = plots.learning_curve(rows, tmp_path / "c.png", window=2)
    assert [c.trial_id for c in drawn] == ["a", "b"]
    assert drawn[0].x == [20.0, 30.0, 40.0] and drawn[0].y == [0.0, 3.0, 6.0]
    assert drawn[0].smoothed == [0.0, 1.5, 4.5]  # trailing mean of 2
    assert drawn[1].x == [20.0] and drawn[1].y == [5.0]
    assert (tmp_path / "c.png").read_bytes().startswith(PNG_MAGIC)


def test_a_curve_needs_points(tmp_path: Path) -> None:
    try:
        plots.learning_curve([_row("a", 10, None)], tmp_path / "c.png")
    except ValueError as error:
        assert metrics.EPISODE_RETURN_MEAN in str(error)
    else:
        raise AssertionError("no points must be refused")
    assert not (tmp_path / "c.png").exists()


def test_plot_a_finished_job_and_its_curve_route(
    server: Server, alice: Client, tmp_path: Path
) -> None:
    job = alice.submit(
        {
            "algorithm": "q_learning",
            "env": "rldojo/GridWorld-v0",
            "seed": 1,
            "stop": {"iterations": 8},
        }
    )
    done = alice.wait(job["id"], timeout=180)
    assert done["status"] == "SUCCEEDED", done["message"]
    rows = alice.metrics(job["id"])

    out = tmp_path / "curve.png"
    runner = CliRunner()
    printed = runner.invoke(
        app,
        ["plot", job["id"], "--out", str(out), "--json", "--url", server.url, "--token", ALICE],
    )
    assert printed.exit_code == 0, printed.output
    (curve,) = json.loads(printed.stdout)["curves"]
    # It drew the job's own rows: every iteration, against env steps.
    assert curve["y"] == [row[metrics.EPISODE_RETURN_MEAN] for row in rows]
    assert curve["x"] == [row[metrics.ENV_STEPS] for row in rows] and len(curve["x"]) == 8
    # ...and the curve rises: Q-learning solves the grid within a few iterations.
    assert curve["smoothed"][-1] > curve["smoothed"][0] + 50
    assert max(curve["y"]) == 100.0 > curve["y"][0]
    image = matplotlib.image.imread(out)
    assert image.shape[:2] == (450, 800)

    # The same picture from the API, for the owner only.
    url = f"{server.url}/v1/jobs/{job['id']}/curve.png"
    answer = httpx.get(url, headers={"Authorization": f"Bearer {ALICE}"}, timeout=60)
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    assert answer.content.startswith(PNG_MAGIC) and len(answer.content) > 10_000
    other = httpx.get(url, headers={"Authorization": f"Bearer {BOB}"}, timeout=60)
    assert other.status_code == 404
    missing = httpx.get(
        url, params={"metric": "no/such"}, headers={"Authorization": f"Bearer {ALICE}"}
    )
    assert missing.status_code == 404 and "no/such" in missing.json()["detail"]

    # A results directory is read locally: the job's files give the same curve.
    local = runner.invoke(
        app, ["plot", done["storage_uri"], "--out", str(tmp_path / "local.png"), "--json"]
    )
    assert local.exit_code == 0, local.output
    assert json.loads(local.stdout)["curves"][0]["y"] == curve["y"]


def test_plot_refuses_bad_sources_in_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["plot", str(tmp_path / "nope"), "--out", "x.png"])
    assert missing.exit_code == 2 and "no such results directory" in missing.stderr
    empty = runner.invoke(app, ["plot", str(tmp_path), "--out", str(tmp_path / "x.png")])
    assert empty.exit_code == 1 and "no result row" in empty.stderr
    assert "Traceback" not in missing.output + empty.output
