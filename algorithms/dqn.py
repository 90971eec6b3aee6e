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
from typing import Annotated, Any, Literal, Self

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
    NUM_EPISODES_LIFETIME,
    SYNCH_WORKER_WEIGHTS_TIMER,
    TIMERS,
)
from ray.rllib.utils.metrics.metrics_logger import MetricsLogger

import envs
from algorithms.common.config import (
    Count,
    NonNegative,
    Positive,
    Preset,
    Probability,
    check_declared,
    set_given,
)
from algorithms.common.replay import Replay
from algorithms.common.replay_env_runner import ReplayEnvRunner
from algorithms.common.schedules import EpsilonSchedule
from algorithms.dqn_learner import DQNTorchLearner
from algorithms.dqn_rl_module import DQNTorchRLModule

logger = logging.getLogger(__name__)

TARGET_UPDATE_TIMER = "target_network_update"
SAMPLING_WAIT_TIMER = "env_runner_sampling_wait"  # waiting for overlapped sampling to end
EPSILON = "epsilon"
REPLAY_SIZE = "replay_size"
SAMPLE_TAG = "sample_to_replay"  # tags the overlapped sampling calls

ATARI_ENV_IDS = ("rldojo/Breakout-v0", "rldojo/Atari-v0")

# ---- the named presets (applied before a user's own values: algorithms.build) ---------------

