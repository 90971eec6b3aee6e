"""Continuous cart-pole of book §5.4: dynamics, failure limits, action clipping."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401  (registers the ids)
from envs.continuous_cartpole import ContinuousCartPoleEnv

TWELVE_DEGREES = 12 * 2 * math.pi / 360


def _env_at(state: list[float], render_mode: str | None = None) -> ContinuousCartPoleEnv:
    """An env placed in `state` through its public `state` attribute (as Gymnasium's CartPole)."""
    env = ContinuousCartPoleEnv(render_mode=render_mode)
    env.reset(seed=0)
    env.state = np.array(state, dtype=np.float64)
    return env


def test_one_push_from_rest_matches_the_equations_by_hand() -> None:
    # From rest with F = 10 N: temp = 10 / 1.1, thetaacc = -temp / (0.5 * (4/3 - 0.1/1.1)),
    # xacc = temp - 0.05 * thetaacc / 1.1 = 9.7561 m/s^2; Euler keeps x, advances velocities.
    obs, reward, terminated, truncated, _ = _env_at([0, 0, 0, 0]).step(np.array([1.0]))
    np.testing.assert_allclose(obs, [0.0, 0.195122, 0.0, -0.292683], atol=1e-6)
    assert (reward, terminated, truncated) == (1.0, False, False)


def test_push_right_speeds_the_cart_right_and_push_left_speeds_it_left() -> None:
    start = [0.01, -0.02, 0.03, 0.01]
    right = _env_at(start).step(np.array([2.0], dtype=np.float32))[0]
    idle = _env_at(start).step(np.array([0.0], dtype=np.float32))[0]
    left = _env_at(start).step(np.array([-2.0], dtype=np.float32))[0]
    assert right[1] > idle[1] > left[1]
    assert right[3] < idle[3] < left[3]  # the pole swings the other way


def test_actions_are_clipped_to_plus_minus_three() -> None:
    start = [0.0, 0.1, -0.02, 0.0]
    at_limit = _env_at(start).step(np.array([3.0]))[0]
    beyond = _env_at(start).step(np.array([50.0]))[0]
    np.testing.assert_array_equal(beyond, at_limit)
    at_limit = _env_at(start).step(np.array([-3.0]))[0]
    beyond = _env_at(start).step(np.array([-50.0]))[0]
    np.testing.assert_array_equal(beyond, at_limit)
    inside = _env_at(start).step(np.array([2.9]))[0]
    assert not np.array_equal(inside, at_limit)


def test_action_must_hold_one_number() -> None:
    with pytest.raises(ValueError, match="one number"):
        _env_at([0, 0, 0, 0]).step(np.array([1.0, 2.0]))


def test_terminates_just_past_twelve_degrees() -> None:
    # Euler: theta' = theta + 0.02 * theta_dot.
    assert not _env_at([0, 0, TWELVE_DEGREES - 0.001, 0.0]).step(np.array([0.0]))[2]
    _, reward, terminated, _, _ = _env_at([0, 0, TWELVE_DEGREES - 0.001, 0.1]).step(np.array([0.0]))
    assert terminated and reward == 1.0
    assert _env_at([0, 0, -TWELVE_DEGREES + 0.001, -0.1]).step(np.array([0.0]))[2]


def test_terminates_past_the_track_edge() -> None:
    assert not _env_at([2.39, 0.4, 0, 0]).step(np.array([0.0]))[2]
    assert _env_at([2.39, 1.0, 0, 0]).step(np.array([0.0]))[2]
    assert _env_at([-2.39, -1.0, 0, 0]).step(np.array([0.0]))[2]


def test_steady_push_topples_the_pole_and_the_episode_ends_there() -> None:
    env = ContinuousCartPoleEnv()
    env.reset(seed=3)
    angles = []
    for _ in range(100):
        obs, reward, terminated, _, _ = env.step(np.array([3.0], dtype=np.float32))
        angles.append(obs[2])
        if terminated:
            break
    assert terminated
    assert all(abs(a) <= TWELVE_DEGREES for a in angles[:-1])
    assert angles[-1] < -TWELVE_DEGREES  # pushing right makes the pole fall left
    with pytest.warns(UserWarning, match="after the episode terminated"):
        assert env.step(np.array([0.0]))[1] == 0.0


def test_initial_state_is_uniform_within_five_hundredths_and_seeded() -> None:
    env = ContinuousCartPoleEnv()
    starts = np.array([env.reset(seed=seed)[0] for seed in range(200)])
    assert np.all(np.abs(starts) <= 0.05)
    assert np.all(starts.min(axis=0) < -0.04) and np.all(starts.max(axis=0) > 0.04)
    np.testing.assert_array_equal(env.reset(seed=5)[0], env.reset(seed=5)[0])


def test_registered_id() -> None:
    env = gym.make("rldojo/ContinuousCartPole-v0")
    assert env.spec.max_episode_steps == 500 and env.spec.reward_threshold == 475.0
    assert env.action_space == gym.spaces.Box(-3.0, 3.0, (1,), np.float32)


def test_render_moves_the_cart_with_the_state() -> None:
    frame_left = _env_at([-1.0, 0, 0, 0], "rgb_array").render()
    frame_right = _env_at([1.0, 0, 0, 0], "rgb_array").render()
    assert frame_left.shape == (400, 600, 3) and frame_left.dtype == np.uint8
    # The cart (black) sits 125 px (1 m) either side of the centre, on the track row 300.
    assert tuple(frame_left[305, 175]) == (0, 0, 0) and tuple(frame_left[305, 425]) != (0, 0, 0)
    assert tuple(frame_right[305, 425]) == (0, 0, 0) and tuple(frame_right[305, 175]) != (0, 0, 0)
    assert ContinuousCartPoleEnv().render() is None
