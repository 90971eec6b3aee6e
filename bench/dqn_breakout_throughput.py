"""Breakout throughput of rldojo `dqn`: sampling vs raw ALE, learner updates vs RLlib's DQN.

1. Sampling (target: >= 80 % of raw): env steps/s of the DQN pipeline with 2 EnvRunners (each
   `--envs` Breakouts, acting through the Q-network with epsilon 0.1, pushing every transition
   to the replay actor; learning switched off by an unreachable warm-up), against raw ALE: 2
   processes, each stepping `--envs` `rldojo/Breakout-v0` (the same preprocessing) with random
   actions in a Python loop. Same run, same machine, one after the other.
2. Learner updates/s (target: >= 1.2x): rldojo's learner drawing batches of 32 from the replay
   actor (`learn_from_replay`) against RLlib's built-in DQN doing what its `training_step` does
   per update (sample 32 from its episode replay buffer, `learner_group.update`), both with the
   Nature CNN (RLlib: `conv_filters` 32x8x8/4, 64x4x4/2, 64x3x3/1 "valid" + head 512, fed
   float pixels as its own Atari wrapper does), plain Q-learning (no double Q, dueling or
   n-step), uniform replay, Adam, one learner on the CPU in this process, the same torch
   threads for both, timed in alternating rounds (median reported).

Usage:
    python bench/dqn_breakout_throughput.py            # writes bench/results/...json
    python bench/dqn_breakout_throughput.py --as-test  # short, asserts both targets
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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

import envs  # noqa: E402
from algorithms.dqn import DQNConfig  # noqa: E402


@ray.remote(num_cpus=1)
def raw_steps(num_envs: int, seconds: float, seed: int) -> tuple[int, float]:
    """Step `num_envs` preprocessed Breakouts with random actions for `seconds`."""
    pool = [envs.make("rldojo/Breakout-v0") for _ in range(num_envs)]
    for i, env in enumerate(pool):
        env.reset(seed=seed + i)
    rng = np.random.default_rng(seed)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for env in pool:
            _, _, terminated, truncated, _ = env.step(int(rng.integers(3)))
            if terminated or truncated:
                env.reset()
            steps += 1
    return steps, time.perf_counter() - start


def raw_throughput(num_envs: int, seconds: float) -> float:
    results = ray.get([raw_steps.remote(num_envs, seconds, 1000 * i) for i in range(2)])
    return sum(steps / elapsed for steps, elapsed in results)


def sampling_throughput(num_envs: int, seconds: float, epsilon: float) -> float:
    """Env steps/s of the DQN sampling phase (2 EnvRunners -> replay actor)."""
    config = (
        DQNConfig()
        .environment("rldojo/Breakout-v0")
        .training(
            replay_capacity=100_000,
            learning_starts=10**12,  # sampling only
            epsilon_initial=epsilon,
            epsilon_final=epsilon,
            num_envs_per_env_runner=num_envs,
            rollout_fragment_length=32,
        )
        .env_runners(num_env_runners=2)
        .reporting(min_sample_timesteps_per_iteration=1000)
    )
    algo = config.build_algo()
    try:
        algo.train()  # warm up: envs built, first episodes started
        first = algo.train()
        steps0 = first["env_runners"]["num_env_steps_sampled_lifetime"]
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            last = algo.train()
        elapsed = time.perf_counter() - start
        stored = algo.replay_stats()["added"]
        steps = last["env_runners"]["num_env_steps_sampled_lifetime"] - steps0
        assert stored >= steps, (stored, steps)  # every sampled step reached the replay
        return steps / elapsed
    finally:
        algo.stop()


def rldojo_learner() -> tuple[Any, Callable[[int], None]]:
    """rldojo's DQN and n gradient steps, each on a minibatch of 32 from the replay actor."""
    config = (
        DQNConfig()
        .environment("rldojo/Breakout-v0")
        .training(replay_capacity=10_000, learning_starts=10**12, train_batch_size_per_learner=32)
        .reporting(min_sample_timesteps_per_iteration=1000)
    )
    algo = config.build_algo()
    algo.train()  # >= 1000 transitions in the replay memory
    learner, replay = algo.learner_group._learner, algo.replay

    def updates(n: int) -> None:  # as DQN.training_step calls it: n updates, chunks prefetched
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


