"""A Breakout learning run of rldojo `dqn` for a fixed wall-clock budget, with its curve as PNG.

The book's Breakout settings ("book_breakout": Nature CNN, Huber, Adam 1e-4 clip 10, batch 32,
target copy every 10,000 steps, a lost life terminal for the targets) with what a 2-core CPU
budget forces, all given on the command line and recorded: a shorter warm-up and epsilon decay,
and fewer gradient steps per env step than the book's one (as CleanRL and SB3 do: one per 4).

The return is the episode's clipped-reward sum (the score the book's DQN v1 logs); a game ends
when all 5 lives are lost.

Usage:
    python bench/dqn_breakout_learning.py --minutes 25
    # a run cut short (machine restart) keeps its printed rows; rebuild its record from them:
    python bench/dqn_breakout_learning.py --minutes 170 --from-log run.log --note "why"
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import ray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import algorithms  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=25.0)
    parser.add_argument("--learning-starts", type=int, default=20_000)
    parser.add_argument("--epsilon-decay-steps", type=int, default=250_000)
    parser.add_argument("--updates-per-env-step", type=float, default=0.25)
    parser.add_argument("--envs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="bench/results/dqn_breakout_learning")
    parser.add_argument(
        "--from-log", help="rebuild the record from the rows an earlier run printed"
    )
    parser.add_argument("--note", default="", help="recorded with the result")
    args = parser.parse_args()
    rows = rows_from_log(Path(args.from_log)) if args.from_log else train(args)
    write_record(rows, args)


def train(args: argparse.Namespace) -> list[dict]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    config = (
        algorithms.build(
            "dqn",
            "rldojo/Breakout-v0",
            {
                "preset": "book_breakout",
                "learning_starts": args.learning_starts,
                "epsilon_decay_steps": args.epsilon_decay_steps,
                "updates_per_env_step": args.updates_per_env_step,
                "num_envs_per_env_runner": args.envs,
                "checkpoint_replay": False,
            },
        )
        .reporting(min_sample_timesteps_per_iteration=2_000, metrics_num_episodes_for_smoothing=20)
        .debugging(seed=args.seed)
    )
    algo = config.build_algo()
    start = time.perf_counter()
    rows = []
    try:
        while time.perf_counter() - start < args.minutes * 60:
            result = algo.train()
            runners = result["env_runners"]
            learner = result.get("learners", {}).get("default_policy", {})
            row = {
                "seconds": round(time.perf_counter() - start, 1),
                "env_steps": int(runners["num_env_steps_sampled_lifetime"]),
                "episodes": int(runners.get("num_episodes_lifetime", 0)),
                "return_mean_20": finite_or_none(runners.get("episode_return_mean")),
                "epsilon": result.get("epsilon"),
                "qf_loss": learner.get("qf_loss"),
                "q_mean": learner.get("q_mean"),
                "updates_per_s": learner.get("gradient_updates_per_second"),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        algo.stop()
        ray.shutdown()
    return rows


def rows_from_log(log: Path) -> list[dict]:
    """The JSON rows in a run's output (Ray's own log lines are skipped)."""
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    for row in rows:
        row["return_mean_20"] = finite_or_none(row["return_mean_20"])
    return rows


def write_record(rows: list[dict], args: argparse.Namespace) -> None:
    record = {
        "command": "python " + " ".join(sys.argv),
        "note": args.note,
        "machine": f"{platform.node()}, {os.cpu_count()} CPUs (shared), no GPU",
        "settings": vars(args),
        "env_steps_reached": rows[-1]["env_steps"] if rows else 0,
        "rows": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(record, indent=1))
    plot(rows, out.with_suffix(".png"), args)
    print(f"wrote {out}.json and {out}.png")


def finite_or_none(value: float | None) -> float | None:
    """An iteration that ended no game has no mean return (NaN, which JSON cannot hold)."""
    return value if value is not None and math.isfinite(value) else None


def plot(rows: list[dict], path: Path, args: argparse.Namespace) -> None:
    from service.plots import learning_curve

    learning_curve(
        rows,
        path,
        metric="return_mean_20",
        x="env_steps",
        secondary="epsilon",
        xlabel="env steps (agent steps, 4 frames each)",
        ylabel="mean return of the last 20 games (clipped)",
        title=f"rldojo dqn, rldojo/Breakout-v0, book_breakout preset, {args.minutes:g} min CPU, "
        f"learning from step {args.learning_starts}",
    )


if __name__ == "__main__":
    main()
