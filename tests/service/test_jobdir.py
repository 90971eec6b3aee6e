"""Job directories on both kinds of storage root: a local directory and `s3://` on a real
local S3 server (moto). pyarrow finds that server through `AWS_ENDPOINT_URL` (see `S3Server.env`).
"""

from __future__ import annotations

import io
import json
import os
import pickle
import tarfile
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from algorithms.common import metrics
from service.jobdir import JobDirectory
from service.jobdir.archives import is_module_state, without_target_networks
from service.jobdir.checkpoints import Checkpoint
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
                "timestamp": pid * 1000 + i,
                "time_total_s": i / 10,
                "env_runners": {"episode_return_mean": float(i)},
            }
        )
        + "\n"
        for i in iterations
    )


def test_files_round_trip_and_delete(storage: Storage) -> None:
    job = storage.job("j1")
    job.write_spec({"algorithm": "q_learning"})
    job.write_compiled({"config": {"gamma": 0.9}})
    assert job.read_spec() == {"algorithm": "q_learning"}
    assert job.read_compiled() == {"config": {"gamma": 0.9}}
    assert b"".join(job.open_stream(f"{job.path}/spec.json", chunk=4)).startswith(b"{")
    assert job.exists() and job.read_text("missing.json") is None
    assert job.trial_paths() == [] and job.checkpoints() == [] and job.rows() == []
    assert job.uri == f"{storage.root_uri}/jobs/j1"
    assert not job.stop_requested(1)
    job.request_stop(1)
    assert job.stop_requested(1) and not job.stop_requested(2)
    job.write_progress(2, {"phase": "waiting", "message": "waiting for resources"})
    assert job.read_progress(2) == {"phase": "waiting", "message": "waiting for resources"}

    job.delete()
    assert not job.exists()
    assert job.read_spec() is None


def test_jobs_are_separate_rooms(storage: Storage) -> None:
    """Two jobs' directories never see each other's rows, even with the same trial name."""
    for job_id, offset in (("alice1", 0), ("bob1", 100)):
        job = storage.job(job_id)
        job.write_text(f"{TRIAL}/result.json", _rows(range(1 + offset, 4 + offset), pid=offset))
    alice, bob = storage.job("alice1"), storage.job("bob1")
    assert [r[metrics.ITERATION] for r in alice.rows()] == [1, 2, 3]
    assert [r[metrics.ITERATION] for r in bob.rows()] == [101, 102, 103]


def test_rows_are_continuous_across_attempts(storage: Storage) -> None:
    """A resumed attempt's rows replace the iterations it went over again; none is lost on
    storage, and a fresh result.json never hides the rows served before it."""
    job = storage.job("j2")
    trial = f"{TRIAL}"
    job.write_text(f"{trial}/result.json", _rows(range(1, 6), pid=101))
    first = job.rows()
    assert [r[metrics.ITERATION] for r in first] == [1, 2, 3, 4, 5]
    assert {r["attempt"] for r in first} == {1}

    job.keep_attempt_rows(1)
    assert job.exists(f"{trial}/result.attempt-001.json")
    assert job.rows() == first  # the copy is not counted twice

    # Attempt 2 restarted from scratch (Tune had no checkpoint of it): a fresh file, from 1.
    job.write_text(f"{trial}/result.json", _rows(range(1, 4), pid=202))
    job.keep_attempt_rows(2)
    # Attempt 3 resumed from a checkpoint at iteration 2: Tune carried attempt 2's rows over.
    job.write_text(f"{trial}/result.json", _rows(range(1, 4), 202) + _rows(range(3, 5), 303))
    rows = job.rows()
    assert [(r[metrics.ITERATION], r["pid"], r["attempt"]) for r in rows] == [
        (1, 202, 2),
        (2, 202, 2),
        (3, 303, 3),
        (4, 303, 3),
    ]
    assert rows[-1][metrics.EPISODE_RETURN_MEAN] == 4.0 and rows[-1]["trial_id"] == "abcde_00000"
    # every attempt's rows stay on storage
    assert job.read_text(f"{trial}/result.attempt-001.json").count("\n") == 5
    if not storage.root_uri.startswith("s3://"):  # `rldojo plot DIR` reads through the same class
        local = JobDirectory.open(job.path).rows()
        assert [(r[metrics.ITERATION], r["pid"]) for r in local] == [
            (r[metrics.ITERATION], r["pid"]) for r in rows
        ]


def test_a_row_file_cut_short_by_a_killed_copy_keeps_the_rows_served_before(
    storage: Storage,
) -> None:
    """A driver killed while it copied result.json to storage leaves the file cut short, mid-line:
    the rows an earlier attempt's file holds past the cut are still served."""
    job = storage.job("j-cut")
    job.write_text(f"{TRIAL}/result.json", _rows(range(1, 11), pid=101))
    job.keep_attempt_rows(1)
    carried = _rows(range(1, 11), pid=101) + _rows(range(11, 15), pid=202)
    cut = carried[: carried.index('"training_iteration": 7,')]  # rows 1-6 and half of row 7
    job.write_text(f"{TRIAL}/result.json", cut)
    rows = job.rows()
    assert [(r[metrics.ITERATION], r["pid"]) for r in rows] == [(i, 101) for i in range(1, 11)]


