"""docker-compose.yml on a real Docker engine, driven through the API's published port.

One stack (ray-head, two ray-workers, the API, PostgreSQL; tests/compose/conftest.py) runs the
scenarios in file order, each leaving it healthy for the next:

1. a job's EnvRunners run on the worker containers (Ray's state API says where); its metrics are
   followed, its best checkpoint pulled and evaluated through the API;
2. no token, a wrong token and another owner's token are refused at the published port;
3. a worker container killed mid-job (`docker kill`): the job completes, no row or checkpoint lost;
4. the API container restarted mid-job: the job keeps running and the new API process follows it;
5. `--scale ray-worker=3`: the third node appears in GET /v1/cluster and takes work;
6. `docker-compose down` (volumes kept), then `up`: every job, row, checkpoint and evaluation is
   still there, and the job the `down` interrupted is LOST until resume finishes it.

The head offers Ray no CPUs (the compose default), so every trial and EnvRunner runs on a worker.
A job's bundles (the trial's main process, its EnvRunners) are SPREAD over the workers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from algorithms.common import metrics
from service.client import APIError, Client
from tests.cluster.checks import (
    ENV_RUNNER,
    TRAINABLE,
    assert_nothing_lost,
    checkpoint_keys,
    grid_spec,
    resume_lost_job_to_the_end,
    snapshot,
)
from tests.compose.conftest import TIMINGS, WORKERS
from tests.compose.stack import ComposeStack
from tests.service.conftest import wait_for_condition

# The first test also builds the images and starts the stack (session fixtures): minutes.
pytestmark = [pytest.mark.compose, pytest.mark.timeout(2400)]


def _iterations(rows: list[dict[str, Any]]) -> list[int]:
    return [row[metrics.ITERATION] for row in rows]


def _workers_alive(client: Client) -> set[str]:
    """Node ids of the alive worker nodes, as GET /v1/cluster lists them."""
    nodes = client.cluster()["nodes"]
    return {n["id"] for n in nodes if n["state"] == "ALIVE" and not n["is_head"]}


def _job_actors(stack: ComposeStack, submission_id: str) -> list[dict[str, Any]]:
    """The job's trial and EnvRunners, with the node each is (was) on."""
    actors = stack.job_actors(submission_id)
    return [a for a in actors if a["class_name"] in (ENV_RUNNER, TRAINABLE)]


def _placed(stack: ComposeStack, submission_id: str, actors: int) -> list[dict[str, Any]] | None:
    """The job's actors once all `actors` are alive, each on its own worker node."""
    alive = [a for a in _job_actors(stack, submission_id) if a["state"] == "ALIVE"]
    nodes = {a["node_id"] for a in alive if not a["is_head"]}
    return alive if len(alive) == actors == len(nodes) else None


def _back_to(stack: ComposeStack, client: Client, workers: int) -> None:
    stack.up(workers=workers)
    stack.wait_healthy()
    wait_for_condition(lambda: len(_workers_alive(client)) == workers, timeout=180)


# Prints [status, iterations logged] of each MLflow run of the job (argv[1]) in compose's store.
READ_MLFLOW_RUNS = """
import json, sys
from mlflow import MlflowClient
client = MlflowClient("sqlite:////storage/mlflow.db")
experiment = client.get_experiment_by_name("rldojo").experiment_id
runs = client.search_runs([experiment], f"tags.`rldojo.job_id` = '{sys.argv[1]}'")
history = lambda run: client.get_metric_history(run.info.run_id, "training_iteration")
print(json.dumps([[run.info.status, len(history(run))] for run in runs]))
"""


@dataclass
class FirstJob:
    """A user's first job: submitted, followed, its best checkpoint pulled and evaluated."""

    job: dict[str, Any]
    streamed: list[dict[str, Any]]
    actors: list[dict[str, Any]]
    checkpoint: Path
    evaluation: dict[str, Any]


@pytest.fixture(scope="module")
def first_job(stack: ComposeStack, tmp_path_factory: pytest.TempPathFactory) -> FirstJob:
    with TIMINGS.measure("scenario: job on the workers, followed, pulled, evaluated"):
        with stack.client("alice") as alice:
            spec = {
                **grid_spec(iterations=12, every=4, env_runners=3),
                "tracking": {"mlflow": True},
            }
            job = alice.submit(spec)
            streamed = list(alice.follow_metrics(job["id"]))  # until the job ends
            final = alice.job(job["id"])
            actors = _job_actors(stack, final["ray_job_id"])
            pulled = alice.download(job["id"], "best", tmp_path_factory.mktemp("pulled"))
            started = alice.evaluate(job["id"], "best", episodes=5, seed=3)
            evaluation = alice.wait_evaluation(started["id"], timeout=300)
    return FirstJob(final, streamed, actors, pulled, evaluation)


