"""Job isolation and the life cycle under concurrency, through the real server and a real Ray.

These submit dozens of jobs (minutes on 2 cores), so they run in `make test-lifecycle`, which CI
runs beside `make test`:

- jobs of two owners started in the same second never see one another's rows, trials, params,
  best trial or checkpoints (5 rounds of 10 jobs);
- a stop at 0, 0.2, 0.5, 1 and 2 s after submit (10 times each) reports STOPPED only once no
  process of the job runs, and nothing is written after it;
- a resume continues from the newest checkpoint on storage, and the rows a user sees are one
  per iteration after stop/resume twice and after the driver was killed;
- a high job preempts a low one, which queues again and resumes from its checkpoint;
- a stop or a preemption at every stage of a start (queued, claimed, driver starting, Tune
  starting, first iteration) resumes to SUCCEEDED with continuous rows;
- a driver killed with SIGKILL twenty times says so each time and resumes from its newest
  checkpoint.
"""

from __future__ import annotations

import json
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from algorithms.common import metrics
from service.client import Client
from service.schemas import JobOut
from tests.service.conftest import Server, wait_for_condition

pytestmark = pytest.mark.lifecycle


def _driver_processes(job_id: str) -> list[psutil.Process]:
    """The `python -m service.driver --job-dir .../<job_id>` process(es) of a job, here."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        command = " ".join(process.info["cmdline"] or [])
        if f"/jobs/{job_id} " in f"{command} " and "--job-dir" in command:
            found.append(process)
    return found


def _alive_actors(server: Server, job: JobOut) -> list[dict[str, Any]]:
    """Ray actors of the job's current Ray job that are still alive (Ray's state API)."""
    head = json.loads((server.data_dir / "ray" / "head.json").read_text())
    token = Path(head["token_path"]).read_text().strip()
    headers = {"Authorization": f"Bearer {token}"}
    info = httpx.get(f"{head['address']}/api/jobs/{job.ray_job_id}", headers=headers, timeout=30)
    ray_job_id = info.json().get("job_id") if info.status_code == 200 else None
    if not ray_job_id:
        return []  # the driver never connected to Ray, so it made no actors
    answer = httpx.get(
        f"{head['address']}/api/v0/actors",
        params={
            "filter_keys": "job_id",
            "filter_predicates": "=",
            "filter_values": ray_job_id,
            "limit": 1000,
        },
        headers=headers,
        timeout=30,
    )
    actors = answer.json()["data"]["result"]["result"]
    return [actor for actor in actors if actor["state"] != "DEAD"]


def test_jobs_of_two_owners_started_together_keep_to_themselves(
    server: Server, alice: Client, bob: Client
) -> None:
    for round_ in range(5):
        specs = []
        for index in range(10):
            seed = 1000 * round_ + index
            specs.append(
                {
                    "algorithm": "q_learning",
                    "env": "rldojo/GridWorld-v0",
                    "seed": seed,
                    "config": {"alpha": 0.05 + 0.01 * index},
                    "stop": {"iterations": 3},
                    "checkpoint": {"every": 1, "keep": 3},
                }
            )
        owners = [alice if index % 2 == 0 else bob for index in range(10)]
        with ThreadPoolExecutor(max_workers=10) as pool:
            jobs = list(
                pool.map(lambda pair: pair[0].submit(pair[1]), zip(owners, specs, strict=True))
            )
        done = [owner.wait(job.id, timeout=600) for owner, job in zip(owners, jobs, strict=True)]
        assert [job.status for job in done] == ["SUCCEEDED"] * 10, [j.message for j in done]
        trials_of: dict[str, set[str]] = {}
        for owner, job, spec in zip(owners, done, specs, strict=True):
            rows = owner.metrics(job.id)
            assert [row[metrics.ITERATION] for row in rows] == [1, 2, 3], (job.id, rows)
            trials = {row["trial_id"] for row in rows}
            assert len(trials) == 1
            trials_of[job.id] = trials
            assert job.best_trial is not None and job.best_trial.trial_id in trials
            assert job.latest_metrics is not None and job.latest_metrics["trial_id"] in trials
            assert {c.trial_id for c in owner.checkpoints(job.id)} == trials
            assert job.resolved_config is not None
            assert job.resolved_config["seed"] == spec["seed"]
            # Tune's own params file in the job's directory is this job's config.
            (trial_dir,) = [
                p for p in Path(job.storage_uri).iterdir() if (p / "params.json").is_file()
            ]
            params = json.loads((trial_dir / "params.json").read_text())
            assert params["seed"] == spec["seed"] and params["alpha"] == spec["config"]["alpha"]
        every = [trial for trials in trials_of.values() for trial in trials]
        assert len(every) == len(set(every)) == 10, f"round {round_}: a trial seen twice"


def _stop_after(client: Client, delay: float) -> tuple[JobOut, float, int]:
    job = client.submit(
        {"algorithm": "q_learning", "stop": {"iterations": 100_000}, "checkpoint": {"every": 5}}
    )
    time.sleep(delay)
    started = time.monotonic()
    answer = client.stop(job.id)
    stops = 1
    while answer.status != "STOPPED":
        assert answer.status == "STOPPING", answer
        time.sleep(0.5)
        answer = client.job(job.id)
        if answer.status == "STOPPING" and time.monotonic() - started > 30:
            answer = client.stop(job.id)  # a repeated stop forces it
            stops += 1
    return answer, time.monotonic() - started, stops


@pytest.mark.parametrize("attempt", range(10))
def test_a_stop_right_after_submit_is_true(server: Server, alice: Client, attempt: int) -> None:
    delays = (0.0, 0.2, 0.5, 1.0, 2.0)
    with ThreadPoolExecutor(max_workers=len(delays)) as pool:
        outcomes = list(pool.map(lambda delay: _stop_after(alice, delay), delays))
    for delay, (job, seconds, _stops) in zip(delays, outcomes, strict=True):
        # STOPPED is only reported once the driver and every actor of the job are gone...
        assert _driver_processes(job.id) == [], (delay, job.id)
        assert _alive_actors(server, job) == [], (delay, job.id)
        assert seconds < 60, (delay, seconds)
        # ...and the job writes nothing after it.
        before = alice.metrics(job.id)
        time.sleep(1.0)
        assert alice.metrics(job.id) == before and alice.job(job.id).status == "STOPPED"
        with pytest.raises(Exception, match="409"):
            alice.stop(job.id)


def _iterations(client: Client, job_id: str) -> list[int]:
    return [row[metrics.ITERATION] for row in client.metrics(job_id)]


def _newest_checkpoint(client: Client, job_id: str) -> int:
    """The checkpoint a resume continues from: the newest one the job's stored rows reach.

    A driver killed between a checkpoint's upload and its result row leaves a checkpoint past
    the rows; resuming there would leave a gap in the rows, so the one before it is used.
    """
    reached = max(int(row[metrics.ITERATION]) for row in client.metrics(job_id))
    return max(
        c.iteration or 0 for c in client.checkpoints(job_id) if (c.iteration or 0) <= reached
    )


def test_resume_continues_from_the_newest_checkpoint_with_continuous_rows(alice: Client) -> None:
    job = alice.submit(
        {
            "algorithm": "monte_carlo",
            "stop": {"iterations": 100_000},
            "checkpoint": {"every": 3, "keep": 2},
        }
    )
    for _ in range(2):  # stop and resume, twice
        seen = len(_iterations(alice, job.id))
        wait_for_condition(lambda seen=seen: len(_iterations(alice, job.id)) >= seen + 8, 180)
        assert alice.stop(job.id, wait_s=120).status == "STOPPED"
        newest = _newest_checkpoint(alice, job.id)
        # the trial paused with a checkpoint at its last iteration: nothing to redo
        assert newest == _iterations(alice, job.id)[-1]
        alice.resume(job.id)
        resumed = wait_for_condition(
            lambda: [
                r for r in alice.metrics(job.id) if r["attempt"] == alice.job(job.id).attempts
            ],
            180,
        )
        assert resumed[0][metrics.ITERATION] == newest + 1

    # The driver killed outright (between Tune's snapshots, likely after a checkpoint the
    # snapshot missed): the job fails, and resume still continues from the newest one.
    seen = len(_iterations(alice, job.id))
    wait_for_condition(lambda: len(_iterations(alice, job.id)) >= seen + 8, 180)
    for process in _driver_processes(job.id):
        process.send_signal(signal.SIGKILL)
    wait_for_condition(lambda: alice.job(job.id).status in ("FAILED", "LOST"), 120)
    assert "killed by SIGKILL" in alice.job(job.id).message  # it says how the driver died
    newest = _newest_checkpoint(alice, job.id)
    alice.resume(job.id)
    resumed = wait_for_condition(
        lambda: [r for r in alice.metrics(job.id) if r["attempt"] == alice.job(job.id).attempts],
        180,
    )
    assert resumed[0][metrics.ITERATION] == newest + 1
    assert alice.stop(job.id, wait_s=120).status == "STOPPED"

    iterations = _iterations(alice, job.id)
    assert iterations == list(range(1, len(iterations) + 1))  # one row per iteration
    assert {row["attempt"] for row in alice.metrics(job.id)} == {1, 2, 3, 4}


def test_a_high_job_preempts_a_low_one_which_resumes_where_it_was(
    alice: Client, bob: Client
) -> None:
    long = {"algorithm": "q_learning", "stop": {"iterations": 100_000}, "checkpoint": {"every": 5}}
    first = alice.submit({**long, "priority": "low"})
    wait_for_condition(lambda: alice.job(first.id).status == "RUNNING", 180)
    second = alice.submit({**long, "priority": "low"})
    wait_for_condition(lambda: len(_iterations(alice, second.id)) >= 6, 180)  # both CPUs busy

    urgent = bob.submit({"algorithm": "q_learning", "stop": {"iterations": 5}, "priority": "high"})
    preempted = wait_for_condition(
        lambda: alice.job(second.id) if "preempted" in alice.job(second.id).message else None, 120
    )
    assert preempted.status in ("STOPPING", "QUEUED")
    assert urgent.id in preempted.message or preempted.status == "QUEUED"
    assert alice.job(first.id).status == "RUNNING"  # the older low job keeps running
    wait_for_condition(lambda: alice.job(second.id).status == "QUEUED", 120)  # its driver gone
    reached = _iterations(alice, second.id)[-1]
    assert bob.wait(urgent.id, timeout=300).status == "SUCCEEDED"

    # Once the high job is done the preempted one resumes from its checkpoint.
    resumed = wait_for_condition(
        lambda: [r for r in alice.metrics(second.id) if r["attempt"] == 2], 180
    )
    kept = {c.iteration for c in alice.checkpoints(second.id)}
    assert resumed[0][metrics.ITERATION] - 1 in kept
    # it paused with a checkpoint where it was preempted: no iteration is run twice
    assert resumed[0][metrics.ITERATION] == reached + 1, (reached, resumed[0])
    iterations = _iterations(alice, second.id)
    assert iterations == list(range(1, len(iterations) + 1))
    for job in (first, second):
        assert alice.stop(job.id, wait_s=120).status == "STOPPED"


# ---- a stop or preemption at any moment --------------------------------------------------------

STAGES = ("queued", "claimed", "driver starting", "tune starting", "first iteration")
SHORT = {"algorithm": "q_learning", "stop": {"iterations": 40}, "checkpoint": {"every": 5}}
# (q_learning runs an iteration in a fraction of a second: 40 take a few seconds)


def _stage(client: Client, job_id: str) -> str:
    """Where a job is in its start, as the API shows it."""
    job = client.job(job_id)
    if job.status == "QUEUED":
        return "queued"
    if job.status == "PENDING" and not job.ray_job_id:
        return "claimed"
    if client.metrics(job_id):
        return "first iteration"
    if job.message == "training":
        return "tune starting"
    return "driver starting"


def _at_stage(client: Client, job_id: str, stage: str) -> str:
    """Wait until the job is at `stage` or past it; the stage it is at."""
    wanted = STAGES.index(stage)

    def reached() -> str | None:
        now = _stage(client, job_id)
        return now if STAGES.index(now) >= wanted else None

    return str(wait_for_condition(reached, 180, interval=0.05))


def _resumes_to_the_end(client: Client, job_id: str) -> None:
    done = client.wait(job_id, timeout=300)
    assert done.status == "SUCCEEDED", (done.status, done.message, done.attempts)
    iterations = _iterations(client, job_id)
    assert iterations == list(range(1, 41)), iterations


# Two trials at once hold both CPUs of the test cluster.
BOTH_CPUS = {"num_samples": 2, "resources": {"concurrent_trials": 2}}


@pytest.mark.parametrize("stage", STAGES)
def test_a_stop_at_any_stage_resumes_to_the_end(alice: Client, stage: str) -> None:
    blocker = None
    if stage == "queued":  # a job waits only while the cluster is full
        blocker = alice.submit({**SHORT, "stop": {"iterations": 100_000}, **BOTH_CPUS})
        wait_for_condition(lambda: alice.job(blocker.id).status == "RUNNING", 180)
    job = alice.submit(SHORT)
    seen = _at_stage(alice, job.id, stage)
    stopped = alice.stop(job.id, wait_s=120)
    assert stopped.status in ("STOPPED", "SUCCEEDED"), (seen, stopped)
    if blocker is not None:
        assert seen == "queued" and stopped.stop_reason == "cancelled" and not stopped.attempts
        assert alice.stop(blocker.id, wait_s=120).status == "STOPPED"
    if stopped.status == "STOPPED":
        alice.resume(job.id)
    _resumes_to_the_end(alice, job.id)


@pytest.mark.parametrize("stage", STAGES[1:])  # a queued job is never preempted
def test_a_preemption_at_any_stage_resumes_to_the_end(
    alice: Client, bob: Client, stage: str
) -> None:
    job = alice.submit({**SHORT, "priority": "low"})
    seen = _at_stage(alice, job.id, stage)
    # two trials at once hold both CPUs: the low job must make room
    urgent = bob.submit({**SHORT, "stop": {"iterations": 3}, "priority": "high", **BOTH_CPUS})
    made_room = wait_for_condition(lambda: _preempted_or_done(alice, job.id), 120, 0.1)
    assert made_room.stop_reason == "preempted" or made_room.status == "SUCCEEDED", made_room
    assert bob.wait(urgent.id, timeout=300).status == "SUCCEEDED"
    _resumes_to_the_end(alice, job.id)
    assert alice.job(job.id).attempts >= (2 if made_room.stop_reason else 1), seen


def _preempted_or_done(client: Client, job_id: str) -> JobOut | None:
    job = client.job(job_id)
    return job if job.stop_reason == "preempted" or job.status == "SUCCEEDED" else None


def _ended(client: Client, job_id: str) -> JobOut | None:
    job = client.job(job_id)
    return job if job.status in ("FAILED", "LOST") else None


def test_a_driver_killed_twenty_times_resumes_from_its_newest_checkpoint_each_time(
    alice: Client,
) -> None:
    job = alice.submit(
        {"algorithm": "q_learning", "stop": {"iterations": 100_000}, "checkpoint": {"every": 2}}
    )
    for kill in range(20):
        seen = len(_iterations(alice, job.id))
        wait_for_condition(lambda seen=seen: len(_iterations(alice, job.id)) >= seen + 3, 180)
        for process in _driver_processes(job.id):
            process.send_signal(signal.SIGKILL)
        failed = wait_for_condition(lambda: _ended(alice, job.id), 120)
        assert "killed by SIGKILL" in failed.message, (kill, failed.message)
        newest = _newest_checkpoint(alice, job.id)
        alice.resume(job.id)
        attempt = kill + 2
        resumed = wait_for_condition(
            lambda attempt=attempt: [r for r in alice.metrics(job.id) if r["attempt"] == attempt],
            180,
        )
        served = [(row[metrics.ITERATION], row["attempt"]) for row in alice.metrics(job.id)]
        assert resumed[0][metrics.ITERATION] == newest + 1, (kill, newest, served[-30:])
        iterations = _iterations(alice, job.id)
        assert iterations == list(range(1, len(iterations) + 1)), (kill, served[-30:])
    assert alice.stop(job.id, wait_s=120).status == "STOPPED"
