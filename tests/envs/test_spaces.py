"""An env's kind from its spaces; the encoders; the spaces refused with their name."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

import envs
from envs.spaces import (
    ONE_HOT,
    EnvKind,
    UnsupportedSpaceError,
    action_kind,
    encode,
    kind_of,
    observation_kind,
)

IMAGE = spaces.Box(0, 255, (4, 84, 84), np.uint8)


@pytest.mark.parametrize(
    ("space", "kind"),
    [
        (spaces.Discrete(16), "discrete"),
        (spaces.Box(-1, 1, (8,), np.float32), "vector"),
        (spaces.Box(0, 1, (3, 5), np.float32), "vector"),  # flattened
        (IMAGE, "image"),
        (spaces.Tuple((spaces.Discrete(32), spaces.Discrete(11), spaces.Discrete(2))), "vector"),
        (spaces.Dict({"pos": spaces.Box(-1, 1, (2,)), "goal": spaces.Discrete(4)}), "vector"),
        (spaces.MultiBinary(6), "vector"),
    ],
)
def test_observation_kinds_come_from_the_space(space: gym.Space, kind: str) -> None:
    assert observation_kind(space) == kind


@pytest.mark.parametrize(
    ("space", "named"),
    [
        (spaces.Text(12), "Text"),
        (spaces.Dict({"screen": IMAGE, "score": spaces.Discrete(10)}), "Dict("),
        (spaces.Box(0, 255, (96, 96, 3), np.uint8), "not a channel-first image"),
        (spaces.Box(0, 1, (100, 100), np.float32), "flattens to 10000 numbers"),
    ],
)
def test_observations_no_algorithm_takes_are_refused_with_the_space_named(
    space: gym.Space, named: str
) -> None:
    with pytest.raises(UnsupportedSpaceError, match="observation space") as refused:
        observation_kind(space)
    assert named in str(refused.value)


def test_actions_are_discrete_or_a_flat_box_and_nothing_else() -> None:
    assert action_kind(spaces.Discrete(3)) == "discrete"
    assert action_kind(spaces.Box(-2, 2, (1,), np.float32)) == "continuous"
    for space in (spaces.MultiDiscrete([3, 3]), spaces.Dict({"a": spaces.Discrete(2)})):
        with pytest.raises(UnsupportedSpaceError, match="action space"):
            action_kind(space)


class DictObservations(gym.Env):
    """A tiny env whose observation is a Dict of a position and a goal cell."""

    observation_space = spaces.Dict(
        {"goal": spaces.Discrete(3), "position": spaces.Box(-1.0, 1.0, (2,), np.float64)}
    )
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return {"goal": 2, "position": np.array([0.5, -0.5])}, {}

    def step(self, action):
        return {"goal": 1, "position": np.zeros(2)}, 1.0, True, False, {}


def test_structured_observations_are_flattened_to_float32() -> None:
    env = encode(DictObservations(), None)
    low = np.array([0.0, 0.0, 0.0, -1.0, -1.0], np.float32)  # goal one-hot, then position
    assert env.observation_space == spaces.Box(low, 1.0, (5,), np.float32)
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.float32
    np.testing.assert_array_equal(obs, [0.0, 0.0, 1.0, 0.5, -0.5])  # goal one-hot, position
    assert kind_of(env) == EnvKind("vector", "discrete")


def test_discrete_observations_stay_indices_unless_one_hot_is_asked() -> None:
    table = envs.make("FrozenLake-v1")
    assert table.observation_space == spaces.Discrete(16)
    network = envs.make("FrozenLake-v1", {envs.ENCODING_KEY: ONE_HOT})
    obs, _ = network.reset(seed=0)
    assert network.observation_space.shape == (16,) and obs.dtype == np.float32
    assert obs.tolist() == [1.0] + [0.0] * 15  # the start cell, 0


def test_a_kind_is_read_once_per_id_and_config() -> None:
    assert envs.kind("FrozenLake-v1", {"map_name": "8x8"}) == EnvKind("discrete", "discrete")
    assert envs.kind("LunarLander-v3") == EnvKind("vector", "discrete")
    assert envs.kind("Pendulum-v1") == EnvKind("vector", "continuous")
    assert envs.kind("rldojo/GridWorld-v0") == envs.KINDS["rldojo/GridWorld-v0"]
