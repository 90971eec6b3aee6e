"""A3C (book 6.3): the worker loss by hand, config, asynchrony, a killed worker, checkpoints."""

from __future__ import annotations

import math
import os
import signal
import time

import gymnasium as gym
import numpy as np
import pytest
import torch
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.tune.registry import register_env

import algorithms
from algorithms.a3c import A3CConfig
from algorithms.actor_critic_learner import actor_critic_loss
from algorithms.actor_critic_rl_module import ActorCriticTorchRLModule
from algorithms.common import metrics

LN3 = math.log(3.0)
SLOW_ENV = "rldojo_test/CartPoleSlowWorker1-v0"


class _SleepEachStep(gym.Wrapper):
    """Slows one worker's env down on purpose."""

    def __init__(self, env: gym.Env, seconds: float) -> None:
        super().__init__(env)
        self.seconds = seconds

    def step(self, action):  # type: ignore[no-untyped-def]
        time.sleep(self.seconds)
        return self.env.step(action)


def _slow_on_worker_1(env_context) -> gym.Env:  # type: ignore[no-untyped-def]
    env = gym.make("CartPole-v1")
    return _SleepEachStep(env, 0.2) if env_context.worker_index == 1 else env


def _config(**training) -> A3CConfig:  # type: ignore[no-untyped-def]
    return (
        A3CConfig()
        .environment("CartPole-v1")
        .training(lr=1e-3, gradients_per_iteration=20, **training)
        .debugging(seed=0)
    )


def test_worker_loss_sums_over_the_rollout_by_hand() -> None:
    module = RLModuleSpec(
        module_class=ActorCriticTorchRLModule,
        observation_space=gym.spaces.Box(-1, 1, (4,)),
        action_space=gym.spaces.Discrete(2),
        model_config={},
    ).build()
    fwd_out = {
        "action_dist_inputs": torch.tensor([[0.0, 0.0], [LN3, 0.0], [0.0, LN3]]),
        "vf_preds": torch.tensor([0.5, 1.0, 0.0]),
    }
    batch = {
        "actions": torch.tensor([0, 1, 1]),
        "advantages": torch.tensor([1.0, -2.0, 0.5]),
        "value_targets": torch.tensor([1.5, -1.0, 0.5]),
    }
    config = A3CConfig()
    total, parts = actor_critic_loss(
        module,
        batch,
        fwd_out,
        actor_coeff=config.actor_coeff,
        critic_coeff=config.critic_coeff,
        entropy_coeff=config.entropy_coeff,
        reduction="sum",
    )
    # policy: -(ln .5 - 2 ln .25 + .5 ln .75) = -1.935601; value: 0.5 * (1 + 4 + .25) = 2.625;
    # entropy: ln 2 + 2 * 0.562335 = 1.817817; total = policy + 0.5 value - 0.01 entropy.
    assert parts["policy_loss"].item() == pytest.approx(-1.935601, abs=1e-5)
    assert parts["vf_loss"].item() == pytest.approx(2.625)
    assert parts["entropy"].item() == pytest.approx(1.817817, abs=1e-5)
    assert total.item() == pytest.approx(-1.935601 + 1.3125 - 0.01817817, abs=1e-5)


def test_config_defaults_and_validation() -> None:
    config = A3CConfig()
    assert (config.t_max, config.lr, config.grad_clip, config.entropy_coeff) == (
        20,
        1e-4,
        40.0,
        0.01,
    )
    assert config.lambda_ == 1.0 and config.num_env_runners == 2
    assert config.training(t_max=5).t_max == 5
    with pytest.raises(ValueError, match="t_max=0"):
        A3CConfig().environment("CartPole-v1").training(t_max=0).validate()
    with pytest.raises(ValueError, match="num_env_runners=0"):
        A3CConfig().environment("CartPole-v1").env_runners(num_env_runners=0).validate()
    assert {"t_max", "gradients_per_iteration", "entropy_coeff"} <= set(
        algorithms.hyperparameters("a3c")
    )


def test_learner_zeroes_non_finite_gradient_entries() -> None:
    learner = _config().build_learner(env=gym.make("CartPole-v1"))
    before = learner.get_weights()
    gradients = [np.ones_like(weight) for weight in before.values()]
    gradients[0][0] = np.nan  # a bad row in the first tensor
    weights, version, norm = learner.apply_worker_gradients(gradients)
    assert version == 1 and not math.isfinite(norm)
    for name, weight in weights.items():
        assert np.isfinite(weight).all(), name
        assert not np.array_equal(weight, before[name]), name  # every tensor moved


@pytest.mark.usefixtures("ray_local")
def test_a3c_trains_reports_and_checkpoints(tmp_path) -> None:
    algo = _config().build_algo()
    try:
        result = metrics.flatten(algo.train())
        assert all(key in result for key in metrics.REQUIRED)
        # At least 20 per iteration: gradients that arrive together are all applied.
        assert result["a3c/gradients_applied"] >= 20
        assert result["a3c/weights_version"] == result["a3c/gradients_applied"]
        assert result["a3c/env_steps_per_second"] > 0 and result["a3c/gradients_per_second"] > 0
        assert result["a3c/weights_version_lag_mean"] >= 0
        algo.save_to_path(str(tmp_path))
        weights = algo.get_module(DEFAULT_MODULE_ID).state_dict()
    finally:
        algo.stop()
    restored = Algorithm.from_checkpoint(str(tmp_path))
    try:
        again = restored.get_module(DEFAULT_MODULE_ID).state_dict()
        for key in weights:
            torch.testing.assert_close(weights[key], again[key])
        assert metrics.flatten(restored.train())["a3c/gradients_applied"] >= 20
    finally:
        restored.stop()


@pytest.mark.usefixtures("ray_local")
def test_a_slow_worker_does_not_hold_the_others_up() -> None:
    register_env(SLOW_ENV, _slow_on_worker_1)  # worker 1 sleeps 0.2 s per step: 4 s per rollout
    algo = _config().environment(SLOW_ENV).build_algo()
    try:
        applied = {1: 0, 2: 0}
        lag_max = 0
        for _ in range(3):
            result = metrics.flatten(algo.train())
            for worker in applied:
                applied[worker] += result.get(f"a3c/gradients_applied_worker_{worker}", 0)
            lag_max = max(lag_max, result["a3c/weights_version_lag_max"])
        # 60+ gradients applied; the fast worker delivered nearly all of them...
        assert applied[1] + applied[2] >= 60
        assert applied[2] >= 5 * applied[1]
        # ...so the slow worker's gradients arrive computed on weights many versions old.
        assert lag_max >= 5
    finally:
        algo.stop()


@pytest.mark.usefixtures("ray_local")
def test_a_killed_worker_is_restarted_and_training_completes() -> None:
    algo = _config().build_algo()
    try:
        algo.train()
        pids = algo.env_runner_group.foreach_env_runner(
            lambda runner: os.getpid(), local_env_runner=False
        )
        os.kill(pids[0], signal.SIGKILL)
        restarts = 0
        for _ in range(10):
            result = metrics.flatten(algo.train())
            assert result["a3c/gradients_applied"] >= 20  # the other worker keeps training
            restarts = result["a3c/num_env_runner_restarts"]
            if restarts >= 1:
                break
        assert restarts >= 1
        # The restarted worker is back in the rotation.
        algo.train()
        result = metrics.flatten(algo.train())
        assert result.get("a3c/gradients_applied_worker_1", 0) > 0
        assert result.get("a3c/gradients_applied_worker_2", 0) > 0
    finally:
        algo.stop()
