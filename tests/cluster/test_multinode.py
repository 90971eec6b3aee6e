"""Jobs on a real two-node Ray cluster through the API: placement on both nodes, losing the
worker node mid-job, and restarting the whole cluster mid-job.

Nodes: a head with 4 CPUs and a worker with 2 (tests/cluster/nodes.py). A job asks for 3
EnvRunners spread over the nodes (`resources.placement = SPREAD`): 4 one-CPU bundles (the trial's
main process and the EnvRunners), which the head alone could also hold, so a lost worker's
EnvRunners can be restarted on the head. Where each actor ran is read from Ray's state API.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from algorithms.common import metrics
from service.client import Client
from tests.cluster.nodes import HEAD_RESOURCE, WORKER_RESOURCE, LocalCluster
from tests.service.conftest import ALICE, Server, wait_for_condition

pytestmark = pytest.mark.cluster

ENV_RUNNER = "SingleAgentEnvRunner"
TRAINABLE = "QLearning"  # the Tune trial's actor: RLlib's Algorithm, the job's main process


def _spec(iterations: int, every: int, env_runners: int = 3) -> dict[str, Any]:
    return {
        "algorithm": "q_learning",
        "env": "rldojo/GridWorld-v0",
        "seed": 7,
        "stop": {"iterations": iterations},
        "config": {"episodes_per_iteration": 12},
        "resources": {"env_runners": env_runners, "placement": "SPREAD"},
        "checkpoint": {"every": every, "keep": 100},  # keep all: none may disappear
    }


def _roles(cluster: LocalCluster) -> dict[str, str]:
    """node id -> "head" | "worker", for every node the cluster has known (dead ones too)."""
    roles = {}
    for node in cluster.state("nodes"):
        resources = node.get("resources_total", {})
        if HEAD_RESOURCE in resources:
            roles[node["node_id"]] = "head"
        elif WORKER_RESOURCE in resources:
            roles[node["node_id"]] = "worker"
    return roles


def _actors(cluster: LocalCluster, submission_id: str) -> list[dict[str, Any]]:
    """The job's actors (EnvRunners, the trial) with the role of the node each is on."""
    details = httpx.get(
        f"{cluster.dashboard}/api/jobs/{submission_id}", headers=cluster.headers, timeout=30
    ).json()
    if not details.get("job_id"):
        return []  # the driver has not started yet
    roles = _roles(cluster)
    found = cluster.state("actors", job_id=details["job_id"])
    for actor in found:
        actor["role"] = roles.get(actor["node_id"], "?")
    return [a for a in found if a["class_name"] in (ENV_RUNNER, TRAINABLE)]


def _running_on_both(cluster: LocalCluster, submission_id: str) -> list[dict[str, Any]] | None:
    actors = [a for a in _actors(cluster, submission_id) if a["state"] == "ALIVE"]
    runners = {a["role"] for a in actors if a["class_name"] == ENV_RUNNER}
    return actors if len(actors) == 4 and runners == {"head", "worker"} else None


def _checkpoint_keys(client: Client, job_id: str) -> set[tuple[str, int | None]]:
    return {(c["id"], c["iteration"]) for c in client.checkpoints(job_id)}


def _snapshot(
    client: Client, job_id: str, margin_s: float = 0.0
) -> tuple[list[dict[str, Any]], set[Any]] | None:
    """Rows and checkpoints once the job is running and has trained `margin_s` past a checkpoint.

    Tune snapshots its experiment state about every second (training.py); a resumed trial
    restarts from the last checkpoint that snapshot knew of, so a margin lets it know one.
    """
    checkpoints = _checkpoint_keys(client, job_id)
    rows = client.metrics(job_id)
    if not checkpoints or not rows or client.job(job_id)["status"] != "RUNNING":
        return None
    first = min(iteration for _, iteration in checkpoints if iteration is not None)
    at_checkpoint = [r[metrics.TIME_TOTAL_S] for r in rows if r[metrics.ITERATION] == first]
    if not at_checkpoint or rows[-1][metrics.TIME_TOTAL_S] < at_checkpoint[0] + margin_s:
        return None
    return rows, checkpoints


def _assert_nothing_lost(
    client: Client, job_id: str, rows: list[dict[str, Any]], checkpoints: set[Any]
) -> list[int]:
    """Every row and checkpoint seen before the failure is still served; returns iterations."""
    after = client.metrics(job_id)
    seen = [(row[metrics.ITERATION], row.get("timestamp")) for row in rows]
    now = [(row[metrics.ITERATION], row.get("timestamp")) for row in after]
    assert now[: len(seen)] == seen, (seen, now)
    assert after[: len(rows)] == rows
    assert checkpoints <= _checkpoint_keys(client, job_id)
    return [row[metrics.ITERATION] for row in after]


