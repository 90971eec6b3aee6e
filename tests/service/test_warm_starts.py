"""A warm start's checks at submit (the pure decision, then through the real server), and a
warm-started job that plays as its parent's checkpoint does."""

from __future__ import annotations

import os
import pickle
import subprocess
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from algorithms.common import metrics
from algorithms.evaluation import MODULE_PATH
from service.client import APIError, Client
from service.compiler import compile_job
from service.spec import SpecError, parse_spec
from service.warm_starts import Parent, problems
from tests.service.conftest import ALICE, RLDOJO, Server

GRID = (gym.spaces.Discrete(25), gym.spaces.Discrete(4))


def _spec(**from_checkpoint: object):
    return parse_spec(
        {"algorithm": "q_learning", "from_checkpoint": {"job": "p", **from_checkpoint}}
    )


def _parent(**changes: object) -> Parent:
    facts = {
        "job_id": "p",
        "algorithm": "q_learning",
        "spaces": GRID,
        "checkpoint_id": "t-000003",
        "checkpoint_ids": ("t-000003",),
        "has_replay": False,
    }
    return Parent(**{**facts, **changes})  # type: ignore[arg-type]


def test_a_matching_parent_has_no_problems() -> None:
    assert problems(_spec(), _parent(), GRID) == []


def test_each_mismatch_is_named_at_its_field() -> None:
    wrong_algorithm = problems(_spec(), _parent(algorithm="sarsa"), GRID)
    assert wrong_algorithm == [
        (("from_checkpoint", "job"), "job p trained sarsa; this job is q_learning")
    ]
    [(where, message)] = problems(_spec(), _parent(), (gym.spaces.Discrete(36), GRID[1]))
    assert where == ("from_checkpoint", "job") and "Discrete(36)" in message
    [(where, message)] = problems(_spec(checkpoint="t-9"), _parent(checkpoint_id=None), GRID)
    assert where == ("from_checkpoint", "checkpoint") and "(it has: t-000003)" in message


def test_a_replay_is_kept_only_from_a_checkpoint_that_has_one() -> None:
    dqn = parse_spec({"algorithm": "dqn", "from_checkpoint": {"job": "p", "keep_replay": True}})
    cartpole = (gym.spaces.Box(-np.inf, np.inf, (4,)), gym.spaces.Discrete(2))
    parent = _parent(algorithm="dqn", spaces=cartpole)
    [(where, _)] = problems(dqn, parent, cartpole)
    assert where == ("from_checkpoint", "keep_replay")
    assert problems(dqn, _parent(algorithm="dqn", spaces=None, has_replay=True), cartpole) == []
    with pytest.raises(SpecError, match="from_checkpoint.keep_replay: q_learning has no replay"):
        _spec(keep_replay=True)


def test_an_unresolved_warm_start_does_not_compile() -> None:
    with pytest.raises(SpecError, match="from_checkpoint: a warm start names a job"):
        compile_job(_spec())


def test_keep_options_without_a_source_are_a_one_line_cli_error() -> None:
    done = subprocess.run(
        [RLDOJO, "submit", "dqn", "--keep-replay", "--url", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == "error: --keep-replay and --keep-optimizer go with --from JOB"


def _weights(folder: Path) -> dict[str, np.ndarray]:
    with (folder / MODULE_PATH / "module_state.pkl").open("rb") as handle:
        return {key: np.asarray(value) for key, value in pickle.load(handle).items()}


def _refused(client: Client, spec: dict) -> str:
    with pytest.raises(APIError) as refused:
        client.submit(spec)
    assert refused.value.status == 422
    return str(refused.value)


@pytest.mark.lifecycle
def test_a_warm_started_job_plays_as_its_parents_checkpoint(
    server: Server, alice: Client, bob: Client, tmp_path: Path
) -> None:
    cartpole = {"algorithm": "dqn", "env": "CartPole-v1", "seed": 0}
    parent = alice.submit(
        {**cartpole, "config": {"learning_starts": 100}, "stop": {"iterations": 2}}
    )
    assert alice.wait(parent.id, timeout=300).status == "SUCCEEDED"
    start = {"job": parent.id}

    # Refused at submit, each at the field it is about, with nothing stored.
    jobs_before = len(alice.jobs())
    assert "from_checkpoint.job: no job" in _refused(
        bob,
        {**cartpole, "from_checkpoint": start},  # not bob's, and not shared
    )
    assert "trained dqn; this job is deep_sarsa" in _refused(
        alice, {**cartpole, "algorithm": "deep_sarsa", "from_checkpoint": start}
    )
    other_env = {**cartpole, "env": "rldojo/MovingObstacles-v0", "from_checkpoint": start}
    assert "(15,)" in _refused(alice, other_env)
    missing = {**cartpole, "from_checkpoint": {**start, "checkpoint": "nope"}}
    assert "from_checkpoint.checkpoint: job" in _refused(alice, missing)
    assert len(alice.jobs()) == jobs_before
    by_cli = subprocess.run(
        [RLDOJO, "submit", "dqn", "--env", "CartPole-v1", "--from", f"{parent.id}:nope"],
        env={**os.environ, "RLDOJO_URL": server.url, "RLDOJO_TOKEN": ALICE},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert by_cli.returncode != 0 and "from_checkpoint.checkpoint: job" in by_cli.stderr
    assert len(by_cli.stderr.strip().splitlines()) == 1, by_cli.stderr

    # No update within the child's one iteration (its warm-up is longer), so it keeps the
    # loaded network as it is and plays the parent's policy; it starts with the parent's replay.
    child = alice.submit(
        {
            **cartpole,
            "config": {"learning_starts": 1_000_000},
            "stop": {"iterations": 1},
            "seed": 1,
            "from_checkpoint": {**start, "keep_replay": True, "keep_optimizer": True},
        }
    )
    # "best" is stored as the checkpoint it was at submit
    assert child.spec["from_checkpoint"]["checkpoint"] in {
        c.id for c in alice.checkpoints(parent.id)
    }
    done = alice.wait(child.id, timeout=300)
    assert done.status == "SUCCEEDED", done.message
    assert "max_restarts" not in alice.logs(child.id)  # Ray's C++ notice, dropped (quiet.py)
    [row] = alice.metrics(child.id)
    assert row["replay_size"] > row[metrics.ENV_STEPS]  # the parent's transitions, then its own
    parent_net = _weights(alice.download(parent.id, "best", tmp_path / "parent"))
    child_net = _weights(alice.download(child.id, "best", tmp_path / "child"))
    assert parent_net.keys() == child_net.keys() and parent_net
    for key, value in parent_net.items():
        np.testing.assert_array_equal(child_net[key], value)

    scores = [
        alice.wait_evaluation(alice.evaluate(job_id, "best", episodes=3, seed=7).id, timeout=300)
        for job_id in (parent.id, child.id)
    ]
    assert all(score.status == "SUCCEEDED" for score in scores), [s.message for s in scores]
    assert scores[0].returns is not None and scores[0].returns == scores[1].returns
