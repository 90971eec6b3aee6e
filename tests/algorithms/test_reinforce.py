"""REINFORCE (book 4.2): the loss by hand, config, learning on the moving-obstacles grid."""

from __future__ import annotations

import gymnasium as gym
import pytest
import torch
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

import algorithms
from algorithms.common import metrics
from algorithms.reinforce import ReinforceConfig
from algorithms.reinforce_learner import reinforce_loss
from algorithms.reinforce_rl_module import ReinforceTorchRLModule

LN3 = 1.0986122886681098


def _module(baseline: bool) -> ReinforceTorchRLModule:
    module: ReinforceTorchRLModule = RLModuleSpec(
        module_class=ReinforceTorchRLModule,
        observation_space=gym.spaces.Box(-4, 4, (15,)),
        action_space=gym.spaces.Discrete(2),
        model_config={"baseline": baseline},
    ).build()
    return module


def test_loss_by_hand_without_and_with_baseline() -> None:
    # pi(.|s) = (0.5, 0.5), (0.75, 0.25), (0.25, 0.75); actions 0, 1, 1.
    logits = torch.tensor([[0.0, 0.0], [LN3, 0.0], [0.0, LN3]])
    batch = {
        "actions": torch.tensor([0, 1, 1]),
        "returns_to_go": torch.tensor([-1.069045, -0.267261, 1.336306]),
    }
    total, parts = reinforce_loss(
        _module(False), batch, {"action_dist_inputs": logits}, num_episodes=1, baseline_coeff=1.0
    )
    # -(ln .5 * -1.069045 + ln .25 * -0.267261 + ln .75 * 1.336306)
    assert total.item() == pytest.approx(-0.727077, abs=1e-5)
    assert "vf_loss" not in parts
    # Two episodes in the batch halve the per-episode sum.
    half, _ = reinforce_loss(
        _module(False), batch, {"action_dist_inputs": logits}, num_episodes=2, baseline_coeff=1.0
    )
    assert half.item() == pytest.approx(-0.727077 / 2, abs=1e-5)
    # With baseline b = (0, 0, 1): signal (-1.069045, -0.267261, 0.336306), value loss
    # 0.5 * mean(1.142857 + 0.071429 + 0.113102) = 0.221231.
    fwd = {"action_dist_inputs": logits, "vf_preds": torch.tensor([0.0, 0.0, 1.0])}
    total_b, parts_b = reinforce_loss(_module(True), batch, fwd, num_episodes=1, baseline_coeff=1.0)
    assert parts_b["policy_loss"].item() == pytest.approx(-1.014759, abs=1e-5)
    assert parts_b["vf_loss"].item() == pytest.approx(0.221231, abs=1e-5)
    assert total_b.item() == pytest.approx(-1.014759 + 0.221231, abs=1e-5)


def test_config_defaults_round_trip_and_validation() -> None:
    config = ReinforceConfig()
    assert (config.gamma, config.lr, config.episodes_per_iteration, config.baseline) == (
        0.99,
        1e-3,
        1,
        False,
    )
    config.training(baseline=True, episodes_per_iteration=4, normalise_returns=False)
    assert (config.baseline, config.episodes_per_iteration, config.normalise_returns) == (
        True,
        4,
        False,
    )
    assert config.get_default_rl_module_spec().model_config["baseline"] is True
    with pytest.raises(ValueError, match="episodes_per_iteration=0"):
        ReinforceConfig().environment("CartPole-v1").training(episodes_per_iteration=0).validate()
    found = algorithms.hyperparameters("reinforce")
    assert {"baseline", "episodes_per_iteration", "normalise_returns", "lr"} <= set(found)
    assert all(h.description for h in found.values())


@pytest.mark.usefixtures("ray_local")
def test_reinforce_improves_on_moving_obstacles_and_checkpoints(tmp_path) -> None:
    config = ReinforceConfig().environment("rldojo/MovingObstacles-v0").debugging(seed=0)
    algo = config.build_algo()
    try:
        first = metrics.flatten(algo.train())
        assert all(key in first for key in metrics.REQUIRED)
        assert f"{metrics.LEARNER}/policy_loss" in first
        start = first[metrics.EPISODE_RETURN_MEAN]
        latest = start
        for _ in range(20):
            latest = metrics.flatten(algo.train())[metrics.EPISODE_RETURN_MEAN]
            if latest >= -1.0:
                break
        # Random walking collides with the obstacles (-1 each); the goal is worth +1.
        assert latest >= -1.0 and latest > start + 1.0
        algo.save_to_path(str(tmp_path))
        weights = algo.get_module(DEFAULT_MODULE_ID).state_dict()
    finally:
        algo.stop()
    restored = Algorithm.from_checkpoint(str(tmp_path))
    try:
        again = restored.get_module(DEFAULT_MODULE_ID).state_dict()
        for key in weights:
            torch.testing.assert_close(weights[key], again[key])
    finally:
        restored.stop()


@pytest.mark.usefixtures("ray_local")
def test_reinforce_with_baseline_trains_on_cartpole() -> None:
    config = (
        ReinforceConfig()
        .environment("CartPole-v1")
        .training(baseline=True, episodes_per_iteration=2)
        .reporting(min_sample_timesteps_per_iteration=100)
    )
    algo = config.build_algo()
    try:
        result = metrics.flatten(algo.train())
        assert f"{metrics.LEARNER}/vf_loss" in result
        assert result[metrics.EPISODES] >= 2
    finally:
        algo.stop()
