"""Owners, bad input and the catalog, through the real server (SDK and raw HTTP)."""

from __future__ import annotations

import os
import subprocess
import time

import httpx
import pytest

from service.client import APIError, Client
from tests.service.conftest import ALICE, BOB, RLDOJO, Server, wait_for_condition


def _raw(
    server: Server,
    method: str,
    path: str,
    token: str | None = ALICE,
    headers: dict[str, str] | None = None,
    **kw: object,
) -> httpx.Response:
    sent = {**(headers or {}), **({"Authorization": f"Bearer {token}"} if token else {})}
    return httpx.request(method, f"{server.url}{path}", headers=sent, timeout=60, **kw)  # type: ignore[arg-type]


def test_owners_see_and_touch_only_their_jobs(server: Server, alice: Client, bob: Client) -> None:
    job = alice.submit({"algorithm": "q_learning", "stop": {"iterations": 5}})
    wait_for_condition(lambda: alice.job(job["id"])["status"] == "SUCCEEDED", timeout=180)
    assert job["id"] not in [j["id"] for j in bob.jobs()]
    assert job["id"] in [j["id"] for j in alice.jobs()]
    for method, path in [
        ("GET", f"/v1/jobs/{job['id']}"),
        ("POST", f"/v1/jobs/{job['id']}/stop"),
        ("POST", f"/v1/jobs/{job['id']}/resume"),
        ("DELETE", f"/v1/jobs/{job['id']}"),
        ("GET", f"/v1/jobs/{job['id']}/metrics"),
        ("GET", f"/v1/jobs/{job['id']}/logs"),
        ("GET", f"/v1/jobs/{job['id']}/checkpoints"),
        ("GET", f"/v1/jobs/{job['id']}/checkpoints/best/archive"),
    ]:
        assert _raw(server, method, path, BOB).status_code == 404, (method, path)
    answer = _raw(server, "POST", "/v1/evaluations", BOB, json={"job_id": job["id"]})
    assert answer.status_code == 404
    evaluation = alice.evaluate(job["id"], episodes=2)
    assert _raw(server, "GET", f"/v1/evaluations/{evaluation['id']}", BOB).status_code == 404
    assert _raw(server, "GET", "/v1/jobs", None).status_code == 401
    assert _raw(server, "GET", "/v1/jobs", "not-a-token").status_code == 401

    # alice can delete her finished job and purge its files
    alice.wait_evaluation(evaluation["id"], timeout=180)
    alice.delete(job["id"], purge=True)
    with pytest.raises(APIError) as missing:
        alice.job(job["id"])
    assert missing.value.status == 404


def test_bad_input_gets_the_stated_answers(server: Server, alice: Client) -> None:
    assert _raw(server, "GET", "/v1/jobs/doesnotexist").status_code == 404
    assert _raw(server, "GET", "/v1/evaluations/doesnotexist").status_code == 404

    bad = _raw(server, "POST", "/v1/jobs", json={"algorithm": "q_learning", "config": {"gamm": 1}})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "config", "gamm"]
    wrong_type = _raw(
        server, "POST", "/v1/jobs", json={"algorithm": "q_learning", "stop": {"iterations": "x"}}
    )
    assert wrong_type.status_code == 422
    assert wrong_type.json()["detail"][0]["loc"][-2:] == ["stop", "iterations"]
    assert _raw(server, "POST", "/v1/jobs", content=b"{not json").status_code == 422

    big = {"algorithm": "q_learning", "env_config": {"pad": "x" * 70_000}}
    assert _raw(server, "POST", "/v1/jobs", json=big).status_code == 413

    job = alice.submit({"algorithm": "q_learning", "stop": {"iterations": 100_000}})
    wait_for_condition(lambda: alice.checkpoints(job["id"]), timeout=180)
    for sneaky in ("..%2F..%2Fspec.json", "..", "%2E%2E", "checkpoint_000000", "x-000000"):
        path = f"/v1/jobs/{job['id']}/checkpoints/{sneaky}/archive"
        assert _raw(server, "GET", path).status_code == 404, sneaky
    deleted = _raw(server, "DELETE", f"/v1/jobs/{job['id']}")
    assert deleted.status_code == 409  # refused while running
    too_many = _raw(server, "POST", "/v1/evaluations", json={"job_id": job["id"], "episodes": 51})
    assert too_many.status_code == 422
    assert too_many.json()["detail"][0]["loc"] == ["body", "episodes"]
    assert alice.stop(job["id"], wait_s=60)["status"] == "STOPPED"
    assert _raw(server, "POST", f"/v1/jobs/{job['id']}/stop").status_code == 409
    # a stopped job keeps its logs and checkpoints
    assert alice.checkpoints(job["id"]) and alice.logs(job["id"])


