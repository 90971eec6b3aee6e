"""`Idempotency-Key` on submit: the rule on the store (and the migration that adds it), then
through the real server: the same owner and key get the first job back, another spec with the
key is a 422 naming the header, keys are per owner, and the SDK retries a lost answer with the
key it made."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy
from alembic import command
from alembic.config import Config
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError

from service import migrations
from service.client import Client
from service.idempotency import KeyReusedError, earlier_job, fingerprint
from service.spec import parse_spec
from service.store import Store
from tests.service.conftest import ALICE, BOB, Server

SPEC = {"algorithm": "q_learning", "stop": {"iterations": 3}}


def test_the_fingerprint_is_the_spec_not_its_spelling() -> None:
    same = fingerprint(parse_spec({**SPEC, "seed": 3}))
    assert same == fingerprint(parse_spec({"seed": 3, **SPEC, "checkpoint": {"every": 10}}))
    assert same != fingerprint(parse_spec({**SPEC, "seed": 4}))


def test_a_key_is_unique_per_owner_and_keyless_jobs_never_clash(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'jobs.db'}")
    try:
        for owner, key in [("alice", None), ("alice", None), ("alice", "k1"), ("bob", "k1")]:
            store.create_job(owner=owner, spec=SPEC, status="QUEUED", idempotency_key=key)
        with pytest.raises(IntegrityError):
            store.create_job(owner="alice", spec=SPEC, status="QUEUED", idempotency_key="k1")
        first = store.job_by_idempotency_key(owner="alice", key="k1")
        assert first is not None and first.owner == "alice"
        assert store.job_by_idempotency_key(owner="carol", key="k1") is None
        with pytest.raises(KeyReusedError, match="another spec"):
            earlier_job(store, "alice", "k1", "a-different-fingerprint")
    finally:
        store.close()


def test_a_database_at_0006_is_upgraded_in_place(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sqlalchemy.create_engine(url)
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0006")
        connection.execute(
            sqlalchemy.text(
                "INSERT INTO jobs (id, owner, spec, status, message, attempts, storage_uri, "
                "created_at, updated_at) "
                "VALUES ('old1', 'bob', '{}', 'SUCCEEDED', '', 1, '', '2026-01-01', '2026-01-01')"
            )
        )
    engine.dispose()
    upgraded = Store(url)
    try:
        old = upgraded.get_job(job_id="old1")
        assert old is not None and old.idempotency_key is None
        columns = {c["name"] for c in inspect(upgraded.engine).get_columns("jobs")}
        assert {"idempotency_key", "request_fingerprint"} <= columns
        indexes = inspect(upgraded.engine).get_indexes("jobs")
        assert any(
            i["unique"] and i["column_names"] == ["owner", "idempotency_key"] for i in indexes
        )
    finally:
        upgraded.close()


def _submit(server: Server, token: str, key: str, spec: dict[str, Any]) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key}
    return httpx.post(f"{server.url}/v1/jobs", json=spec, headers=headers, timeout=60)


def test_the_same_key_gets_the_first_job_and_runs_it_once(
    server: Server, alice: Client, bob: Client
) -> None:
    key, before = uuid.uuid4().hex, len(alice.jobs())
    first = _submit(server, ALICE, key, SPEC)
    again = _submit(server, ALICE, key, {"stop": {"iterations": 3}, "algorithm": "q_learning"})
    assert (first.status_code, again.status_code) == (201, 200), again.text
    assert again.json()["id"] == first.json()["id"]
    assert len(alice.jobs()) == before + 1

    other = _submit(server, ALICE, key, {**SPEC, "seed": 7})
    assert other.status_code == 422
    assert other.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]

    bobs = _submit(server, BOB, key, SPEC)  # another owner's key is another key
    assert bobs.status_code == 201 and bobs.json()["id"] != first.json()["id"]

    done = alice.wait(first.json()["id"], timeout=300)
    assert done.status == "SUCCEEDED" and done.attempts == 1
    late = _submit(server, ALICE, key, SPEC)  # even once it ended: the same job, not a rerun
    assert late.status_code == 200 and late.json()["attempts"] == 1
    assert bob.wait(bobs.json()["id"], timeout=300).status == "SUCCEEDED"


class LoseFirstAnswer(httpx.BaseTransport):
    """The network as a client meets it on a bad day: the first request reaches the server,
    its answer never comes back."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.keys: list[str | None] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.keys.append(request.headers.get("Idempotency-Key"))
        response = self.inner.handle_request(request)
        if len(self.keys) == 1:
            response.read()
            raise httpx.ReadError("connection lost before the answer", request=request)
        return response


def test_the_sdk_retries_a_lost_answer_with_its_own_key(server: Server, alice: Client) -> None:
    before = len(alice.jobs())
    transport = LoseFirstAnswer()
    with Client(server.url, ALICE, transport=transport) as flaky:
        job = flaky.submit(SPEC)
    assert len(transport.keys) == 2 and transport.keys[0] == transport.keys[1] is not None
    assert [j.id for j in alice.jobs()].count(job.id) == 1
    assert len(alice.jobs()) == before + 1
    second = alice.submit(SPEC)  # a new call is a new key: a new job
    assert second.id != job.id
    for submitted in (job, second):
        assert alice.wait(submitted.id, timeout=300).status == "SUCCEEDED"