def rllib_learner() -> tuple[Any, Callable[[int], None]]:
    """RLlib's DQN and n times what its `training_step` does per update: sample 32, `update`."""
    from ray.rllib.algorithms.dqn import DQNConfig as RLlibDQNConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
    from ray.tune.registry import register_env

    register_env("breakout_hwc", lambda cfg: RLlibImageObservation(envs.make("rldojo/Breakout-v0")))
    config = (
        RLlibDQNConfig()
        .environment("breakout_hwc")
        .training(
            lr=1e-4,
            train_batch_size_per_learner=32,
            replay_buffer_config={"type": "EpisodeReplayBuffer", "capacity": 10_000},
            n_step=1,
            double_q=False,
            dueling=False,
            num_steps_sampled_before_learning_starts=10**12,
        )
        .rl_module(
            model_config=DefaultModelConfig(
                conv_filters=[[32, 8, 4, "valid"], [64, 4, 2, "valid"], [64, 3, 1, "valid"]],
                conv_activation="relu",
                head_fcnet_hiddens=[512],
            )
        )
        .reporting(min_sample_timesteps_per_iteration=1000)
    )
    algo = config.build_algo()
    algo.train()  # fills its replay buffer with >= 1000 steps

    def updates(n: int) -> None:
        for _ in range(n):
            episodes = algo.local_replay_buffer.sample(
                num_items=32, n_step=1, gamma=config.gamma, beta=0.0, sample_episodes=True
            )
            algo.learner_group.update(episodes=episodes, timesteps={})

    return algo, updates


def learner_updates_per_second(updates: int, rounds: int, threads: int) -> dict[str, Any]:
    """Median updates/s of both learners, timed in alternating rounds of `updates` each.

    Both run in this process with the same torch threads (rldojo's learner alone would take
    one, leaving the other core to its EnvRunners), so neither gets a quieter machine.
    """
    contenders = {"rldojo": rldojo_learner(), "rllib": rllib_learner()}
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    try:
        for round_ in range(rounds + 1):  # round 0 warms both up
            for name, (_, run_updates) in contenders.items():
                torch.set_num_threads(threads)
                start = time.perf_counter()
                run_updates(updates)
                if round_:
                    rates[name].append(updates / (time.perf_counter() - start))
        params = {
            name: sum(p.numel() for p in algo.get_module().parameters())
            for name, (algo, _) in contenders.items()
        }
    finally:
        for algo, _ in contenders.values():
            algo.stop()
    return {"rates": rates, "params": params}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--envs", type=int, default=8, help="envs per EnvRunner / raw process")
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--updates", type=int, default=100, help="updates per timed round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads")
    parser.add_argument("--out", default="bench/results/dqn_breakout_throughput.json")
    parser.add_argument("--as-test", action="store_true")
    args = parser.parse_args()
    if args.as_test:
        args.seconds, args.updates, args.rounds = 15.0, 50, 2

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    envs.register_with_ray()
    raw = raw_throughput(args.envs, args.seconds)
    sampled = sampling_throughput(args.envs, args.seconds, epsilon=0.1)
    warmup = sampling_throughput(args.envs, args.seconds, epsilon=1.0)
    learners = learner_updates_per_second(args.updates, args.rounds, args.threads)
    ray.shutdown()
    mine = statistics.median(learners["rates"]["rldojo"])
    theirs = statistics.median(learners["rates"]["rllib"])
    result = {
        "command": "python " + " ".join(sys.argv),
        "machine": f"{platform.node()}, {os.cpu_count()} CPUs, no GPU",
        "envs_per_process": args.envs,
        "raw_ale_steps_per_s_2_processes": round(raw, 1),
        "rldojo_sampling_steps_per_s_2_runners_eps_0.1": round(sampled, 1),
        "rldojo_sampling_steps_per_s_2_runners_eps_1.0": round(warmup, 1),
        "sampling_ratio_eps_0.1": round(sampled / raw, 3),
        "sampling_ratio_eps_1.0": round(warmup / raw, 3),
        "torch_threads": args.threads,
        "rldojo_learner_updates_per_s": round(mine, 2),
        "rllib_dqn_learner_updates_per_s": round(theirs, 2),
        "learner_speedup": round(mine / theirs, 3),
        "learner_rounds_updates_per_s": {
            name: [round(rate, 2) for rate in rates] for name, rates in learners["rates"].items()
        },
        "network_parameters": learners["params"],
        "batch_size": 32,
    }
    print(json.dumps(result, indent=1))
    if args.as_test:
        assert result["sampling_ratio_eps_0.1"] >= 0.8, result
        assert result["learner_speedup"] >= 1.2, result
        return
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
