"""Benchmark: how fast each tabular algorithm solves the book's grids, over several seeds.

For each algorithm and seed it trains on the algorithm's book env and, after every iteration,
evaluates the greedy policy from a fresh checkpoint (`algorithms.evaluation.evaluate`, the same
function the CLI and API use). It records the first iteration, env steps and seconds at which
the greedy return reaches the env's best (100 on GridWorld, 1 on PlanningGrid) on 5 episodes.

    python -m bench.tabular_grid --seeds 3 --out bench/results/tabular_grid.md
    python -m bench.tabular_grid --as-test      # one seed, fewer iterations, asserts it solves
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time

import ray

import algorithms
from algorithms.common import metrics
from algorithms.evaluation import evaluate

BEST_RETURN = {"rldojo/GridWorld-v0": 100.0, "rldojo/PlanningGrid-v0": 1.0}
BOOK = ["policy_iteration", "value_iteration", "monte_carlo", "sarsa", "q_learning"]


def solve(name: str, seed: int, max_iterations: int) -> dict[str, float | None]:
    config = algorithms.default_config(name).debugging(seed=seed)
    algo = config.build_algo()
    start = time.perf_counter()
    found: dict[str, float | None] = {"iterations": None, "env_steps": None, "seconds": None}
    try:
        for _ in range(max_iterations):
            result = metrics.flatten(algo.train())
            elapsed = time.perf_counter() - start
            with tempfile.TemporaryDirectory() as tmp:
                score = evaluate(algo.save_to_path(tmp), episodes=5, seed=seed)
            if min(score.returns) >= BEST_RETURN[config.env]:
                found = {
                    "iterations": result[metrics.ITERATION],
                    "env_steps": result[metrics.ENV_STEPS],
                    "seconds": round(elapsed, 2),
                }
                break
    finally:
        algo.stop()
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--max-iterations", type=int, default=200)
    parser.add_argument("--out", default=None, help="Markdown file for the results")
    parser.add_argument("--as-test", action="store_true", help="quick run that asserts")
    args = parser.parse_args()
    seeds = 1 if args.as_test else args.seeds
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    lines = [
        "| algorithm | env | solved (seeds) | iterations (median) | env steps (median) "
        "| seconds (median) |",
        "|---|---|---|---|---|---|",
    ]
    failures = []
    for name in BOOK:
        runs = [solve(name, seed, args.max_iterations) for seed in range(seeds)]
        solved = [r for r in runs if r["iterations"] is not None]
        if len(solved) < len(runs):
            failures.append(name)

        def median(key: str, runs: list = solved) -> str:
            return f"{statistics.median(r[key] for r in runs):g}" if runs else "-"

        env = algorithms.get(name).default_env
        lines.append(
            f"| {name} | {env} | {len(solved)}/{len(runs)} | {median('iterations')} "
            f"| {median('env_steps')} | {median('seconds')} |"
        )
        print(lines[-1], flush=True)
    ray.shutdown()
    header = (
        f"# Tabular algorithms on the book's grids\n\nCommand: `python -m bench.tabular_grid "
        f"--seeds {seeds}`\nMachine: {platform.machine()}, {platform.python_version()}, "
        f"2 cores, no GPU. Solved = greedy return is the best possible on 5 evaluation "
        f"episodes (GridWorld 100, PlanningGrid 1); DP env steps are the episodes played only "
        f"to report returns.\n\n"
    )
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(header + "\n".join(lines) + "\n")
    if failures:
        print(f"not solved by every seed: {failures}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
