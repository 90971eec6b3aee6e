"""Trials pause with a checkpoint at the job's stop and on a stop request, and a restored run
continues them: a real Tune run of q_learning on the session's local Ray."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
from ray import tune

import algorithms
import envs
from service import pausing


class StopAtIteration(tune.Callback):
    """Asks for the stop once a trial reported iteration `at` (as a user's stop would); only
    in the first run (Tune restores its callbacks with the experiment)."""

    armed = True

    def __init__(self, at: int) -> None:
        self.at = at

    def on_trial_result(
        self, iteration: int, trials: list, trial: object, result: dict, **info: object
    ) -> None:
        if StopAtIteration.armed and result.get("training_iteration", 0) >= self.at:
            pausing.request_stop()


def _fit(storage: Path, limits: dict[str, float], *, restore: bool, stop_at: int = 0):
    config = algorithms.build("q_learning", "rldojo/GridWorld-v0")
    pausing.set_limits(limits)
    if restore:
        tuner = tune.Tuner.restore(
            str(storage / "exp"),
            trainable=config.algo_class,
            resume_unfinished=True,
            param_space=config.to_dict(),
        )
    else:
        tuner = tune.Tuner(
            config.algo_class,
            param_space=config.to_dict(),
            tune_config=tune.TuneConfig(scheduler=pausing.PauseAtStop(), num_samples=2),
            run_config=tune.RunConfig(
                name="exp",
                storage_path=str(storage),
                checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=1000),
                callbacks=[pausing.EndWhenAllPaused(), StopAtIteration(stop_at)],
                verbose=0,
            ),
        )
    return tuner.fit()


def _rows(storage: Path) -> list[list[int]]:
    files = sorted((storage / "exp").glob("*/result.json"))
    return [[json.loads(line)["training_iteration"] for line in f.open()] for f in files]


def test_limits_read_nested_keys() -> None:
    limits = pausing.Limits({"env_runners/num_env_steps_sampled_lifetime": 100})
    assert not limits.reached({"env_runners": {"num_env_steps_sampled_lifetime": 99}})
    assert limits.reached({"env_runners": {"num_env_steps_sampled_lifetime": 100}})
    assert limits.reached({"env_runners/num_env_steps_sampled_lifetime": 150})
    assert not limits.reached({}) and not limits.reached(None)


@pytest.mark.usefixtures("ray_local")
def test_a_run_pickled_by_an_older_rldojo_still_has_every_setting() -> None:
    """Tune restores the scheduler and callbacks it pickled with the experiment: those of a job
    stopped before a setting existed lack it, and the class default stands in."""
    scheduler, callback = pausing.PauseAtStop(), pausing.EndWhenAllPaused()
    del scheduler.__dict__["ends_at_limits"], callback.__dict__["expected_trials"]
    old_scheduler, old_callback = pickle.loads(pickle.dumps((scheduler, callback)))
    assert old_scheduler.ends_at_limits is False and old_callback.expected_trials is None


def test_trials_pause_at_the_stop_and_a_larger_stop_extends_them(tmp_path: Path) -> None:
    envs.register_with_ray()
    grid = _fit(tmp_path, {"training_iteration": 100_000}, restore=False, stop_at=3)
    # a stop request: every trial that ran paused at its next result, with a checkpoint there
    stopped_at = [grid[i].metrics.get("training_iteration") for i in range(len(grid))]
    assert any(stopped_at) and all(at is None or at < 100 for at in stopped_at), stopped_at
    for index in range(len(grid)):
        if grid[index].metrics:
            assert grid[index].checkpoint is not None
    StopAtIteration.armed = False
    grid = _fit(tmp_path, {"training_iteration": 12}, restore=True)
    assert [grid[i].metrics["training_iteration"] for i in range(len(grid))] == [12, 12]
    grid = _fit(tmp_path, {"training_iteration": 15}, restore=True)  # extended
    assert [grid[i].metrics["training_iteration"] for i in range(len(grid))] == [15, 15]
    for trial_rows in _rows(tmp_path):
        assert trial_rows == list(range(1, 16)), trial_rows  # no iteration lost or repeated
