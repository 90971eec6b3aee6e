"""`rldojo export` + `rldojo play` reproduce `evaluate` on the same checkpoint and seeds, and
playing imports neither Ray nor torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import algorithms
from algorithms.evaluation import MODULE_PATH, evaluate, greedy_action
from algorithms.export import ExportError, export_policy
from service.player import play

# Runs `rldojo play` with ray and torch made unimportable, then checks neither got loaded.
NO_RAY_OR_TORCH = """
import importlib.abc, json, sys
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("ray", "torch"):
            raise ImportError(f"{name} must not be imported to play a policy")
sys.meta_path.insert(0, Refuse())
from service.cli import app
try:
    app(sys.argv[1:], standalone_mode=False)
finally:
    print(json.dumps({"loaded": [m for m in ("ray", "torch") if m in sys.modules]}))
"""


def _checkpoint(name: str, env: str, path: Path, iterations: int, **env_config) -> str:
    config = algorithms.build(name, env).debugging(seed=3)
    config.environment(env, env_config=env_config)
    algo = config.build_algo()
    try:
        for _ in range(iterations):
            algo.train()
        return str(algo.save_to_path(str(path)))
    finally:
        algo.stop()


@pytest.mark.parametrize(
    ("name", "env", "iterations", "suffix"),
    [
        ("dqn", "CartPole-v1", 0, ".onnx"),
        ("actor_critic", "CartPole-v1", 1, ".onnx"),
        ("q_learning", "rldojo/GridWorld-v0", 3, ".npy"),  # ties left: broken as evaluate does
    ],
)
def test_play_returns_what_evaluate_returns(ray_local, tmp_path, name, env, iterations, suffix):
    checkpoint = _checkpoint(name, env, tmp_path / "ckpt", iterations)
    written = export_policy(checkpoint, tmp_path / "policy")
    assert written.model.suffix == suffix
    spec = json.loads(written.spec.read_text())
    assert spec["algorithm"] == name and spec["env"] == env and spec["file"] == written.model.name
    expected = evaluate(checkpoint, episodes=4, seed=5)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            NO_RAY_OR_TORCH,
            "play",
            str(written.model),
            "--episodes",
            "4",
            "--seed",
            "5",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = result.stdout.strip().splitlines()
    assert json.loads(lines[-1]) == {"loaded": []}
    played = json.loads("\n".join(lines[:-1]))
    assert played["returns"] == expected.returns


def test_a_table_is_not_exported_as_onnx(ray_local, tmp_path):
    checkpoint = _checkpoint("q_learning", "rldojo/GridWorld-v0", tmp_path / "ckpt", 0)
    with pytest.raises(ExportError, match="use format table"):
        export_policy(checkpoint, tmp_path / "policy.onnx", format="onnx")


def test_breakout_plays_the_same_actions_and_score(ray_local, tmp_path):
    from ray.rllib.core.rl_module.rl_module import RLModule

    import envs

    checkpoint = _checkpoint(
        "dqn", "rldojo/Breakout-v0", tmp_path / "ckpt", 0, max_episode_steps=150
    )
    written = export_policy(checkpoint, tmp_path / "breakout.onnx")
    spec = json.loads(written.spec.read_text())
    assert spec["preprocessing"]["atari"]["game"] == "ALE/Breakout-v5"
    assert spec["preprocessing"]["atari"]["frame_stack"] == 4
    assert spec["action_meanings"] == ["FIRE", "RIGHT", "LEFT"]
    assert spec["input"] == {"name": "obs", "shape": [None, 4, 84, 84], "dtype": "uint8"}
    played = play(written.model, episodes=1, seed=2, keep_actions=True)
    assert played.returns == evaluate(checkpoint, episodes=1, seed=2).returns
    # The actions evaluate's greedy_action takes on the same episode.
    module = RLModule.from_checkpoint(str(Path(checkpoint).resolve() / MODULE_PATH))
    env = envs.make("rldojo/Breakout-v0", {"max_episode_steps": 150}, render_mode="rgb_array")
    observation, _ = env.reset(seed=2)
    actions, done = [], False
    while not done:
        actions.append(greedy_action(module, observation))
        observation, _, terminated, truncated, _ = env.step(actions[-1])
        done = terminated or truncated
    assert np.array_equal(played.actions[0], actions)
