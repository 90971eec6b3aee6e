"""Deep Q-network (book sections 5.2 CartPole and 6.2 Breakout; Mnih et al. 2015).

    act epsilon-greedily, store (s, a, r, s', done) in a replay memory, and after a warm-up take
    one gradient step per env step on a uniform minibatch towards
    y = r + gamma * (1 - done) * max_a' Q_target(s', a'); copy Q into Q_target periodically.

rldojo's DQN is the book's by default, with the replay memory in a shared Ray actor
(`algorithms/common/replay.py`): EnvRunners push their transitions to it, the learner samples
from it, and the driver only tells them when. `PRESETS` hold the book's settings; a job gets
the one whose envs list its env unless its `config.preset` names another (`algorithms.build`):

- "book_cartpole" (book 5.2): MLP 24-24 He-uniform, MSE, Adam 1e-3, replay 2,000, warm-up
  1,000, batch 64, target copy at every episode end, epsilon x0.999 per step down to 0.01.
- "book_breakout" (book 6.2, v2): Nature CNN, Huber, Adam 1e-4 with norm clip 10, replay
  100,000, warm-up 50,000, batch 32, target copy every 10,000 steps, epsilon 1.0 -> 0.02 over
  1M steps, a lost life is terminal for the targets.
- "tuned_cartpole" (not the book): double Q, dueling head, 3-step returns, 128-128 MLP, replay
  50,000, 0.5 updates per env step, sampling overlapped with learning; see bench/dqn_cartpole.py.
- "gpu_breakout" (not the book): "book_breakout" with batch 128 at 0.25 updates per env step
  (the book's 32 replayed transitions per env step in a quarter of the updates) and sampling
  overlapped with learning: for a GPU learner, where a batch of 32 leaves it launch-bound.

Beyond the book (all off in the book presets): `double_q`, `dueling`, `n_step`,
`prioritized_replay`, sharded replay (`replay_shards`), several EnvRunners and learners, GPUs.

Deviations from the book, and why:
- The target copy and the epsilon decay are counted in env steps after the warm-up; the
  updates are batched per rollout fragment (`rollout_fragment_length` steps, then as many
  gradient steps), not interleaved one by one. On Atari each EnvRunner steps 32 games at once
  in ale-py's C++ vector env (`envs/atari_vector.py`) with bfloat16 greedy actions where the CPU
  multiplies bfloat16 natively (`acting_dtype="auto"`); `gym_env_vectorize_mode="sync"` and
  `acting_dtype="float32"` give back the Gymnasium pipeline and float32 acting.
- A time-limit truncation bootstraps from the last observation; the book treats CartPole's
  500-step cut as terminal (book section 8, item 6). The book's CartPole reward shaping (-100
  on failure) is not applied: DQN learns on the environment's own reward.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

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
    NUM_EPISODES_LIFETIME,
    SYNCH_WORKER_WEIGHTS_TIMER,
    TIMERS,
)
from ray.rllib.utils.metrics.metrics_logger import MetricsLogger

import envs
from algorithms.common.hyperparameter_config import HyperparameterConfig
from algorithms.common.replay_env_runner import ReplayEnvRunner
from algorithms.common.replay_shards import Replay
from algorithms.common.schedules import EpsilonSchedule
from algorithms.dqn_learner import DQNTorchLearner
from algorithms.dqn_rl_module import DQNTorchRLModule
from algorithms.dqn_settings import PRESETS, DQNHyperparameters

__all__ = ["DQN", "PRESETS", "DQNConfig", "DQNHyperparameters"]

logger = logging.getLogger(__name__)

TARGET_UPDATE_TIMER = "target_network_update"
SAMPLING_WAIT_TIMER = "env_runner_sampling_wait"  # waiting for overlapped sampling to end
EPSILON = "epsilon"
REPLAY_SIZE = "replay_size"
SAMPLE_TAG = "sample_to_replay"  # tags the overlapped sampling calls

# ---- the config ------------------------------------------------------------------------------


class DQNConfig(HyperparameterConfig):
    """DQN's settings; the defaults are the book's CartPole DQN (section 5.2).

    `PRESETS` hold the book's settings per env family; `algorithms.build("dqn", env)` applies
    the env's preset before a user's own values (the job spec's `config`).

    Example:
        >>> config = DQNConfig().environment("CartPole-v1").training(double_q=True)
        >>> config.replay_capacity, config.double_q
        (2000, True)
        >>> DQNConfig().training(**PRESETS["book_breakout"].values).learning_starts
        50000
    """

    HYPERPARAMETERS = DQNHyperparameters

    def __init__(self, algo_class: type[Algorithm] | None = None) -> None:
        super().__init__(algo_class=algo_class or DQN)  # the record's defaults, then:
        self.num_env_runners = 1  # EnvRunner processes; they push to the replay actor
        self.min_sample_timesteps_per_iteration = 1000  # env steps per reported iteration
        self.env_runner_cls = ReplayEnvRunner  # type: ignore[assignment]
        # The learner zeroes nan/inf gradient entries after one global-norm check
        # (common/gradients.py), not RLlib's two passes over every tensor.
        self.torch_skip_nan_gradients = True
        self.evaluation(evaluation_config=AlgorithmConfig.overrides(explore=False))

    def validate(self) -> None:
        super().validate()
        for key, ok in {
            "replay_capacity": self.replay_capacity >= self.train_batch_size_per_learner,
            "replay_shards": self.replay_shards <= self.replay_capacity,
        }.items():
            if not ok:
                raise ValueError(f"{key}={getattr(self, key)!r} is out of range")
        self.epsilon_schedule()  # raises a ValueError naming bad epsilon settings

    def epsilon_schedule(self) -> EpsilonSchedule:
        """Exploration as a function of env steps; decay starts when the warm-up ends."""
        return EpsilonSchedule(
            initial=self.epsilon_initial,
            final=self.epsilon_final,
            shape=self.epsilon_decay,  # type: ignore[arg-type]
            decay_steps=self.epsilon_decay_steps,
            factor=self.epsilon_decay_factor,
            start=self.learning_starts,
        )

    def get_default_learner_class(self) -> type:
        return DQNTorchLearner

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        return RLModuleSpec(
            module_class=DQNTorchRLModule,
            model_config={
                "hidden_sizes": list(self.hidden_sizes),
                "activation": self.activation,
                "dueling": self.dueling,
                "init": self.init,
                "epsilon": self.epsilon_initial,
                "acting_dtype": self.acting_dtype,
            },
        )


def _update_target(learner: Any, _: Any = None) -> Any:
    return learner.update_target()


# ---- the algorithm ---------------------------------------------------------------------------


class DQN(Algorithm):
    """DQN with a replay actor that EnvRunners write to and learners read from."""

    config: DQNConfig
    # Set by `Algorithm.setup`, never None once training runs (narrowed for the type checker).
    metrics: MetricsLogger
    learner_group: LearnerGroup
    env_runner_group: EnvRunnerGroup

    @classmethod
    def get_default_config(cls) -> DQNConfig:
        return DQNConfig()

    def setup(self, config: AlgorithmConfig) -> None:  # type: ignore[override]
        # EnvRunners may run in other processes or on other nodes: the job's env id too
        envs.register_with_ray(config.env)
        # Before RLlib's setup, which ends with `on_algorithm_init`: a warm start fills it there.
        dqn: DQNConfig = config  # type: ignore[assignment]
        self.replay = Replay.create(
            num_shards=dqn.replay_shards,
            capacity=dqn.replay_capacity,
            seed=dqn.seed,
            n_step=dqn.n_step,
            gamma=dqn.gamma,
            prioritized=dqn.prioritized_replay,
            alpha=dqn.prioritized_replay_alpha,
        )
        super().setup(config)
        self.epsilon = self.config.epsilon_schedule()
        self.counters = {"update_credit": 0.0, "target_at_steps": 0, "target_at_episodes": 0}
        self._replay_sizes: dict[int, int] = {}

    def training_step(self) -> None:
        """One iteration step of the book's DQN loop:

        - every EnvRunner acts epsilon-greedily for one rollout fragment and pushes its
          transitions straight into the replay memory;
        - after the warm-up, the learner takes `updates_per_env_step` gradient steps per env
          step sampled, each on a minibatch it draws from the replay memory itself;
        - the target network is overwritten with the online one every `target_update_freq`
          env steps (or at every episode end when 0);
        - the new weights go to the EnvRunners.

        With `overlap_sampling` (beyond the book) the remote EnvRunners sample the next fragment
        while the learner trains on what is already stored, and the driver waits for both.
        """
        steps_before = self._env_steps()
        epsilon = self.epsilon.value(steps_before)
        overlap = self.config.overlap_sampling and self.env_runner_group.num_remote_workers() > 0
        with self.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER)):
            returned = self._sample_to_replay(epsilon, wait=not overlap)
        if not overlap:
            self._collect_samples(returned, steps_before)
        if self._env_steps() >= self.config.learning_starts and self.counters["update_credit"] >= 1:
            num_updates = int(self.counters["update_credit"])
            self.counters["update_credit"] -= num_updates
            with self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
                results = self._learn_from_replay(num_updates, self._env_steps())
            self.metrics.aggregate(results, key=LEARNER_RESULTS)
        if overlap:  # the EnvRunners sampled while the learner learned: wait for them now
            with self.metrics.log_time((TIMERS, SAMPLING_WAIT_TIMER)):
                self._collect_samples(self._wait_for_samples(), steps_before)
        steps = self._env_steps()
        self.metrics.log_value(EPSILON, epsilon, window=1)
        self.metrics.log_value(REPLAY_SIZE, sum(self._replay_sizes.values()), window=1)
        if steps < self.config.learning_starts:
            return
        if self._target_update_due(steps):
            with self.metrics.log_time((TIMERS, TARGET_UPDATE_TIMER)):
                self.learner_group.foreach_learner(_update_target)
        with self.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)):
            self.env_runner_group.sync_weights(
                from_worker_or_learner_group=self.learner_group, inference_only=True
            )

    # ---- helpers of training_step ----------------------------------------------------------

    def _env_steps(self) -> int:
        return int(
            self.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0)
        )

    def _learn_from_replay(self, num_updates: int, steps: int) -> list[Any]:
        """Every learner takes `num_updates` gradient steps on batches it draws itself."""
        replay, timesteps = self.replay, {NUM_ENV_STEPS_SAMPLED_LIFETIME: steps}

        def learn(learner: Any, _: Any = None) -> Any:
            return learner.learn_from_replay(replay, num_updates=num_updates, timesteps=timesteps)

        return [result.get() for result in self.learner_group.foreach_learner(learn)]

    def _sample_to_replay(self, epsilon: float, *, wait: bool) -> list[Any]:
        """Each EnvRunner samples a fragment and adds it to the replay; only metrics come back.

        With `wait=False` the remote calls are only started (nothing is returned):
        `_wait_for_samples` collects them later.
        """
        replay, life_loss = self.replay, self.config.life_loss_terminal

        def sample(runner: Any) -> Any:
            return runner.sample_to_replay(replay, epsilon=epsilon, life_loss_terminal=life_loss)

        if not wait:
            self.env_runner_group.foreach_env_runner_async(sample, tag=SAMPLE_TAG)
            return []
        local = self.env_runner_group.num_remote_workers() <= 0
        return self.env_runner_group.foreach_env_runner(sample, local_env_runner=local)

    def _wait_for_samples(self) -> list[Any]:
        """The results of the sampling calls `_sample_to_replay(wait=False)` started."""
        ready = self.env_runner_group.fetch_ready_async_reqs(tags=SAMPLE_TAG, timeout_seconds=None)
        return [result for _, result in ready]

    def _collect_samples(self, returned: list[Any], steps_before: int) -> None:
        """Aggregate the EnvRunners' metrics; earn `updates_per_env_step` per new env step."""
        self.metrics.aggregate([metrics for metrics, _ in returned], key=ENV_RUNNER_RESULTS)
        for _, sizes in returned:
            self._replay_sizes.update(sizes)
        steps = self._env_steps()
        if steps >= self.config.learning_starts:
            new = steps - max(steps_before, self.config.learning_starts)
            self.counters["update_credit"] += new * self.config.updates_per_env_step

    def _target_update_due(self, steps: int) -> bool:
        """Book 6.2: every `target_update_freq` env steps; book 5.2 (freq 0): at episode ends."""
        if self.config.target_update_freq > 0:
            if steps - self.counters["target_at_steps"] < self.config.target_update_freq:
                return False
            self.counters["target_at_steps"] = steps
            return True
        episodes = int(self.metrics.peek((ENV_RUNNER_RESULTS, NUM_EPISODES_LIFETIME), default=0))
        if episodes == self.counters["target_at_episodes"]:
            return False
        self.counters["target_at_episodes"] = episodes
        return True

    # ---- checkpoints: the replay memory's contents go with the algorithm's state -----------

    def get_state(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        state = super().get_state(*args, **kwargs)
        state["dqn_counters"] = dict(self.counters)
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        if "dqn_counters" in state:
            self.counters.update(state["dqn_counters"])

    def save_to_path(self, path: Any = None, **kwargs: Any) -> str:
        saved = super().save_to_path(path, **kwargs)
        if self.config.checkpoint_replay:
            if kwargs.get("filesystem") is not None:
                logger.warning("the replay memory is saved to local paths only; skipped")
            else:
                directory = Path(saved) / "replay"
                directory.mkdir(parents=True, exist_ok=True)
                self.replay.save(str(directory))
        return saved

    def restore_from_path(self, path: Any, *args: Any, **kwargs: Any) -> None:
        super().restore_from_path(path, *args, **kwargs)
        directory = Path(path) / "replay"
        if directory.is_dir() and self.config.checkpoint_replay:
            self.replay.restore(str(directory))

    def replay_stats(self) -> dict[str, float]:
        """Size and memory use of the replay memory, summed over its shards."""
        return self.replay.stats()

    def cleanup(self) -> None:
        super().cleanup()
        if hasattr(self, "replay"):
            self.replay.kill()
