"""DQN's settings as data: its hyperparameter record and its named presets.

`DQNHyperparameters` declares every key a user may set (its type with its range, its default,
its meaning): `DQNConfig` takes its defaults from it and checks `training()` against it, and
the job spec, `GET /v1/algorithms` and the form read it (`algorithms.hyperparameters("dqn")`).
The defaults are the book's CartPole DQN (section 5.2).

`PRESETS` hold the book's settings per env family (see `algorithms/dqn.py`'s docstring); the
registry applies a job's preset before the user's own values (`algorithms.build`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from algorithms.common.config import (
    Count,
    Hyperparameters,
    NonNegative,
    PerIteration,
    Positive,
    Preset,
    Probability,
    Steps,
)


class DQNHyperparameters(Hyperparameters):
    """DQN's hyperparameters; the defaults are the book's CartPole DQN (section 5.2)."""

    gamma: Probability = Field(0.99, description="Discount factor of future rewards.")
    lr: Positive = Field(  # book 5.2: Adam 1e-3; 6.2: 1e-4
        1e-3, description="Learning rate of the optimizer."
    )
    train_batch_size_per_learner: Count = Field(  # book 5.2: 64; 6.2: 32
        64, description="Transitions per minibatch and gradient step."
    )
    replay_capacity: Count = Field(  # book 5.2: 2,000; 6.2: 100,000
        2_000, description="Transitions the replay memory keeps (oldest dropped first)."
    )
    replay_shards: Count = Field(
        1, description="Number of replay actors the capacity is split over."
    )
    learning_starts: Steps = Field(  # book 5.2: 1,000; 6.2: 50,000
        1_000, description="Env steps sampled before the first gradient step (the warm-up)."
    )
    updates_per_env_step: Positive = Field(  # book: 1
        1.0, le=1_000, description="Gradient steps per env step sampled after the warm-up."
    )
    target_update_freq: Steps = Field(  # book 5.2: 0; 6.2: 10,000
        0, description="Env steps between target-network copies; 0 copies at episode ends."
    )
    loss: Literal["huber", "mse"] = Field(
        "mse", description="TD loss: huber (book 6.2) or mse (book 5.2)."
    )
    optimizer_type: Literal["adam", "rmsprop"] = Field(  # adam: book 5.2 and 6.2 v2
        "adam", description="adam or rmsprop (RMSprop with rho 0.9, as in book 6.2 v1)."
    )
    optimizer_epsilon: Positive = Field(  # Keras's Adam default
        1e-7, description="The optimizer's epsilon (numerical stability term)."
    )
    grad_clip: NonNegative = Field(  # book 6.2 v2: 10
        0.0, description="Clip the gradients' global norm to this value (0: no clipping)."
    )
    epsilon_initial: Probability = Field(
        1.0, description="Exploration rate until the warm-up ends."
    )
    epsilon_final: Probability = Field(  # book 5.2: 0.01; 6.2: 0.02
        0.01, description="Lowest exploration rate."
    )
    epsilon_decay: Literal["linear", "exponential"] = Field(  # 5.2: exponential; 6.2: linear
        "exponential", description="Shape of the decay after the warm-up: linear or exponential."
    )
    epsilon_decay_factor: Probability = Field(  # book 5.2: 0.999
        0.999, description="Per-step multiplier of the exponential decay."
    )
    epsilon_decay_steps: Steps = Field(  # book 6.2: 1,000,000
        0, description="Steps from initial to final of the linear decay."
    )
    hidden_sizes: list[Count] = Field(  # book 5.2: 24, 24; 6.2: the Nature CNN, then 512
        [24, 24], description="Hidden layer widths (after the CNN for image observations)."
    )
    activation: Literal["relu", "tanh"] = Field(
        "relu", description="Hidden activation of the MLP: relu or tanh."
    )
    init: Literal["he_uniform", "glorot_uniform", "torch"] = Field(  # 5.2: he; 6.2: glorot
        "he_uniform", description="Weight initialisation: he_uniform, glorot_uniform or torch."
    )
    double_q: bool = Field(  # beyond the book
        False,
        description="Choose the next action with the online net, value it with the target net.",
    )
    dueling: bool = Field(  # beyond the book
        False, description="Split the head into state value and advantages."
    )
    n_step: Count = Field(  # beyond the book
        1, description="Steps summed in the return before bootstrapping."
    )
    prioritized_replay: bool = Field(  # beyond the book
        False, description="Sample transitions in proportion to their TD error."
    )
    prioritized_replay_alpha: NonNegative = Field(
        0.6, description="How strongly priorities shape sampling (0 is uniform)."
    )
    prioritized_replay_beta: NonNegative = Field(
        0.4, description="Importance-weight correction exponent."
    )
    life_loss_terminal: bool = Field(  # book 6.2: True
        False, description="Treat an Atari life loss as terminal for the targets."
    )
    checkpoint_replay: bool = Field(
        True, description="Save the replay memory's contents with each checkpoint."
    )
    overlap_sampling: bool = Field(
        False, description="Let remote EnvRunners sample the next fragment during updates."
    )
    cuda_graph: bool = Field(
        True, description="On a GPU learner, capture the update once as a CUDA graph and replay it."
    )
    acting_dtype: Literal["float32", "bfloat16", "auto"] = Field(
        "float32",
        description="Precision of the EnvRunners' greedy actions (auto: bfloat16 if native).",
    )
    # RLlib's own EnvRunner settings (which `env_runners()` sets as the same attributes):
    rollout_fragment_length: PerIteration = Field(
        4, description="Env steps per env between learning phases."
    )
    num_envs_per_env_runner: Count = Field(
        1, description="Environments stepped together by each EnvRunner."
    )
    gym_env_vectorize_mode: Literal["sync", "async", "vector_entry_point"] = Field(
        "sync",
        description='How EnvRunners step their envs: "vector_entry_point" (the Atari ids: '
        "ale-py's C++ vector env) or Gymnasium's \"sync\" vector of single envs (the reference "
        "Atari pipeline).",
    )


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
        envs=(*ATARI_ENV_IDS, "family:atari", "family:image-discrete"),
        summary="book 6.2: Nature CNN, replay 100k, warm-up 50k, target copy every 10k steps",
    ),
    "vector": Preset(
        values=BOOK_CARTPOLE,
        stop={"env_steps": 200_000},
        envs=("family:vector-discrete", "family:discrete-discrete"),
        summary="book 5.2's CartPole agent for any vector (or one-hot) env, no score to stop at",
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
