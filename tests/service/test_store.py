"""The job store on both backends it supports: a SQLite file and a real PostgreSQL server.

Every test runs twice (`store_url` is parametrized); the PostgreSQL server is started once per
session by the `postgres` fixture and each test gets its own database in it.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest

from service.store import Store
from tests.backends import PostgresServer

UTC = dt.UTC
IST = dt.timezone(dt.timedelta(hours=5, minutes=30))


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'rldojo.db'}"
    postgres = request.getfixturevalue("postgres")
    return str(postgres.create_database(f"store_{uuid.uuid4().hex[:8]}"))


@pytest.fixture()
def store(store_url: str) -> Iterator[Store]:
    opened = Store(store_url)
    yield opened
    opened.close()


def _job(store: Store, owner: str = "alice", status: str = "PENDING") -> str:
    spec = {"algorithm": "q_learning", "config": {"alpha": 0.1}, "stop": {"iterations": 5}}
    return store.create_job(owner=owner, spec=spec, status=status).id


def _evaluation(store: Store, job_id: str, owner: str = "alice") -> str:
    return store.create_evaluation(
        owner=owner,
        job_id=job_id,
        checkpoint_id="abcde_00000-000010",
        episodes=5,
        seed=3,
        video=True,
        status="PENDING",
    ).id


def test_job_create_get_update_round_trip(store: Store) -> None:
    spec = {
        "algorithm": "actor_critic",
        "env": "CartPole-v1",
        "env_config": {"traps": [[1, 1], [2, 3]], "name": "gitter ✓"},
        "config": {"lr": 0.0007, "hidden": [64, 64], "shared": True, "note": None},
        "search": {"lr": {"grid": [0.1, 0.01]}},
    }
    created = store.create_job(owner="alice", spec=spec, status="PENDING", storage_uri="s3://b/j")
    assert len(created.id) == 12 and created.attempts == 0 and created.message == ""

    found = store.get_job(job_id=created.id)
    assert found is not None
    assert (found.owner, found.status, found.spec, found.storage_uri) == (
        "alice",
        "PENDING",
        spec,
        "s3://b/j",
    )
    assert found.ray_job_id is None and found.started_at is None and found.ended_at is None

    started = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    store.update_job(job_id=created.id, ray_job_id="rldojo-x-1", attempts=1, started_at=started)
    updated = store.get_job(job_id=created.id)
    assert updated is not None
    assert (updated.ray_job_id, updated.attempts, updated.started_at) == ("rldojo-x-1", 1, started)
    assert updated.updated_at > found.updated_at
    assert updated.status == "PENDING"  # update_job never touches the status
    with pytest.raises(ValueError, match="update_job_status"):
        store.update_job(job_id=created.id, status="RUNNING")
    assert store.get_job(job_id="nosuchjob000") is None


def test_list_jobs_newest_first_and_by_status(store: Store) -> None:
    ids = [_job(store, status=status) for status in ("PENDING", "RUNNING", "FAILED", "RUNNING")]
    assert [job.id for job in store.list_jobs()] == ids[::-1]
    assert [job.id for job in store.list_jobs(statuses=["RUNNING"])] == [ids[3], ids[1]]
    assert [job.id for job in store.list_jobs(statuses=["PENDING", "FAILED"])] == [ids[2], ids[0]]
    assert store.list_jobs(statuses=["LOST"]) == []


def test_records_are_scoped_to_their_owner(store: Store) -> None:
    alices = [_job(store, "alice"), _job(store, "alice")]
    bobs = _job(store, "bob")
    assert store.get_job(job_id=bobs, owner="alice") is None
    found = store.get_job(job_id=bobs, owner="bob")
    assert found is not None and found.owner == "bob"
    assert [job.id for job in store.list_jobs(owner="alice")] == alices[::-1]
    assert [job.id for job in store.list_jobs(owner="bob")] == [bobs]
    assert store.list_jobs(owner="carol") == []

    alice_eval = _evaluation(store, alices[0], "alice")
    bob_eval = _evaluation(store, bobs, "bob")
    assert store.get_evaluation(evaluation_id=bob_eval, owner="alice") is None
    assert store.get_evaluation(evaluation_id=alice_eval, owner="alice") is not None
    assert [e.id for e in store.list_evaluations(owner="alice")] == [alice_eval]
    assert [e.id for e in store.list_evaluations(job_id=bobs)] == [bob_eval]
    assert {e.id for e in store.list_evaluations()} == {alice_eval, bob_eval}


def test_status_changes_are_compare_and_swap(store: Store) -> None:
    job_id = _job(store, status="RUNNING")
    ended = dt.datetime.now(UTC)
    assert not store.update_job_status(
        job_id=job_id, expected=["PENDING"], status="FAILED", message="stale writer"
    )
    unchanged = store.get_job(job_id=job_id)
    assert unchanged is not None and (unchanged.status, unchanged.message) == ("RUNNING", "")

    assert store.update_job_status(
        job_id=job_id,
        expected=["PENDING", "RUNNING"],
        status="SUCCEEDED",
        message="done",
        ended_at=ended,
    )
    done = store.get_job(job_id=job_id)
    assert done is not None
    assert (done.status, done.message, done.ended_at) == ("SUCCEEDED", "done", ended)
    assert not store.update_job_status(job_id=job_id, expected=["RUNNING"], status="STOPPED")
    assert not store.update_job_status(job_id="nosuchjob000", expected=["RUNNING"], status="LOST")


def test_jobs_version_counts_committed_job_writes_only(store: Store) -> None:
    """The API's read cache keys on it: a write must move it, a read or a lost race not."""
    start = store.jobs_version
    job_id = _job(store, status="RUNNING")
    assert store.jobs_version == start + 1
    store.get_job(job_id=job_id)
    store.list_jobs()
    assert not store.update_job_status(job_id=job_id, expected=["PENDING"], status="FAILED")
    assert store.jobs_version == start + 1
    store.update_job(job_id=job_id, name="renamed")
    assert store.update_job_status(job_id=job_id, expected=["RUNNING"], status="STOPPED")
    store.delete_job(job_id=job_id)
    assert store.jobs_version == start + 4


