"""The evaluation protocols reach the emulator: sticky actions, the frame cap, whole games."""

from __future__ import annotations

import dataclasses
import doctest
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import algorithms.evaluation
import envs
from algorithms.dqn import PRESETS, DQNConfig
from algorithms.evaluation import STANDARD, evaluate, protocol_env_config, resolve_protocol

PONG = ("rldojo/Atari-v0", {"game": "Pong", "fire_starts": 0})


def _frames(env_config: dict, seed: int = 1) -> np.ndarray:
    """The observations of 150 steps of a fixed action pattern."""
    env = envs.make(PONG[0], env_config)
    obs, _ = env.reset(seed=seed)
    trace = [obs]
    for t in range(150):
        obs, *_ = env.step((t // 3) % env.action_space.n)
        trace.append(obs)
    assert env.unwrapped.ale.getFloat("repeat_action_probability") == pytest.approx(
        env_config.get("repeat_action_probability", 0.0)
    )
    env.close()
    return np.array(trace)


def test_the_standard_protocol_sets_sticky_actions_frame_skip_cap_and_whole_games() -> None:
    config = protocol_env_config("rldojo/Breakout-v0", {"terminal_on_life_loss": True}, "standard")
    assert config == {
        "terminal_on_life_loss": False,
        "repeat_action_probability": 0.25,
        "frame_skip": 4,
        "max_episode_steps": 27_000,  # 108,000 frames at 4 frames a step
    }
    assert protocol_env_config(*PONG, "book") == PONG[1]
    assert protocol_env_config("CartPole-v1", {}, "standard") == {}  # not an ALE game
    with pytest.raises(ValueError, match="protocol"):
        resolve_protocol("machado")


def test_sticky_actions_are_observable_in_the_emulator() -> None:
    book = _frames(protocol_env_config(*PONG, "book"))
    standard = _frames(protocol_env_config(*PONG, "standard"))
    again = _frames(protocol_env_config(*PONG, "standard"))
    np.testing.assert_array_equal(standard, again)  # the same seed repeats the same game
    assert (book != standard).any()  # ... and the sticky actions changed it


@pytest.fixture(scope="module")
def pong_checkpoint(ray_local: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained DQN on Pong, saved: a real checkpoint, weights as initialized."""
    config = (
        DQNConfig()
        .environment(PONG[0], env_config=PONG[1])
        .training(**PRESETS["book_breakout"].values)
        .training(replay_capacity=100, num_envs_per_env_runner=1)
        .env_runners(num_env_runners=0)
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        return Path(algo.save_to_path(str(tmp_path_factory.mktemp("pong") / "checkpoint")))
    finally:
        algo.stop()


def test_the_frame_cap_truncates_and_the_result_records_the_protocol(
    pong_checkpoint: Path,
) -> None:
    capped = dataclasses.replace(STANDARD, max_frames=400)  # 100 agent steps
    result = evaluate(pong_checkpoint, episodes=2, seed=5, protocol=capped)
    assert result.lengths == [100, 100]  # Pong lasts far longer: the cap ended both
    assert result.protocol == "standard" and result.epsilon == 0.05
    assert result.protocol_settings["repeat_action_probability"] == 0.25
    assert result.seeds == [5, 6] and result.game == "pong"
    expected = (result.return_mean + 20.7) / (14.6 + 20.7)
    assert result.human_normalized == pytest.approx(expected)
    greedy = evaluate(pong_checkpoint, episodes=1, seed=5, protocol=capped, epsilon=0.0)
    assert greedy.epsilon == 0.0
    book = evaluate(pong_checkpoint, episodes=1, seed=5)
    assert book.protocol == "book" and book.epsilon == 0.0


def test_docstring_examples_run() -> None:
    assert doctest.testmod(algorithms.evaluation, raise_on_error=True).failed == 0


def test_a_cartpole_video_is_written_without_sdl_noise(ray_local: None, tmp_path: Path) -> None:
    """`rldojo evaluate --video` on a pygame-rendered env, on a machine without a display or
    sound card: the video, and on stderr nothing about XDG_RUNTIME_DIR or ALSA."""
    config = DQNConfig().environment("CartPole-v1").env_runners(num_env_runners=0)
    algo = config.debugging(seed=0).build_algo()
    try:
        checkpoint = algo.save_to_path(str(tmp_path / "checkpoint"))
    finally:
        algo.stop()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SDL_", "XDG_RUNTIME"))}
    video = tmp_path / "run.mp4"
    done = subprocess.run(
        [sys.executable, "-c", "from service.cli import main; main()", "evaluate", checkpoint,
         "--episodes", "1", "--video", str(video)],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert video.stat().st_size > 1000
    assert "ALSA" not in done.stderr and "XDG_RUNTIME_DIR" not in done.stderr, done.stderr
