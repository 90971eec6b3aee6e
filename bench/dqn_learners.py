"""rldojo's DQN learner against RLlib's built-in DQN learner: updates per second, same run.

Two nets, each on the same device and batch for both learners, timed in alternating rounds
(the median round reported), both learners in this process with the same torch threads:

- the book's CartPole MLP (4 -> 24 -> 24 -> 2, batch 64, Adam 1e-3, MSE): its compute is
  negligible, so this measures each learner's overhead per update (target: >= 3x RLlib's);
- Breakout's Nature CNN (batch 32, Adam 1e-4, Huber, clip 10; RLlib: `conv_filters` 32x8x8/4,
  64x4x4/2, 64x3x3/1 "valid" + head 512, fed float pixels as its own Atari wrapper does):
  the convolutions dominate on a CPU (target: >= 1.28x RLlib's).

rldojo's learner draws its minibatches itself (`learn_from_replay`: from the replay's shared
memory on this node); RLlib's does what its `DQN.training_step` does per update (sample from its
`EpisodeReplayBuffer`, `learner_group.update`). Plain Q-learning (no double Q, dueling, n-step),
uniform replay, both replays filled by one sampling iteration with learning switched off.

Usage:
    python bench/dqn_learners.py            # writes bench/results/dqn_learners.json
    python bench/dqn_learners.py --as-test  # short, asserts both targets
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import ray
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import algorithms  # noqa: E402
import envs  # noqa: E402
from bench.records import machine, report  # noqa: E402

BREAKOUT, CARTPOLE = "rldojo/Breakout-v0", "CartPole-v1"
BATCH = {BREAKOUT: 32, CARTPOLE: 64}
TARGETS = {CARTPOLE: 3.0, BREAKOUT: 1.28}  # rldojo's updates/s over RLlib's
NETS = {"cartpole_mlp": CARTPOLE, "breakout_cnn": BREAKOUT}  # result key -> env

Updates = Callable[[int], None]  # run n updates


def rldojo_learner(env_id: str, gpus: int = 0, **training: Any) -> tuple[Any, Updates]:
    """rldojo's DQN and n gradient steps through `learn_from_replay`, as `training_step` calls
    them (replay filled by one sampling iteration, learning switched off)."""
    config = (
        algorithms.build(
            "dqn",
            env_id,
            {
                "replay_capacity": 10_000,
                "learning_starts": 10**12,
                "train_batch_size_per_learner": BATCH[env_id],
                **training,
            },
        )
        .learners(num_gpus_per_learner=gpus)
        .reporting(min_sample_timesteps_per_iteration=1000)
    )
    algo = config.build_algo()
    algo.train()  # >= 1000 transitions in the replay memory
    learner, replay = algo.learner_group._learner, algo.replay

    def updates(n: int) -> None:
        learner.learn_from_replay(replay, num_updates=n, timesteps={})

    return algo, updates


class RLlibImageObservation(gym.ObservationWrapper):
    """(4, 84, 84) uint8 -> (84, 84, 4) float32 in [0, 1], the input RLlib's CNN encoder takes.

    RLlib's encoder wants channels last and float pixels (its own Atari wrapper,
    `NormalizedImageEnv`, scales them in the env as well); rldojo's network scales uint8 itself.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.observation_space = gym.spaces.Box(0.0, 1.0, (84, 84, 4), np.float32)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return np.transpose(observation, (1, 2, 0)).astype(np.float32) / 255.0


