"""Defaults that learn: `dqn`, `actor_critic` and `a3c` on CartPole-v1 with nothing but the
algorithm and the env named, as a user submits them (`{"algorithm": ..., "env": "CartPole-v1"}`).

Each run goes through the same path as a job: the spec gets its algorithm's preset for
CartPole and its default stop (a mean return of 475, or the step budget of the algorithm's
benchmark), is compiled once (`service.compiler`) and trained by the driver's `train`, and
its best checkpoint is then played greedily for 20 episodes with the one `evaluate()`.
Target: greedy mean >= 475 on every seed.

    .venv/bin/python bench/defaults_cartpole.py               # 3 seeds each
    .venv/bin/python bench/defaults_cartpole.py --as-test     # 1 seed of actor_critic
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import ray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from algorithms.evaluation import evaluate  # noqa: E402
from bench import records  # noqa: E402
from service.compiler import compile_job  # noqa: E402
from service.driver.run import train  # noqa: E402
from service.jobdir import JobDirectory  # noqa: E402
from service.spec import parse_spec  # noqa: E402

RESULTS = Path(__file__).parent / "results"
TARGET = 475.0


def run(algorithm: str, seed: int, root: Path) -> dict[str, Any]:
    spec = parse_spec({"algorithm": algorithm, "env": "CartPole-v1", "seed": seed})
    directory = JobDirectory.open(str(root / f"{algorithm}-{seed}"))
    compiled = compile_job(spec)
    start = time.perf_counter()
    summary = train(compiled, directory)
    seconds = time.perf_counter() - start
    rows = directory.rows()
    best = directory.best_checkpoint()
    greedy = evaluate(best.path, episodes=20, seed=1000 + seed) if best else None
    return {
        "algorithm": algorithm,
        "seed": seed,
        "preset": compiled.preset,
        "stop": spec.stop.model_dump(exclude_none=True),
        "env_steps": rows[-1].get("num_env_steps_sampled_lifetime") if rows else None,
        "train_return_last": rows[-1].get("env_runners/episode_return_mean") if rows else None,
        "seconds": round(seconds, 1),
        "trial_status": summary.trials[0].status if summary.trials else None,
        "greedy_return_mean": greedy.return_mean if greedy else None,
        "greedy_return_min": min(greedy.returns) if greedy else None,
        "reached": bool(greedy and greedy.return_mean >= TARGET),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--as-test", action="store_true")
    parser.add_argument("--algorithms", nargs="+", default=["dqn", "actor_critic", "a3c"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    algorithms_, seeds = (["actor_critic"], [0]) if args.as_test else (args.algorithms, args.seeds)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    runs = []
    with tempfile.TemporaryDirectory(prefix="rldojo-defaults-") as root:
        for algorithm in algorithms_:
            for seed in seeds:
                runs.append(run(algorithm, seed, Path(root)))
                print(json.dumps(runs[-1]), flush=True)
    summary = {
        name: {
            "reached": f"{sum(r['reached'] for r in mine)}/{len(mine)}",
            "median_env_steps": statistics.median(r["env_steps"] or 0 for r in mine),
            "median_seconds": statistics.median(r["seconds"] for r in mine),
            "greedy_means": [r["greedy_return_mean"] for r in mine],
        }
        for name in algorithms_
        if (mine := [r for r in runs if r["algorithm"] == name])
    }
    record = {
        "benchmark": "defaults that learn: CartPole-v1 with only the algorithm and the env named",
        "command": ".venv/bin/python bench/defaults_cartpole.py"
        + (" --as-test" if args.as_test else ""),
        "machine": records.machine(),
        "target": f"greedy mean return >= {TARGET} over 20 episodes of the best checkpoint",
        "summary": summary,
        "runs": runs,
    }
    records.report(record, str(RESULTS / "defaults_cartpole.json"), as_test=args.as_test, ok=True)


if __name__ == "__main__":
    main()
