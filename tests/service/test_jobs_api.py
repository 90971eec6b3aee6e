"""The job life cycle through the real server and a real Ray: train, follow, pull, evaluate,
stop/resume, and an API restart while a job runs."""

from __future__ import annotations

import json
import math
import subprocess
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from algorithms.common import metrics
from service import cluster, compiler
from service import spec as spec_rules
from service.api.routes import jobs as routes_jobs
from service.client import Client
from service.main import create_app
from service.settings import Settings
from service.spec_model import JobSpec
from service.storage import Storage
from tests.service.conftest import ALICE, RLDOJO, Server, wait_for_condition

GRID = "rldojo/GridWorld-v0"


def _spec(iterations: int, **extra: object) -> dict[str, object]:
    return {"algorithm": "q_learning", "env": GRID, "stop": {"iterations": iterations}, **extra}


def test_train_follow_pull_and_evaluate(server: Server, alice: Client, tmp_path: Path) -> None:
    job = alice.submit(JobSpec.model_validate(_spec(15, seed=1)))  # the SDK takes the schema
    assert job["status"] in ("PENDING", "RUNNING") and job["id"]

    rows = list(alice.follow_metrics(job["id"]))  # ends when the job ends
    assert [row[metrics.ITERATION] for row in rows] == list(range(1, 16))
    final = alice.job(job["id"])
    assert final["status"] == "SUCCEEDED"
    assert final["latest_metrics"][metrics.ITERATION] == 15
    scored = [
        row for row in rows if math.isfinite(row.get(metrics.EPISODE_RETURN_MEAN) or math.nan)
    ]
    peak = max(scored, key=lambda row: row[metrics.EPISODE_RETURN_MEAN])  # the first to reach it
    assert final["best_trial"].model_dump() == {
        "trial_id": peak["trial_id"],
        "return_mean": peak[metrics.EPISODE_RETURN_MEAN],
        "iteration": peak[metrics.ITERATION],
    }
    assert final["checkpoints"] == 2  # every 10 iterations and at the end

    listed = alice.checkpoints(job["id"])
    assert [c["iteration"] for c in listed] == [10, 15]
    by_iteration = {row[metrics.ITERATION]: row for row in rows}
    assert [c["return_mean"] for c in listed] == [
        by_iteration[10][metrics.EPISODE_RETURN_MEAN],
        by_iteration[15][metrics.EPISODE_RETURN_MEAN],
    ]
    assert all(c["id"] and c["env_steps"] > 0 for c in listed)

    # the same list over raw HTTP, and a list endpoint is a JSON array
    raw = httpx.get(
        f"{server.url}/v1/jobs/{job['id']}/checkpoints",
        headers={"Authorization": f"Bearer {ALICE}"},
    )
    assert raw.status_code == 200 and raw.json() == [c.model_dump(mode="json") for c in listed]

    best = max(listed, key=lambda c: (c["return_mean"], c["iteration"]))  # latest on ties
    folder = alice.download(job["id"], "best", tmp_path / "pulled")
    assert folder.name == f"checkpoint_{best['id'].rsplit('-', 1)[1]}"
    assert (folder / "algorithm_state.pkl").is_file()
    assert not (folder / "env_runner").exists()  # weights only: what a resume alone reads stays
    whole = alice.pull(job["id"], "best", tmp_path / "whole", with_replay=True)
    assert (whole.folder / "env_runner").is_dir() and (
        whole.folder / "algorithm_state.pkl"
    ).is_file()

    started = alice.evaluate(job["id"], "best", episodes=5, seed=3, video=True)
    assert started["status"] == "PENDING" and started["checkpoint_id"] == best["id"]
    done = alice.wait_evaluation(started["id"], timeout=180)
    assert done["status"] == "SUCCEEDED", done["message"]
    assert done["return_mean"] == 100.0 and done["returns"] == [100.0] * 5
    video = alice.video(done["id"], tmp_path / "eval.mp4")
    assert video.stat().st_size > 1000

    local = subprocess.run(
        [RLDOJO, "evaluate", str(folder), "--episodes", "3", "--json"],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    assert json.loads(local.stdout)["return_mean"] == 100.0

    logs = alice.logs(job["id"])
    assert "iter 15" in logs


def test_stop_then_resume_continues_iterations(alice: Client) -> None:
    spec = _spec(100_000, checkpoint={"every": 20, "keep": 2})
    job = alice.submit(spec)
    wait_for_condition(lambda: len(alice.checkpoints(job["id"])) >= 1, timeout=180)
    stopped = alice.stop(job["id"], wait_s=60)
    assert stopped["status"] == "STOPPED"
    saved = {c["iteration"] for c in alice.checkpoints(job["id"])}

    def resumed_rows() -> list[int] | None:
        rows = alice.metrics(job["id"])
        # One row per iteration: the second attempt's rows continue the first's.
        assert [row[metrics.ITERATION] for row in rows] == list(range(1, len(rows) + 1))
        iterations = [row[metrics.ITERATION] for row in rows if row["attempt"] == 2]
        return iterations if len(iterations) >= 5 else None

    resumed = alice.resume(job["id"])
    assert resumed["attempts"] == 2 and resumed["status"] in ("PENDING", "RUNNING")
    after = wait_for_condition(resumed_rows, timeout=180)
    # the restored trial continues after a kept checkpoint's iteration, not at 1
    saved |= {c["iteration"] for c in alice.checkpoints(job["id"])}
    assert after[0] - 1 in saved and after[0] > 1
    assert after == list(range(after[0], after[0] + len(after)))
    assert alice.stop(job["id"], wait_s=60)["status"] == "STOPPED"
    assert "iter" in alice.logs(job["id"])  # both attempts' logs are kept


def test_api_restart_while_a_job_runs(server: Server, alice: Client) -> None:
    job = alice.submit(_spec(100_000, checkpoint={"every": 50, "keep": 1}))
    wait_for_condition(lambda: alice.job(job["id"])["status"] == "RUNNING", timeout=180)
    rows_before = len(alice.metrics(job["id"]))

    server.restart()

    with server.client(ALICE) as again:
        record = again.job(job["id"])
        assert record["status"] == "RUNNING"  # the Ray job outlived the API
        assert record["spec"]["stop"]["iterations"] == 100_000  # the record survived
        wait_for_condition(lambda: len(again.metrics(job["id"])) > rows_before + 5)
        assert again.stop(job["id"], wait_s=60)["status"] == "STOPPED"
        assert [j["id"] for j in again.jobs("STOPPED")].count(job["id"]) == 1


def test_a_spec_is_parsed_once_and_compiled_once_at_submit(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real app in this process (so its calls can be counted), on the server's Ray head.
    head = cluster.read_embedded_head(Settings(data_dir=server.data_dir))
    assert head is not None
    settings = Settings(
        data_dir=tmp_path / "api",
        ray_address=head["address"],
        ray_auth_token=Path(head["token_path"]).read_text().strip(),
        api_tokens={"dave-token-0123456789": "dave"},
        poll_seconds=0.5,
    )
    calls: Counter[str] = Counter()
    _count(monkeypatch, calls, "parse_spec", spec_rules, routes_jobs)
    _count(monkeypatch, calls, "compile_job", compiler)
    _count(monkeypatch, calls, "build_config", compiler)

    auth = {"Authorization": "Bearer dave-token-0123456789"}
    with TestClient(create_app(settings), headers=auth) as api:
        submitted = api.post("/v1/jobs", json=_spec(3, seed=2))
        assert submitted.status_code == 201, submitted.text
        assert calls == {"parse_spec": 1, "compile_job": 1, "build_config": 1}
        job_id = submitted.json()["id"]

        def ended() -> dict[str, Any] | None:
            job: dict[str, Any] = api.get(f"/v1/jobs/{job_id}").json()
            return job if job["status"] in ("SUCCEEDED", "FAILED", "STOPPED", "LOST") else None

        job = wait_for_condition(ended, timeout=300)
    assert job["status"] == "SUCCEEDED", job["message"]
    assert job["latest_metrics"][metrics.ITERATION] == 3
    assert calls == {"parse_spec": 1, "compile_job": 1, "build_config": 1}  # nothing re-did it
    directory = Storage(str(settings.storage_root)).job(job_id)
    stored = directory.read_compiled()
    assert stored is not None and not directory.exists("config.json")
    assert stored["stop"] == {metrics.ITERATION: 3} and stored["spec"]["seed"] == 2
    assert job["resolved_config"] == {**stored["config"], "preset": stored["preset"]}


def _count(
    monkeypatch: pytest.MonkeyPatch, calls: Counter[str], name: str, *modules: ModuleType
) -> None:
    """Count the calls of function `name`, however the modules that call it imported it."""
    original = getattr(modules[0], name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[name] += 1
        return original(*args, **kwargs)

    for module in modules:
        monkeypatch.setattr(module, name, counted)


def test_reads_show_a_write_at_once_though_answers_are_shared(alice: Client) -> None:
    """GET /v1/jobs and /v1/jobs/{id} answer from a cache shared by pollers (issue 26's read
    load); a write in the API drops it, so the very next read shows the change."""
    job = alice.submit(_spec(2))
    for round_ in range(3):
        alice.job(job.id)  # cached now
        alice.jobs()
        name = f"renamed-{round_}"
        alice.update(job.id, name=name)
        assert alice.job(job.id).name == name
        assert [j.name for j in alice.jobs() if j.id == job.id] == [name]
    wait_for_condition(lambda: alice.job(job.id).status.value == "SUCCEEDED", timeout=120)
