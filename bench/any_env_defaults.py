"""Defaults beyond the book's envs: each algorithm trained with nothing but its env's defaults
(the family preset), then its greedy return over 100 episodes, beside RL Zoo's published one.

Nothing is tuned for these ids: a job names an algorithm, an env and (for the peers' budget)
the env steps, as a user would. Laptop-side: `rldojo train` on a local Ray, then
`rldojo evaluate` on the best checkpoint.

    .venv/bin/python bench/any_env_defaults.py              # every row, recorded
    .venv/bin/python bench/any_env_defaults.py --only FrozenLake-v1
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.records import machine, report  # noqa: E402

RESULTS = Path(__file__).parent / "results"
RLDOJO = str(Path(sys.executable).with_name("rldojo"))
# (algorithm, env, env steps or None for the default stop, the peer's figure, its source)
ROWS = [
    ("q_learning", "FrozenLake-v1", None, 0.74, "the slippery 4x4 map's optimum (about 0.74)"),
    ("sarsa", "FrozenLake-v1", None, 0.74, "the slippery 4x4 map's optimum (about 0.74)"),
    ("dqn", "MountainCar-v0", 120_000, -100.8, "RL Zoo DQN, 120k steps (tuned)"),
    ("dqn", "LunarLander-v3", 100_000, 154.4, "RL Zoo DQN, 100k steps (tuned, LunarLander-v2)"),
    ("actor_critic", "LunarLander-v3", 100_000, None, "no RL Zoo figure at this budget"),
]
EPISODES = 100


def train_and_evaluate(algorithm: str, env: str, steps: int | None, out: Path) -> dict:
    name = f"{algorithm}-{env}".replace("/", "_")
    command = [RLDOJO, "train", algorithm, "--env", env, "--out", str(out), "--name", name]
    command += ["--seed", "1"] + (["--stop-timesteps", str(steps)] if steps else [])
    start = time.perf_counter()
    trained = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    seconds = time.perf_counter() - start
    found = re.search(r"best checkpoint: (\S+)", trained.stdout)
    if trained.returncode != 0 or found is None:
        tail = (trained.stdout + trained.stderr)[-600:]
        return {"error": f"train exited {trained.returncode}: {tail}"}
    evaluated = subprocess.run(
        [RLDOJO, "evaluate", found.group(1), "--episodes", str(EPISODES), "--seed", "0", "--json"],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    start = evaluated.stdout.find("{")
    if evaluated.returncode != 0 or start < 0:
        return {"error": f"evaluate exited {evaluated.returncode}: {evaluated.stderr[-600:]}"}
    result = json.loads(evaluated.stdout[start:])
    steps_done = re.findall(r"steps (\d+)", trained.stdout)
    return {
        "train_seconds": round(seconds, 1),
        "env_steps": int(steps_done[-1]) if steps_done else None,
        "greedy_return_mean": round(float(result["return_mean"]), 3),
        "greedy_return_std": round(float(result["return_std"]), 3),
        "episodes": result["episodes"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", help="Only the rows of this env id")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="rldojo-defaults-") as scratch:
        for algorithm, env, steps, peer, source in ROWS:
            if args.only and env != args.only:
                continue
            measured = train_and_evaluate(algorithm, env, steps, Path(scratch))
            rows.append(
                {"algorithm": algorithm, "env": env, "stop_env_steps": steps or "default"}
                | measured
                | {"peer": peer, "peer_source": source}
            )
            print(json.dumps(rows[-1]), flush=True)
    result = {
        "benchmark": "defaults beyond the book's envs: greedy return after training on defaults",
        "command": ".venv/bin/python bench/any_env_defaults.py"
        + (f" --only {args.only}" if args.only else ""),
        "machine": machine(),
        "greedy_episodes": EPISODES,
        "rows": rows,
    }
    report(result, str(RESULTS / "any_env_defaults.json"), as_test=False, ok=True)


if __name__ == "__main__":
    main()
