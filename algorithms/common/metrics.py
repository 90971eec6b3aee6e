"""Stable metric names: the keys of a Tune result row, read by the CLI, service, page and bench.

RLlib nests its results (`{"env_runners": {"episode_return_mean": ...}}`); Tune flattens them with
"/" when it writes `progress.csv` and `result.json`. These constants are the flattened names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ITERATION = "training_iteration"
EPISODE_RETURN_MEAN = "env_runners/episode_return_mean"
EPISODE_LEN_MEAN = "env_runners/episode_len_mean"
EPISODES = "env_runners/num_episodes_lifetime"
ENV_STEPS = "num_env_steps_sampled_lifetime"
# Env steps per second over the last iteration (RLlib measures it when it reduces the metrics).
ENV_STEPS_PER_SECOND = (
    "env_runners/num_env_steps_sampled_lifetime_throughput/throughput_since_last_reduce"
)
TIME_TOTAL_S = "time_total_s"
LEARNER = "learners/default_policy"  # per-module learner metrics (losses) live below this key

# The keys every algorithm reports every iteration (tests check this list for each algorithm).
REQUIRED = (ITERATION, EPISODE_RETURN_MEAN, EPISODE_LEN_MEAN, ENV_STEPS, ENV_STEPS_PER_SECOND)


def flatten(result: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten RLlib's nested result dict the way Tune does, so the constants above apply."""
    flat: dict[str, Any] = {}
    for key, value in result.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, prefix=f"{name}/"))
        else:
            flat[name] = value
    return flat
