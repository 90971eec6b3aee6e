"""The game of a job's env, and the human-normalized score from the published table."""

from __future__ import annotations

import doctest

import pytest

import envs.atari_scores
from envs.atari_scores import REFERENCE_SCORES, game_of, human_normalized, same_game


def test_the_table_holds_the_57_games_with_the_papers_values() -> None:
    assert len(REFERENCE_SCORES) == 57
    assert REFERENCE_SCORES["breakout"] == (1.7, 30.5)
    assert REFERENCE_SCORES["pong"] == (-20.7, 14.6)
    assert all(human != random for random, human in REFERENCE_SCORES.values())


def test_human_normalized_arithmetic() -> None:
    assert human_normalized("breakout", 1.7) == pytest.approx(0.0)
    assert human_normalized("breakout", 30.5) == pytest.approx(1.0)
    assert human_normalized("breakout", 403.0) == pytest.approx((403.0 - 1.7) / 28.8)
    assert human_normalized("pong", 18.0) == pytest.approx(38.7 / 35.3)
    assert human_normalized("ALE/SpaceInvaders-v5", 148.0) == pytest.approx(0.0)
    assert human_normalized("tetris", 3.0) is None  # an ALE game the table has not
    assert human_normalized(None, 3.0) is None


@pytest.mark.parametrize(
    ("env_id", "env_config", "game"),
    [
        ("rldojo/Breakout-v0", {}, "breakout"),
        ("rldojo/Atari-v0", {}, "breakout"),  # make_atari's default game
        ("rldojo/Atari-v0", {"game": "ALE/Pong-v5"}, "pong"),
        ("rldojo/Atari-v0", {"game": "spaceinvaders"}, "space_invaders"),
        ("ALE/MontezumaRevenge-v5", None, "montezuma_revenge"),
        ("ALE/Tetris-v5", None, "tetris"),
        ("PongNoFrameskip-v4", None, "pong"),
        ("CartPole-v1", None, None),
        ("rldojo/GridWorld-v0", {"size": 5}, None),
    ],
)
def test_game_of(env_id: str, env_config: dict | None, game: str | None) -> None:
    assert game_of(env_id, env_config) == game


def test_same_game_accepts_any_spelling() -> None:
    assert same_game("space_invaders", "SpaceInvaders")
    assert same_game("pong", "ALE/Pong-v5")
    assert not same_game("pong", "breakout") and not same_game(None, "pong")


def test_docstring_examples_run() -> None:
    assert doctest.testmod(envs.atari_scores, raise_on_error=True).failed == 0
