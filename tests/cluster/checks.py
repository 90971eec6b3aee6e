"""What the multi-node tests (tests/cluster, tests/compose) check of a job across failures.

A snapshot of a running job's rows and checkpoints is taken before a failure is caused, and
after it every row and checkpoint of that snapshot must still be served, in the same order.
"""

from __future__ import annotations

import time
from typing import Any

from algorithms.common import metrics
from service.client import Client

ENV_RUNNER = "SingleAgentEnvRunner"
TRAINABLE = "QLearning"  # the Tune trial's actor: RLlib's Algorithm, the job's main process


def grid_spec(iterations: int, every: int, env_runners: int = 3, seed: int = 7) -> dict[str, Any]:
    """Q-learning on the grid world, its EnvRunners spread over the nodes, every checkpoint kept."""
    return {
        "algorithm": "q_learning",
        "env": "rldojo/GridWorld-v0",
        "seed": seed,
        "stop": {"iterations": iterations},
        "config": {"episodes_per_iteration": 12},
        "resources": {"env_runners": env_runners, "placement": "SPREAD"},
        "checkpoint": {"every": every, "keep": 100},  # keep all: none may disappear
    }


def checkpoint_keys(client: Client, job_id: str) -> set[tuple[str, int | None]]:
    return {(c["id"], c["iteration"]) for c in client.checkpoints(job_id)}


def snapshot(
    client: Client, job_id: str, margin_s: float = 0.0
) -> tuple[list[dict[str, Any]], set[Any]] | None:
    """Rows and checkpoints once the job is running and has trained `margin_s` past a checkpoint.

    Tune snapshots its experiment state about every second (service/driver/run.py); a resumed trial
    restarts from the last checkpoint that snapshot knew of, so a margin lets it know one. A
    checkpoint listed while Tune writes it has no iteration yet; the snapshot waits for it.
    """
    checkpoints = checkpoint_keys(client, job_id)
    rows = client.metrics(job_id)
    if not checkpoints or not rows or client.job(job_id)["status"] != "RUNNING":
        return None
    if any(iteration is None for _, iteration in checkpoints):
        return None  # one is being written: its iteration is not readable yet
    first = min(iteration for _, iteration in checkpoints if iteration is not None)
    at_checkpoint = [r[metrics.TIME_TOTAL_S] for r in rows if r[metrics.ITERATION] == first]
    if not at_checkpoint or rows[-1][metrics.TIME_TOTAL_S] < at_checkpoint[0] + margin_s:
        return None
    return rows, checkpoints


def assert_nothing_lost(
    client: Client, job_id: str, rows: list[dict[str, Any]], checkpoints: set[Any]
) -> list[int]:
    """Every row and checkpoint seen before the failure is still served; returns iterations."""
    after = client.metrics(job_id)
    seen = [(row[metrics.ITERATION], row.get("timestamp")) for row in rows]
    now = [(row[metrics.ITERATION], row.get("timestamp")) for row in after]
    assert now[: len(seen)] == seen, (seen, now)
    assert after[: len(rows)] == rows
    kept = checkpoint_keys(client, job_id)
    assert checkpoints <= kept, (sorted(checkpoints - kept), sorted(kept))
    return [row[metrics.ITERATION] for row in after]


def resumed_once_from_a_checkpoint(client: Client, job_id: str, last: int) -> int:
    """The job's rows are one per iteration up to `last`: attempt 1's, then attempt 2's from
    just after a kept checkpoint. Returns that checkpoint's iteration."""
    rows = client.metrics(job_id)
    iterations = [row[metrics.ITERATION] for row in rows]
    attempts = [row["attempt"] for row in rows]
    assert iterations == list(range(1, last + 1)), iterations
    assert 2 in attempts, attempts
    restored = attempts.index(2)
    assert set(attempts[:restored]) == {1} and set(attempts[restored:]) == {2}, attempts
    resumed_from = iterations[restored] - 1
    assert resumed_from in {iteration for _, iteration in checkpoint_keys(client, job_id)}
    return resumed_from


def resume_lost_job_to_the_end(
    client: Client,
    job_id: str,
    rows: list[dict[str, Any]],
    checkpoints: set[Any],
    last: int,
    timeout: float = 600.0,
) -> None:
    """A job whose cluster went away is LOST; resume finishes it from a checkpoint it kept.

    The rows seen before the loss stay served up to where the second attempt took over (it
    replaces, in what the user sees, the iterations it went over again; its own rows continue
    from there), and no checkpoint of the snapshot is lost.
    """
    deadline = time.monotonic() + 60
    while client.job(job_id)["status"] != "LOST":
        assert time.monotonic() < deadline, client.job(job_id)
        time.sleep(0.5)
    resumed = client.resume(job_id)
    assert resumed["status"] in ("QUEUED", "PENDING", "RUNNING")
    final = client.wait(job_id, timeout=timeout)
    assert final["status"] == "SUCCEEDED", client.logs(job_id)[-3000:]
    assert final["attempts"] == 2
    resumed_from = resumed_once_from_a_checkpoint(client, job_id, last=last)
    before = [row for row in rows if row[metrics.ITERATION] <= resumed_from]
    assert client.metrics(job_id)[: len(before)] == before
    assert checkpoints <= checkpoint_keys(client, job_id)
