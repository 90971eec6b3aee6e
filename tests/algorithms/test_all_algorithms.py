"""The contract every registered algorithm keeps, checked the same way for each.

Built on its default env (the book's), each algorithm trains one iteration reporting the shared
metric keys, checkpoints, restores with RLlib's `Algorithm.from_checkpoint`, and its checkpoint
evaluates with the one `evaluate()`. Two runs with the same seed give the same first-iteration
return, except where the algorithm itself is not deterministic:

- `a3c`: workers send gradients whenever they finish and the learner applies them on arrival,
  so which policy plays which steps depends on timing (the point of A3C).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from ray.rllib.algorithms.algorithm import Algorithm

import algorithms
from algorithms.common import metrics
from algorithms.evaluation import evaluate

NOT_DETERMINISTIC = {"a3c"}


def _first_iteration(name: str, seed: int) -> tuple[Algorithm, dict[str, Any]]:
    config = algorithms.default_config(name).debugging(seed=seed)
    algo = config.build_algo()
    return algo, metrics.flatten(algo.train())


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


@pytest.mark.parametrize("name", sorted(algorithms.ALGORITHMS))
def test_every_algorithm_trains_checkpoints_restores_and_evaluates(
    name: str, ray_local: None, tmp_path: Path
) -> None:
    algo, row = _first_iteration(name, seed=7)
    try:
        missing = [key for key in metrics.REQUIRED if key not in row]
        assert not missing, f"{name} does not report {missing}"
        assert row[metrics.ITERATION] == 1
        checkpoint = algo.save_to_path(str(tmp_path / "checkpoint"))
        kind = type(algo)
    finally:
        algo.stop()  # its EnvRunners hold the fixture's CPUs, which the restored one needs

    restored = Algorithm.from_checkpoint(checkpoint)
    try:
        assert type(restored) is kind
        assert restored.iteration == 1
        assert restored.config.env == algorithms.get(name).default_env
    finally:
        restored.stop()

    result = evaluate(checkpoint, episodes=1, seed=3)
    assert result.episodes == 1 and result.env == algorithms.get(name).default_env
    assert math.isfinite(result.return_mean) and result.length_mean >= 1

    if name in NOT_DETERMINISTIC:
        return
    again, second = _first_iteration(name, seed=7)
    again.stop()
    assert _same(row[metrics.EPISODE_RETURN_MEAN], second[metrics.EPISODE_RETURN_MEAN])
    assert row[metrics.ENV_STEPS] == second[metrics.ENV_STEPS]