def test_a_job_runs_on_the_worker_containers_and_its_checkpoint_evaluates(
    stack: ComposeStack, first_job: FirstJob
) -> None:
    job = first_job.job
    with stack.client("alice") as alice:
        assert job["status"] == "SUCCEEDED", alice.logs(job["id"])[-3000:]
        assert _iterations(first_job.streamed) == list(range(1, 13))
        assert first_job.streamed == alice.metrics(job["id"])
        assert [c["iteration"] for c in alice.checkpoints(job["id"])] == [4, 8, 12]

    # Ray's state API: the trial and the three EnvRunners filled the two workers' 4 CPUs, so
    # the EnvRunners ran in both worker containers.
    runners = [a for a in first_job.actors if a["class_name"] == ENV_RUNNER]
    assert len(runners) == 3 and len(first_job.actors) == 4
    containers = {stack.container_at(a["node_ip"]) for a in runners}
    assert None not in containers and len(containers) == 2
    workers = set(stack.containers("ray-worker"))
    assert containers <= workers and len(workers) == WORKERS
    assert not any(a["is_head"] for a in first_job.actors)

    assert (first_job.checkpoint / "algorithm_state.pkl").is_file()
    evaluation = first_job.evaluation
    assert evaluation["status"] == "SUCCEEDED", evaluation["message"]
    assert len(evaluation["returns"]) == 5
    assert evaluation["return_mean"] == 100.0  # the greedy policy takes the 6-step safe path


def test_the_first_jobs_trial_is_an_mlflow_run_in_the_stacks_store(
    stack: ComposeStack, first_job: FirstJob
) -> None:
    # Read where the service keeps it (compose's default store: SQLite on the shared volume).
    printed = stack.compose(
        "exec", "-T", "api", "python", "-c", READ_MLFLOW_RUNS, first_job.job["id"]
    )  # fmt: skip
    assert json.loads(printed.strip().splitlines()[-1]) == [["FINISHED", 12]]


def test_tokens_are_checked_at_the_published_port(
    stack: ComposeStack, first_job: FirstJob, timed: None
) -> None:
    job_id, evaluation_id = first_job.job["id"], first_job.evaluation["id"]
    refused_headers = [
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": f"Bearer {stack.tokens['alice']}0"},
        {"Authorization": stack.tokens["alice"]},  # no "Bearer"
    ]
    for headers in refused_headers:
        with httpx.Client(base_url=stack.api_url, headers=headers, timeout=30) as http:
            assert http.get("/v1/jobs").status_code == 401
            assert http.get(f"/v1/jobs/{job_id}").status_code == 401
            assert http.get(f"/v1/jobs/{job_id}/checkpoints/best/archive").status_code == 401
            assert http.post("/v1/jobs", json=grid_spec(iterations=1, every=1)).status_code == 401
            assert http.get("/v1/cluster").status_code == 401

    # Another owner's token: alice's job and evaluation do not exist for bob.
    with stack.client("bob") as bob:
        assert bob.jobs() == []
        calls = [
            lambda: bob.job(job_id),
            lambda: bob.metrics(job_id),
            lambda: bob.checkpoints(job_id),
            lambda: bob.evaluation(evaluation_id),
            lambda: bob.evaluate(job_id, "best", episodes=1),
            lambda: bob.resume(job_id),
            lambda: bob.delete(job_id),
        ]
        for call in calls:
            with pytest.raises(APIError) as refused:
                call()
            assert refused.value.status == 404
    with stack.client("alice") as alice:
        assert alice.job(job_id)["status"] == "SUCCEEDED"  # untouched by bob's attempts

    # The Ray dashboard, published on loopback, wants the cluster's token too.
    assert httpx.get(f"{stack.dashboard}/api/jobs/", timeout=30).status_code == 401


def test_a_worker_container_killed_mid_job(stack: ComposeStack, timed: None) -> None:
    with stack.client("alice") as alice:
        job = alice.submit(grid_spec(iterations=300, every=5, env_runners=1))
        submission = f"rldojo-{job['id']}-1"
        placed = wait_for_condition(lambda: _placed(stack, submission, 2), timeout=180)
        rows, checkpoints = wait_for_condition(lambda: snapshot(alice, job["id"]), timeout=180)
        [runner] = [a for a in placed if a["class_name"] == ENV_RUNNER]
        [trial] = [a for a in placed if a["class_name"] == TRAINABLE]
        victim = stack.container_at(runner["node_ip"])
        survivor = stack.container_at(trial["node_ip"])
        assert victim and survivor and victim != survivor
        assert {stack.service_of(victim), stack.service_of(survivor)} == {"ray-worker"}

        stack.kill(victim)  # the EnvRunner's container; the trial's own keeps running
        assert alice.job(job["id"])["status"] == "RUNNING"
        wait_for_condition(lambda: stack.nodes()[runner["node_id"]]["state"] == "DEAD")

        final = alice.wait(job["id"], timeout=600)
        assert final["status"] == "SUCCEEDED", alice.logs(job["id"])[-3000:]
        assert final["attempts"] == 1
        iterations = assert_nothing_lost(alice, job["id"], rows, checkpoints)
        assert iterations == list(range(1, 301)) and len(rows) < 300
        # RLlib restarted the lost EnvRunner on the worker left (the one with a free CPU).
        restarted = {a["actor_id"]: a for a in _job_actors(stack, submission)}[runner["actor_id"]]
        assert int(restarted["num_restarts"]) >= 1
        assert restarted["node_id"] == trial["node_id"]

        _back_to(stack, alice, WORKERS)


