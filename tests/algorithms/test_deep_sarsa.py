"""Deep SARSA (book 4.1): the loss by hand, config, learning on the moving-obstacles grid."""

from __future__ import annotations

import pytest
import torch
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.core import DEFAULT_MODULE_ID

import algorithms
from algorithms.common import metrics
from algorithms.deep_sarsa import DeepSarsaConfig
from algorithms.deep_sarsa_learner import SARSA_LOSS, sarsa_loss


def test_loss_by_hand_uses_the_next_action_taken_and_no_target_gradient() -> None:
    q = torch.tensor([[1.0, 2.0], [0.5, 0.0], [3.0, 1.0]], requires_grad=True)
    q_next = torch.tensor([[4.0, 10.0], [2.0, 6.0], [5.0, 5.0]], requires_grad=True)
    batch = {
        "actions": torch.tensor([1, 0, 0]),
        "rewards": torch.tensor([1.0, -1.0, 1.0]),
        "next_actions": torch.tensor([0, 1, 0]),  # a' taken, not the greedy one
        "not_terminal": torch.tensor([1.0, 1.0, 0.0]),  # the third reached the goal
    }
    loss, td = sarsa_loss(q, q_next, batch, gamma=0.5)
    # y = (1 + 0.5*4, -1 + 0.5*6, 1) = (3, 2, 1); Q(s, a) = (2, 0.5, 3); td = (1, 1.5, -2)
    torch.testing.assert_close(td, torch.tensor([1.0, 1.5, -2.0]))
    assert loss.item() == pytest.approx((1 + 2.25 + 4) / 3)
    loss.backward()
    assert q_next.grad is None or not q_next.grad.any()  # semi-gradient: the target is fixed
    torch.testing.assert_close(q.grad, torch.tensor([[0.0, -2.0], [-3.0, 0.0], [4.0, 0.0]]) / 3)


def test_config_defaults_round_trip_and_validation() -> None:
    config = DeepSarsaConfig()
    assert (config.gamma, config.lr, config.hidden_sizes, config.epsilon_decay_factor) == (
        0.99,
        1e-3,
        [30, 30],
        0.9999,
    )
    assert config.epsilon_schedule().value(10_000) == pytest.approx(0.9999**10_000)
    config.training(hidden_sizes=[16], epsilon_final=0.05, rollout_fragment_length=4)
    assert (config.hidden_sizes, config.epsilon_final, config.rollout_fragment_length) == (
        [16],
        0.05,
        4,
    )
    with pytest.raises(ValueError, match="final"):
        DeepSarsaConfig().training(epsilon_final=2.0).validate()
    found = algorithms.hyperparameters("deep_sarsa")
    assert {"gamma", "lr", "hidden_sizes", "epsilon_decay_factor"} <= set(found)
    assert all(h.description for h in found.values())


@pytest.mark.usefixtures("ray_local")
def test_deep_sarsa_improves_on_moving_obstacles_and_checkpoints(tmp_path) -> None:
    config = (
        DeepSarsaConfig()
        .environment("rldojo/MovingObstacles-v0")
        .training(epsilon_decay_factor=0.999)  # explore less sooner: a short run
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        first = metrics.flatten(algo.train())
        assert all(key in first for key in metrics.REQUIRED)
        assert f"{metrics.LEARNER}/{SARSA_LOSS}" in first
        start = first[metrics.EPISODE_RETURN_MEAN]
        latest = start
        for _ in range(12):
            latest = metrics.flatten(algo.train())[metrics.EPISODE_RETURN_MEAN]
            if latest >= 0.0 and latest > start + 1.0:
                break
        # A random walk collides with the obstacles (-1 each); the goal is worth +1.
        assert latest >= 0.0 and latest > start + 1.0, (start, latest)
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
