"""ale-py's C++ vector env with the book's semantics, against the Gymnasium reference pipeline."""

from __future__ import annotations

import doctest

import gymnasium as gym
import numpy as np
import pytest

import envs
import envs.atari_vector
from envs.atari import make_atari, make_breakout
from envs.atari_vector import AtariVector

FIRE, RIGHT, LEFT = 0, 1, 2  # the book's Breakout actions


def _step(env: AtariVector, action: int) -> tuple:
    """Step a one-env vector; the results of env 0."""
    obs, reward, terminated, truncated, info = env.step(np.array([action]))
    return obs[0], reward[0], terminated[0], truncated[0], {k: v[0] for k, v in info.items()}


@pytest.mark.parametrize(
    ("game", "reference"),
    [("Breakout", make_breakout), ("Pong", lambda: make_atari("Pong"))],
)
def test_same_spaces_and_action_set_as_the_reference(game: str, reference) -> None:
    env, ref = AtariVector(game, num_envs=2), reference()
    assert env.single_observation_space == ref.observation_space
    assert env.single_action_space == ref.action_space
    meanings = [a.name for a in env.ale.ale.get_action_set()]
    expected = ref.unwrapped.get_action_meanings()
    indices = ref.get_wrapper_attr("indices") if game == "Breakout" else range(len(expected))
    assert [meanings[i] for i in env.actions] == [expected[i] for i in indices]
    obs, info = env.reset(seed=0)
    assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8
    assert obs in env.observation_space
    np.testing.assert_array_equal(obs[:, 0], obs[:, 3])  # the first stack repeats one frame
    assert set(info) == {"lives", "life_lost", "raw_reward"}
    env.close()


def test_a_whole_game_matches_the_reference_frame_for_frame() -> None:
    # Without the random start both begin at the same frame; same actions, same game.
    ref = make_atari("Breakout", fire_starts=0, three_actions=True)
    env = AtariVector("Breakout", num_envs=1, fire_starts=0)
    obs_ref, _ = ref.reset(seed=0)
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs[0], obs_ref)
    rng = np.random.default_rng(0)
    lives_lost = 0
    for t in range(5_000):
        action = int(rng.integers(3))
        expected = ref.step(action)
        got = _step(env, action)
        np.testing.assert_array_equal(got[0], expected[0], err_msg=f"frame of step {t}")
        assert got[1:4] == expected[1:4], f"reward/terminated/truncated of step {t}"
        for key in ("life_lost", "raw_reward", "lives"):
            assert got[4][key] == expected[4][key], f"{key} of step {t}"
        lives_lost += int(got[4]["life_lost"])
        if expected[2]:
            break
    assert expected[2] and lives_lost == 5  # played until game over
    env.close()


def test_next_step_autoreset_starts_a_new_game_with_a_padded_stack() -> None:
    env = AtariVector("Breakout", num_envs=1, max_episode_steps=30)
    env.reset(seed=1)
    for _ in range(29):
        assert not _step(env, RIGHT)[3]
    obs, reward, terminated, truncated, info = _step(env, RIGHT)
    assert truncated and not terminated  # 30 agent steps
    obs, reward, terminated, truncated, info = _step(env, RIGHT)  # the reset step
    assert (reward, terminated, truncated, info["lives"]) == (0.0, False, False, 5)
    assert all(np.array_equal(obs[0], frame) for frame in obs)
    env.close()


def test_life_loss_is_reported_and_fire_relaunches_the_ball() -> None:
    env = AtariVector("Breakout", num_envs=1)
    env.reset(seed=0)
    for _ in range(1_000):  # a paddle that never moves loses a life within ~100 steps
        obs, _, terminated, _, info = _step(env, RIGHT)
        if info["life_lost"]:
            break
    assert info["life_lost"] and info["lives"] == 4 and not terminated
    # FIRE is played for us on the next step: the ball comes back without the agent's FIRE.
    before = obs[-1]
    changed = False
    for _ in range(20):
        obs, _, _, _, info = _step(env, RIGHT)
        changed |= not np.array_equal(obs[-1][30:], before[30:])
    assert changed and not info["life_lost"]
    env.close()


