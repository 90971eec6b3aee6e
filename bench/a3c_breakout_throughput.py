"""A3C throughput on rldojo/Breakout-v0 with 1 and 2 workers, against raw ALE, in one run.

Measures, after one warm-up iteration, over `--iterations` training iterations:
env steps/s and gradients/s (A3C's own per-iteration metrics, averaged), the mean weight-version
lag of the gradients applied, and, as the ceiling, the env steps/s of a single process stepping
the same env (`envs.make("rldojo/Breakout-v0")`: the book's preprocessing, 84x84 gray, 4-stack,
3 actions) with random actions and no learning, in 1 process and in 2 processes at once (what
the machine allows two processes). Target: 2 workers >= 1.6x one worker.

Usage:
    python bench/a3c_breakout_throughput.py --iterations 5
    python bench/a3c_breakout_throughput.py --as-test
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import ray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import envs  # noqa: E402
from algorithms.a3c import A3CConfig  # noqa: E402
from algorithms.common import metrics  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def raw_env_steps_per_second(seconds: float) -> float:
    """Random actions on the preprocessed env in this process, no learning."""
    env = envs.make("rldojo/Breakout-v0")
    env.reset(seed=0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        steps += 1
        if terminated or truncated:
            env.reset()
    rate = steps / (time.perf_counter() - start)
    env.close()
    return rate


def raw_parallel_env_steps_per_second(processes: int, seconds: float) -> float:
    """`raw_env_steps_per_second` in `processes` processes at once, summed: what the machine
    itself allows N processes stepping the env, the ceiling of N workers' scaling."""
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        return sum(pool.map(raw_env_steps_per_second, [seconds] * processes))


def a3c_throughput(workers: int, iterations: int, gradients: int) -> dict:
    config = (
        A3CConfig()
        .environment("rldojo/Breakout-v0")
        .env_runners(num_env_runners=workers)
        .training(gradients_per_iteration=gradients)
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        algo.train()  # warm-up: actor start, first rollouts
        rows = [metrics.flatten(algo.train()) for _ in range(iterations)]
    finally:
        algo.stop()
    return {
        "workers": workers,
        "env_steps_per_s": round(float(np.mean([r["a3c/env_steps_per_second"] for r in rows])), 1),
        "gradients_per_s": round(float(np.mean([r["a3c/gradients_per_second"] for r in rows])), 2),
        "lag_mean": round(float(np.mean([r["a3c/weights_version_lag_mean"] for r in rows])), 2),
        "lag_max": int(max(r["a3c/weights_version_lag_max"] for r in rows)),
        "gradients_applied": int(sum(r["a3c/gradients_applied"] for r in rows)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--gradients-per-iteration", type=int, default=50)
    parser.add_argument("--raw-seconds", type=float, default=10.0)
    parser.add_argument("--as-test", action="store_true", help="1 short iteration each")
    args = parser.parse_args()
    if args.as_test:
        args.iterations, args.gradients_per_iteration, args.raw_seconds = 1, 5, 2.0
    envs.register_with_ray()
    raw = raw_env_steps_per_second(args.raw_seconds)
    raw_2 = raw_parallel_env_steps_per_second(2, args.raw_seconds)
    print(f"raw env: {raw:.0f} steps/s in 1 process, {raw_2:.0f} in 2", flush=True)
    ray.init(num_cpus=os.cpu_count() or 2, include_dashboard=False, log_to_driver=False)
    try:
        runs = []
        for workers in (1, 2):
            runs.append(a3c_throughput(workers, args.iterations, args.gradients_per_iteration))
            print(json.dumps(runs[-1]), flush=True)
    finally:
        ray.shutdown()
    speedup = runs[1]["env_steps_per_s"] / max(runs[0]["env_steps_per_s"], 1e-9)
    print(f"2 workers / 1 worker env steps/s: {speedup:.2f}x (target >= 1.6x)")
    if args.as_test:
        assert all(run["gradients_applied"] > 0 for run in runs)
        return
    record = {
        "command": "python bench/a3c_breakout_throughput.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load avg at end "
        f"{os.getloadavg()[0]:.1f}, no GPU",
        "raw_env_steps_per_s_1_process": round(raw, 1),
        "raw_env_steps_per_s_2_processes": round(raw_2, 1),
        "raw_speedup_2_vs_1_processes": round(raw_2 / raw, 2),
        "a3c": runs,
        "speedup_2_vs_1_workers": round(speedup, 2),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "a3c_breakout_throughput.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