def test_the_best_trial_is_the_best_return_any_iteration_reached(storage: Storage) -> None:
    job = storage.job("j3")
    rows = [("abcde_00000", 1, 1.0), ("abcde_00000", 2, 5.0), ("abcde_00000", 3, 3.0)]
    rows += [("abcde_00001", 1, 4.0), ("abcde_00001", 2, 4.5)]
    for trial_id in ("abcde_00000", "abcde_00001"):
        job.write_text(
            f"QLearning_{trial_id}/result.json",
            "".join(
                json.dumps(
                    {
                        "training_iteration": i,
                        "trial_id": t,
                        "timestamp": i,
                        "env_runners": {"episode_return_mean": value},
                    }
                )
                + "\n"
                for t, i, value in rows
                if t == trial_id
            ),
        )
    summary = job.summary()
    assert summary["best_trial"] == {"trial_id": "abcde_00000", "return_mean": 5.0, "iteration": 2}
    assert summary["latest_metrics"][metrics.EPISODE_RETURN_MEAN] in (3.0, 4.5)


def test_missing_bucket_is_named(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValueError, match="s3://no-such-bucket/prefix: bucket 'no-such-bucket'"):
        Storage("s3://no-such-bucket/prefix")


def test_rows_are_read_as_they_are_appended_and_rewritten(storage: Storage) -> None:
    """A growing file is read from where the last read stopped; a rewrite is read again whole,
    and a line still being written waits for its newline."""
    job = storage.job("j3")
    job.write_text(f"{TRIAL}/result.json", _rows(range(1, 4), pid=1))
    assert [r[metrics.ITERATION] for r in job.rows()] == [1, 2, 3]
    grown = _rows(range(1, 6), pid=1)
    job.write_text(f"{TRIAL}/result.json", grown + '{"training_iteration": 6, "tri')
    assert [r[metrics.ITERATION] for r in job.rows()] == [1, 2, 3, 4, 5]
    rewritten = _rows(range(1, 3), pid=1) + _rows(range(3, 8), pid=2)  # same start, new rows
    job.write_text(f"{TRIAL}/result.json", rewritten)
    assert [(r[metrics.ITERATION], r["pid"]) for r in job.rows()] == [
        (1, 1),
        (2, 1),
        *[(i, 2) for i in range(3, 8)],
    ]


# A DQN checkpoint's files as `Algorithm.save_to_path` and rldojo's DQN write them.
DQN_CHECKPOINT = [
    "class_and_ctor_args.pkl",
    "algorithm_state.pkl",
    "rllib_checkpoint.json",
    "env_runner/state.pkl",
    "env_runner/env_to_module_connector/state.pkl",
    "replay/shard_0.npz",
    "learner_group/state.pkl",
    "learner_group/learner/state.pkl",
    "learner_group/learner/rl_module/metadata.json",
    "learner_group/learner/rl_module/default_policy/module_state.pkl",
    "learner_group/learner/rl_module/default_policy/class_and_ctor_args.pkl",
]
POLICY_FILES = {
    "class_and_ctor_args.pkl",
    "algorithm_state.pkl",
    "rllib_checkpoint.json",
    "learner_group/state.pkl",
    "learner_group/learner/rl_module/metadata.json",
    "learner_group/learner/rl_module/default_policy/module_state.pkl",
    "learner_group/learner/rl_module/default_policy/class_and_ctor_args.pkl",
}


def test_an_archive_is_the_policy_unless_the_whole_checkpoint_is_asked(storage: Storage) -> None:
    job = storage.job("j1")
    folder = f"{TRIAL}/checkpoint_000003"
    for name in DQN_CHECKPOINT:
        job.write_bytes(f"{folder}/{name}", name.encode())
    checkpoint = Checkpoint("t-3", "t", 3, 300, 1.0, f"{job.path}/{folder}")

    def files_in(stream: Iterator[bytes]) -> dict[str, bytes]:
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            members = [m for m in tar.getmembers() if m.isfile()]
            return {
                m.name.removeprefix("checkpoint_000003/"): tar.extractfile(m).read()  # type: ignore[union-attr]
                for m in members
            }

    light = files_in(job.archive(checkpoint))
    assert set(light) == POLICY_FILES
    assert all(content == name.encode() for name, content in light.items())
    assert set(files_in(job.archive(checkpoint, whole=True))) == set(DQN_CHECKPOINT)


def test_the_weights_only_module_state_drops_the_target_networks() -> None:
    rng = np.random.default_rng(0)
    state = OrderedDict(
        (name, rng.normal(size=(3, 2)).astype(np.float32))
        for name in ("q_net.torso.weight", "q_net.head.bias", "target_q_net.torso.weight")
    )
    light = pickle.loads(without_target_networks(pickle.dumps(state)))
    assert type(light) is OrderedDict and list(light) == ["q_net.torso.weight", "q_net.head.bias"]
    assert all(np.array_equal(light[name], state[name]) for name in light)
    no_targets = pickle.dumps({"pi.weight": np.zeros(2)})
    assert without_target_networks(no_targets) == no_targets
    assert without_target_networks(b"not a pickle") == b"not a pickle"
    # a pickle that would run code is passed on as it came, never loaded
    assert without_target_networks(pickle.dumps(os.getcwd)) == pickle.dumps(os.getcwd)


def test_module_states_are_found_by_their_place() -> None:
    assert is_module_state("learner_group/learner/rl_module/default_policy/module_state.pkl")
    assert not is_module_state("learner_group/learner/rl_module/module_state.pkl")
    assert not is_module_state("learner_group/learner/state.pkl")
    assert not is_module_state("learner_group/learner/rl_module/p/sub/module_state.pkl")