BOOK_CARTPOLE: dict[str, Any] = {  # book 5.2
    "gamma": 0.99,
    "lr": 1e-3,
    "train_batch_size_per_learner": 64,
    "replay_capacity": 2_000,
    "learning_starts": 1_000,
    "updates_per_env_step": 1.0,
    "target_update_freq": 0,
    "loss": "mse",
    "optimizer_type": "adam",
    "optimizer_epsilon": 1e-7,
    "grad_clip": 0.0,
    "epsilon_initial": 1.0,
    "epsilon_final": 0.01,
    "epsilon_decay": "exponential",
    "epsilon_decay_factor": 0.999,
    "epsilon_decay_steps": 0,
    "hidden_sizes": [24, 24],
    "activation": "relu",
    "init": "he_uniform",
    "double_q": False,
    "dueling": False,
    "n_step": 1,
    "prioritized_replay": False,
    "life_loss_terminal": False,
    "rollout_fragment_length": 4,
    "num_envs_per_env_runner": 1,
    "gym_env_vectorize_mode": "sync",
    "acting_dtype": "float32",
    "overlap_sampling": False,
}
BOOK_BREAKOUT: dict[str, Any] = {  # book 6.2, revised edition (v2)
    **BOOK_CARTPOLE,
    "lr": 1e-4,
    "train_batch_size_per_learner": 32,
    "replay_capacity": 100_000,
    "learning_starts": 50_000,
    "target_update_freq": 10_000,
    "loss": "huber",
    "grad_clip": 10.0,
    "epsilon_final": 0.02,
    "epsilon_decay": "linear",
    "epsilon_decay_factor": 1.0,
    "epsilon_decay_steps": 1_000_000,
    "hidden_sizes": [512],
    "init": "glorot_uniform",
    "life_loss_terminal": True,
    # The book steps one game and updates after every step. Here each EnvRunner steps 32
    # games in ale-py's C++ vector env for 8 steps, then the learner takes as many updates
    # as env steps were taken: the book's ratio, in batches that keep the machine busy
    # (bench/results/dqn_breakout_throughput.md).
    "rollout_fragment_length": 8,
    "num_envs_per_env_runner": 32,
    "gym_env_vectorize_mode": "vector_entry_point",
    "acting_dtype": "auto",  # bfloat16 on CPUs that have it: half the CNN's time
}
PRESETS: dict[str, Preset] = {
    "book_cartpole": Preset(
        values=BOOK_CARTPOLE,
        stop={"env_steps": 200_000, "return_mean": 475.0},
        envs=("CartPole-v1",),  # (other vector envs get the same values: the config's defaults)
        summary="book 5.2: MLP 24-24, replay 2,000, batch 64, target copy at episode ends",
    ),
    "book_breakout": Preset(
        values=BOOK_BREAKOUT,
        stop={"env_steps": 10_000_000},
        envs=ATARI_ENV_IDS,
        summary="book 6.2: Nature CNN, replay 100k, warm-up 50k, target copy every 10k steps",
    ),
    "tuned_cartpole": Preset(
        values={
            **BOOK_CARTPOLE,
            "replay_capacity": 50_000,
            "updates_per_env_step": 0.5,
            "target_update_freq": 500,
            "loss": "huber",
            "grad_clip": 10.0,
            "epsilon_decay": "linear",
            "epsilon_final": 0.02,
            "epsilon_decay_steps": 10_000,
            "hidden_sizes": [128, 128],
            "double_q": True,
            "dueling": True,
            "n_step": 3,
            "rollout_fragment_length": 32,
            "overlap_sampling": True,
        },
        stop={"env_steps": 100_000, "return_mean": 475.0},
        summary="not the book: double Q, dueling, 3-step, 128-128 MLP (dqn_cartpole.md)",
    ),
    # On a GPU the update of the book's batch of 32 is launch-bound even as a CUDA graph: on
    # an H200 it ran 1,559 updates/s at batch 32 and 913 at batch 128, i.e. 50k vs 117k
    # transitions per second (bench/results/gpu_dqn.json). This preset replays the book's 32
    # transitions per env step as a quarter of the updates, each 4 times as large, and
    # overlaps sampling with learning. Not the book; its learning curve is not benchmarked.
    "gpu_breakout": Preset(
        values={
            **BOOK_BREAKOUT,
            "train_batch_size_per_learner": 128,
            "updates_per_env_step": 0.25,
            "overlap_sampling": True,
        },
        stop={"env_steps": 10_000_000},
        summary="not the book: book_breakout with batch 128 at 0.25 updates per env step",
    ),
    # Learning fast on a GPU box, any ALE game; published settings, sized to the H200's
    # measured update rate (bench/results/gpu_dqn.md). Not the book.
    # - double Q, dueling head, 3-step returns: Rainbow's components that need no new network
    #   (Hessel et al. 2018, "Rainbow", AAAI; n = 3 as there). Prioritized replay is left off:
    #   its sampling serializes with the update, and the learner sets this run's pace.
    # - Adam epsilon 1.5e-4, 20,000 steps of warm-up, epsilon 1.0 -> 0.01 over 250,000 steps:
    #   Dopamine's Rainbow/DQN Atari settings (Castro et al. 2018, dopamine/agents/*/configs).
    # - lr 1e-4 and a 100,000-transition replay: CleanRL's dqn_atari and the RL Zoo's Atari DQN.
    # - batch 128 at 0.125 updates per env step: 16 replayed transitions per env step (twice
    #   Mnih et al. 2015's 32 every 4 steps). At ~5,000 env steps/s (gpu_dqn.md: 4,885 at 0.25
    #   updates of 32) that is ~625 updates/s, 68 % of the 913/s a graph does at 128, where
    #   32 is launch-bound (1,559/s, 50k transitions/s against 117k at 128).
    # - a target copy every 2,000 env steps: 250 updates, CleanRL's 1,000 steps at 1 update
    #   per 4 steps.
    # - 64 games per EnvRunner in ale-py's C++ vector env, 4 steps each per sampling call (256
    #   transitions, as book_breakout's 32 x 8), sampling overlapped with learning, the update
    #   replayed from a CUDA graph (the default on a GPU learner).
    "fast_atari": Preset(
        values={
            **BOOK_BREAKOUT,
            "lr": 1e-4,
            "optimizer_epsilon": 1.5e-4,
            "train_batch_size_per_learner": 128,
            "updates_per_env_step": 0.125,
            "replay_capacity": 100_000,
            "learning_starts": 20_000,
            "target_update_freq": 2_000,
            "epsilon_final": 0.01,
            "epsilon_decay_steps": 250_000,
            "double_q": True,
            "dueling": True,
            "n_step": 3,
            "num_envs_per_env_runner": 64,
            "rollout_fragment_length": 4,
            "overlap_sampling": True,
            "cuda_graph": True,
        },
        stop={"env_steps": 10_000_000},
        summary="not the book: fast on a GPU box, any ALE game (Rainbow's double/dueling/3-step, "
        "Dopamine's warm-up and epsilon, batch 128 at 0.125 updates per step)",
    ),
}


# ---- the config ------------------------------------------------------------------------------


