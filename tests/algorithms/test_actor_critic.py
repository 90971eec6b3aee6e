"""Actor-critic (book 5.3, 5.4): returns/GAE, the loss, config, learning, checkpoints."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

import algorithms
from algorithms.actor_critic import ActorCriticConfig
from algorithms.actor_critic_learner import actor_critic_loss
from algorithms.actor_critic_rl_module import ActorCriticTorchRLModule
from algorithms.common import metrics
from algorithms.common.returns import discounted_returns, gae, standardise
from algorithms.evaluation import evaluate

LN3 = math.log(3.0)


def _module(obs_space: gym.Space, action_space: gym.Space) -> ActorCriticTorchRLModule:
    spec = RLModuleSpec(
        module_class=ActorCriticTorchRLModule,
        observation_space=obs_space,
        action_space=action_space,
        model_config={},
    )
    module: ActorCriticTorchRLModule = spec.build()
    return module


def _discrete_batch() -> tuple[dict, dict]:
    # pi(.|s) = (0.5, 0.5), (0.75, 0.25), (0.25, 0.75); actions 0, 1, 1.
    fwd_out = {
        "action_dist_inputs": torch.tensor([[0.0, 0.0], [LN3, 0.0], [0.0, LN3]]),
        "vf_preds": torch.tensor([0.5, 1.0, 0.0]),
    }
    batch = {
        "actions": torch.tensor([0, 1, 1]),
        "advantages": torch.tensor([1.0, -2.0, 0.5]),
        "value_targets": torch.tensor([1.5, -1.0, 0.5]),
    }
    return batch, fwd_out


# ---- returns and advantages (algorithms/common/returns.py) ------------------------------------


def test_discounted_returns_and_standardise_by_hand() -> None:
    returns = discounted_returns(np.array([0.0, 0.0, 1.0]), gamma=0.5)
    np.testing.assert_allclose(returns, [0.25, 0.5, 1.0])
    # mean 0.583333, population std 0.311805
    np.testing.assert_allclose(standardise(returns), [-1.069045, -0.267261, 1.336306], atol=1e-5)


def test_gae_one_step_and_n_step_by_hand() -> None:
    rewards, values = np.array([1.0, 1.0, 1.0]), np.array([0.5, 0.5, 0.5])
    # lambda 0: r + 0.9 V(s') - V(s) = 0.95, 0.95, 1 + 0.9 * 2 - 0.5 = 2.3
    one_step = gae(rewards, values, bootstrap_value=2.0, gamma=0.9, lambda_=0.0)
    np.testing.assert_allclose(one_step, [0.95, 0.95, 2.3])
    # lambda 1: n-step returns 4.168, 3.52, 2.8 bootstrapped from 2.0, minus V = 0.5
    n_step = gae(rewards, values, bootstrap_value=2.0, gamma=0.9, lambda_=1.0)
    np.testing.assert_allclose(n_step, [3.668, 3.02, 2.3])


# ---- the loss ---------------------------------------------------------------------------------


def test_discrete_loss_by_hand() -> None:
    module = _module(gym.spaces.Box(-1, 1, (4,)), gym.spaces.Discrete(2))
    batch, fwd_out = _discrete_batch()
    total, parts = actor_critic_loss(
        module, batch, fwd_out, actor_coeff=0.2, critic_coeff=1.0, entropy_coeff=0.01
    )
    # -(ln .5 * 1 + ln .25 * -2 + ln .75 * .5) / 3
    assert parts["policy_loss"].item() == pytest.approx(-0.645200, abs=1e-5)
    assert parts["vf_loss"].item() == pytest.approx(0.5 * (1 + 4 + 0.25) / 3, abs=1e-6)
    assert parts["entropy"].item() == pytest.approx(0.605939, abs=1e-5)
    assert total.item() == pytest.approx(0.739901, abs=1e-5)


def test_gaussian_loss_by_hand() -> None:
    module = _module(gym.spaces.Box(-1, 1, (4,)), gym.spaces.Box(-3, 3, (1,)))
    fwd_out = {"action_dist_inputs": torch.tensor([[0.0, 0.0]]), "vf_preds": torch.tensor([0.0])}
    batch = {
        "actions": torch.tensor([[1.0]]),
        "advantages": torch.tensor([2.0]),
        "value_targets": torch.tensor([2.0]),
    }
    _, parts = actor_critic_loss(
        module, batch, fwd_out, actor_coeff=1.0, critic_coeff=1.0, entropy_coeff=0.0
    )
    # log N(1; 0, 1) = -0.5 ln(2 pi) - 0.5 = -1.418939; policy loss = -2 * that
    assert parts["policy_loss"].item() == pytest.approx(2.837877, abs=1e-5)
    assert parts["vf_loss"].item() == pytest.approx(2.0)


def test_module_bodies_and_gaussian_head() -> None:
    image = _module(gym.spaces.Box(0, 255, (4, 84, 84), np.uint8), gym.spaces.Discrete(3))
    out = image.forward_train({"obs": torch.zeros(2, 4, 84, 84, dtype=torch.uint8)})
    assert out["action_dist_inputs"].shape == (2, 3) and out["vf_preds"].shape == (2,)
    gaussian = _module(gym.spaces.Box(-1, 1, (4,)), gym.spaces.Box(-3, 3, (1,)))
    inputs = gaussian.forward_inference({"obs": torch.zeros(5, 4)})["action_dist_inputs"]
    sigma = inputs[:, 1].exp()
    assert ((sigma > 0) & (sigma <= 1 + 1e-5)).all()  # sigmoid + 1e-5
    dist = gaussian.get_inference_action_dist_cls().from_logits(inputs)
    assert dist.to_deterministic().sample().shape == (5, 1)


# ---- config -----------------------------------------------------------------------------------


def test_config_defaults_round_trip_and_validation() -> None:
    config = ActorCriticConfig()
    assert (config.gamma, config.lr, config.actor_coeff, config.lambda_) == (0.99, 1e-3, 0.2, 0.0)
    config.training(lambda_=0.95, rollout_length=8, entropy_coeff=0.01, lr=0.01)
    assert (config.lambda_, config.rollout_length, config.entropy_coeff, config.lr) == (
        0.95,
        8,
        0.01,
        0.01,
    )
    with pytest.raises(ValueError, match="lambda_=1.5"):
        ActorCriticConfig().environment("CartPole-v1").training(lambda_=1.5).validate()
    with pytest.raises(ValueError, match="rollout_length=0"):
        ActorCriticConfig().environment("CartPole-v1").training(rollout_length=0).validate()
    found = algorithms.hyperparameters("actor_critic")
    assert {"lambda_", "rollout_length", "actor_coeff", "entropy_coeff"} <= set(found)
    assert all(h.description for h in found.values())


# ---- real training ----------------------------------------------------------------------------


@pytest.mark.usefixtures("ray_local")
def test_actor_critic_improves_on_cartpole() -> None:
    config = (
        ActorCriticConfig()
        .environment("CartPole-v1")
        .training(lr=0.005, lambda_=0.95, rollout_length=64)
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        first = metrics.flatten(algo.train())
        assert all(key in first for key in metrics.REQUIRED)
        assert f"{metrics.LEARNER}/policy_loss" in first
        best = first[metrics.EPISODE_RETURN_MEAN]
        for _ in range(14):
            best = max(best, metrics.flatten(algo.train())[metrics.EPISODE_RETURN_MEAN])
            if best > 100:
                break
        assert best > 100 > first[metrics.EPISODE_RETURN_MEAN]
    finally:
        algo.stop()


@pytest.mark.usefixtures("ray_local")
def test_continuous_actor_critic_trains_and_checkpoints(tmp_path) -> None:
    config = (
        ActorCriticConfig()
        .environment("rldojo/ContinuousCartPole-v0")
        .training(grad_clip=1.0, actor_coeff=0.1)
        .reporting(min_sample_timesteps_per_iteration=200)
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        result = metrics.flatten(algo.train())
        assert all(key in result for key in metrics.REQUIRED)
        algo.save_to_path(str(tmp_path))
        weights = algo.get_module(DEFAULT_MODULE_ID).state_dict()
    finally:
        algo.stop()
    restored = Algorithm.from_checkpoint(str(tmp_path))
    try:
        again = restored.get_module(DEFAULT_MODULE_ID).state_dict()
        assert weights.keys() == again.keys()
        for key in weights:
            torch.testing.assert_close(weights[key], again[key])
        restored.train()
    finally:
        restored.stop()
    # The lead's evaluation rebuilds only the module and acts with the Gaussian's mean.
    played = evaluate(tmp_path, episodes=1, seed=0)
    assert played.length_mean >= 1
