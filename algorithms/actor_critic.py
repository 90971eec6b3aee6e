"""Advantage actor-critic (book sections 5.3 and 5.4; Sutton & Barto 13.5; Mnih et al. 2016 A2C).

The book's actor-critic learns a policy pi(a|s) and a critic V(s) from the one-step TD error

    A_t = r_t + gamma * V(s_{t+1}) * (1 - done) - V(s_t)

minimising 0.2 * (-log pi(a_t|s_t) A_t) + 0.5 (r_t + gamma V(s_{t+1}) - V(s_t))^2 with one Adam
(lr 1e-3, gradient-norm clip 5). The same loop, with options, is:
- n-step / GAE advantages: `lambda_` > 0 (lambda_=1 gives n-step returns over `rollout_length`);
- A2C: several EnvRunners (`resources.env_runners` in the job spec) sample in parallel and one
  synchronous update uses all their steps;
- continuous actions (book 5.4, `rldojo/ContinuousCartPole-v0`): a Gaussian policy, chosen by
  the module from the `Box` action space; samples are clipped to the action bounds.

Deviations from the book, on purpose: the book updates after every single step (batch of 1);
here one update uses `rollout_length` steps per EnvRunner (32 by default; `rollout_length=1`
reproduces the book at a large speed cost). The book's reward shaping (+0.1 / -1 on failure) is
not applied, and a time-limit truncation is bootstrapped instead of treated as a failure.
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
from algorithms.actor_critic_learner import ActorCriticTorchLearner
from algorithms.actor_critic_rl_module import ActorCriticTorchRLModule
from algorithms.common.config import (
    Count,
    Hyperparameters,
    NonNegative,
    PerIteration,
    Positive,
    Preset,
    Probability,
)
from algorithms.common.hyperparameter_config import HyperparameterConfig

# A2C-style settings (GAE over 64-step rollouts), and their Gaussian-policy variant: each is
# CartPole's preset and, without CartPole's score to stop at, its family's.
A2C = {"lr": 0.005, "lambda_": 0.95, "rollout_length": 64}
GAUSSIAN = {**A2C, "grad_clip": 1.0, "actor_coeff": 0.1}

# Settings per env family, applied before a user's own values (algorithms.build).
PRESETS: dict[str, Preset] = {
    "cartpole": Preset(
        values=A2C,
        stop={"env_steps": 300_000, "return_mean": 475.0},
        envs=("CartPole-v1",),
        summary="A2C-style GAE(0.95) over 64-step rollouts (475 in ~38k steps, pg_cartpole.md)",
    ),
    "continuous_cartpole": Preset(
        values=GAUSSIAN,
        stop={"env_steps": 300_000, "return_mean": 475.0},
        envs=("rldojo/ContinuousCartPole-v0",),
        summary="Gaussian policy, GAE(0.95), 64-step rollouts (continuous_cartpole.md)",
    ),
    "vector": Preset(
        values=A2C,
        stop={"env_steps": 300_000},
        envs=("family:vector-discrete",),
        summary="cartpole's A2C settings for any vector env with discrete actions",
    ),
    "vector_continuous": Preset(
        values=GAUSSIAN,
        stop={"env_steps": 300_000},
        envs=("family:vector-continuous",),
        summary="continuous_cartpole's Gaussian settings for any vector env with a Box action",
    ),
    "book": Preset(
        values={},
        stop={"env_steps": 300_000},
        summary="the book's one-step agent, v2 CartPole settings (the config's defaults)",
    ),
}


class SharedActorCriticHyperparameters(Hyperparameters):
    """What actor-critic and A3C share (the returns, the loss, the optimizer, the network);
    the defaults are the book's v2 CartPole agent (5.3)."""

    gamma: Probability = Field(0.99, description="Discount factor of future rewards.")
    lr: Positive = Field(  # book v2: 1e-3
        1e-3, description="Adam learning rate of the shared optimizer."
    )
    grad_clip: NonNegative = Field(  # book v2: 5.0; continuous: 1.0
        5.0, description="Largest global norm of the gradient before a step (0: no clip)."
    )
    actor_coeff: NonNegative = Field(  # book v2: 0.2; continuous: 0.1
        0.2, description="Weight of the policy-gradient loss in the total loss."
    )
    critic_coeff: NonNegative = Field(  # book: 1.0
        1.0, description="Weight of the value loss 0.5 * (G - V)^2 in the total loss."
    )
    entropy_coeff: NonNegative = Field(  # book: none
        0.0, description="Weight of the policy-entropy bonus subtracted from the loss."
    )
    lambda_: Probability = Field(
        0.0, description="GAE lambda; 0 is the book's one-step advantage, 1 gives n-step returns."
    )
    hiddens: Count = Field(  # actor: 1 layer, critic: 2 layers
        24, description="Hidden units per layer of the actor and critic MLPs."
    )


class ActorCriticHyperparameters(SharedActorCriticHyperparameters):
    """Actor-critic's hyperparameters: the shared ones and its synchronous rollouts."""

    rollout_length: PerIteration = Field(  # book: 1
        32, description="Env steps each EnvRunner samples per update."
    )


class ActorCriticConfig(HyperparameterConfig):
    """Actor-critic settings; the defaults are the book's v2 CartPole agent (section 5.3)."""

    HYPERPARAMETERS = ActorCriticHyperparameters

    def __init__(self, algo_class: type[Algorithm] | None = None) -> None:
        super().__init__(algo_class=algo_class or ActorCritic)  # the record's defaults, then:
        self.grad_clip_by = "global_norm"  # clip the norm of all gradients together
        self.num_env_runners = 0  # sample in the driver; >0 runners sample in parallel (A2C)
        self.min_sample_timesteps_per_iteration = 1000  # updates repeat until this many steps
        self.normalize_actions = False  # Gaussian samples are in env units (book 5.4)...
        self.clip_actions = True  # ...and clipped to the action bounds, as the book does

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        return RLModuleSpec(
            module_class=ActorCriticTorchRLModule,
            model_config={"actor_hiddens": [self.hiddens], "critic_hiddens": [self.hiddens] * 2},
        )

    def get_default_learner_class(self) -> type:
        return ActorCriticTorchLearner


class ActorCritic(Algorithm):
    """Synchronous advantage actor-critic: sample, update once, sync, repeat."""

    @classmethod
    def get_default_config(cls) -> ActorCriticConfig:
        return ActorCriticConfig()

    def setup(self, config: AlgorithmConfig) -> None:
        # EnvRunners may run in other processes or on other nodes: the job's env id too
        envs.register_with_ray(config.env)
        super().setup(config)

    def training_step(self) -> None:
        """One update, as the book's loop (with `rollout_length` steps instead of one):

        - every EnvRunner samples `rollout_length` steps with the current policy;
        - the learner computes A_t (GAE, lambda_ = 0: one-step TD) and G_t = A_t + V(s_t), then
          takes one gradient step on the actor-critic loss;
        - the new weights go to the EnvRunners.
        """
        with self.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER)):
            episodes = self._sample()
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

    def _sample(self) -> list[Any]:
        """`rollout_length` steps from every EnvRunner (the driver's when there are none)."""
        length = self.config.rollout_length
        sampled = self.env_runner_group.foreach_env_runner(
            lambda runner: (runner.sample(num_timesteps=length), runner.get_metrics()),
            local_env_runner=self.env_runner_group.num_remote_workers() <= 0,
        )
        self.metrics.aggregate([metrics for _, metrics in sampled], key=ENV_RUNNER_RESULTS)
        episodes: list[Any] = tree.flatten([episodes for episodes, _ in sampled])
        return episodes
