"""Every id rldojo offers passes Gymnasium's checker, is seed-deterministic and renders frames."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs

SEED = 7
ROLLOUT_STEPS = 50

# check_env warnings that describe a deliberate choice rather than a defect.
ACCEPTED_WARNINGS = (
    "is different from the unwrapped version",  # we also check the gym.make'd env on purpose
    "recommend using a symmetric and normalized space",  # the book's action range is [-3, 3]
    "space minimum value is -infinity",  # CartPole-v1's velocities, as Gymnasium ships them
    "space maximum value is infinity",
)


def _rollout(env: gym.Env, actions: list) -> list[tuple]:
    """Seeded reset, then `actions`, resetting (unseeded) whenever an episode ends."""
    obs, _ = env.reset(seed=SEED)
    trace: list[tuple] = [(np.asarray(obs).copy(),)]
    for action in actions:
        obs, reward, terminated, truncated, _ = env.step(action)
        trace.append((np.asarray(obs).copy(), float(reward), terminated, truncated))
        if terminated or truncated:
            obs, _ = env.reset()
            trace.append((np.asarray(obs).copy(),))
    return trace


def _assert_same(first: list[tuple], second: list[tuple]) -> None:
    assert len(first) == len(second)
    for step, (a, b) in enumerate(zip(first, second, strict=True)):
        np.testing.assert_array_equal(a[0], b[0], err_msg=f"observation {step} differs")
        assert a[1:] == b[1:], f"reward/terminated/truncated {step} differ"


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
def test_check_env(env_id: str) -> None:
    env = gym.make(env_id)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # Render modes are checked below in rgb_array only: "human" would open a window.
        check_env(env.unwrapped, skip_render_check=True)
        check_env(env, skip_render_check=True)
    unexpected = [
        str(w.message)
        for w in caught
        if not any(accepted in str(w.message) for accepted in ACCEPTED_WARNINGS)
    ]
    assert not unexpected
    env.close()


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
def test_same_seed_same_rollout(env_id: str) -> None:
    env = gym.make(env_id)
    env.action_space.seed(SEED)
    actions = [env.action_space.sample() for _ in range(ROLLOUT_STEPS)]

    first = _rollout(env, actions)
    again = _rollout(env, actions)  # the same object: a seeded reset must restore all state
    fresh = _rollout(gym.make(env_id), actions)

    _assert_same(first, again)
    _assert_same(first, fresh)


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
def test_render_rgb_array(env_id: str) -> None:
    if env_id == "CartPole-v1":
        # Gymnasium draws CartPole-v1 with pygame, which rldojo does not install.
        pytest.importorskip("pygame")
    env = gym.make(env_id, render_mode="rgb_array")
    env.reset(seed=SEED)
    frame = env.render()
    assert isinstance(frame, np.ndarray)
    assert frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8
    assert frame.min() < frame.max()  # something is drawn
    env.close()


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
def test_each_env_is_of_the_kind_the_registry_says(env_id: str) -> None:
    """The algorithms' env lists are derived from `envs.KINDS`: it must match the real spaces."""
    env = envs.make(env_id)
    try:
        assert envs.kind_of(env) == envs.KINDS[env_id]
    finally:
        env.close()


def test_an_unknown_atari_game_is_refused_with_the_closest_names() -> None:
    from envs.atari import game_names, resolve_game

    assert resolve_game("pong") == resolve_game("ALE/Pong-v5") == "ALE/Pong-v5"
    assert {"breakout", "pong", "mspacman"} <= set(game_names())
    with pytest.raises(
        ValueError, match=r"game='Breakot' is not an ALE game; did you mean breakout\?"
    ):
        resolve_game("Breakot")
    with pytest.raises(ValueError, match="is not an ALE game; pass a name like 'Pong'"):
        resolve_game("not-a-game-at-all")
    with pytest.raises(ValueError, match="did you mean breakout"):
        envs.make("rldojo/Atari-v0", {"game": "breakot"})