def test_env_runners_on_both_nodes_train_and_the_checkpoint_is_served(
    api: Server, cluster: LocalCluster, tmp_path: Path
) -> None:
    if not cluster.workers:
        cluster.add_worker()
    with api.client(ALICE) as alice:
        nodes = alice.cluster()["nodes"]
        assert sorted(n["is_head"] for n in nodes if n["state"] == "ALIVE") == [False, True]

        job = alice.submit(_spec(iterations=8, every=4))
        final = alice.wait(job["id"], timeout=240)
        assert final["status"] == "SUCCEEDED", alice.logs(job["id"])[-3000:]

        actors = _actors(cluster, final["ray_job_id"])
        runners = [a for a in actors if a["class_name"] == ENV_RUNNER]
        assert len(runners) == 3
        assert {a["role"] for a in runners} == {"head", "worker"}

        iterations = [row[metrics.ITERATION] for row in alice.metrics(job["id"])]
        assert iterations == list(range(1, 9))
        assert [c["iteration"] for c in alice.checkpoints(job["id"])] == [4, 8]
        folder = alice.download(job["id"], "best", tmp_path)
        assert (folder / "algorithm_state.pkl").is_file()
        assert (folder / "learner_group" / "learner" / "rl_module").is_dir()


def test_losing_the_worker_node_mid_job(api: Server, cluster: LocalCluster) -> None:
    if not cluster.workers:
        cluster.add_worker()
    with api.client(ALICE) as alice:
        job = alice.submit(_spec(iterations=60, every=3))
        placed = wait_for_condition(lambda: _running_on_both(cluster, f"rldojo-{job['id']}-1"))
        rows, checkpoints = wait_for_condition(lambda: _snapshot(alice, job["id"]), timeout=180)
        on_worker = {a["actor_id"]: a["class_name"] for a in placed if a["role"] == "worker"}

        cluster.kill_worker(cluster.workers[0])

        final = alice.wait(job["id"], timeout=240)
        if TRAINABLE in on_worker.values():
            # The trial's own process died with the node: the job fails, resume completes it.
            assert final["status"] == "FAILED"
            alice.resume(job["id"])
            final = alice.wait(job["id"], timeout=240)
        assert final["status"] == "SUCCEEDED", alice.logs(job["id"])[-3000:]
        iterations = _assert_nothing_lost(alice, job["id"], rows, checkpoints)
        assert iterations[-1] == 60
        if TRAINABLE not in on_worker.values():
            # The same attempt went on: the EnvRunners lost with the node came back on the head.
            assert final["attempts"] == 1 and iterations == list(range(1, 61))
            after = {a["actor_id"]: a for a in _actors(cluster, final["ray_job_id"])}
            for actor_id in on_worker:
                assert (
                    after[actor_id]["role"] == "head" and int(after[actor_id]["num_restarts"]) >= 1
                )


def test_restarting_the_whole_cluster_mid_job(api: Server, cluster: LocalCluster) -> None:
    with api.client(ALICE) as alice:
        # The trial samples in its own process (no EnvRunners): the fastest job to start twice.
        job = alice.submit(_spec(iterations=150, every=5, env_runners=0))
        rows, checkpoints = wait_for_condition(
            lambda: _snapshot(alice, job["id"], 2.0), timeout=180
        )

        cluster.kill_all()
        cluster.start_head()  # same ports and token: the API's RLDOJO_RAY_ADDRESS still holds

        lost = wait_for_condition(lambda: alice.job(job["id"])["status"] == "LOST", timeout=60)
        assert lost
        resumed = alice.resume(job["id"])
        assert resumed["attempts"] == 2 and resumed["status"] in ("PENDING", "RUNNING")
        final = alice.wait(job["id"], timeout=240)
        assert final["status"] == "SUCCEEDED", alice.logs(job["id"])[-3000:]

        iterations = _assert_nothing_lost(alice, job["id"], rows, checkpoints)
        assert iterations[-1] == 150
        # Exactly one restore, and the resumed trial went on from a kept checkpoint.
        rows_after = alice.metrics(job["id"])
        restores = [i for i, row in enumerate(rows_after) if row["iterations_since_restore"] == 1]
        trace = [
            (r[metrics.ITERATION], r["iterations_since_restore"], r["pid"]) for r in rows_after
        ]
        assert len(restores) == 2, trace
        restored = restores[1]
        resumed_from = iterations[restored] - 1
        assert resumed_from in {iteration for _, iteration in _checkpoint_keys(alice, job["id"])}
        assert iterations[:restored] == list(range(1, restored + 1))
        assert iterations[restored:] == list(range(resumed_from + 1, 151))
