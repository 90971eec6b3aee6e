"""`rldojo serve` with its job store on a real PostgreSQL server and its storage root on `s3://`
(a real local S3 server, moto): one job trained, listed, downloaded and evaluated end to end.

pyarrow (and so Ray Tune, the service's storage and the evaluation job) finds the endpoint in
`AWS_ENDPOINT_URL` and the keys in `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`; the server gets
them in its environment and hands them on to the embedded Ray head it starts. It starts its own
Ray head, so it runs in `make test-cluster` (marker `cluster`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from algorithms.common import metrics
from service.jobdir.archives import plays_the_policy
from service.store import Store
from tests.backends import PostgresServer, S3Server
from tests.service.conftest import ALICE, Server

BUCKET = "rldojo-results"
PREFIX = "team/rldojo"

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def bucket(s3: S3Server) -> str:
    return s3.create_bucket(BUCKET)


@pytest.fixture(scope="module")
def cloud_server(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer, s3: S3Server, bucket: str
) -> Iterator[tuple[Server, str]]:
    """`rldojo serve` with its job store on PostgreSQL and its storage root on S3."""
    from service import cluster
    from service.settings import Settings

    data_dir = tmp_path_factory.mktemp("rldojo-cloud")
    database = postgres.create_database("service")
    running = Server(data_dir)
    running.env.update(s3.env)
    running.env.update(
        RLDOJO_DATABASE_URL=database,
        RLDOJO_STORAGE_ROOT=f"{bucket}/{PREFIX}",
        RLDOJO_RAY_NUM_CPUS="1",
    )
    try:
        running.start()
        yield running, database
    finally:
        running.stop()
        cluster.stop_embedded_head(Settings(data_dir=data_dir))


def test_job_on_s3_and_postgresql_end_to_end(
    cloud_server: tuple[Server, str], s3: S3Server, tmp_path: Path
) -> None:
    server, database = cloud_server
    spec = {
        "algorithm": "q_learning",
        "env": "rldojo/GridWorld-v0",
        "seed": 1,
        "stop": {"iterations": 12},
        "checkpoint": {"every": 5, "keep": 3},
    }
    with server.client(ALICE) as alice:
        assert alice.health().model_dump() == {"status": "ok", "ray": True, "database": True}
        job = alice.submit(spec)
        assert job["storage_uri"] == f"s3://{BUCKET}/{PREFIX}/jobs/{job['id']}"
        final = alice.wait(job["id"], timeout=180)
        assert final["status"] == "SUCCEEDED", alice.logs(job["id"])[-3000:]

        # Tune wrote results and checkpoints to the bucket, under the prefix, and nowhere local.
        keys = s3.keys(BUCKET, f"{PREFIX}/jobs/{job['id']}/")
        assert any(key.endswith("/result.json") for key in keys)
        assert any("/checkpoint_000002/" in key for key in keys)
        assert not (server.data_dir / "storage").exists()

        rows = alice.metrics(job["id"])
        assert [row[metrics.ITERATION] for row in rows] == list(range(1, 13))
        listed = alice.checkpoints(job["id"])
        assert [c["iteration"] for c in listed] == [5, 10, 12]
        by_iteration = {row[metrics.ITERATION]: row for row in rows}
        assert [c["return_mean"] for c in listed] == [
            by_iteration[i][metrics.EPISODE_RETURN_MEAN] for i in (5, 10, 12)
        ]

        folder = alice.download(job["id"], listed[-1]["id"], tmp_path / "pulled")
        assert folder.name == "checkpoint_000002"
        assert (folder / "algorithm_state.pkl").is_file()
        pulled = {str(f.relative_to(folder)) for f in folder.rglob("*") if f.is_file()}
        prefix = f"{PREFIX}/jobs/{job['id']}/"  # the job's directory is its Tune experiment
        on_s3 = {
            key.split("/checkpoint_000002/", 1)[1]
            for key in keys
            if key.startswith(prefix) and "/checkpoint_000002/" in key and not key.endswith("/")
        }
        # weights only by default; with the replay (here: EnvRunner and optimizer state) all of it
        assert pulled == {key for key in on_s3 if plays_the_policy(key)} != on_s3
        whole = alice.download(job["id"], listed[-1]["id"], tmp_path / "whole", with_replay=True)
        assert {str(f.relative_to(whole)) for f in whole.rglob("*") if f.is_file()} == on_s3

        # The evaluation job pulls the checkpoint from S3 on the cluster and writes back there.
        started = alice.evaluate(job["id"], listed[-1]["id"], episodes=3, seed=2)
        done = alice.wait_evaluation(started["id"], timeout=180)
        assert done["status"] == "SUCCEEDED", done["message"]
        assert done["return_mean"] == 100.0
        evaluation_result = f"{PREFIX}/jobs/{job['id']}/evaluations/{done['id']}/result.json"
        assert evaluation_result in s3.keys(BUCKET, PREFIX)

    # The service's records are in PostgreSQL.
    store = Store(database)
    try:
        record = store.get_job(job_id=job["id"], owner="alice")
        assert record is not None and record.status == "SUCCEEDED"
        assert [e.id for e in store.list_evaluations(job_id=job["id"])] == [done["id"]]
    finally:
        store.close()
