"""The contract every registered algorithm keeps, checked the same way for each.

Built on its default env (the book's), each algorithm trains one iteration reporting the shared
metric keys, checkpoints, and restores the way Tune's Population Based Training restores a
trial that copies another: a new algorithm built with a perturbed hyperparameter restores the
checkpoint, and trains with the perturbed value (read back from its learner: the optimizer's
rate for `lr`, not the checkpoint's). Its checkpoint evaluates with the one `evaluate()`. Two
runs with the same seed give the same first-iteration return, except where the algorithm itself
is not deterministic:

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
from algorithms.common.restored_lr import optimizer_learning_rates
from algorithms.evaluation import evaluate

NOT_DETERMINISTIC = {"a3c"}


def _first_iteration(name: str, seed: int) -> tuple[Algorithm, dict[str, Any]]:
    config = algorithms.default_config(name).debugging(seed=seed)
    algo = config.build_algo()
    return algo, metrics.flatten(algo.train())


def _perturbed(name: str) -> tuple[str, float]:
    """A hyperparameter PBT would mutate, and a value the default config does not have."""
    key = next(k for k in ("lr", "alpha", "gamma") if k in algorithms.hyperparameters(name))
    return key, float(getattr(algorithms.default_config(name), key)) * 0.5


def _in_effect(algo: Algorithm, key: str) -> list[float]:
    """What each of the algorithm's learners trains with for `key`, read from the learner."""

    def read(learner: Any) -> list[float]:
        if key == "lr":
            return list(optimizer_learning_rates(learner).values())
        return [float(learner.config[key])]

    results = algo.learner_group.foreach_learner(read)
    return [value for result in results for value in result.get()]


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

    key, value = _perturbed(name)
    restored = algorithms.default_config(name).debugging(seed=7).training(**{key: value})
    restored = restored.build_algo()
    try:
        restored.restore_from_path(checkpoint)
        assert type(restored) is kind
        assert restored.iteration == 1
        assert restored.config.env == algorithms.get(name).default_env
        in_effect = _in_effect(restored, key)
        assert in_effect and all(v == pytest.approx(value) for v in in_effect), (key, in_effect)
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