@pytest.mark.parametrize(
    ("patch", "location", "message"),
    [
        ({"resources": {"env_runners": 256}}, ["resources", "env_runners"], "cluster has 2 CPUs"),
        ({"resources": {"gpus_per_learner": 8}}, ["resources", "gpus_per_learner"], "0 GPUs"),
        ({"env_config": {"size": "five"}}, ["env_config", "size"], "size must be an integer"),
        ({"env_config": {"size": 100_000}}, ["env_config", "size"], "from 2 to 50"),
        ({"env_config": {"traps": [[9, 9]]}}, ["env_config", "traps"], "off the 5x5 grid"),
        ({"env_config": {"start": [2, 2]}}, ["env_config", "start"], "must not be the goal"),
        ({"config": {"epsilon": -5}}, ["config", "epsilon"], "greater than or equal to 0"),
        ({"config": {"gamma": 2.0}}, ["config", "gamma"], "less than or equal to 1"),
        ({"seed": -1}, ["seed"], "greater than or equal to 0"),
        ({"stop": {"iterations": 10**18}}, ["stop", "iterations"], "less than or equal"),
        (
            {"search": {"alpha": {"grid": list(range(1000))}}, "num_samples": 100},
            ["search"],
            "trials",
        ),
    ],
)
def test_what_cannot_run_is_refused_at_submit(
    server: Server, patch: dict, location: list, message: str
) -> None:
    spec = {"algorithm": "q_learning", "stop": {"iterations": 3}, **patch}
    started = time.monotonic()
    answer = _raw(server, "POST", "/v1/jobs", json=spec)
    assert answer.status_code == 422, answer.text
    assert time.monotonic() - started < 1.0
    errors = [e for e in answer.json()["detail"] if e["loc"] == ["body", *location]]
    assert errors and message in errors[0]["msg"], answer.json()


def test_nan_and_infinity_are_refused_with_the_field_named(server: Server) -> None:
    for body, location in [
        (b'{"algorithm": "q_learning", "config": {"gamma": NaN}}', ["body", "config", "gamma"]),
        (
            b'{"algorithm": "q_learning", "stop": {"seconds": Infinity}}',
            ["body", "stop", "seconds"],
        ),
    ]:
        answer = _raw(
            server, "POST", "/v1/jobs", content=body, headers={"Content-Type": "application/json"}
        )
        assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == location


def test_every_field_error_comes_at_once(server: Server) -> None:
    spec = {
        "algorithm": "actor_critic",
        "stop": {"iterations": 0},
        "config": {"gamma": 5.0},
        "env_config": {"nope": 1},
    }
    answer = _raw(server, "POST", "/v1/jobs", json=spec)
    assert answer.status_code == 422
    located = {tuple(e["loc"]) for e in answer.json()["detail"]}
    assert {
        ("body", "stop", "iterations"),
        ("body", "config", "gamma"),
        ("body", "env_config", "nope"),
    } <= located


def test_a_spec_without_a_stop_gets_the_algorithm_default(alice: Client) -> None:
    job = alice.submit({"algorithm": "value_iteration"})
    assert job.spec["stop"]["iterations"] == 50  # no job runs forever
    assert job.resolved_config is not None and job.resolved_config["gamma"] == 0.9
    assert alice.wait(job.id, timeout=300).status == "SUCCEEDED"