def test_terminal_on_life_loss_ends_the_episode_and_the_game_goes_on() -> None:
    env = AtariVector("Breakout", num_envs=1, terminal_on_life_loss=True)
    env.reset(seed=0)
    for _ in range(1_000):
        _, _, terminated, _, info = _step(env, RIGHT)
        if terminated:
            break
    assert terminated and info["life_lost"] and info["lives"] == 4
    obs, reward, terminated, truncated, info = _step(env, RIGHT)  # the next episode's start
    assert (reward, terminated, truncated, info["lives"]) == (0.0, False, False, 4)
    assert all(np.array_equal(obs[0], frame) for frame in obs)
    env.close()


def test_rewards_are_clipped_and_the_raw_score_is_in_info() -> None:
    env = AtariVector("Breakout", num_envs=4)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    raw_seen, clipped_seen = set(), set()
    for _ in range(3_000):
        _, reward, _, _, info = env.step(rng.integers(3, size=4))
        raw_seen.update(info["raw_reward"].tolist())
        clipped_seen.update(reward.tolist())
    assert max(raw_seen) > 1.0  # higher bricks score 4 and 7
    assert clipped_seen <= {0.0, 1.0}
    env.close()


def test_same_seed_same_rollout_and_gymnasium_vector_entry_points() -> None:
    def rollout(env: gym.vector.VectorEnv) -> list[np.ndarray]:
        obs, _ = env.reset(seed=5)
        trace = [obs]
        for t in range(60):
            obs, *_ = env.step(np.full(env.num_envs, t % 3))
            trace.append(obs)
        env.close()
        return trace

    made = gym.make_vec("rldojo/Breakout-v0", num_envs=2, vectorization_mode="vector_entry_point")
    assert isinstance(made, AtariVector)
    for a, b in zip(rollout(made), rollout(AtariVector("Breakout", 2)), strict=True):
        np.testing.assert_array_equal(a, b)
    pong = envs.make_for_rllib("rldojo/Atari-v0", {"game": "Pong", "num_envs": 3})
    assert isinstance(pong, AtariVector) and pong.num_envs == 3
    assert pong.single_action_space == gym.spaces.Discrete(6)  # Pong's minimal action set
    pong.close()


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"num_envs": 0}, "num_envs"),
        ({"frame_skip": 0}, "frame_skip"),
        ({"render_mode": "rgb_array"}, "render_mode"),
        ({"game": "NoSuchGame"}, "game"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        AtariVector(**kwargs)


def test_docstring_examples_run() -> None:
    assert doctest.testmod(envs.atari_vector, raise_on_error=True).failed == 0


def test_sticky_actions_from_env_config_reach_both_pipelines() -> None:
    """ale-py's vector env defaults to no sticky actions: the env_config's value must reach it."""

    def rollout(env_config: dict, vector: bool) -> np.ndarray:
        config = {"game": "Pong", "fire_starts": 0, **env_config}
        env = envs.make_for_rllib(
            "rldojo/Atari-v0", {**config, "num_envs": 1} if vector else config
        )
        obs, _ = env.reset(seed=3)
        trace = [obs[0] if vector else obs]
        for t in range(150):
            action = (t // 3) % 6
            obs, *_ = env.step(np.array([action]) if vector else action)
            trace.append(obs[0] if vector else obs)
        env.close()
        return np.array(trace)

    sticky = {"repeat_action_probability": 0.25}
    for vector in (False, True):
        plain, first, second = rollout({}, vector), rollout(sticky, vector), rollout(sticky, vector)
        np.testing.assert_array_equal(first, second)  # seeded: the same sticky game again
        assert (plain != first).any(), f"sticky actions had no effect (vector={vector})"
    np.testing.assert_array_equal(rollout({}, False), rollout({}, True))  # they agree without
    with pytest.raises(ValueError, match="repeat_action_probability"):
        AtariVector("Pong", repeat_action_probability=1.5)
