"""The two tabular grids: the transition model the planners read, and layout validation."""

from __future__ import annotations

import numpy as np
import pytest

import envs

UP, DOWN, LEFT, RIGHT = range(4)


def test_episodic_grid_model_is_the_books():
    model = envs.make("rldojo/GridWorld-v0").unwrapped.transition_model()
    assert model.num_states == 25 and model.num_actions == 4
    assert model.next_state[0, UP] == 0 and model.next_state[0, LEFT] == 0  # walls clamp
    assert model.next_state[0, RIGHT] == 1 and model.next_state[0, DOWN] == 5
    assert model.reward[13, LEFT] == 100.0  # entering the goal (2,2) from (2,3)
    assert model.reward[2, DOWN] == -100.0  # entering the trap (1,2)
    assert set(np.flatnonzero(model.terminal)) == {7, 11, 12}


def test_planning_grid_rewards_and_only_the_goal_is_terminal():
    model = envs.make("rldojo/PlanningGrid-v0").unwrapped.transition_model()
    assert model.reward[2, DOWN] == -1.0
    assert model.reward[13, LEFT] == 1.0
    assert set(np.flatnonzero(model.terminal)) == {12}


def test_shortest_safe_path_takes_six_steps():
    env = envs.make("rldojo/GridWorld-v0")
    env.reset(seed=0)
    total, steps = 0.0, 0
    for action in (RIGHT, RIGHT, RIGHT, DOWN, DOWN, LEFT):
        _, reward, terminated, _, info = env.step(action)
        total, steps = total + reward, steps + 1
    assert (total, steps, terminated, info["cell"]) == (100.0, 6, True, (2, 2))


def test_custom_layout():
    env = envs.make("rldojo/GridWorld-v0", {"size": 4, "goal": [3, 3], "traps": [[1, 1]]})
    model = env.unwrapped.transition_model()
    assert env.observation_space.n == 16
    assert set(np.flatnonzero(model.terminal)) == {5, 15}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"size": 1}, "size"),
        ({"goal": [9, 9]}, "goal"),
        ({"traps": [[0, 0]]}, "start"),
        ({"start": [1]}, "start"),
        ({"traps": [[2, 2]]}, "goal"),
    ],
)
def test_bad_layouts_are_refused_with_the_argument_named(config, message):
    with pytest.raises(ValueError, match=message):
        envs.make("rldojo/GridWorld-v0", config)
