"""ASHA on CartPole DQN (issue 25): eight trials at two learning rates, the worse stopped early.

The job is README's example spec, trained by the driver's own runtime
(`service.driver.run.train`, what an API job's Ray job runs) on a local Ray: 4 samples x
{lr 5e-4, lr 1e-5} (unseeded, so the samples differ), 40 iterations each, ASHA from iteration 5
halving at each rung. Recorded: every trial's state, learning rate, iterations and best return
(the job's trial table), the iterations ASHA spent against the 320 a plain grid would, the best
trial, and the wall time.

    .venv/bin/python bench/search_asha.py             # the README job, recorded
    .venv/bin/python bench/search_asha.py --as-test   # 4 trials x 6 iterations, not recorded
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import ray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.records import machine, report  # noqa: E402
from service.compiler import compile_job  # noqa: E402
from service.driver.run import train  # noqa: E402
from service.jobdir import JobDirectory  # noqa: E402
from service.spec import parse_spec  # noqa: E402

RESULTS = Path(__file__).parent / "results"
COMMAND = ".venv/bin/python bench/search_asha.py"
GOOD_LR, BAD_LR = 0.0005, 0.00001


def job(iterations: int, samples: int, grace: int) -> dict[str, Any]:
    return {
        "algorithm": "dqn",
        "env": "CartPole-v1",
        "stop": {"iterations": iterations},
        "num_samples": samples,
        "resources": {"env_runners": 0},  # one CPU a trial: two trials at once on two cores
        "search": {"lr": {"grid": [GOOD_LR, BAD_LR]}},
        "scheduler": {"type": "asha", "grace_period": grace, "reduction_factor": 2},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--as-test", action="store_true", help="toy scale, nothing recorded")
    args = parser.parse_args()
    iterations, samples, grace = (6, 2, 2) if args.as_test else (40, 4, 5)
    spec = job(iterations, samples, grace)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    with tempfile.TemporaryDirectory() as folder:
        directory = JobDirectory.open(f"{folder}/job")
        started = time.perf_counter()
        train(compile_job(parse_spec(spec)), directory)
        seconds = time.perf_counter() - started
        trials = (directory.read_trials() or {}).get("trials", [])
        best = directory.best_checkpoint()
    ray.shutdown()
    rows = sorted(trials, key=lambda t: -(t["best_return"] or -1e9))
    early = [t for t in rows if t["state"] == "stopped early"]
    spent = sum(t["iterations"] for t in rows)
    best_trial = next((t for t in rows if best and t["trial_id"] == best.trial_id), None)
    result = {
        "command": COMMAND + (" --as-test" if args.as_test else ""),
        "machine": machine(),
        "spec": spec,
        "wall_s": round(seconds, 1),
        "trials": rows,
        "stopped_early": len(early),
        "stopped_early_at_bad_lr": sum(t["hyperparameters"]["lr"] == BAD_LR for t in early),
        "iterations_spent": spent,
        "iterations_without_asha": iterations * samples * 2,
        "best_trial": best_trial,
    }
    ok = (
        len(rows) == samples * 2
        and bool(early)
        and best_trial is not None
        and best_trial["state"] == "finished"
        and spent < iterations * samples * 2
    )
    report(result, str(RESULTS / "search_asha.json"), as_test=args.as_test, ok=ok)


if __name__ == "__main__":
    main()
