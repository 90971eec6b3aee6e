"""REINFORCE: Monte Carlo policy gradient (book section 4.2; Williams 1992).

After every episode, with G_t = sum_k gamma^k r_{t+k} computed backwards and standardised
within the episode (G^_t = (G_t - mean) / std), take one Adam step on

    L = -sum_t log pi(a_t | s_t) * G^_t

The book's agent: policy MLP 15 -> 24 -> 24 -> 5 (ReLU, softmax), Adam lr 1e-3, gamma 0.99, one
update per episode, on the moving-obstacles grid (`rldojo/MovingObstacles-v0`). Options beyond
the book: `episodes_per_iteration` > 1 averages the per-episode losses of several episodes, and
`baseline=True` subtracts a learned V(s) from G^_t (REINFORCE with baseline, Sutton & Barto 13.4).
"""

from __future__ import annotations

from typing import Any

import tree
from pydantic import Field
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    ENV_RUNNER_SAMPLING_TIMER,
    LEARNER_RESULTS,
    LEARNER_UPDATE_TIMER,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    SYNCH_WORKER_WEIGHTS_TIMER,
    TIMERS,
)

import envs
from algorithms.common.config import (
    Count,
    Hyperparameters,
    NonNegative,
    PerIteration,
    Positive,
    Probability,
)
from algorithms.common.hyperparameter_config import HyperparameterConfig
from algorithms.reinforce_learner import ReinforceTorchLearner
from algorithms.reinforce_rl_module import ReinforceTorchRLModule


class ReinforceHyperparameters(Hyperparameters):
    """REINFORCE's hyperparameters; the defaults are the book's (section 4.2)."""

    gamma: Probability = Field(0.99, description="Discount factor of future rewards.")
    lr: Positive = Field(1e-3, description="Adam learning rate.")  # book: 1e-3
    episodes_per_iteration: PerIteration = Field(  # book: 1
        1, description="Whole episodes sampled per policy update."
    )
    normalise_returns: bool = Field(  # book: yes
        True, description="Standardise the discounted returns within each episode."
    )
    baseline: bool = Field(  # book: no
        False, description="Learn a state-value baseline and subtract it from the returns."
    )
    baseline_coeff: NonNegative = Field(
        1.0, description="Weight of the baseline's squared-error loss."
    )
    hiddens: Count = Field(24, description="Units of each of the two hidden layers.")  # book: 24


class ReinforceConfig(HyperparameterConfig):
    """REINFORCE settings; the defaults are the book's (section 4.2)."""

    HYPERPARAMETERS = ReinforceHyperparameters

    def __init__(self, algo_class: type[Algorithm] | None = None) -> None:
        super().__init__(algo_class=algo_class or Reinforce)  # the record's defaults, then:
        self.num_env_runners = 0  # one small MLP on one env: sample in the driver
        self.batch_mode = "complete_episodes"
        self.min_sample_timesteps_per_iteration = 500  # updates repeat until this many steps

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        return RLModuleSpec(
            module_class=ReinforceTorchRLModule,
            model_config={"hiddens": [self.hiddens] * 2, "baseline": self.baseline},
        )

    def get_default_learner_class(self) -> type:
        return ReinforceTorchLearner


class Reinforce(Algorithm):
    """Sample whole episodes, one policy-gradient step on them, sync, repeat."""

    @classmethod
    def get_default_config(cls) -> ReinforceConfig:
        return ReinforceConfig()

    def setup(self, config: AlgorithmConfig) -> None:
        # EnvRunners may run in other processes or on other nodes: the job's env id too
        envs.register_with_ray(config.env)
        super().setup(config)

    def training_step(self) -> None:
        """One update, as the book's episode loop:

        - play `episodes_per_iteration` whole episodes with the current stochastic policy;
        - compute each episode's discounted returns backwards and standardise them;
        - one Adam step on -sum_t log pi(a_t|s_t) G^_t (per episode, averaged over episodes);
        - send the new policy to the EnvRunners.
        """
        with self.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER)):
            episodes = self._sample_episodes()
        with self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
            steps = self.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME))
            results = self.learner_group.update(
                episodes=episodes, timesteps={NUM_ENV_STEPS_SAMPLED_LIFETIME: steps}
            )
        self.metrics.aggregate(results, key=LEARNER_RESULTS)
        with self.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)):
            self.env_runner_group.sync_weights(
                from_worker_or_learner_group=self.learner_group, inference_only=True
            )

    def _sample_episodes(self) -> list[Any]:
        """`episodes_per_iteration` whole episodes, split over the EnvRunners."""
        runners = max(self.env_runner_group.num_remote_workers(), 1)
        per_runner = -(-self.config.episodes_per_iteration // runners)  # ceil
        sampled = self.env_runner_group.foreach_env_runner(
            lambda runner: (runner.sample(num_episodes=per_runner), runner.get_metrics()),
            local_env_runner=self.env_runner_group.num_remote_workers() <= 0,
        )
        self.metrics.aggregate([metrics for _, metrics in sampled], key=ENV_RUNNER_RESULTS)
        episodes: list[Any] = tree.flatten([episodes for episodes, _ in sampled])
        return episodes[: self.config.episodes_per_iteration]
