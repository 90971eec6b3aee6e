"""CartPole-v1: rldojo's actor_critic and a3c vs RLlib's PPO and APPO, in the same run.

For every (algorithm, seed) pair: train until the mean episode return reaches 475, or until
the step or time budget runs out, and record env steps and wall-clock seconds at that point.
PPO and APPO use their RLlib tuned-example settings (`tuned_examples/ppo/cartpole_ppo.py`,
`tuned_examples/appo/cartpole_appo.py`) with RLlib's default resources (2 env runners each).
Ray gets 4 logical CPUs so APPO's aggregator actor can start on a 2-core machine.

Usage:
    python bench/pg_cartpole.py --seeds 0 1 2 --max-seconds 60
    python bench/pg_cartpole.py --as-test      # one seed, 20 s per run: checks it all runs
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import ray
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.algorithms.appo import APPOConfig
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from algorithms.a3c import A3CConfig  # noqa: E402
from algorithms.actor_critic import ActorCriticConfig  # noqa: E402
from algorithms.common import metrics  # noqa: E402

TARGET = 475.0
RESULTS = Path(__file__).parent / "results"


def configs() -> dict[str, AlgorithmConfig]:
    """The four contenders, each on CartPole-v1."""
    return {
        # rldojo actor-critic, A2C-style options: GAE(0.95) over 64-step rollouts.
        "actor_critic": ActorCriticConfig().training(lr=0.005, lambda_=0.95, rollout_length=64),
        # rldojo A3C: 2 asynchronous workers, t_max 20, book loss; lr raised for the small MLP.
        "a3c": A3CConfig().training(lr=1e-3),
        "rllib_ppo": PPOConfig()
        .training(lr=0.0003, num_epochs=6, vf_loss_coeff=0.01)
        .rl_module(
            model_config=DefaultModelConfig(
                fcnet_hiddens=[32], fcnet_activation="linear", vf_share_layers=True
            )
        ),
        "rllib_appo": APPOConfig()
        .training(circular_buffer_iterations_per_batch=2, vf_loss_coeff=0.05, entropy_coeff=0.0)
        .rl_module(model_config=DefaultModelConfig(vf_share_layers=True)),
    }


def run_one(
    name: str,
    config: AlgorithmConfig,
    seed: int,
    max_steps: int,
    max_s: float,
    *,
    env: str = "CartPole-v1",
    target: float = TARGET,
) -> dict:
    """Train until the mean episode return reaches `target` or a budget runs out."""
    config = config.environment(env).debugging(seed=seed)
    algo = config.build_algo()
    start = time.perf_counter()
    row: dict[str, Any] = {"algorithm": name, "seed": seed, "reached": False}
    best = float("-inf")
    try:
        while True:
            result = metrics.flatten(algo.train())
            elapsed = time.perf_counter() - start
            ret = result.get(metrics.EPISODE_RETURN_MEAN, float("nan"))
            best = max(best, ret) if ret == ret else best
            steps = int(result[metrics.ENV_STEPS])
            if ret >= target:
                row.update(reached=True, env_steps=steps, seconds=round(elapsed, 1))
                break
            if steps >= max_steps or elapsed >= max_s:
                row.update(env_steps=steps, seconds=round(elapsed, 1))
                break
    finally:
        algo.stop()
    row["best_return_mean"] = round(best, 1)
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    args = parse_budget(budget_parser(__doc__, list(configs()), max_seconds=60.0))
    # 4 logical CPUs on 2 cores: APPO's default 2 env runners + 1 aggregator actor need 3.
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    try:
        rows = run_seeds(configs(), args.algorithms, args.seeds, args.max_steps, args.max_seconds)
    finally:
        ray.shutdown()
    if args.as_test:
        assert all(row["env_steps"] > 0 for row in rows)
        return
    write_record("pg_cartpole.py", rows, target_return_mean=TARGET)


def budget_parser(
    doc: str | None, algorithms: list[str], *, max_seconds: float
) -> argparse.ArgumentParser:
    """The arguments every "train to a return" benchmark takes: seeds, budgets, contenders."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--max-steps", type=int, default=300_000)
    parser.add_argument("--max-seconds", type=float, default=max_seconds)
    parser.add_argument("--algorithms", nargs="+", default=algorithms)
    parser.add_argument("--as-test", action="store_true", help="one seed, 20 s per run")
    return parser


def parse_budget(parser: argparse.ArgumentParser) -> argparse.Namespace:
    args = parser.parse_args()
    if args.as_test:
        args.seeds, args.max_seconds = [0], 20.0
    return args


def run_seeds(
    contenders: dict[str, AlgorithmConfig],
    names: list[str],
    seeds: list[int],
    max_steps: int,
    max_s: float,
    **env_and_target: Any,
) -> list[dict]:
    """`run_one` for every seed and every named contender, seeds outermost (interleaved runs)."""
    return [
        run_one(name, contenders[name], seed, max_steps, max_s, **env_and_target)
        for seed in seeds
        for name in names
    ]


def write_record(script: str, rows: list[dict], **fields: Any) -> None:
    """bench/results/<script stem>.json: the command, the machine, `fields` and the rows."""
    record = {
        "command": f"python bench/{script} " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load avg at end "
        f"{os.getloadavg()[0]:.1f}, no GPU",
        **fields,
        "rows": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{Path(script).stem}.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