def test_evaluations_round_trip_and_compare_and_swap(store: Store) -> None:
    job_id = _job(store)
    evaluation_id = _evaluation(store, job_id)
    found = store.get_evaluation(evaluation_id=evaluation_id)
    assert found is not None
    assert (found.job_id, found.checkpoint_id, found.episodes, found.seed, found.video) == (
        job_id,
        "abcde_00000-000010",
        5,
        3,
        True,
    )
    assert found.result is None and found.ray_job_id is None

    store.update_evaluation(evaluation_id=evaluation_id, ray_job_id="rldojo-eval-1")
    assert not store.update_evaluation_status(
        evaluation_id=evaluation_id, expected=["RUNNING"], status="SUCCEEDED"
    )
    result = {"episodes": 5, "return_mean": 100.0, "returns": [100.0] * 5, "video": True}
    assert store.update_evaluation_status(
        evaluation_id=evaluation_id, expected=["PENDING"], status="SUCCEEDED", result=result
    )
    done = store.get_evaluation(evaluation_id=evaluation_id)
    assert done is not None
    assert (done.status, done.result, done.ray_job_id) == ("SUCCEEDED", result, "rldojo-eval-1")


def test_delete_job_removes_its_evaluations_only(store: Store) -> None:
    doomed, kept = _job(store), _job(store)
    _evaluation(store, doomed)
    _evaluation(store, doomed)
    survivor = _evaluation(store, kept)
    store.delete_job(job_id=doomed)
    assert store.get_job(job_id=doomed) is None
    assert store.list_evaluations(job_id=doomed) == []
    assert [e.id for e in store.list_evaluations()] == [survivor]
    assert store.get_job(job_id=kept) is not None
    store.delete_job(job_id=doomed)  # deleting twice is harmless


