"""A warm start loads another run's checkpoint into a new algorithm, and only what was asked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from ray.rllib.core import DEFAULT_MODULE_ID

import algorithms
from algorithms.common.warm_start import WarmStart
from algorithms.dqn import DQNConfig

OBS = torch.tensor(np.random.default_rng(0).normal(size=(5, 4)), dtype=torch.float32)


def _cartpole(seed: int) -> DQNConfig:
    return (
        DQNConfig()
        .environment("CartPole-v1")
        .training(learning_starts=100)  # type: ignore[arg-type]
        .reporting(min_sample_timesteps_per_iteration=200)
        .debugging(seed=seed)
    )


def _grid(seed: int):
    return algorithms.build("q_learning", "rldojo/GridWorld-v0", {}).debugging(seed=seed)


def _q_values(algo) -> torch.Tensor:
    return algo.get_module(DEFAULT_MODULE_ID).compute_q_values({"obs": OBS})["q_values"]


def _optimizer_steps(algo) -> list[int]:
    """Adam's step count per parameter of the learner's optimizer (0 when fresh)."""
    learner = algo.learner_group._learner
    optimizer = next(iter(learner._named_optimizers.values()))
    return [int(state["step"]) for state in optimizer.state.values()]


@pytest.mark.usefixtures("ray_local")
def test_a_dqn_warm_start_loads_the_weights_and_keeps_only_what_is_asked(tmp_path: Path) -> None:
    parent = _cartpole(seed=0).build_algo()
    try:
        parent.train()
        q_parent, replay_parent = _q_values(parent), parent.replay_stats()["size"]
        steps_parent = _optimizer_steps(parent)
        parent.save_to_path(str(tmp_path))
    finally:
        parent.stop()
    assert replay_parent > 0 and steps_parent and min(steps_parent) > 0

    light = _cartpole(seed=1).callbacks(on_algorithm_init=WarmStart(str(tmp_path))).build_algo()
    try:
        torch.testing.assert_close(_q_values(light), q_parent)
        # the EnvRunner that acts got the weights too, not only the learner
        acting = light.env_runner.module.compute_q_values({"obs": OBS})["q_values"]
        torch.testing.assert_close(acting, q_parent)
        assert light.replay_stats()["size"] == 0  # its own memory, empty
        assert set(_optimizer_steps(light)) <= {0}  # a fresh optimizer
    finally:
        light.stop()

    whole = WarmStart(str(tmp_path), keep_optimizer=True, keep_replay=True)
    kept = _cartpole(seed=1).callbacks(on_algorithm_init=whole).build_algo()
    try:
        torch.testing.assert_close(_q_values(kept), q_parent)
        assert kept.replay_stats()["size"] == replay_parent
        assert _optimizer_steps(kept) == steps_parent
        assert kept.train()["training_iteration"] == 1  # a new run: its own counters
    finally:
        kept.stop()

    fresh = _cartpole(seed=1).build_algo()  # the check above can fail: a fresh net differs
    try:
        assert not torch.allclose(_q_values(fresh), q_parent)
    finally:
        fresh.stop()


@pytest.mark.usefixtures("ray_local")
def test_a_tabular_warm_start_starts_from_the_parents_table(tmp_path: Path) -> None:
    parent = _grid(seed=0).build_algo()
    try:
        parent.train()
        table = parent.get_module(DEFAULT_MODULE_ID).state_dict()
        parent.save_to_path(str(tmp_path))
    finally:
        parent.stop()
    assert any(value.abs().sum() > 0 for value in table.values())  # it learned something

    child = _grid(seed=1).callbacks(on_algorithm_init=WarmStart(str(tmp_path))).build_algo()
    try:
        loaded = child.get_module(DEFAULT_MODULE_ID).state_dict()
        assert loaded.keys() == table.keys()
        for key, value in table.items():
            torch.testing.assert_close(loaded[key], value)
    finally:
        child.stop()