def test_catalog_cluster_and_metrics(server: Server, alice: Client) -> None:
    algorithms = {a["name"]: a for a in alice.algorithms()}
    q = algorithms["q_learning"]
    assert set(q["default_config"]) == set(q["config_schema"]["properties"])
    assert "rldojo/GridWorld-v0" in [e["id"] for e in alice.envs()]
    cluster = alice.cluster()
    assert cluster["resources"]["CPU"] == 2.0 and cluster["nodes"][0]["state"] == "ALIVE"
    text = _raw(server, "GET", "/metrics").text
    assert "rldojo_http_requests_total" in text and "rldojo_jobs" in text
    # every owner's job counts: only for a token holder
    assert _raw(server, "GET", "/metrics", None).status_code == 401
    assert "paths" in _raw(server, "GET", "/openapi.json").json()


def test_public_bind_without_tokens_is_refused(tmp_path: object) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RLDOJO_")}
    env["RLDOJO_DATA_DIR"] = str(tmp_path)
    done = subprocess.run(
        [RLDOJO, "serve", "--host", "0.0.0.0", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "refusing to bind to 0.0.0.0 without API tokens" in done.stderr


@pytest.mark.parametrize("path", ["/v1/jobs", "/v1/jobs/validate"])
@pytest.mark.parametrize("body", [{"algorithm": []}, {"algorithm": {}}, ["q_learning"]])
def test_a_mistyped_body_is_a_422_naming_the_field(server: Server, path: str, body: object) -> None:
    answer = _raw(server, "POST", path, json=body)
    assert answer.status_code == 422, answer.text
    located = [e["loc"] for e in answer.json()["detail"]]
    assert located == [["body", "algorithm"]] if isinstance(body, dict) else located == [["body"]]


@pytest.mark.parametrize("second", [ALICE, BOB, "not-a-token"])
def test_two_authorization_headers_are_a_400(server: Server, second: str) -> None:
    headers = [("Authorization", f"Bearer {ALICE}"), ("Authorization", f"Bearer {second}")]
    with httpx.Client(base_url=server.url, timeout=60) as http:
        for method, path in [("GET", "/v1/jobs"), ("POST", "/v1/jobs/validate")]:
            request = http.build_request(method, path, headers=headers, json={})
            assert len(request.headers.get_list("authorization")) == 2  # sent as two lines
            answer = http.send(request)
            assert answer.status_code == 400, answer.text
            assert "Authorization" in answer.json()["detail"]
        assert http.get("/v1/jobs", headers={"Authorization": f"Bearer {ALICE}"}).status_code == 200


@pytest.mark.parametrize(
    ("patch", "location"),
    [
        ({"resources": {"env_runners": 3}}, ["body", "resources", "env_runners"]),
        ({"resources": {"learners": 1, "gpus_per_learner": 8}}, ["body", "resources"]),
        (
            {"config": {"episodes_per_iteration": 10**12}},
            ["body", "config", "episodes_per_iteration"],
        ),
        ({"checkpoint": {"every": 10**29}}, ["body", "checkpoint", "every"]),
    ],
)
def test_validate_answers_what_submit_would(
    server: Server, alice: Client, patch: dict, location: list
) -> None:
    spec = {"algorithm": "q_learning", "stop": {"iterations": 3}, **patch}
    jobs_before = len(alice.jobs())
    checked = _raw(server, "POST", "/v1/jobs/validate", json=spec)
    submitted = _raw(server, "POST", "/v1/jobs", json=spec)
    assert checked.status_code == submitted.status_code == 422, (checked.text, submitted.text)
    assert checked.json() == submitted.json()
    assert any(e["loc"][: len(location)] == location for e in checked.json()["detail"])
    assert len(alice.jobs()) == jobs_before
