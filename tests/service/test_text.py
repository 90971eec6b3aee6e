"""Control characters are refused in every string the API stores (422 naming the field), and a
refused submit leaves nothing on storage: the rule itself, then through the real server on
SQLite, then the app on a real PostgreSQL store (which would answer NUL with an error)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter, ValidationError

from service.client import Client
from service.main import create_app
from service.settings import Settings
from service.text import PlainText, control_in, first_control
from tests.backends import PostgresServer
from tests.service.conftest import ALICE, Server

NUL, REFUSED = "\x00", ["\x00", "\n", "\r", "\t", "\x1b[31m", "\x7f", "\x85", "\ud800"]


@pytest.mark.parametrize("bad", REFUSED)
def test_control_characters_and_lone_surrogates_are_refused(bad: str) -> None:
    assert first_control(f"run{bad}1") is not None
    with pytest.raises(ValidationError, match="control characters"):
        TypeAdapter(PlainText).validate_python(f"run{bad}1")


def test_ordinary_text_passes_unchanged() -> None:
    for text in ("cartpole run 3", "élan — 学习 🚀", "a/b:c.d-e", ""):
        assert TypeAdapter(PlainText).validate_python(text) == text
        assert control_in({"k": [text, {"n": text}]}) == []


def test_control_in_names_every_place_keys_included() -> None:
    value = {"a": "ok", "b": ["x", f"y{NUL}"], f"c{NUL}": 1, "d": {"e": {"f": "\n"}}}
    assert control_in(value) == [("b", "1"), (f"c{NUL}",), ("d", "e", "f")]


SPEC = {"algorithm": "q_learning", "stop": {"iterations": 3}}
BAD_SUBMITS: list[tuple[dict[str, Any], list[str]]] = [
    ({"name": f"run{NUL}"}, ["name"]),
    ({"tags": ["ok", f"t{NUL}"]}, ["tags", "1"]),
    ({"env": f"rldojo/GridWorld-v0{NUL}"}, ["env"]),
    ({"algorithm": f"q_learning{NUL}"}, ["algorithm"]),
    ({"config": {"gamma": f"0.9{NUL}"}}, ["config", "gamma"]),
    ({"env_config": {f"size{NUL}": 5}}, ["env_config", f"size{NUL}"]),
    ({"search": {"alpha": {"choice": [f"x{NUL}"]}}}, ["search", "alpha", "choice", "0"]),
    ({"name": "line\nbreak"}, ["name"]),
]


def _job_directories(root: Path) -> set[str]:
    jobs = root / "jobs"
    return {entry.name for entry in jobs.iterdir()} if jobs.exists() else set()


def _located(answer: httpx.Response) -> list[list[str]]:
    assert answer.status_code == 422, answer.text
    return [error["loc"] for error in answer.json()["detail"]]


@pytest.mark.parametrize(("patch", "location"), BAD_SUBMITS)
def test_a_refused_submit_names_the_field_and_writes_nothing(
    server: Server, alice: Client, patch: dict[str, Any], location: list[str]
) -> None:
    storage = server.data_dir / "storage"
    before, jobs_before = _job_directories(storage), len(alice.jobs())
    for path in ("/v1/jobs", "/v1/jobs/validate"):
        answer = _post(server.url, path, {**SPEC, **patch})
        assert ["body", *location] in _located(answer), answer.text
    assert _job_directories(storage) == before
    assert len(alice.jobs()) == jobs_before


def test_every_other_stored_or_looked_up_string_is_checked(server: Server, alice: Client) -> None:
    job = alice.submit({**SPEC, "name": "plain"})
    headers = {"Authorization": f"Bearer {ALICE}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as http:
        renamed = http.patch(f"/v1/jobs/{job.id}", json={"name": f"x{NUL}"})
        assert _located(renamed) == [["body", "name"]]
        assert _located(http.post("/v1/evaluations", json={"job_id": f"{job.id}{NUL}"})) == [
            ["body", "job_id"]
        ]
        hook = {"url": "http://127.0.0.1:9/x", "secret": f"{'s' * 16}{NUL}"}
        assert ["body", "secret"] in _located(http.post("/v1/webhooks", json=hook))
        assert _located(http.get("/v1/jobs/%00")) == [["path", "job_id"]]
        assert _located(http.get("/v1/jobs", params={"tag": NUL})) == [["query", "tag"]]
    assert alice.job(job.id).name == "plain"


def _post(url: str, path: str, body: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {ALICE}"}
    return httpx.post(f"{url}{path}", json=body, headers=headers, timeout=60)


@pytest.fixture()
def app_on_postgresql(postgres: PostgresServer, tmp_path: Path) -> Iterator[TestClient]:
    """The real app on a PostgreSQL store; its lifespan (the Ray connection) is not started,
    so only the answers that come before Ray are asked for."""
    settings = Settings(
        data_dir=tmp_path,
        database_url=postgres.create_database("text_nul"),
        api_tokens={ALICE: "alice"},
    )
    yield TestClient(create_app(settings), headers={"Authorization": f"Bearer {ALICE}"})


def test_nul_is_a_422_on_postgresql_too(app_on_postgresql: TestClient, tmp_path: Path) -> None:
    http = app_on_postgresql
    answer = http.post("/v1/jobs", json={**SPEC, "name": f"run{NUL}"})
    assert _located(answer) == [["body", "name"]]
    assert _job_directories(tmp_path / "storage") == set()
    assert _located(http.get("/v1/jobs/%00")) == [["path", "job_id"]]
    assert _located(http.get("/v1/jobs", params={"env": NUL})) == [["query", "env"]]
    assert http.get("/v1/jobs").json() == []  # the store answers: only the NUL was refused
