"""The storage layer on both kinds of root: a local directory and `s3://` on a real local S3
server (moto). pyarrow finds that server through `AWS_ENDPOINT_URL` (see `S3Server.env`).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from algorithms.common import metrics
from service import training
from service.storage import Storage
from tests.backends import S3Server

TRIAL = "QLearning_rldojo_GridWorld-v0_abcde_00000_0_2026-01-01_00-00-00"


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return Storage(str(tmp_path / "storage"))
    s3 = request.getfixturevalue("s3")
    monkeypatch = request.getfixturevalue("monkeypatch")
    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    bucket = s3.create_bucket(f"rldojo-{uuid.uuid4().hex[:8]}")
    return Storage(f"{bucket}/team/rldojo")


def _rows(iterations: range, pid: int) -> str:
    return "".join(
        json.dumps(
            {
                "training_iteration": i,
                "trial_id": "abcde_00000",
                "pid": pid,
                "env_runners": {"episode_return_mean": float(i)},
            }
        )
        + "\n"
        for i in iterations
    )


def test_files_round_trip_and_delete(storage: Storage) -> None:
    spec = f"{storage.job_path('j1')}/spec.json"
    storage.write_text(spec, '{"algorithm": "q_learning"}')
    assert storage.read_text(spec) == '{"algorithm": "q_learning"}'
    assert b"".join(storage.open_stream(spec, chunk=4)) == b'{"algorithm": "q_learning"}'
    assert storage.exists(storage.job_path("j1"))
    assert storage.read_text(f"{storage.job_path('j1')}/missing.json") is None
    assert storage.trial_paths("j1") == [] and storage.checkpoints("j1") == []
    if storage.root_uri.startswith("s3://"):
        assert storage.job_uri("j1") == f"{storage.root_uri}/jobs/j1"

    storage.delete_job("j1")
    assert not storage.exists(storage.job_path("j1"))
    assert storage.read_text(spec) is None


def test_rows_of_earlier_attempts_are_kept(storage: Storage) -> None:
    """A resumed attempt's fresh result.json never hides the rows served before it."""
    trial = f"{storage.job_path('j2')}/run/{TRIAL}"
    storage.write_text(f"{trial}/result.json", _rows(range(1, 6), pid=101))
    first = storage.metric_rows("j2")
    assert [r[metrics.ITERATION] for r in first] == [1, 2, 3, 4, 5]

    storage.keep_attempt_rows("j2", 1)
    assert storage.exists(f"{trial}/result.attempt-001.json")
    assert storage.metric_rows("j2") == first  # the copy is not counted twice

    # Attempt 2 restarted from scratch (Tune had no checkpoint of it): a fresh file, from 1.
    storage.write_text(f"{trial}/result.json", _rows(range(1, 4), pid=202))
    storage.keep_attempt_rows("j2", 2)
    # Attempt 3 resumed from a checkpoint at iteration 2: Tune carried attempt 2's rows over.
    storage.write_text(f"{trial}/result.json", _rows(range(1, 4), 202) + _rows(range(3, 5), 303))
    rows = storage.metric_rows("j2")
    assert rows[:5] == first
    assert [(r[metrics.ITERATION], r["pid"]) for r in rows[5:]] == [
        (1, 202),
        (2, 202),
        (3, 202),
        (3, 303),
        (4, 303),
    ]
    assert rows[-1][metrics.EPISODE_RETURN_MEAN] == 4.0 and rows[-1]["trial_id"] == "abcde_00000"
    if not storage.root_uri.startswith("s3://"):  # `rldojo plot DIR` reads the same files
        local = training.result_rows(trial)
        assert [(r[metrics.ITERATION], r["pid"]) for r in local] == [
            (r[metrics.ITERATION], r["pid"]) for r in rows
        ]


def test_missing_bucket_is_named(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValueError, match="s3://no-such-bucket/prefix: bucket 'no-such-bucket'"):
        Storage("s3://no-such-bucket/prefix")
