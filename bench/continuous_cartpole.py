"""The book's continuous cart-pole (section 5.4): Gaussian `actor_critic` vs RLlib PPO, same run.

For every (algorithm, seed): train on `rldojo/ContinuousCartPole-v0` (1-D force in [-3, 3],
500-step limit) until the mean episode return reaches `--target` (default 475, the env's reward
threshold; the book stops at a moving average above 400), or the step or time budget runs out.
`actor_critic` runs with the book's continuous settings (Gaussian policy, Adam 1e-3, total loss
0.1 actor + critic, gradient-norm clip 1.0), and again with GAE(0.95) over 64-step rollouts and
lr 0.005; RLlib's PPO with its defaults on the same env.

Usage:
    python bench/continuous_cartpole.py --seeds 0 1 2
    python bench/continuous_cartpole.py --as-test      # one seed, 20 s per run
"""

from __future__ import annotations

import sys
from pathlib import Path

import ray
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.algorithms.ppo import PPOConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import envs  # noqa: E402
from algorithms.actor_critic import ActorCriticConfig  # noqa: E402
from bench.pg_cartpole import (  # noqa: E402
    budget_parser,
    parse_budget,
    run_seeds,
    write_record,
)

ENV = "rldojo/ContinuousCartPole-v0"


def configs() -> dict[str, AlgorithmConfig]:
    return {
        # The book's continuous agent: one-step TD advantage, no reward shaping (see its docs).
        "actor_critic_book": ActorCriticConfig().training(lr=1e-3, grad_clip=1.0, actor_coeff=0.1),
        # The same with the A2C-style options the discrete benchmark uses: GAE(0.95) over
        # 64-step rollouts, a larger step size.
        "actor_critic_gae": ActorCriticConfig().training(
            lr=0.005, grad_clip=1.0, actor_coeff=0.1, lambda_=0.95, rollout_length=64
        ),
        "rllib_ppo": PPOConfig(),
    }


def main() -> None:
    parser = budget_parser(__doc__, list(configs()), max_seconds=300.0)
    parser.add_argument("--target", type=float, default=475.0)
    args = parse_budget(parser)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    envs.register_with_ray()
    try:
        rows = run_seeds(
            configs(),
            args.algorithms,
            args.seeds,
            args.max_steps,
            args.max_seconds,
            env=ENV,
            target=args.target,
        )
    finally:
        ray.shutdown()
    if args.as_test:
        assert all(row["env_steps"] > 0 for row in rows)
        return
    write_record("continuous_cartpole.py", rows, env=ENV, target_return_mean=args.target)


if __name__ == "__main__":
    main()