def rllib_learner(env_id: str, gpus: int = 0) -> tuple[Any, Updates]:
    """RLlib's DQN and n times what its `training_step` does per update: sample, `update`."""
    from ray.rllib.algorithms.dqn import DQNConfig as RLlibDQNConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
    from ray.tune.registry import register_env

    if env_id == BREAKOUT:
        register_env("breakout_hwc", lambda cfg: RLlibImageObservation(envs.make(BREAKOUT)))
        env, lr = "breakout_hwc", 1e-4
        model = DefaultModelConfig(
            conv_filters=[[32, 8, 4, "valid"], [64, 4, 2, "valid"], [64, 3, 1, "valid"]],
            conv_activation="relu",
            head_fcnet_hiddens=[512],
        )
    else:
        env, lr = env_id, 1e-3
        model = DefaultModelConfig(
            fcnet_hiddens=[24, 24], fcnet_activation="relu", head_fcnet_hiddens=[]
        )
    batch = BATCH[env_id]
    config = (
        RLlibDQNConfig()
        .environment(env)
        .training(
            lr=lr,
            train_batch_size_per_learner=batch,
            replay_buffer_config={"type": "EpisodeReplayBuffer", "capacity": 10_000},
            n_step=1,
            double_q=False,
            dueling=False,
            num_steps_sampled_before_learning_starts=10**12,
        )
        .rl_module(model_config=model)
        .learners(num_gpus_per_learner=gpus)
        .reporting(min_sample_timesteps_per_iteration=1000)
    )
    algo = config.build_algo()
    algo.train()  # fills its replay buffer with >= 1000 steps

    def updates(n: int) -> None:
        for _ in range(n):
            episodes = algo.local_replay_buffer.sample(
                num_items=batch, n_step=1, gamma=config.gamma, beta=0.0, sample_episodes=True
            )
            algo.learner_group.update(episodes=episodes, timesteps={})

    return algo, updates


def alternate(
    contenders: dict[str, tuple[Any, Updates]], updates: int, rounds: int, threads: int
) -> dict[str, list[float]]:
    """Updates/s of each contender per round, in alternating rounds (round 0 warms up)."""
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    for round_ in range(rounds + 1):
        for name, (_, run_updates) in contenders.items():
            torch.set_num_threads(threads)
            start = time.perf_counter()
            run_updates(updates)
            if round_:
                rates[name].append(updates / (time.perf_counter() - start))
    return rates


def compare(env_id: str, updates: int, rounds: int, threads: int, gpus: int = 0) -> dict:
    """rldojo vs RLlib on `env_id`'s book net: per-round rates, medians, ratio, parameters."""
    contenders = {
        "rldojo": rldojo_learner(env_id, gpus),
        "rllib": rllib_learner(env_id, gpus),
    }
    try:
        rates = alternate(contenders, updates, rounds, threads)
        params = {
            name: sum(p.numel() for p in algo.get_module().parameters())
            for name, (algo, _) in contenders.items()
        }
    finally:
        for algo, _ in contenders.values():
            algo.stop()
    medians = {name: statistics.median(r) for name, r in rates.items()}
    return {
        "batch_size": BATCH[env_id],
        "updates_per_round": updates,
        "rldojo_updates_per_s": round(medians["rldojo"], 2),
        "rllib_dqn_updates_per_s": round(medians["rllib"], 2),
        "ratio": round(medians["rldojo"] / medians["rllib"], 3),
        "rounds_updates_per_s": {n: [round(x, 2) for x in r] for n, r in rates.items()},
        "network_parameters": params,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cartpole-updates", type=int, default=500, help="per round")
    parser.add_argument("--breakout-updates", type=int, default=100, help="per round")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads")
    parser.add_argument("--out", default="bench/results/dqn_learners.json")
    parser.add_argument("--as-test", action="store_true")
    args = parser.parse_args()
    if args.as_test:
        args.rounds, args.cartpole_updates, args.breakout_updates = 2, 200, 30

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    envs.register_with_ray()
    result = {
        "command": "python " + " ".join(sys.argv),
        "machine": machine(),
        "torch_threads": args.threads,
        "cartpole_mlp": compare(CARTPOLE, args.cartpole_updates, args.rounds, args.threads),
        "breakout_cnn": compare(BREAKOUT, args.breakout_updates, args.rounds, args.threads),
    }
    ray.shutdown()
    ok = all(result[net]["ratio"] >= TARGETS[env] for net, env in NETS.items())
    report(result, args.out, as_test=args.as_test, ok=ok)


if __name__ == "__main__":
    main()