class DQNConfig(AlgorithmConfig):
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

    def __init__(self, algo_class: type[Algorithm] | None = None) -> None:
        super().__init__(algo_class=algo_class or DQN)
        self.gamma = 0.99  # discount factor (book 0.99)
        self.lr = 1e-3  # learning rate (book 5.2: Adam 1e-3; 6.2: 1e-4)
        self.train_batch_size_per_learner = 64  # minibatch size (book 5.2: 64; 6.2: 32)
        self.replay_capacity = 2_000  # transitions kept (book 5.2: 2,000; 6.2: 100,000)
        self.replay_shards = 1  # replay actors the capacity is split over
        self.learning_starts = 1_000  # env steps before the first update (book 5.2: 1,000)
        self.updates_per_env_step = 1.0  # gradient steps per env step (book: 1)
        self.target_update_freq = 0  # env steps between target copies; 0 = every episode end
        self.loss: str = "mse"  # "mse" (book 5.2) or "huber" (book 6.2)
        self.optimizer_type = "adam"  # "adam" (book 5.2, 6.2 v2) or "rmsprop" (6.2 v1)
        self.optimizer_epsilon = 1e-7  # Adam/RMSprop epsilon (Keras's Adam default 1e-7)
        self.grad_clip = 0.0  # type: ignore[assignment]  # global-norm clip, 0: none (6.2 v2: 10)
        self.epsilon_initial = 1.0  # exploration rate at the end of the warm-up
        self.epsilon_final = 0.01  # exploration floor (book 5.2: 0.01; 6.2: 0.02)
        self.epsilon_decay: str = "exponential"  # "exponential" (5.2) or "linear" (6.2)
        self.epsilon_decay_factor = 0.999  # per-step factor of the exponential decay (5.2)
        self.epsilon_decay_steps = 0  # steps of the linear decay (6.2: 1,000,000)
        self.hidden_sizes = [24, 24]  # MLP hidden layers (images: the CNN, then these)
        self.activation: str = "relu"  # hidden activation of the MLP
        self.init: str = "he_uniform"  # weight init: he_uniform (5.2), glorot_uniform (6.2)
        self.double_q = False  # choose a' with the online net (beyond the book)
        self.dueling = False  # V + A - mean(A) head (beyond the book)
        self.n_step = 1  # n-step returns (beyond the book)
        self.prioritized_replay = False  # proportional prioritized replay (beyond the book)
        # (RLlib keeps deprecated int placeholders under the next two names.)
        self.prioritized_replay_alpha = 0.6  # type: ignore[assignment]  # priority exponent
        self.prioritized_replay_beta = 0.4  # type: ignore[assignment]  # importance-weight exponent
        self.life_loss_terminal = False  # a lost life ends the targets' bootstrap (6.2: True)
        self.checkpoint_replay = True  # save the replay memory's contents in checkpoints
        self.overlap_sampling = False  # EnvRunners sample while the learner learns
        self.cuda_graph = True  # on a GPU, replay each update from a captured CUDA graph
        self.acting_dtype = "float32"  # precision of the EnvRunners' greedy actions
        self.num_env_runners = 1  # EnvRunner processes; they push to the replay actor
        self.rollout_fragment_length = 4  # env steps per env and iteration step
        self.min_sample_timesteps_per_iteration = 1000  # env steps per reported iteration
        self.env_runner_cls = ReplayEnvRunner  # type: ignore[assignment]
        # The learner zeroes nan/inf gradient entries after one global-norm check
        # (common/gradients.py), not RLlib's two passes over every tensor.
        self.torch_skip_nan_gradients = True
        self.evaluation(evaluation_config=AlgorithmConfig.overrides(explore=False))

    def training(  # type: ignore[override]
        self,
        *,
        gamma: Probability | None = None,
        lr: Positive | None = None,
        train_batch_size_per_learner: Count | None = None,
        replay_capacity: Count | None = None,
        replay_shards: Count | None = None,
        learning_starts: Annotated[int, Field(ge=0)] | None = None,
        updates_per_env_step: Positive | None = None,
        target_update_freq: Annotated[int, Field(ge=0)] | None = None,
        loss: Literal["huber", "mse"] | None = None,
        optimizer_type: Literal["adam", "rmsprop"] | None = None,
        optimizer_epsilon: Positive | None = None,
        grad_clip: NonNegative | None = None,
        epsilon_initial: Probability | None = None,
        epsilon_final: Probability | None = None,
        epsilon_decay: Literal["linear", "exponential"] | None = None,
        epsilon_decay_factor: Probability | None = None,
        epsilon_decay_steps: Annotated[int, Field(ge=0)] | None = None,
        hidden_sizes: list[Count] | None = None,
        activation: Literal["relu", "tanh"] | None = None,
        init: Literal["he_uniform", "glorot_uniform", "torch"] | None = None,
        double_q: bool | None = None,
        dueling: bool | None = None,
        n_step: Count | None = None,
        prioritized_replay: bool | None = None,
        prioritized_replay_alpha: NonNegative | None = None,
        prioritized_replay_beta: NonNegative | None = None,
        life_loss_terminal: bool | None = None,
        checkpoint_replay: bool | None = None,
        overlap_sampling: bool | None = None,
        cuda_graph: bool | None = None,
        acting_dtype: Literal["float32", "bfloat16", "auto"] | None = None,
        rollout_fragment_length: Count | None = None,
        num_envs_per_env_runner: Count | None = None,
        gym_env_vectorize_mode: Literal["sync", "async", "vector_entry_point"] | None = None,
        **kwargs: Any,
    ) -> Self:
        """Sets DQN's hyperparameters.

        Args:
            gamma: Discount factor of future rewards.
            lr: Learning rate of the optimizer.
            train_batch_size_per_learner: Transitions per minibatch and gradient step.
            replay_capacity: Transitions the replay memory keeps (oldest dropped first).
            replay_shards: Number of replay actors the capacity is split over.
            learning_starts: Env steps sampled before the first gradient step (the warm-up).
            updates_per_env_step: Gradient steps per env step sampled after the warm-up.
            target_update_freq: Env steps between target-network copies; 0 copies at episode ends.
            loss: TD loss: huber (book 6.2) or mse (book 5.2).
            optimizer_type: adam or rmsprop (RMSprop with rho 0.9, as in book 6.2 v1).
            optimizer_epsilon: The optimizer's epsilon (numerical stability term).
            grad_clip: Clip the gradients' global norm to this value (0: no clipping).
            epsilon_initial: Exploration rate until the warm-up ends.
            epsilon_final: Lowest exploration rate.
            epsilon_decay: Shape of the decay after the warm-up: linear or exponential.
            epsilon_decay_factor: Per-step multiplier of the exponential decay.
            epsilon_decay_steps: Steps from initial to final of the linear decay.
            hidden_sizes: Hidden layer widths (after the CNN for image observations).
            activation: Hidden activation of the MLP: relu or tanh.
            init: Weight initialisation: he_uniform, glorot_uniform or torch.
            double_q: Choose the next action with the online net, value it with the target net.
            dueling: Split the head into state value and advantages.
            n_step: Steps summed in the return before bootstrapping.
            prioritized_replay: Sample transitions in proportion to their TD error.
            prioritized_replay_alpha: How strongly priorities shape sampling (0 is uniform).
            prioritized_replay_beta: Importance-weight correction exponent.
            life_loss_terminal: Treat an Atari life loss as terminal for the targets.
            checkpoint_replay: Save the replay memory's contents with each checkpoint.
            overlap_sampling: Let remote EnvRunners sample the next fragment during updates.
            cuda_graph: On a GPU learner, capture the update once as a CUDA graph and replay it.
            acting_dtype: Precision of the EnvRunners' greedy actions (auto: bfloat16 if native).
            rollout_fragment_length: Env steps per env between learning phases.
            num_envs_per_env_runner: Environments stepped together by each EnvRunner.
            gym_env_vectorize_mode: How EnvRunners step their envs: "vector_entry_point" (the
                Atari ids: ale-py's C++ vector env) or Gymnasium's "sync" vector of single envs
                (the reference Atari pipeline).

        Returns:
            This config.
        """
        super().training(**kwargs)
        # (rollout_fragment_length, num_envs_per_env_runner and gym_env_vectorize_mode are
        # RLlib's own EnvRunner settings, which `env_runners()` sets as plain attributes too.)
        return set_given(
            self,
            gamma=gamma,
            lr=lr,
            train_batch_size_per_learner=train_batch_size_per_learner,
            replay_capacity=replay_capacity,
            replay_shards=replay_shards,
            learning_starts=learning_starts,
            updates_per_env_step=updates_per_env_step,
            target_update_freq=target_update_freq,
            loss=loss,
            optimizer_type=optimizer_type,
            optimizer_epsilon=optimizer_epsilon,
            grad_clip=grad_clip,
            epsilon_initial=epsilon_initial,
            epsilon_final=epsilon_final,
            epsilon_decay=epsilon_decay,
            epsilon_decay_factor=epsilon_decay_factor,
            epsilon_decay_steps=epsilon_decay_steps,
            hidden_sizes=list(hidden_sizes) if hidden_sizes is not None else None,
            activation=activation,
            init=init,
            double_q=double_q,
            dueling=dueling,
            n_step=n_step,
            prioritized_replay=prioritized_replay,
            prioritized_replay_alpha=prioritized_replay_alpha,
            prioritized_replay_beta=prioritized_replay_beta,
            life_loss_terminal=life_loss_terminal,
            checkpoint_replay=checkpoint_replay,
            overlap_sampling=overlap_sampling,
            cuda_graph=cuda_graph,
            acting_dtype=acting_dtype,
            rollout_fragment_length=rollout_fragment_length,
            num_envs_per_env_runner=num_envs_per_env_runner,
            gym_env_vectorize_mode=gym_env_vectorize_mode,
        )

    def validate(self) -> None:
        if self.num_gpus_per_learner == "auto":  # checkpoints written before devices.py said so
            self.num_gpus_per_learner = 0
        super().validate()
        check_declared(self)
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
        envs.register_with_ray()  # EnvRunners may run in other processes or on other nodes
        super().setup(config)
        self.replay = Replay.create(
            num_shards=self.config.replay_shards,
            capacity=self.config.replay_capacity,
            seed=self.config.seed,
            n_step=self.config.n_step,
            gamma=self.config.gamma,
            prioritized=self.config.prioritized_replay,
            alpha=self.config.prioritized_replay_alpha,
        )
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
