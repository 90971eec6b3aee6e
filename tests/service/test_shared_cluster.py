"""A cluster many people share, through the real server: the queue and quotas, webhooks to a
receiver on 127.0.0.1, shared jobs, comparing runs and the leaderboard."""

from __future__ import annotations

import json
import re
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.client import APIError, Client
from service.status import ON_RAY
from service.webhooks import SIGNATURE_HEADER, verify
from tests.service.conftest import ALICE, BOB, CAROL, RLDOJO, Server, wait_for_condition


def _small(**extra: Any) -> dict[str, Any]:
    return {"algorithm": "q_learning", "stop": {"iterations": 3}, **extra}


@pytest.mark.lifecycle  # half a minute of queued jobs: make test-lifecycle
def test_the_queue_keeps_the_quota_orders_and_cancels(carol: Client) -> None:
    jobs = [carol.submit(_small(name=f"c{i}")) for i in range(3)]
    running_most = 0

    def watch() -> bool:
        nonlocal running_most
        listed = carol.jobs()
        mine = [job for job in listed if job.id in {j.id for j in jobs}]
        running_most = max(running_most, sum(job.status in ON_RAY for job in mine))
        return all(job.status.is_terminal() for job in mine)

    queued = [carol.job(job.id) for job in jobs[1:]]
    assert [job.status for job in queued] == ["QUEUED", "QUEUED"]
    assert [job.queue_position for job in queued] == [1, 2]
    # the third goes first once it is high, and the second is cancelled while it waits
    raised = carol.update(jobs[2].id, priority="high", tags=["urgent"])
    assert raised.priority == "high" and raised.queue_position == 1 and raised.tags == ["urgent"]
    cancelled = carol.stop(jobs[1].id)
    assert cancelled.status == "STOPPED" and cancelled.message == "cancelled while queued"
    wait_for_condition(watch, timeout=300, interval=0.3)
    assert running_most == 1  # carol's quota: one running job, at every look
    final = {job.id: carol.job(job.id) for job in jobs}
    assert final[jobs[0].id].status == final[jobs[2].id].status == "SUCCEEDED"
    assert final[jobs[1].id].attempts == 0  # it never ran
    assert [j.id for j in carol.jobs(tag="urgent")] == [jobs[2].id]


def test_high_priority_needs_the_operators_grant(
    server: Server, alice: Client, carol: Client
) -> None:
    with pytest.raises(APIError) as refused:
        alice.submit(_small(priority="high"))
    assert refused.value.status == 403
    assert "priority" in str(refused.value) and "alice" in str(refused.value)
    checked = httpx.post(
        f"{server.url}/v1/jobs/validate",
        json=_small(priority="high"),
        headers={"Authorization": f"Bearer {ALICE}"},
    )
    assert checked.status_code == 403  # validate answers what submit would
    assert checked.json()["detail"][0]["loc"] == ["body", "priority"]
    queued = alice.submit(_small(stop={"iterations": 2}))
    with pytest.raises(APIError) as patched:
        alice.update(queued.id, priority="high")
    assert patched.value.status == 403
    assert alice.job(queued.id).priority == "normal"  # nothing changed
    # carol's grant is one high job at a time: a second is refused while the first is active
    first = carol.submit(_small(priority="high", stop={"iterations": 200_000}))
    with pytest.raises(APIError) as second:
        carol.submit(_small(priority="high"))
    assert second.value.status == 403 and "1 of 1" in str(second.value)
    carol.stop(first.id, wait_s=120)
    alice.wait(queued.id, timeout=120)


class _Receiver(BaseHTTPRequestHandler):
    """Records every POST; answers 500 to the first `failures` of them."""

    failures = 0
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers), body))
        failing = len(type(self).received) <= type(self).failures
        self.send_response(500 if failing else 204)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        return


@pytest.fixture()
def receiver() -> Iterator[tuple[str, type[_Receiver]]]:
    handler = type("Receiver", (_Receiver,), {"failures": 2, "received": []})
    http = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{http.server_address[1]}/hook", handler
    finally:
        http.shutdown()


@pytest.mark.lifecycle  # jobs and a receiver down and back: make test-lifecycle
def test_every_state_change_reaches_the_webhook_signed_and_retried(
    bob: Client, receiver: tuple[str, type[_Receiver]]
) -> None:
    url, handler = receiver
    hook = bob.add_webhook(url)
    assert hook.secret and [h.id for h in bob.webhooks()] == [hook.id]
    job = bob.submit(_small(seed=5))
    assert bob.wait(job.id, timeout=300).status == "SUCCEEDED"
    evaluation = bob.evaluate(job.id, episodes=2)
    assert bob.wait_evaluation(evaluation.id, timeout=300).status == "SUCCEEDED"

    def delivered() -> list[Any] | None:
        log = bob.deliveries(hook.id)
        return log if log and all(d.state == "delivered" for d in log) else None

    log = wait_for_condition(delivered, timeout=120)
    events = {d.id: d for d in log}
    got: dict[str, dict[str, Any]] = {}
    for headers, body in handler.received:
        assert verify(hook.secret, body, headers[SIGNATURE_HEADER]), "bad signature"
        payload = json.loads(body)
        assert payload["delivery"] == headers["X-Rldojo-Delivery"] in events
        got[payload["delivery"]] = payload  # a retry repeats the same delivery id
    job_states = [
        p["job"]["status"]
        for p in sorted(got.values(), key=lambda p: p["time"])
        if p["event"] == "job.status" and p["job"]["id"] == job.id
    ]
    assert job_states == ["QUEUED", "PENDING", "RUNNING", "SUCCEEDED"]
    evaluation_states = [
        p["evaluation"]["status"] for p in got.values() if p["event"] == "evaluation.status"
    ]
    assert evaluation_states[-1] == "SUCCEEDED" or "SUCCEEDED" in evaluation_states
    # the receiver refused the first two tries: they were retried, and the log says so
    assert len(handler.received) == len(got) + 2
    assert sum(d.attempts for d in log) == len(log) + 2
    assert any(d.attempts > 1 and d.last_status == 204 for d in log)
    bob.delete_webhook(hook.id)
    assert bob.webhooks() == []


