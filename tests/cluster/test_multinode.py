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
from tests.cluster.checks import (
    ENV_RUNNER,
    TRAINABLE,
    assert_nothing_lost,
    grid_spec,
    resume_lost_job_to_the_end,
    snapshot,
)
from tests.cluster.nodes import HEAD_RESOURCE, WORKER_RESOURCE, LocalCluster
from tests.service.conftest import ALICE, Server, wait_for_condition

pytestmark = pytest.mark.cluster


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


def test_env_runners_on_both_nodes_train_and_the_checkpoint_is_served(
    api: Server, cluster: LocalCluster, tmp_path: Path
) -> None:
    if not cluster.workers:
        cluster.add_worker()
    with api.client(ALICE) as alice:
        nodes = alice.cluster()["nodes"]
        assert sorted(n["is_head"] for n in nodes if n["state"] == "ALIVE") == [False, True]

        job = alice.submit(grid_spec(iterations=8, every=4))
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
        job = alice.submit(grid_spec(iterations=60, every=3))
        placed = wait_for_condition(lambda: _running_on_both(cluster, f"rldojo-{job['id']}-1"))
        rows, checkpoints = wait_for_condition(lambda: snapshot(alice, job["id"]), timeout=180)
        on_worker = {a["actor_id"]: a["class_name"] for a in placed if a["role"] == "worker"}

        cluster.kill_worker(cluster.workers[0])

        final = alice.wait(job["id"], timeout=240)
        if TRAINABLE in on_worker.values():
            # The trial's own process died with the node: the job fails, resume completes it.
            assert final["status"] == "FAILED"
            alice.resume(job["id"])
            final = alice.wait(job["id"], timeout=240)
        assert final["status"] == "SUCCEEDED", alice.logs(job["id"])[-3000:]
        iterations = assert_nothing_lost(alice, job["id"], rows, checkpoints)
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
        job = alice.submit(grid_spec(iterations=150, every=5, env_runners=0))
        rows, checkpoints = wait_for_condition(lambda: snapshot(alice, job["id"], 2.0), timeout=180)

        cluster.kill_all()
        cluster.start_head()  # same ports and token: the API's RLDOJO_RAY_ADDRESS still holds

        resume_lost_job_to_the_end(alice, job["id"], rows, checkpoints, last=150, timeout=240)
