"""CartPole-v1: rldojo `dqn` vs RLlib's built-in DQN, same run, same machine.

For each seed, three runs in turn (interleaved, so machine load hits all alike):

- rldojo `dqn`, preset "tuned_cartpole";
- rldojo `dqn`, preset "book_cartpole" (book 5.2);
- RLlib's `DQN` with the settings of its CartPole example (`rllib/examples/algorithms/dqn/
  cartpole_dqn.py`: lr 5e-4, batch 32, prioritized replay 50k alpha 0.6 beta 0.4, n-step 2-5,
  double Q, dueling, epsilon 1.0 -> 0.02 over 25k steps, fcnet [256] tanh, head [256]).

Each run stops when the mean return of its last 20 episodes reaches 475 (both report
`episode_return_mean` over a 20-episode window) or at the step/time budget. We record env steps
and wall-clock seconds of training (after the algorithm is built; build time is kept apart).

Usage:
    python bench/dqn_cartpole.py --seeds 0 1 2             # full comparison, writes results
    python bench/dqn_cartpole.py --as-test                  # one tuned seed, asserts the target
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import ray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import algorithms  # noqa: E402

TARGET = 475.0
WINDOW = 20  # episodes in the reported mean return
REPORT_STEPS = 500  # env steps per reported iteration (reporting only; learning is unchanged)


def rldojo_config(preset: str, seed: int) -> Any:
    return (
        algorithms.build("dqn", "CartPole-v1", {"preset": preset})
        .reporting(
            metrics_num_episodes_for_smoothing=WINDOW,
            min_sample_timesteps_per_iteration=REPORT_STEPS,
        )
        .debugging(seed=seed)
    )


def rllib_config(seed: int) -> Any:
    """RLlib's own CartPole DQN example settings, on its default (new) API stack."""
    from ray.rllib.algorithms.dqn import DQNConfig as RLlibDQNConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    return (
        RLlibDQNConfig()
        .environment("CartPole-v1")
        .training(
            lr=0.0005,
            train_batch_size_per_learner=32,
            replay_buffer_config={
                "type": "PrioritizedEpisodeReplayBuffer",
                "capacity": 50_000,
                "alpha": 0.6,
                "beta": 0.4,
            },
            n_step=(2, 5),
            double_q=True,
            dueling=True,
            epsilon=[(0, 1.0), (25_000, 0.02)],
        )
        .rl_module(
            model_config=DefaultModelConfig(
                fcnet_hiddens=[256],
                fcnet_activation="tanh",
                fcnet_bias_initializer="zeros_",
                head_fcnet_hiddens=[256],
                head_fcnet_bias_initializer="zeros_",
            )
        )
        .reporting(
            metrics_num_episodes_for_smoothing=WINDOW,
            min_sample_timesteps_per_iteration=REPORT_STEPS,
        )
        .debugging(seed=seed)
    )


def run(name: str, config: Any, seed: int, max_steps: int, max_seconds: float) -> dict[str, Any]:
    """Train until the last-20 mean return reaches 475 or the budget runs out."""
    built = time.perf_counter()
    algo = config.build_algo()
    start = time.perf_counter()
    curve: list[tuple[int, float, float]] = []
    reached = False
    try:
        while True:
            result = algo.train()
            runners = result["env_runners"]
            steps = int(runners["num_env_steps_sampled_lifetime"])
            ret = float(runners.get("episode_return_mean", float("nan")))
            seconds = time.perf_counter() - start
            curve.append((steps, round(seconds, 2), round(ret, 2)))
            reached = ret >= TARGET
            if reached or steps >= max_steps or seconds >= max_seconds:
                break
    finally:
        algo.stop()
    row = {
        "name": name,
        "seed": seed,
        "reached": reached,
        "env_steps": steps,
        "seconds": round(seconds, 1),
        "setup_seconds": round(start - built, 1),
        "final_return_mean_20": round(ret, 1),
        "curve": curve,
    }
    print(json.dumps({k: v for k, v in row.items() if k != "curve"}), flush=True)
    return row


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Median env steps and seconds per variant (a run that missed counts at its budget)."""
    summary: dict[str, Any] = {}
    for name in dict.fromkeys(row["name"] for row in rows):
        mine = [row for row in rows if row["name"] == name]
        summary[name] = {
            "runs": len(mine),
            "reached": sum(row["reached"] for row in mine),
            "median_env_steps": statistics.median(row["env_steps"] for row in mine),
            "median_seconds": statistics.median(row["seconds"] for row in mine),
            "env_steps": [row["env_steps"] for row in mine],
            "seconds": [row["seconds"] for row in mine],
        }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--variants", nargs="+", default=["tuned_cartpole", "book_cartpole", "rllib"]
    )
    parser.add_argument("--max-steps", type=int, default=100_000)
    parser.add_argument("--max-seconds", type=float, default=600.0)
    parser.add_argument(
        "--book-max-steps", type=int, default=50_000, help="budget of the book preset's runs"
    )
    parser.add_argument("--out", default="bench/results/dqn_cartpole.json")
    parser.add_argument("--as-test", action="store_true", help="one tuned seed; assert <= 40k")
    args = parser.parse_args()
    if args.as_test:
        args.seeds, args.variants, args.max_steps = [0], ["tuned_cartpole"], 40_000

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    rows = []
    for seed in args.seeds:
        for variant in args.variants:
            if variant == "rllib":
                config = rllib_config(seed)
            else:
                config = rldojo_config(variant, seed)
            name = "rllib_dqn" if variant == "rllib" else f"rldojo_dqn_{variant}"
            budget = args.book_max_steps if variant == "book_cartpole" else args.max_steps
            rows.append(run(name, config, seed, budget, args.max_seconds))
    ray.shutdown()
    summary = summarise(rows)
    print(json.dumps(summary, indent=2))
    if args.as_test:
        assert rows[0]["reached"], f"tuned preset missed 475 within 40k steps: {rows[0]}"
        return
    record = {
        "command": "python " + " ".join(sys.argv),
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}, "
        f"{__import__('os').cpu_count()} CPUs, no GPU",
        "target": f"mean return of the last {WINDOW} episodes >= {TARGET}",
        "summary": summary,
        "runs": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