def test_timestamps_come_back_in_utc(store: Store) -> None:
    before = dt.datetime.now(UTC)
    job_id = _job(store)
    created = store.get_job(job_id=job_id)
    assert created is not None
    assert created.created_at.utcoffset() == dt.timedelta(0)
    assert before <= created.created_at <= dt.datetime.now(UTC)

    # An aware time in another zone is the same instant, handed back in UTC; a naive one is UTC.
    local = dt.datetime(2026, 3, 4, 17, 30, tzinfo=IST)
    naive = dt.datetime(2026, 3, 4, 12, 0)
    store.update_job(job_id=job_id, started_at=local, ended_at=naive)
    job = store.get_job(job_id=job_id)
    assert job is not None and job.started_at is not None and job.ended_at is not None
    assert job.started_at == local and job.started_at.utcoffset() == dt.timedelta(0)
    assert job.ended_at == naive.replace(tzinfo=UTC)
    assert job.ended_at.utcoffset() == dt.timedelta(0)
    assert job.started_at.isoformat() == "2026-03-04T12:00:00+00:00"

    evaluation = store.get_evaluation(evaluation_id=_evaluation(store, job_id))
    assert evaluation is not None and evaluation.created_at.utcoffset() == dt.timedelta(0)


def test_ping_reaches_the_database(store: Store) -> None:
    """/healthz's database check: a round trip that reads no table and names no owner."""
    store.ping()
    store.close()
    store.ping()  # the pool reconnects, as after a database restart


def test_non_finite_numbers_are_stored_as_null(store: Store) -> None:
    """PostgreSQL's json type refuses NaN/Infinity; both backends store them as null."""
    spec = {"stop": {"return_mean": float("inf")}, "config": {"x": float("nan"), "y": 1.5}}
    job_id = store.create_job(owner="alice", spec=spec, status="PENDING").id
    evaluation_id = _evaluation(store, job_id)
    store.update_evaluation_status(
        evaluation_id=evaluation_id,
        expected=["PENDING"],
        status="SUCCEEDED",
        result={"return_std": float("nan"), "returns": [float("-inf"), 2.0]},
    )
    job = store.get_job(job_id=job_id)
    evaluation = store.get_evaluation(evaluation_id=evaluation_id)
    assert job is not None and evaluation is not None
    assert job.spec == {"stop": {"return_mean": None}, "config": {"x": None, "y": 1.5}}
    assert evaluation.result == {"return_std": None, "returns": [None, 2.0]}


def _race(contenders: list[Callable[[], bool]]) -> list[bool]:
    """Run the callables at the same instant on their own threads; their results in order."""
    barrier = threading.Barrier(len(contenders))
    results: list[bool | None] = [None] * len(contenders)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = contenders[index]()
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(contenders))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return [bool(result) for result in results]


def test_concurrent_status_updates_have_one_winner(store_url: str) -> None:
    """Two API processes (two engines) and their threads race to move the same jobs on."""
    first, second = Store(store_url), Store(store_url)
    try:
        for _round in range(6):
            job_id = first.create_job(owner="alice", spec={}, status="RUNNING").id
            targets = ["STOPPED", "SUCCEEDED", "FAILED", "LOST"]
            contenders = [
                partial(s.update_job_status, job_id=job_id, expected=["RUNNING"], status=t)
                for s in (first, second)
                for t in targets
            ]
            won = _race(contenders)
            assert won.count(True) == 1, won
            winner = (targets + targets)[won.index(True)]
            for reader in (first, second):
                job = reader.get_job(job_id=job_id)
                assert job is not None and job.status == winner
    finally:
        first.close()
        second.close()


def test_two_processes_creating_the_schema_at_once(store_url: str) -> None:
    """API replicas starting together against an empty database both come up."""
    stores: list[Store] = []
    lock = threading.Lock()

    def open_store() -> bool:
        opened = Store(store_url)
        with lock:
            stores.append(opened)
        return True

    try:
        assert _race([open_store] * 4) == [True] * 4
        job_id = _job(stores[0])
        assert all(s.get_job(job_id=job_id) is not None for s in stores)
    finally:
        for opened in stores:
            opened.close()


def test_plain_postgresql_urls_use_psycopg(postgres: PostgresServer) -> None:
    """`postgresql://` (what most tools write) works without naming the driver."""
    url = postgres.create_database("plain_url").replace("postgresql+psycopg://", "postgresql://")
    plain = Store(url)
    try:
        job_id = _job(plain)
        assert plain.engine.dialect.driver == "psycopg"
        assert plain.get_job(job_id=job_id) is not None
    finally:
        plain.close()
