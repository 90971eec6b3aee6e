"""Breakout sampling of rldojo `dqn` against raw ALE, same run, alternating rounds.

Contenders, each given `--seconds` per round on the same 2 CPUs, round after round:

- raw Python loop (the ceiling of issue 13): 2 processes, each stepping `--envs`
  `rldojo/Breakout-v0` (the Gymnasium pipeline, the book's preprocessing) with random actions;
- raw AtariVectorEnv: 2 processes, each stepping one `AtariVector` of `--envs` Breakouts (ale-py's
  C++ vector env, same preprocessing) with random actions;
- rldojo `dqn` sampling: 2 EnvRunners, each `--envs` Breakouts in an `AtariVector` for
  `--fragment` steps per call, acting through the Q-network with epsilon 0.1 (bfloat16 greedy
  actions where the CPU has them: preset "book_breakout"), every transition pushed to the replay
  actor; learning switched off by an unreachable warm-up;
- the same with preset "book_breakout" as a user gets it (32 games x 8-step fragments);
- the same through the Gymnasium pipeline (`gym_env_vectorize_mode="sync"`, RLlib's own
  sampling loop), the reference and what the preset ran before issue 13.

Target (issue 13): rldojo's sampling >= 1.0x the raw Python loop.

Usage:
    python bench/dqn_breakout_throughput.py            # writes bench/results/...json
    python bench/dqn_breakout_throughput.py --as-test  # short, asserts the target
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import ray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import algorithms  # noqa: E402
import envs  # noqa: E402
from bench.records import machine, report  # noqa: E402

BREAKOUT = "rldojo/Breakout-v0"
TARGET = 1.0


@ray.remote(num_cpus=1)
def raw_python_loop(num_envs: int, seconds: float, seed: int) -> tuple[int, float]:
    """Step `num_envs` Gymnasium-pipeline Breakouts in a Python loop with random actions."""
    pool = [envs.make(BREAKOUT) for _ in range(num_envs)]
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


@ray.remote(num_cpus=1)
def raw_vector(num_envs: int, seconds: float, seed: int) -> tuple[int, float]:
    """Step one `AtariVector` of `num_envs` Breakouts with random actions (it resets itself)."""
    env = envs.make_for_rllib(BREAKOUT, {"num_envs": num_envs})
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        env.step(rng.integers(3, size=num_envs))
        steps += num_envs
    env.close()
    return steps, time.perf_counter() - start


def raw_rate(task: Any, processes: int, num_envs: int, seconds: float) -> float:
    """Env steps/s of `processes` copies of a raw stepping task, together."""
    results = ray.get([task.remote(num_envs, seconds, 1000 * i) for i in range(processes)])
    return sum(steps / elapsed for steps, elapsed in results)


class Sampling:
    """A DQN that only samples (warm-up never ends); `rate(seconds)` gives its env steps/s."""

    def __init__(self, runners: int, epsilon: float = 0.1, **training: Any) -> None:
        config = (
            algorithms.build(
                "dqn",
                BREAKOUT,
                {
                    "replay_capacity": 100_000,
                    "learning_starts": 10**12,  # sampling only
                    "epsilon_initial": epsilon,
                    "epsilon_final": epsilon,
                    **training,
                },
            )
            .env_runners(num_env_runners=runners)
            .reporting(min_sample_timesteps_per_iteration=1)
        )
        self.algo = config.build_algo()
        self.algo.train()  # envs built, first episodes started

    def steps(self) -> int:
        result = self.algo.train()
        return int(result["env_runners"]["num_env_steps_sampled_lifetime"])

    def rate(self, seconds: float) -> float:
        first, start = self.steps(), time.perf_counter()
        while time.perf_counter() - start < seconds:
            last = self.steps()
        return (last - first) / (time.perf_counter() - start)

    def stop(self) -> dict[str, float]:
        stats = self.algo.replay_stats()
        self.algo.stop()
        return stats


def alternate(contenders: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Each contender's rate per round, round after round."""
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, rate in contenders.items():
            rates[name].append(rate())
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--envs", type=int, default=32, help="envs per EnvRunner / raw process")
    parser.add_argument("--fragment", type=int, default=32, help="steps per env and call")
    parser.add_argument("--seconds", type=float, default=20.0, help="per contender and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="bench/results/dqn_breakout_throughput.json")
    parser.add_argument("--as-test", action="store_true")
    args = parser.parse_args()
    if args.as_test:
        args.seconds, args.rounds = 8.0, 2

    # Three DQNs keep their 2 EnvRunners each alive between rounds, so Ray is told of 8 CPUs;
    # the machine has 2 and only one contender runs at a time.
    ray.init(num_cpus=8, include_dashboard=False, log_to_driver=False)
    envs.register_with_ray()
    tuned = Sampling(2, num_envs_per_env_runner=args.envs, rollout_fragment_length=args.fragment)
    preset = Sampling(2)  # book_breakout as a user gets it
    reference = Sampling(
        2,
        gym_env_vectorize_mode="sync",
        num_envs_per_env_runner=args.envs,
        rollout_fragment_length=args.fragment,
    )
    seconds = args.seconds
    rates = alternate(
        {
            "raw_python_loop": lambda: raw_rate(raw_python_loop, 2, args.envs, seconds),
            "raw_atari_vector": lambda: raw_rate(raw_vector, 2, args.envs, seconds),
            "rldojo_sampling": lambda: tuned.rate(seconds),
            "rldojo_book_breakout_preset": lambda: preset.rate(seconds),
            "rldojo_gymnasium_pipeline": lambda: reference.rate(seconds),
        },
        args.rounds,
    )
    replays = {name: s.stop() for name, s in (("tuned", tuned), ("preset", preset))}
    reference.stop()
    ray.shutdown()
    medians = {name: statistics.median(values) for name, values in rates.items()}
    raw = medians["raw_python_loop"]
    result = {
        "command": "python " + " ".join(sys.argv),
        "machine": machine(),
        "envs_per_process": args.envs,
        "fragment": args.fragment,
        "epsilon": 0.1,
        "steps_per_s_median": {name: round(value, 1) for name, value in medians.items()},
        "ratio_to_raw_python_loop": {
            name: round(value / raw, 3) for name, value in medians.items()
        },
        "rounds_steps_per_s": {n: [round(x, 1) for x in v] for n, v in rates.items()},
        "replay_transitions_added": {name: int(s["added"]) for name, s in replays.items()},
    }
    ok = result["ratio_to_raw_python_loop"]["rldojo_sampling"] >= TARGET
    report(result, args.out, as_test=args.as_test, ok=ok)


if __name__ == "__main__":
    main()
