"""How fast the `rldojo` command answers: `--help` and the remote commands, against a real server.

Each command runs 5 times in a fresh process (as a user types it); the median wall time is
recorded. Target: <= 0.5 s each. For comparison, `python -c pass` (the interpreter's own start)
and `import ray` are timed the same way in the same run.

    .venv/bin/python bench/cli_startup.py              # writes bench/results/cli_startup.json
    .venv/bin/python bench/cli_startup.py --as-test    # 2 runs each, writes nothing
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import records  # noqa: E402
from bench.service_harness import RLDOJO, TOKEN, BenchServer  # noqa: E402

RESULTS = Path(__file__).parent / "results"
PYTHON = str(Path(sys.executable))


def timed(command: list[str], env: dict[str, str], runs: int) -> dict[str, float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        times.append(time.perf_counter() - start)
        assert done.returncode == 0, (command, done.stderr[-2000:])
    return {"median_s": round(statistics.median(times), 3), "max_s": round(max(times), 3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--as-test", action="store_true")
    args = parser.parse_args()
    runs = 2 if args.as_test else 5
    with BenchServer() as server:
        env = {**os.environ, "RLDOJO_URL": server.url, "RLDOJO_TOKEN": TOKEN, "COLUMNS": "200"}
        job = httpx.post(
            f"{server.url}/v1/jobs",
            json={"algorithm": "q_learning", "stop": {"iterations": 5}},
            headers=server.headers,
            timeout=60,
        ).json()
        while httpx.get(f"{server.url}/v1/jobs/{job['id']}", headers=server.headers).json()[
            "status"
        ] not in ("SUCCEEDED", "FAILED"):
            time.sleep(1)
        commands = {
            "rldojo --help": [RLDOJO, "--help"],
            "rldojo jobs": [RLDOJO, "jobs"],
            "rldojo jobs --json": [RLDOJO, "jobs", "--json"],
            "rldojo status ID": [RLDOJO, "status", job["id"]],
            "rldojo logs ID": [RLDOJO, "logs", job["id"]],
            "rldojo checkpoints ID": [RLDOJO, "checkpoints", job["id"]],
            "rldojo leaderboard": [RLDOJO, "leaderboard"],
            "python -c pass (the interpreter alone)": [PYTHON, "-c", "pass"],
            "python -c 'import ray' (what the CLI used to load)": [PYTHON, "-c", "import ray"],
        }
        found = {name: timed(command, env, runs) for name, command in commands.items()}
    record = {
        "benchmark": "rldojo CLI start-up: median of fresh processes, against a real server",
        "command": ".venv/bin/python bench/cli_startup.py" + (" --as-test" if args.as_test else ""),
        "machine": records.machine(),
        "runs_each": runs,
        "target_s": 0.5,
        "before": "rldojo --help 5.2 s, jobs 8.1 s, status 5.9 s (issue 16, the code before)",
        "commands": found,
    }
    records.report(record, str(RESULTS / "cli_startup.json"), as_test=args.as_test, ok=True)


if __name__ == "__main__":
    main()
