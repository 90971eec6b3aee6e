"""What the five tabular algorithms share: the table module, the no-optimizer learner, two loops.

The tables live in an RLlib `TorchRLModule` (as buffers), so RLlib's own machinery moves them:
the learner updates them, `sync_weights` ships them to the EnvRunners that act with them, and
`Algorithm.save_to_path` / `from_checkpoint` store and restore them.

Two training loops cover the book's first half:
- `EpisodicTabular` (Monte Carlo, SARSA, Q-learning): sample whole episodes with the EnvRunners,
  then let the learner apply the book's update rule to each episode, transition by transition.
- `Planning` (policy and value iteration): the learner sweeps the env's transition model; the
  EnvRunners then play the resulting policy so every iteration reports episode returns too.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
import torch
import tree
from pydantic import Field
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.core.rl_module.torch import TorchRLModule
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
from algorithms.common.config import Hyperparameters, NonNegative, PerIteration, Probability
from algorithms.common.hyperparameter_config import HyperparameterConfig
from envs.grid_world import TabularModel

# ---- the module: a Q-table (and a V-table) that acts epsilon-greedily ------------------------


class TabularRLModule(TorchRLModule):
    """A table of action values over `Discrete` states, acting epsilon-greedily.

    Buffers: `action_values` (S, A) is what the agent acts greedily on; `state_values` (S,) is
    the V-table of the algorithms that learn one (DP, Monte Carlo). Greedy ties are broken
    uniformly at random, as in the book. `model_config["epsilon"]` is the exploration rate.
    """

    def setup(self) -> None:
        num_states, num_actions = self.observation_space.n, self.action_space.n
        self.register_buffer("action_values", torch.zeros(num_states, num_actions))
        self.register_buffer("state_values", torch.zeros(num_states))
        self.epsilon = float(self.model_config.get("epsilon", 0.0))

    def greedy_actions(self, states: torch.Tensor) -> torch.Tensor:
        """argmax_a Q(s, a) per state, picking uniformly among tied best actions."""
        values = self.action_values[states.long()]  # (B, A)
        is_best = values == values.max(dim=1, keepdim=True).values
        return (torch.rand(values.shape) * is_best).argmax(dim=1)  # (B,)

    def _forward_inference(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {Columns.ACTIONS: self.greedy_actions(batch[Columns.OBS])}

    def _forward_exploration(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        greedy = self.greedy_actions(batch[Columns.OBS])
        explore = torch.rand(greedy.shape) < self.epsilon
        random_actions = torch.randint(int(self.action_space.n), greedy.shape)
        return {Columns.ACTIONS: torch.where(explore, random_actions, greedy)}

    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return self._forward_inference(batch)


# ---- the learner: the book's rules are not gradient steps -----------------------------------


class TabularLearner(TorchLearner):
    """A learner that owns a `TabularRLModule` and changes it with a tabular rule, not an optimizer.

    Subclasses implement `learn_from_episode` (MC, SARSA, Q-learning) or `plan` (DP).
    """

    def configure_optimizers_for_module(self, module_id: str, config: Any = None) -> None:
        """No optimizer: a table has no gradient step."""

    def compute_loss_for_module(self, **kwargs: Any) -> Any:
        raise NotImplementedError("a tabular learner applies an update rule, not a loss")

    @property
    def table(self) -> TabularRLModule:
        module: TabularRLModule = self.module[DEFAULT_MODULE_ID].unwrapped()
        return module

    def update(self, *, training_data: Any = None, timesteps: Any = None, **kwargs: Any) -> Any:
        """Apply `learn_from_episode` to every sampled episode, in the order they came."""
        with torch.no_grad():
            for episode in training_data.episodes:
                error = self.learn_from_episode(episode)
                self.metrics.log_value((DEFAULT_MODULE_ID, "td_error_abs_mean"), error)
        return self.metrics.reduce()

    def learn_from_episode(self, episode: Any) -> float:
        """Update the tables from one episode; return the mean absolute error it corrected."""
        raise NotImplementedError

    def transition_model(self) -> TabularModel:
        """The env's deterministic model, for the algorithms that read it (DP, Monte Carlo)."""
        env = envs.make(self.config.env, dict(self.config.env_config))
        return env.unwrapped.transition_model()  # type: ignore[attr-defined]


