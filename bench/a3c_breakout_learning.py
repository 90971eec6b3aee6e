"""A time-boxed A3C learning run on rldojo/Breakout-v0, with its learning curve as a PNG.

Trains the book's A3C (v1 CNN, t_max 20, Adam 1e-4, clip 40, entropy 0.01) with `--workers`
asynchronous workers for `--minutes` of wall-clock, logging after every iteration the env
steps, seconds, and the mean episode return over RLlib's window (the env clips rewards to
[-1, 1], so this is the clipped score: bricks hit, not Breakout points), plus A3C's
throughput and lag. Writes bench/results/a3c_breakout_learning.{json,png}.

Usage:
    python bench/a3c_breakout_learning.py --minutes 20 --workers 2
    python bench/a3c_breakout_learning.py --as-test
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import ray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from algorithms.a3c import A3CConfig  # noqa: E402
from algorithms.common import metrics  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def plot(rows: list[dict], path: Path, title: str) -> None:
    from service.plots import learning_curve

    learning_curve(
        rows,
        path,
        metric="return_mean",
        x="env_steps",
        title=title,
        xlabel="env steps (agent steps, frame skip 4)",
        ylabel="mean episode return (clipped rewards)",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--as-test", action="store_true", help="30 s, no files written")
    args = parser.parse_args()
    if args.as_test:
        args.minutes = 0.5
    ray.init(num_cpus=max(os.cpu_count() or 2, args.workers), include_dashboard=False)
    config = (
        A3CConfig()
        .environment("rldojo/Breakout-v0")
        .env_runners(num_env_runners=args.workers)
        .debugging(seed=0)
    )
    algo = config.build_algo()
    rows: list[dict] = []
    start = time.perf_counter()
    try:
        while time.perf_counter() - start < args.minutes * 60:
            r = metrics.flatten(algo.train())
            ret = r.get(metrics.EPISODE_RETURN_MEAN)
            rows.append(
                {
                    "seconds": round(time.perf_counter() - start, 1),
                    "env_steps": int(r[metrics.ENV_STEPS]),
                    "episodes": int(r.get(metrics.EPISODES, 0)),
                    "return_mean": None if ret is None or ret != ret else round(float(ret), 2),
                    "env_steps_per_s": round(float(r["a3c/env_steps_per_second"]), 1),
                    "gradients_per_s": round(float(r["a3c/gradients_per_second"]), 2),
                    "lag_mean": round(float(r["a3c/weights_version_lag_mean"]), 2),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    finally:
        algo.stop()
        ray.shutdown()
    if args.as_test:
        assert rows and rows[-1]["env_steps"] > 0
        return
    RESULTS.mkdir(exist_ok=True)
    record = {
        "command": "python bench/a3c_breakout_learning.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load avg at end "
        f"{os.getloadavg()[0]:.1f}, no GPU",
        "rows": rows,
    }
    (RESULTS / "a3c_breakout_learning.json").write_text(json.dumps(record, indent=2) + "\n")
    last = rows[-1]
    plot(
        rows,
        RESULTS / "a3c_breakout_learning.png",
        f"A3C, rldojo/Breakout-v0, {args.workers} workers: {last['env_steps']} steps "
        f"in {last['seconds'] / 60:.0f} min",
    )


if __name__ == "__main__":
    main()
