"""The book's Atari pipeline (book §6.1) on real ALE games."""

from __future__ import annotations

import doctest
from typing import Any

import ale_py
import gymnasium as gym
import numpy as np
import pytest

import envs
import envs.atari
import envs.wrappers
from envs.atari import make_atari, make_breakout
from envs.wrappers import FireOnLifeLoss

gym.register_envs(ale_py)

FIRE, RIGHT, LEFT = 0, 1, 2  # the book's Breakout actions
NOOP = 0  # in a game's minimal action set
STEP_BUDGET = 1000  # far more than a paddle that never moves needs to lose a life (~25 steps)


class RecordActions(gym.Wrapper):
    """Test spy: remembers the actions the wrapped env really received."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.actions: list[int] = []

    def step(self, action: Any) -> tuple:
        self.actions.append(int(action))
        return self.env.step(action)


def _step_until(env: gym.Env, action: int, done: Any) -> tuple[list[tuple], tuple]:
    """Play `action` until `done(step_result)`; returns the earlier steps and the last one."""
    earlier: list[tuple] = []
    for _ in range(STEP_BUDGET):
        result = env.step(action)
        if done(result):
            return earlier, result
        earlier.append(result)
    raise AssertionError(f"condition not met within {STEP_BUDGET} steps")


def _life_lost(result: tuple) -> bool:
    return result[4]["life_lost"]


def test_breakout_observations_and_the_books_three_actions() -> None:
    env = make_breakout()
    assert env.observation_space == gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    assert env.action_space == gym.spaces.Discrete(3)
    meanings = env.unwrapped.get_action_meanings()
    assert [meanings[i] for i in env.get_wrapper_attr("indices")] == ["FIRE", "RIGHT", "LEFT"]
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8 and obs in env.observation_space


def test_frame_stack_repeats_the_start_frame_and_keeps_the_oldest_first() -> None:
    env = make_breakout()
    for seed in range(5):  # FIRE starts of various lengths: the ball is in flight for most
        first, _ = env.reset(seed=seed)
        assert all(np.array_equal(first[0], frame) for frame in first[1:])
    second = env.step(RIGHT)[0]
    third = env.step(RIGHT)[0]
    np.testing.assert_array_equal(third[:3], second[1:])  # shifted towards index 0
    assert not np.array_equal(third[3], second[3])  # the paddle moved: a new newest frame


def test_fire_start_presses_fire_a_seeded_number_of_times() -> None:
    env = make_breakout()
    frames = {seed: env.reset(seed=seed)[1]["episode_frame_number"] for seed in range(8)}
    # 1 to 30 FIRE steps of 4 frames each, different per seed, identical for a repeated seed.
    assert all(n % 4 == 0 and 4 <= n <= 120 for n in frames.values())
    assert len(set(frames.values())) > 1
    assert make_breakout().reset(seed=3)[1]["episode_frame_number"] == frames[3]
    assert make_breakout(fire_starts=0).reset(seed=3)[1]["episode_frame_number"] == 0


def test_fire_start_is_skipped_in_a_game_without_fire() -> None:
    env = make_atari("Freeway")
    assert "FIRE" not in env.unwrapped.get_action_meanings()
    assert env.reset(seed=0)[1]["episode_frame_number"] == 0


def test_life_loss_is_reported_once_and_the_game_goes_on() -> None:
    env = make_breakout()
    _, info = env.reset(seed=0)
    assert info["lives"] == 5
    # FIRE (agent action 0) never moves the paddle, so the launched ball is soon missed.
    earlier, (_, _, terminated, truncated, info) = _step_until(env, FIRE, _life_lost)
    assert all(step[4]["life_lost"] is False and step[4]["lives"] == 5 for step in earlier)
    assert info["lives"] == 4 and not terminated and not truncated
    assert env.step(FIRE)[4]["life_lost"] is False


def test_terminal_on_life_loss_ends_the_episode_and_reset_continues_the_game() -> None:
    env = make_breakout(terminal_on_life_loss=True)
    env.reset(seed=0)
    _, (obs, _, terminated, truncated, info) = _step_until(env, FIRE, lambda r: r[2] or r[3])
    assert terminated and not truncated and info["life_lost"] and info["lives"] == 4
    frame_number = info["episode_frame_number"]

    obs_next, info = env.reset()
    assert info["lives"] == 4 and info["episode_frame_number"] == frame_number  # same game
    # The stack restarts from the frame reached at the life loss, repeated.
    assert all(np.array_equal(frame, obs[-1]) for frame in obs_next)

    lives_at_episode_end, lives_at_reset = [4], [4]
    for _ in range(4):
        _, (_, _, terminated, _, info) = _step_until(env, FIRE, lambda r: r[2] or r[3])
        lives_at_episode_end.append(info["lives"])
        lives_at_reset.append(env.reset()[1]["lives"])
    assert lives_at_episode_end == [4, 3, 2, 1, 0]
    # Only the reset after the last life starts a new game (at most 30 FIRE steps in).
    assert lives_at_reset == [4, 3, 2, 1, 5] and env.reset()[1]["episode_frame_number"] <= 120


def test_seeded_reset_after_a_life_loss_starts_a_new_game() -> None:
    env = make_breakout(terminal_on_life_loss=True)
    env.reset(seed=0)
    _step_until(env, FIRE, lambda r: r[2])
    assert env.reset(seed=0)[1]["lives"] == 5


def test_fire_on_life_loss_replaces_exactly_the_next_action() -> None:
    spy = RecordActions(gym.make("ALE/Breakout-v5", repeat_action_probability=0.0))
    env = FireOnLifeLoss(spy)
    env.reset(seed=0)
    env.step(env.fire)  # launch the ball
    lives = 5
    while lives == 5:
        lives = env.step(NOOP)[4]["lives"]
    env.step(NOOP)
    env.step(NOOP)
    assert spy.actions[-3:] == [NOOP, env.fire, NOOP]
    assert spy.actions[1:-2] == [NOOP] * (len(spy.actions) - 3)


def test_forced_fire_relaunches_the_ball_for_an_agent_that_never_fires() -> None:
    def lives_after_noops(fire_on_life_loss: bool) -> int:
        env = make_atari("Breakout", three_actions=False, fire_on_life_loss=fire_on_life_loss)
        env.reset(seed=0)  # the FIRE start launches the first ball
        for _ in range(400):
            _, _, terminated, _, info = env.step(NOOP)
            if terminated:
                break
        return info["lives"]

    assert lives_after_noops(True) == 0  # every ball relaunched and missed: game over
    assert lives_after_noops(False) == 4  # stuck after the first miss


def test_rewards_are_clipped_and_the_raw_score_is_in_info() -> None:
    # Space Invaders pays 5 to 30 points per alien, more than Breakout's first bricks.
    fire = 1
    env = make_atari("SpaceInvaders")
    env.reset(seed=0)
    _, (_, reward, *_, info) = _step_until(env, fire, lambda r: r[4]["raw_reward"] > 1)
    assert reward == 1.0

    raw = make_atari("SpaceInvaders", clip_rewards=False)
    raw.reset(seed=0)
    _, (_, reward, *_, info) = _step_until(raw, fire, lambda r: r[4]["raw_reward"] > 1)
    assert reward == info["raw_reward"] > 1


def test_pong_builds_with_its_minimal_action_set() -> None:
    for game in ("ALE/Pong-v5", "Pong", "pong"):
        env = make_atari(game)
        assert env.unwrapped.get_action_meanings() == [
            "NOOP",
            "FIRE",
            "RIGHT",
            "LEFT",
            "RIGHTFIRE",
            "LEFTFIRE",
        ]
        assert env.action_space == gym.spaces.Discrete(6)
        assert env.observation_space.shape == (4, 84, 84)


def test_step_limit_counts_agent_steps() -> None:
    env = make_atari("Breakout", three_actions=False, fire_starts=0, max_episode_steps=50)
    env.reset(seed=0)
    truncations = [env.step(NOOP)[3] for _ in range(50)]  # NOOP: the ball is never launched
    assert truncations == [False] * 49 + [True]


def test_same_seed_same_observations_across_lives() -> None:
    def trace() -> list[np.ndarray]:
        env = make_breakout(terminal_on_life_loss=True)
        env.action_space.seed(1)
        observations = [env.reset(seed=1)[0]]
        for _ in range(300):
            obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
            observations.append(obs)
            if terminated or truncated:
                observations.append(env.reset()[0])
        return observations

    first, second = trace(), trace()
    assert len(first) == len(second)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


def test_registered_ids_take_env_config() -> None:
    env = envs.make("rldojo/Breakout-v0", {"terminal_on_life_loss": True, "frame_stack": 2})
    assert env.observation_space.shape == (2, 84, 84)
    pong = envs.make("rldojo/Atari-v0", {"game": "Pong"})
    assert pong.action_space == gym.spaces.Discrete(6)


def test_rgb_array_render_shows_the_game_screen() -> None:
    env = make_breakout(render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (210, 160, 3) and frame.dtype == np.uint8 and frame.max() > 0


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: make_atari("NotAGame"), "NotAGame"),
        (lambda: make_atari("CartPole-v1"), "CartPole-v1"),
        (lambda: make_atari(frame_stack=0), "frame_stack"),
        (lambda: make_atari(fire_starts=-1), "fire_starts"),
        (lambda: make_atari(max_episode_steps=0), "max_episode_steps"),
        (lambda: make_atari(render_mode="human"), "render_mode"),
        (lambda: make_atari("Freeway", three_actions=True), "FIRE"),
        (lambda: make_breakout(game="Pong"), "Breakout"),
    ],
)
def test_bad_arguments_are_named(call: Any, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        call()


@pytest.mark.parametrize("module", [envs.wrappers, envs.atari])
def test_docstring_examples_run(module: Any) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
