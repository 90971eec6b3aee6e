"""Benchmark: deep SARSA and REINFORCE on the book's moving-obstacle grid, over several seeds.

For each algorithm and seed it trains with the book's settings (book 4.1, 4.2) and, after every
iteration, evaluates the greedy policy from a fresh checkpoint (`algorithms.evaluation.evaluate`,
the function the CLI and API use) on 5 episodes. Solved = every evaluation episode scores the
best possible return, +1: the goal reached without touching an obstacle (book 2.3). It records
the first iteration, env steps and training seconds (evaluation time excluded) at which that
happens, or the best greedy mean return seen when the budget runs out.

    python -m bench.moving_obstacles --seeds 3 --out bench/results/moving_obstacles.md
    python -m bench.moving_obstacles --as-test     # one seed of each, asserts both solve
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from typing import Any

import ray

import algorithms
from algorithms.common import metrics
from algorithms.evaluation import evaluate

ENV = "rldojo/MovingObstacles-v0"
BEST_RETURN = 1.0  # the goal's +1, no obstacle touched
ALGORITHMS = ["deep_sarsa", "reinforce"]


def solve(name: str, seed: int, max_env_steps: int) -> dict[str, Any]:
    """Train `name` until its greedy policy is solved or `max_env_steps` are used."""
    algo = algorithms.default_config(name).debugging(seed=seed).build_algo()
    training_seconds, best = 0.0, float("-inf")
    found: dict[str, Any] = {"name": name, "seed": seed, "solved": False}
    try:
        while True:
            start = time.perf_counter()
            result = metrics.flatten(algo.train())
            training_seconds += time.perf_counter() - start
            with tempfile.TemporaryDirectory() as tmp:
                score = evaluate(algo.save_to_path(tmp), episodes=5, seed=seed)
            best = max(best, score.return_mean)
            found.update(
                iterations=result[metrics.ITERATION],
                env_steps=int(result[metrics.ENV_STEPS]),
                seconds=round(training_seconds, 1),
                best_greedy_return_mean=best,
            )
            if min(score.returns) >= BEST_RETURN:
                found["solved"] = True
                break
            if result[metrics.ENV_STEPS] >= max_env_steps:
                break
    finally:
        algo.stop()
    print(json.dumps(found), flush=True)
    return found


def table(runs: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| algorithm | solved (seeds) | env steps per seed | training seconds per seed "
        "| median env steps (solved) | median seconds (solved) |",
        "|---|---|---|---|---|---|",
    ]
    for name in ALGORITHMS:
        mine = [r for r in runs if r["name"] == name]
        solved = [r for r in mine if r["solved"]]

        def median(key: str, of: list = solved) -> str:
            return f"{statistics.median(r[key] for r in of):g}" if of else "-"

        steps = " / ".join(
            f"{r['env_steps']}{'' if r['solved'] else ' (not solved)'}" for r in mine
        )
        seconds = " / ".join(str(r["seconds"]) for r in mine)
        lines.append(
            f"| {name} | {len(solved)}/{len(mine)} | {steps} | {seconds} "
            f"| {median('env_steps')} | {median('seconds')} |"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--max-env-steps", type=int, default=200_000)
    parser.add_argument("--out", default=None, help="Markdown file for the results")
    parser.add_argument("--as-test", action="store_true", help="one seed each; asserts solved")
    args = parser.parse_args()
    seeds = 1 if args.as_test else args.seeds
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    runs = [solve(name, seed, args.max_env_steps) for name in ALGORITHMS for seed in range(seeds)]
    ray.shutdown()
    lines = table(runs)
    print("\n".join(lines))
    if args.out:
        header = (
            "# Deep SARSA and REINFORCE on the book's moving-obstacle grid\n\n"
            f"Command: `python -m bench.moving_obstacles --seeds {seeds} --max-env-steps "
            f"{args.max_env_steps}`\nMachine: {platform.machine()}, Python "
            f"{platform.python_version()}, 2 cores, no GPU. Book settings (`{ENV}` defaults, "
            "the algorithms' book defaults). Solved = the greedy policy scores +1 (goal, "
            "no obstacle) on all 5 evaluation episodes after an iteration; seconds are training "
            "time only.\n\n"
        )
        with open(args.out, "w") as handle:
            handle.write(header + "\n".join(lines) + "\n")
    unsolved = [f"{r['name']} seed {r['seed']}" for r in runs if not r["solved"]]
    if unsolved:
        print(f"not solved: {unsolved}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