def test_the_api_container_restarted_mid_job(stack: ComposeStack, timed: None) -> None:
    with stack.client("alice") as alice:
        job = alice.submit(grid_spec(iterations=400, every=10, env_runners=1))
        rows, checkpoints = wait_for_condition(lambda: snapshot(alice, job["id"]), timeout=180)
    [api] = stack.containers("api")
    started = stack.inspect(api, "{{.State.StartedAt}}")

    stack.restart("api")
    wait_for_condition(stack.api_healthy, timeout=120)
    assert stack.inspect(api, "{{.State.StartedAt}}") != started  # the same container, anew

    with stack.client("alice") as alice:  # new connections to the new process
        picked_up = alice.job(job["id"])
        assert picked_up["status"] == "RUNNING", picked_up
        assert picked_up["attempts"] == 1 and picked_up["ray_job_id"] == f"rldojo-{job['id']}-1"
        streamed = list(alice.follow_metrics(job["id"]))  # the new API follows it to the end
        final = alice.job(job["id"])
        assert final["status"] == "SUCCEEDED", alice.logs(job["id"])[-3000:]
        assert final["attempts"] == 1
        assert _iterations(streamed) == list(range(1, 401))
        assert_nothing_lost(alice, job["id"], rows, checkpoints)
    stack.wait_healthy()


def test_scaling_out_to_a_third_worker(stack: ComposeStack, timed: None) -> None:
    with stack.client("alice") as alice:
        before = _workers_alive(alice)
        assert len(before) == WORKERS

        stack.up(workers=3)
        [third] = wait_for_condition(lambda: _workers_alive(alice) - before, timeout=180)
        stack.wait_healthy()
        assert len(stack.containers("ray-worker")) == 3
        assert alice.cluster()["resources"]["CPU"] == 6.0  # three workers of 2 CPUs

        # Three bundles (the trial, two EnvRunners) SPREAD over three workers: one on each.
        job = alice.submit(grid_spec(iterations=8, every=4, env_runners=2))
        final = alice.wait(job["id"], timeout=300)
        assert final["status"] == "SUCCEEDED", alice.logs(job["id"])[-3000:]
        actors = _job_actors(stack, final["ray_job_id"])
        assert len(actors) == 3 and len({a["node_id"] for a in actors}) == 3
        assert third in {a["node_id"] for a in actors}


def test_down_and_up_keeps_every_record_and_resume_finishes_the_lost_job(
    stack: ComposeStack, first_job: FirstJob, tmp_path: Path, timed: None
) -> None:
    with stack.client("alice") as alice:
        finished = {job["id"]: job for job in alice.jobs()}
        kept = {i: (alice.metrics(i), checkpoint_keys(alice, i)) for i in finished}
        evaluation = alice.evaluation(first_job.evaluation["id"])
        # The trial samples in its own process (no EnvRunners): the fastest job to start twice.
        job = alice.submit(grid_spec(iterations=400, every=10, env_runners=0))
        rows, checkpoints = wait_for_condition(lambda: snapshot(alice, job["id"], 2.0), timeout=180)
    volumes = stack.volumes()

    with TIMINGS.measure("docker-compose down (volumes kept)"):
        stack.down()
    assert stack.containers(stopped=True) == [] and stack.volumes() == volumes
    with TIMINGS.measure("docker-compose up, every health check passing"):
        stack.up(workers=WORKERS)
        stack.wait_healthy()

    with stack.client("alice") as alice:
        now = {j["id"]: j for j in alice.jobs() if j["id"] in finished}
        assert now == finished
        for job_id, (rows_then, checkpoints_then) in kept.items():
            assert alice.metrics(job_id) == rows_then
            assert checkpoint_keys(alice, job_id) == checkpoints_then
        assert alice.evaluation(evaluation["id"]) == evaluation
        pulled = alice.download(first_job.job["id"], "best", tmp_path)
        assert (pulled / "algorithm_state.pkl").read_bytes() == (
            first_job.checkpoint / "algorithm_state.pkl"
        ).read_bytes()

        # The new head never heard of the interrupted job's Ray job: LOST, then resumed.
        resume_lost_job_to_the_end(alice, job["id"], rows, checkpoints, last=400)