@pytest.mark.lifecycle  # three jobs and their evaluations: make test-lifecycle
def test_shared_jobs_are_readable_comparable_and_on_the_leaderboard(
    server: Server, alice: Client, bob: Client, tmp_path: Path
) -> None:
    env = "rldojo/GridWorld-v0"
    shared = alice.submit(_small(env=env, seed=1, shared=True, name="alice-best", tags=["demo"]))
    private = bob.submit(_small(env=env, seed=2, config={"alpha": 0.3}))
    for owner, job in ((alice, shared), (bob, private)):
        assert owner.wait(job.id, timeout=300).status == "SUCCEEDED"
    # bob reads alice's shared job but cannot change it
    assert bob.job(shared.id).name == "alice-best"
    assert shared.id in [job.id for job in bob.jobs(shared=True)]
    # other tests share alice's jobs on this server too: bob sees only shared ones of hers
    alices = bob.jobs(owner="alice")
    assert shared.id in [job.id for job in alices]
    assert all(job.owner == "alice" and job.shared for job in alices)
    with pytest.raises(APIError) as refused:
        bob.stop(shared.id)
    assert refused.value.status == 404
    # ...and alice cannot read bob's private one
    with pytest.raises(APIError):
        alice.job(private.id)

    compared = bob.compare([shared.id, private.id])
    assert {c.job_id for c in compared.curves} == {shared.id, private.id}
    default_alpha = alice.job(shared.id).resolved_config["alpha"]
    assert compared.differences["config.alpha"] == {shared.id: default_alpha, private.id: 0.3}
    assert compared.differences["spec.seed"] == {shared.id: 1, private.id: 2}
    assert "config.gamma" not in compared.differences  # the same for both

    evaluation = alice.evaluate(shared.id, episodes=3)
    assert alice.wait_evaluation(evaluation.id, timeout=300).status == "SUCCEEDED"
    top = bob.leaderboard(env)
    assert top and top[0].job_id == shared.id and top[0].owner == "alice"
    assert top[0].return_mean == 100.0 and top[0].episodes == 3
    assert all(entry.job_id != private.id for entry in alice.leaderboard(env))

    pulled = subprocess.run(
        [RLDOJO, "pull", "--best-for", env, "--out", str(tmp_path / "best"), "--url", server.url],
        env={"RLDOJO_TOKEN": BOB, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert pulled.returncode == 0, pulled.stderr
    folder = Path(pulled.stdout.strip())
    assert (folder / "algorithm_state.pkl").is_file()
    assert re.fullmatch(
        r"pulled [0-9.]+ MB \(weights only; --with-replay for all of it\)\n", pulled.stderr
    )
    raw = httpx.get(
        f"{server.url}/v1/compare",
        params={"ids": ""},
        headers={"Authorization": f"Bearer {BOB}"},
    )
    assert raw.status_code == 422


def test_a_job_that_could_never_start_is_refused(carol: Client, server: Server) -> None:
    grid = {"alpha": {"grid": [0.1, 0.2, 0.3]}}
    with pytest.raises(APIError) as over_quota:  # carol may hold 1 CPU
        carol.submit(_small(search=grid, resources={"concurrent_trials": 2}))
    assert over_quota.value.status == 422 and "quota is 1" in str(over_quota.value)
    with pytest.raises(APIError) as over_cluster:  # the cluster has 2
        carol.submit(_small(search=grid, resources={"concurrent_trials": 3}))
    assert "concurrent_trials" in str(over_cluster.value)
    fitted = carol.submit(_small(search=grid))  # trials run one at a time, within the quota
    assert fitted.spec["resources"]["concurrent_trials"] == 1 and fitted.cpus == 1.0
    assert carol.wait(fitted.id, timeout=300).status == "SUCCEEDED"
    # Its trials, as the API and `rldojo trials` show them: each grid point, run to the stop.
    trials = carol.trials(fitted.id)
    assert sorted(t.hyperparameters["alpha"] for t in trials.trials) == [0.1, 0.2, 0.3]
    assert {(t.state, t.iterations) for t in trials.trials} == {("finished", 3)}
    assert trials.perturbations == []
    shown = subprocess.run(
        [RLDOJO, "trials", fitted.id, "--url", server.url],
        env={"RLDOJO_TOKEN": CAROL, "PATH": "/usr/bin:/bin", "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split()[:7] == [
        "trial",
        "state",
        "alpha",
        "iterations",
        "return",
        "best",
        "return",
    ]
    assert shown.stdout.count(" finished ") == 3, shown.stdout