def episode_arrays(episode: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(states[T+1], actions[T], rewards[T]) of one RLlib `SingleAgentEpisode`."""
    states = np.asarray(episode.get_observations(), dtype=np.int64)
    actions = np.asarray(episode.get_actions(), dtype=np.int64)
    rewards = np.asarray(episode.get_rewards(), dtype=np.float64)
    return states, actions, rewards


# ---- the configs -----------------------------------------------------------------------------

StepSize = Annotated[float, Field(gt=0.0, le=1.0, allow_inf_nan=False)]  # alpha: 0 < alpha <= 1


class SharedTabularHyperparameters(Hyperparameters):
    """What every tabular algorithm sets; the defaults are the book's (section 3)."""

    gamma: Probability = Field(0.9, description="Discount factor of future rewards.")
    episodes_per_iteration: PerIteration = Field(
        10, description="Whole episodes sampled per training iteration."
    )


class TabularHyperparameters(SharedTabularHyperparameters):
    """Monte Carlo's, SARSA's and Q-learning's hyperparameters (book sections 3.3-3.5)."""

    alpha: StepSize = Field(  # book: 0.01
        0.01, description="Step size of the table update, V or Q += alpha * (target - estimate)."
    )
    epsilon: Probability = Field(  # the book's code ran 0.9 by mistake (book 3.5)
        0.1, description="Probability of a uniformly random action while training."
    )


class PlanningHyperparameters(
    SharedTabularHyperparameters.with_defaults(  # type: ignore[misc]
        episodes_per_iteration=1  # episodes played per iteration, only to report returns
    )
):
    """The dynamic-programming algorithms' hyperparameters (book sections 3.1, 3.2)."""

    sweeps_per_iteration: PerIteration = Field(  # a book button press
        1, description="Most synchronous Bellman sweeps run per training iteration."
    )
    tolerance: NonNegative = Field(
        1e-6, description="Sweeping stops early once no state value changes by more than this."
    )


class TabularConfig(HyperparameterConfig):
    """Settings shared by the tabular algorithms; the defaults are the book's (section 3)."""

    HYPERPARAMETERS = TabularHyperparameters

    def __init__(self, algo_class: type[Algorithm] | None = None) -> None:
        super().__init__(algo_class=algo_class)  # the record's defaults, then:
        self.num_env_runners = 0  # a table is cheap to act with: sample in the driver
        self.batch_mode = "complete_episodes"

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        return RLModuleSpec(module_class=TabularRLModule, model_config={"epsilon": self.epsilon})


class PlanningConfig(TabularConfig):
    """Settings of the dynamic-programming algorithms (book sections 3.1, 3.2)."""

    HYPERPARAMETERS = PlanningHyperparameters

    def __init__(self, algo_class: type[Algorithm] | None = None) -> None:
        super().__init__(algo_class=algo_class)
        self.epsilon = 0.0  # not a hyperparameter: DP follows its policy exactly when it plays


# ---- the two training loops ------------------------------------------------------------------


class TabularAlgorithm(Algorithm):
    """Shared plumbing: register rldojo's env ids with Ray, sample whole episodes, sync tables."""

    def setup(self, config: AlgorithmConfig) -> None:
        # EnvRunners may run in other processes or on other nodes: the job's env id too
        envs.register_with_ray(config.env)
        super().setup(config)

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
        return episodes

    def _sync_tables(self) -> None:
        self.env_runner_group.sync_weights(
            from_worker_or_learner_group=self.learner_group, inference_only=True
        )

    def _timesteps(self) -> dict[str, Any]:
        steps = self.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0)
        return {NUM_ENV_STEPS_SAMPLED_LIFETIME: steps}


class EpisodicTabular(TabularAlgorithm):
    """Monte Carlo, SARSA and Q-learning: learn from sampled episodes."""

    def training_step(self) -> None:
        """One iteration, as the book's episode loop:

        - play `episodes_per_iteration` whole episodes epsilon-greedily on the current table;
        - apply the algorithm's update rule to each episode, in time order;
        - send the new table to the EnvRunners.
        """
        with self.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER)):
            episodes = self._sample_episodes()
        with self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
            results = self.learner_group.update(episodes=episodes, timesteps=self._timesteps())
        self.metrics.aggregate(results, key=LEARNER_RESULTS)
        with self.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)):
            self._sync_tables()


class Planning(TabularAlgorithm):
    """Policy and value iteration: sweep the model, then play the policy to report returns."""

    def training_step(self) -> None:
        """One iteration, as one press of the book's GUI buttons:

        - sweep the transition model (the learner's `plan`: evaluate + improve, or one
          Bellman-optimality backup), up to `sweeps_per_iteration` times;
        - send the new values and policy to the EnvRunners;
        - play `episodes_per_iteration` episodes with it, so returns are reported like any
          other algorithm's.
        """
        with self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
            results = self.learner_group.foreach_learner(lambda learner: learner.plan())
        self.metrics.aggregate([result.get() for result in results], key=LEARNER_RESULTS)
        with self.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)):
            self._sync_tables()
        with self.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER)):
            self._sample_episodes()
