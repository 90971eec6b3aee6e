"""The moving-obstacles grid of book §2.3, checked against positions worked out by hand."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401  (registers the ids)
from envs.moving_grid_world import MovingObstaclesEnv

UP, DOWN, RIGHT, LEFT, STAY = range(5)


def _steps(env: MovingObstaclesEnv, actions: list[int]) -> list[tuple]:
    return [env.step(action) for action in actions]


def test_reset_observation_is_the_books_layout() -> None:
    obs, info = MovingObstaclesEnv().reset(seed=0)
    # Per obstacle (dx, dy, -1, direction flag -1 = moving right); then the goal (dx, dy, +1).
    expected = [0, 1, -1, -1, 1, 2, -1, -1, 2, 3, -1, -1, 4, 4, 1]
    assert obs.dtype == np.float32
    assert obs.tolist() == expected
    assert info == {"agent": (0, 0), "obstacles": ((0, 1), (1, 2), (2, 3))}


# Obstacle columns after k steps of "stay". Moves happen on odd steps only (1, 3, 5, ...), and
# each obstacle sweeps 0 -> 4 -> 0 starting rightwards.
HAND_WORKED_COLUMNS = {
    1: (1, 2, 3),
    2: (1, 2, 3),
    3: (2, 3, 4),
    4: (2, 3, 4),
    5: (3, 4, 3),
    7: (4, 3, 2),
    9: (3, 2, 1),
    11: (2, 1, 0),
    13: (1, 0, 1),
    15: (0, 1, 2),
    17: (1, 2, 3),
}


def test_obstacles_sweep_their_rows_on_odd_steps() -> None:
    env = MovingObstaclesEnv()
    env.reset(seed=0)
    for k in range(1, max(HAND_WORKED_COLUMNS) + 1):
        *_, info = env.step(STAY)
        if k in HAND_WORKED_COLUMNS:
            columns = tuple(x for x, _ in info["obstacles"])
            assert columns == HAND_WORKED_COLUMNS[k], f"after {k} steps"
            assert tuple(y for _, y in info["obstacles"]) == (1, 2, 3)  # rows never change


def test_motion_has_period_eight_moves() -> None:
    env = MovingObstaclesEnv()
    env.reset(seed=0)
    observations = [step[0] for step in _steps(env, [STAY] * 40)]
    # 8 moves = 16 steps; from step 1 on, positions and direction flags repeat exactly.
    for k in range(1, 24):
        np.testing.assert_array_equal(observations[k - 1], observations[k - 1 + 16])


def test_direction_flag_flips_only_when_the_obstacle_moves_off_the_wall() -> None:
    env = MovingObstaclesEnv()
    env.reset(seed=0)
    results = _steps(env, [STAY] * 5)
    third_obstacle = slice(8, 12)
    # Step 3 brings it into column 4 with the flag still -1; step 5 flips it and moves it left.
    assert results[2][0][third_obstacle].tolist() == [4, 3, -1, -1]
    assert results[3][0][third_obstacle].tolist() == [4, 3, -1, -1]
    assert results[4][0][third_obstacle].tolist() == [3, 3, -1, 1]


def test_walls_keep_the_agent_in_place_and_actions_2_3_are_right_left() -> None:
    env = MovingObstaclesEnv()
    env.reset(seed=0)
    assert env.step(UP)[4]["agent"] == (0, 0)
    assert env.step(LEFT)[4]["agent"] == (0, 0)
    assert env.step(RIGHT)[4]["agent"] == (1, 0)
    assert env.step(LEFT)[4]["agent"] == (0, 0)
    assert env.step(DOWN)[4]["agent"] == (0, 1)


def test_collision_costs_one_and_does_not_end_the_episode() -> None:
    env = MovingObstaclesEnv()
    env.reset(seed=0)
    # Step 1: obstacles move first (the first one to (1, 1)), agent goes to (1, 0).
    _, reward, terminated, _, info = env.step(RIGHT)
    assert (reward, terminated, info["agent"]) == (0.0, False, (1, 0))
    # Step 2 is even, so nothing moves but the agent, which walks into (1, 1).
    obs, reward, terminated, _, info = env.step(DOWN)
    assert (reward, terminated) == (-1.0, False)
    assert info["agent"] == info["obstacles"][0] == (1, 1)
    assert obs[:2].tolist() == [0, 0]


def test_agent_and_obstacle_swap_cells_without_penalty() -> None:
    env = MovingObstaclesEnv(start=(1, 1), obstacles=((0, 1),))
    env.reset(seed=0)
    # Step 1: the obstacle moves (0, 1) -> (1, 1) first, then the agent (1, 1) -> (0, 1).
    _, reward, _, _, info = env.step(LEFT)
    assert info == {"agent": (0, 1), "obstacles": ((1, 1),)}
    assert reward == 0.0

    env.reset(seed=0)
    _, reward, _, _, _ = env.step(STAY)  # staying put, the obstacle lands on the agent
    assert reward == -1.0


def test_shortest_path_reaches_the_goal_in_eight_moves() -> None:
    env = MovingObstaclesEnv()
    env.reset(seed=0)
    # Down column 0 then along row 4: the obstacles never stand where the agent arrives.
    results = _steps(env, [DOWN] * 4 + [RIGHT] * 4)
    assert [r[1] for r in results] == [0.0] * 7 + [1.0]
    assert [r[2] for r in results] == [False] * 7 + [True]
    assert results[-1][4]["agent"] == (4, 4)
    assert results[-1][0][-3:].tolist() == [0, 0, 1]


def test_step_penalty_is_subtracted_on_every_step() -> None:
    env = MovingObstaclesEnv(step_penalty=0.1)
    env.reset(seed=0)
    rewards = [r[1] for r in _steps(env, [DOWN] * 4 + [RIGHT] * 4)]
    assert rewards == pytest.approx([-0.1] * 7 + [0.9])
    assert sum(rewards) == pytest.approx(0.2)  # the book's best REINFORCE v1 score


def test_global_phase_carries_over_unseeded_resets() -> None:
    env = MovingObstaclesEnv()  # global_obstacle_phase=True, as in the book
    env.reset(seed=0)
    env.step(STAY)  # counter 1: obstacles moved
    env.reset()
    *_, info = env.step(STAY)  # counter 2: even, so they stay on their starting cells
    assert info["obstacles"] == ((0, 1), (1, 2), (2, 3))


def test_per_episode_phase_restarts_at_every_reset() -> None:
    env = MovingObstaclesEnv(global_obstacle_phase=False)
    env.reset(seed=0)
    env.step(STAY)
    env.reset()
    *_, info = env.step(STAY)  # counter restarted: 1 again, so they move
    assert info["obstacles"] == ((1, 1), (2, 2), (3, 3))


def test_seeded_reset_restarts_the_global_phase() -> None:
    env = MovingObstaclesEnv()
    env.reset(seed=0)
    env.step(STAY)
    env.reset(seed=0)
    *_, info = env.step(STAY)
    assert info["obstacles"] == ((1, 1), (2, 2), (3, 3))


def test_layout_from_keyword_arguments() -> None:
    env = MovingObstaclesEnv(size=7, start=(6, 0), goal=(0, 6), obstacles=((0, 2), (6, 4)))
    assert env.observation_space.shape == (11,)
    assert env.observation_space.high.max() == 6
    obs, _ = env.reset(seed=0)
    assert obs.tolist() == [-6, 2, -1, -1, 0, 4, -1, -1, -6, 6, 1]
    obs, *_, info = env.step(LEFT)
    # The second obstacle starts in the last column, so its first move flips it leftwards.
    assert info["obstacles"] == ((1, 2), (5, 4))
    assert obs[4:8].tolist() == [0, 4, -1, 1]  # agent moved to (5, 0)
    assert obs in env.observation_space


def test_registered_id_takes_env_config_and_truncates_at_500_steps() -> None:
    env = gym.make("rldojo/MovingObstacles-v0", step_penalty=0.1)
    env.reset(seed=0)
    results = [env.step(STAY) for _ in range(500)]
    assert [r[3] for r in results] == [False] * 499 + [True]
    assert not any(r[2] for r in results)
    assert results[-1][1] == pytest.approx(-0.1)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"size": 1}, "size"),
        ({"size": 5.5}, "size"),
        ({"goal": (5, 4)}, "goal"),
        ({"start": (-1, 0)}, "start"),
        ({"start": "ab"}, "start"),
        ({"start": (4, 4)}, "start and goal"),
        ({"obstacles": ((0, 1), (0, 7))}, r"obstacles\[1\]"),
        ({"obstacles": 3}, "obstacles"),
        ({"step_penalty": -0.1}, "step_penalty"),
        ({"render_mode": "human"}, "render_mode"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        MovingObstaclesEnv(**kwargs)


def test_render_draws_agent_goal_and_obstacles() -> None:
    env = MovingObstaclesEnv(render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (250, 250, 3) and frame.dtype == np.uint8

    def centre(x: int, y: int) -> tuple[int, ...]:
        return tuple(frame[y * 50 + 25, x * 50 + 25])

    red, green, blue = centre(0, 0), centre(0, 1), centre(4, 4)
    assert red[0] > 150 > red[1] and green[1] > 120 > green[0] and blue[2] > 150 > blue[0]
    assert centre(3, 0) == (255, 255, 255)  # an empty cell

    env.step(RIGHT)
    frame = env.render()
    assert centre(1, 0) == red and centre(0, 0) == (255, 255, 255)
    assert MovingObstaclesEnv().render() is None
