"""Deep SARSA (book section 4.1): on-policy TD control with a neural Q-function, online.

    play a epsilon-greedily in s, observe r, s', choose a' in s' (and play it), then one Adam step
    on (r + gamma * Q(s', a') - Q(s, a))^2 with Q(s', a') held fixed; epsilon *= 0.9999 per step.

The book's agent on the moving-obstacles grid (`rldojo/MovingObstacles-v0`): MLP 15 -> 30 -> 30
-> 5 (ReLU, Keras's Glorot-uniform init), Adam lr 1e-3, gamma 0.99, one update per env step on a
batch of one transition, no replay and no target network, epsilon from 1.0 multiplied by 0.9999
every step down to 0.01.

Deviations: the EnvRunner plays `rollout_fragment_length` steps (default 1, the book's rhythm)
before the learner updates on them in order; the target uses the action actually taken next and
no gradient flows through it (the book's code draws a fresh a' and, in v2, back-propagates
through the target; book section 8, item 3).
"""

from __future__ import annotations

from typing import Any, Literal

import tree
from pydantic import Field
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.core.learner.learner_group import LearnerGroup
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.env.env_runner_group import EnvRunnerGroup
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    ENV_RUNNER_SAMPLING_TIMER,
    LEARNER_RESULTS,
    LEARNER_UPDATE_TIMER,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    SYNCH_WORKER_WEIGHTS_TIMER,
    TIMERS,
)
from ray.rllib.utils.metrics.metrics_logger import MetricsLogger

import envs
from algorithms.common.config import (
    Count,
    Hyperparameters,
    PerIteration,
    Positive,
    Probability,
)
from algorithms.common.hyperparameter_config import HyperparameterConfig
from algorithms.common.q_network import EpsilonGreedyQModule
from algorithms.common.schedules import EpsilonSchedule
from algorithms.deep_sarsa_learner import DeepSarsaTorchLearner

EPSILON = "epsilon"


class DeepSarsaHyperparameters(Hyperparameters):
    """Deep SARSA's hyperparameters; the defaults are the book's (section 4.1)."""

    gamma: Probability = Field(0.99, description="Discount factor of future rewards.")
    lr: Positive = Field(1e-3, description="Adam learning rate.")  # book: 1e-3
    hidden_sizes: list[Count] = Field(  # book: 30, 30
        [30, 30], description="Hidden layer widths of the Q-network."
    )
    epsilon_initial: Probability = Field(1.0, description="Exploration rate at the first step.")
    epsilon_final: Probability = Field(0.01, description="Lowest exploration rate.")
    epsilon_decay_factor: Probability = Field(  # book: 0.9999
        0.9999, description="Multiplier applied to epsilon after every env step."
    )
    init: Literal["glorot_uniform", "he_uniform", "torch"] = Field(  # Keras's default, the book's
        "glorot_uniform", description="Weight initialisation: glorot_uniform, he_uniform or torch."
    )
    rollout_fragment_length: PerIteration = Field(  # RLlib's EnvRunner setting (book: 1)
        1, description="Env steps played between two rounds of updates."
    )


class DeepSarsaConfig(HyperparameterConfig):
    """Deep SARSA's settings; the defaults are the book's (section 4.1).

    Example:
        >>> config = DeepSarsaConfig().training(lr=5e-4)
        >>> config.lr, config.hidden_sizes, config.epsilon_decay_factor
        (0.0005, [30, 30], 0.9999)
    """

    HYPERPARAMETERS = DeepSarsaHyperparameters

    def __init__(self, algo_class: type[Algorithm] | None = None) -> None:
        super().__init__(algo_class=algo_class or DeepSarsa)  # the record's defaults, then:
        self.num_env_runners = 0  # one small MLP on one env, online: sample in the driver
        self.min_sample_timesteps_per_iteration = 500  # env steps per reported iteration

    def validate(self) -> None:
        super().validate()
        self.epsilon_schedule()  # raises a ValueError naming bad epsilon settings

    def epsilon_schedule(self) -> EpsilonSchedule:
        """Epsilon after t env steps: max(final, initial * factor^t), as in the book."""
        return EpsilonSchedule(
            initial=self.epsilon_initial,
            final=self.epsilon_final,
            shape="exponential",
            factor=self.epsilon_decay_factor,
        )

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        return RLModuleSpec(
            module_class=EpsilonGreedyQModule,
            model_config={
                "hidden_sizes": list(self.hidden_sizes),
                "init": self.init,
                "epsilon": self.epsilon_initial,
            },
        )

    def get_default_learner_class(self) -> type:
        return DeepSarsaTorchLearner


class DeepSarsa(Algorithm):
    """Play a fragment epsilon-greedily, update on each transition in order, sync, repeat."""

    config: DeepSarsaConfig
    # Set by `Algorithm.setup`, never None once training runs (narrowed for the type checker).
    metrics: MetricsLogger
    learner_group: LearnerGroup
    env_runner_group: EnvRunnerGroup

    @classmethod
    def get_default_config(cls) -> DeepSarsaConfig:
        return DeepSarsaConfig()

    def setup(self, config: AlgorithmConfig) -> None:  # type: ignore[override]
        # EnvRunners may run in other processes or on other nodes: the job's env id too
        envs.register_with_ray(config.env)
        super().setup(config)
        self.epsilon = self.config.epsilon_schedule()

    def training_step(self) -> None:
        """One round of the book's step loop:

        - play `rollout_fragment_length` steps epsilon-greedily with the current Q-network
          (epsilon from the env steps played so far);
        - for each transition (s, a, r, s', a'), in order, one Adam step on the squared SARSA
          TD error, where a' is the action taken next and the target carries no gradient;
        - send the new Q-network to the EnvRunners.
        """
        steps = int(
            self.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0)
        )
        epsilon = self.epsilon.value(steps)
        with self.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER)):
            episodes = self._sample(epsilon)
        self.metrics.log_value(EPSILON, epsilon, window=1)
        with self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
            steps = int(self.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME)))
            results = self.learner_group.update(
                episodes=episodes, timesteps={NUM_ENV_STEPS_SAMPLED_LIFETIME: steps}
            )
        self.metrics.aggregate(results, key=LEARNER_RESULTS)
        with self.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)):
            self.env_runner_group.sync_weights(
                from_worker_or_learner_group=self.learner_group, inference_only=True
            )

    def _sample(self, epsilon: float) -> list[Any]:
        """One rollout fragment from each EnvRunner, acting with exploration rate `epsilon`."""

        def sample(runner: Any) -> tuple[list[Any], dict[str, Any]]:
            runner.module.epsilon = epsilon
            return runner.sample(explore=True), runner.get_metrics()

        sampled = self.env_runner_group.foreach_env_runner(
            sample, local_env_runner=self.env_runner_group.num_remote_workers() <= 0
        )
        self.metrics.aggregate([metrics for _, metrics in sampled], key=ENV_RUNNER_RESULTS)
        episodes: list[Any] = tree.flatten([episodes for episodes, _ in sampled])
        return episodes
