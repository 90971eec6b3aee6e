"""The game is part of an Atari env's identity: listed, filtered, ranked per game, pulled per game.

Scored evaluations are written into the server's own database (training and evaluating real
Atari agents for each game would take minutes); the server, its HTTP API and the CLI are real.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from service.client import Client
from service.settings import Settings
from service.status import JobStatus
from service.store import Store
from tests.service.conftest import BOB, RLDOJO, Server

ATARI = "rldojo/Atari-v0"


def _scored_job(store: Store, game: str, returns: list[tuple[float, str]]) -> str:
    """A finished, shared Atari job of `game` with one evaluation per (return, protocol)."""
    spec = {"algorithm": "dqn", "env": ATARI, "env_config": {"game": game}, "stop": {}}
    job = store.create_job(
        owner="alice", spec=spec, status=JobStatus.SUCCEEDED, shared=True, name=f"{game}-job"
    )
    for index, (score, protocol) in enumerate(returns):
        evaluation = store.create_evaluation(
            owner="alice",
            job_id=job.id,
            checkpoint_id=f"checkpoint_00000{index}",
            episodes=10,
            seed=0,
            video=False,
            status=JobStatus.PENDING,
        )
        result = {"return_mean": score, "return_std": 1.0, "protocol": protocol}
        store.update_evaluation_status(
            evaluation_id=evaluation.id,
            expected=[JobStatus.PENDING],
            status=JobStatus.SUCCEEDED,
            result=result,
        )
    return job.id


def _cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RLDOJO_TOKEN": BOB, "RLDOJO_URL": server.url, "COLUMNS": "200"}
    return subprocess.run([RLDOJO, *args], env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def games(server: Server) -> dict[str, str]:
    store = Store(str(Settings(data_dir=server.data_dir).database_url))
    return {
        "pong": _scored_job(store, "ALE/Pong-v5", [(-21.0, "book"), (18.0, "standard")]),
        "space_invaders": _scored_job(store, "SpaceInvaders", [(0.0, "standard")]),
    }


def test_jobs_carry_their_game_and_filter_by_it(games: dict[str, str], bob: Client) -> None:
    shared = {job.id: job.game for job in bob.jobs(shared=True)}
    assert shared[games["pong"]] == "pong" and shared[games["space_invaders"]] == "space_invaders"
    assert [job.id for job in bob.jobs(shared=True, game="Pong")] == [games["pong"]]
    assert [job.id for job in bob.jobs(shared=True, game="ALE/SpaceInvaders-v5")] == [
        games["space_invaders"]
    ]


def test_the_leaderboard_ranks_within_a_game_by_human_normalized_score(
    games: dict[str, str], bob: Client
) -> None:
    board = bob.leaderboard(ATARI)
    assert [e.game for e in board] == ["pong", "pong", "space_invaders"]  # never interleaved
    best, worst, invaders = board
    assert (best.return_mean, best.protocol) == (18.0, "standard")
    assert best.human_normalized == pytest.approx((18.0 + 20.7) / 35.3)
    assert worst.protocol == "book" and worst.human_normalized == pytest.approx(-0.3 / 35.3)
    assert invaders.human_normalized == pytest.approx(-148.0 / 1520.7)
    only = bob.leaderboard(ATARI, game="space_invaders")
    assert [e.job_id for e in only] == [games["space_invaders"]]


def test_the_cli_lists_ranks_and_pulls_per_game(games: dict[str, str], server: Server) -> None:
    listed = _cli(server, "jobs", "--shared", "--game", "pong", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [job["game"] for job in json.loads(listed.stdout)] == ["pong"]
    board = _cli(server, "leaderboard", "--env", ATARI, "--game", "pong")
    assert board.returncode == 0, board.stderr
    assert "standard" in board.stdout and "1.096" in board.stdout  # protocol and HNS shown
    mixed = _cli(server, "pull", "--best-for", ATARI, "--out", "/tmp")
    assert mixed.returncode == 2
    assert "several games (pong, space_invaders): name one with --game" in mixed.stderr
