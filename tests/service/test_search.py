"""A job's scheduler and searcher: checked at submit, compiled to Tune's own, and run.

The checks and the translation are fast. The runs (marked lifecycle: each is tens of seconds of
real Tune on a local Ray) train the book's grid world with a good exploration rate and a random
one, so that the schedulers have something to tell apart: ASHA stops the random trials early,
PBT has the bottom trials copy the top ones' checkpoints and go on with perturbed values (in
effect in the running learner), Optuna and HyperOpt sample, and a stopped job of each kind
resumes where its trials paused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ray import tune
from ray.tune.schedulers import ASHAScheduler, PopulationBasedTraining

from algorithms.common import metrics
from algorithms.common.restored_lr import STEPPED
from service import pausing
from service.compiler import compile_job
from service.driver import search
from service.driver.run import train
from service.jobdir import JobDirectory
from service.spec import SpecError, parse_spec

GRID = {
    "algorithm": "q_learning",
    "seed": 1,
    "stop": {"iterations": 8},
    "checkpoint": {"every": 2, "keep": 2},
    "resources": {"env_runners": 0},
}
ASHA = {
    **GRID,
    "search": {"epsilon": {"grid": [0.05, 1.0]}},
    "num_samples": 2,
    "scheduler": {"type": "asha", "grace_period": 2, "reduction_factor": 2},
}


def _sampled(searcher: str) -> dict[str, Any]:
    """A model-based search of three trials, two at a time."""
    return {
        **GRID,
        "num_samples": 3,
        "search": {"epsilon": {"loguniform": [0.01, 1.0]}},
        "searcher": {"type": searcher, "max_concurrent": 2},
    }


def _errors(patch: dict[str, Any]) -> list[tuple[list[str], str]]:
    with pytest.raises(SpecError) as caught:
        parse_spec({**GRID, "num_samples": 4, **patch})
    return [(item["loc"], item["msg"]) for item in caught.value.errors]


@pytest.mark.parametrize(
    ("patch", "location", "message"),
    [
        ({"scheduler": {"type": "asha"}, "num_samples": 1}, ["scheduler"], "compares trials"),
        ({"scheduler": {"type": "hyperband"}}, ["scheduler"], "'asha', 'pbt'"),
        (
            {"scheduler": {"type": "asha"}, "stop": {"env_steps": 1000}},
            ["scheduler", "max_t"],
            "required when the stop has no iterations",
        ),
        (
            {"scheduler": {"type": "asha", "grace_period": 9}},
            ["scheduler", "grace_period"],
            "above max_t (8)",
        ),
        (
            {"scheduler": {"type": "pbt", "hyperparam_mutations": {"lr": {"choice": [0.1]}}}},
            ["scheduler", "hyperparam_mutations", "lr"],
            "unknown key; known: alpha",
        ),
        (
            {"scheduler": {"type": "pbt", "hyperparam_mutations": {"alpha": {"grid": [0.1]}}}},
            ["scheduler", "hyperparam_mutations", "alpha"],
            "a domain is one of",
        ),
        (
            {"scheduler": {"type": "pbt", "hyperparam_mutations": {"alpha": {"choice": ["x"]}}}},
            ["scheduler", "hyperparam_mutations", "alpha"],
            "valid number",
        ),
        ({"scheduler": {"type": "pbt"}}, ["scheduler", "hyperparam_mutations"], "Field required"),
        ({"searcher": {"type": "optuna"}}, ["searcher"], "samples the search domains"),
        (
            {"searcher": {"type": "optuna"}, "search": {"alpha": {"grid": [0.1, 0.2]}}},
            ["search", "alpha"],
            "takes no grid",
        ),
        (
            {"searcher": {"type": "optuna", "max_concurrent": 0}},
            ["searcher", "max_concurrent"],
            "greater than or equal to 1",
        ),
    ],
)
def test_a_bad_scheduler_or_searcher_is_refused_naming_its_field(
    patch: dict[str, Any], location: list[str], message: str
) -> None:
    found = _errors(patch)
    assert any(loc == location and message in msg for loc, msg in found), found


def test_asha_compiles_to_tunes_scheduler_with_the_jobs_stop_as_its_last_rung() -> None:
    spec = parse_spec(ASHA)
    scheduler = search.tune_scheduler(spec)
    assert isinstance(scheduler, ASHAScheduler)
    assert (
        scheduler.metric == metrics.EPISODE_RETURN_MEAN
        and scheduler._time_attr == metrics.ITERATION
    )
    assert scheduler._max_t == 8  # the job's stop.iterations
    assert search.tune_searcher(spec) is None  # random and grid: Tune's own


def test_pbt_keeps_each_perturbed_range_value_inside_its_domain() -> None:
    spec = parse_spec(
        {
            **GRID,
            "num_samples": 4,
            "scheduler": {
                "type": "pbt",
                "hyperparam_mutations": {
                    "gamma": {"uniform": [0.5, 0.99]},
                    "alpha": {"loguniform": [0.01, 0.5]},
                    "episodes_per_iteration": {"choice": [1, 2, 4]},
                },
            },
        }
    )
    scheduler = search.tune_scheduler(spec)
    assert isinstance(scheduler, PopulationBasedTraining)
    clip = search.ClipToDomains.of(spec.scheduler)  # type: ignore[arg-type]
    perturbed = clip({"gamma": 0.99 * 1.2, "alpha": 0.01 * 0.8, "episodes_per_iteration": 4})
    assert perturbed == {"gamma": 0.99, "alpha": 0.01, "episodes_per_iteration": 4}


@pytest.mark.parametrize(
    ("kind", "tunes"), [("optuna", "OptunaSearch"), ("hyperopt", "HyperOptSearch")]
)
def test_a_model_based_searcher_compiles_to_tunes_limited_to_max_concurrent(
    kind: str, tunes: str
) -> None:
    searcher = search.tune_searcher(parse_spec(_sampled(kind)))
    assert type(searcher).__name__ == "ConcurrencyLimiter" and searcher.max_concurrent == 2
    assert type(searcher.searcher).__name__ == tunes


# ---- real runs ------------------------------------------------------------------------------


def _train(spec: dict[str, Any], tmp_path: Path, **kwargs: Any) -> JobDirectory:
    directory = JobDirectory.open(str(tmp_path / "job"))
    train(compile_job(parse_spec(spec)), directory, **kwargs)
    return directory


def _rows(directory: JobDirectory, trial_id: str) -> list[dict[str, Any]]:
    return [row for row in directory.rows() if row.get("trial_id") == trial_id]


def _table(directory: JobDirectory) -> dict[str, dict[str, Any]]:
    return {row["trial_id"]: row for row in (directory.read_trials() or {})["trials"]}


@pytest.mark.lifecycle
def test_asha_stops_the_random_trials_early_and_the_best_is_a_good_one(
    ray_local: None, tmp_path: Path
) -> None:
    directory = _train(ASHA, tmp_path)
    trials = _table(directory).values()
    random = [t for t in trials if t["hyperparameters"]["epsilon"] == 1.0]
    good = [t for t in trials if t["hyperparameters"]["epsilon"] == 0.05]
    # Asynchronous: a trial first at a rung has nothing to be cut against, so at least one of
    # the random trials (not always both) is stopped there.
    early = [t for t in random if t["state"] == "stopped early"]
    assert early and all(t["iterations"] < 8 for t in early), trials
    # The two samples of each value trained with their own seeds (spec seed 1, then 2).
    assert sorted(t["hyperparameters"]["seed"] for t in good) == [1, 2]
    assert sorted(t["hyperparameters"]["seed"] for t in random) == [1, 2]
    # A good trial's return two iterations in depends on its seed: one of them may be cut too
    # (seed 2's is), but one runs to the end and is the best.
    finished = [t for t in good if t["state"] == "finished"]
    assert finished and all(t["iterations"] == 8 for t in finished), trials
    best = directory.best_checkpoint()
    assert best is not None and best.trial_id in {t["trial_id"] for t in finished}


STOPPED_SEARCHES = {
    "asha": ASHA,
    "pbt": {
        **GRID,
        "num_samples": 4,
        "search": {"epsilon": {"choice": [0.05, 1.0]}},
        "scheduler": {
            "type": "pbt",
            "perturbation_interval": 2,
            "hyperparam_mutations": {"epsilon": {"uniform": [0.01, 1.0]}},
        },
    },
    "optuna": _sampled("optuna"),
    "hyperopt": _sampled("hyperopt"),
}


@pytest.mark.lifecycle
@pytest.mark.parametrize("kind", sorted(STOPPED_SEARCHES))
def test_a_stopped_search_resumes_from_where_its_trials_paused(
    kind: str, ray_local: None, tmp_path: Path
) -> None:
    spec = STOPPED_SEARCHES[kind]

    class StopAfter(tune.Callback):
        def __init__(self) -> None:
            self.results = 0

        def on_trial_result(self, *args: Any, **kwargs: Any) -> None:
            self.results += 1
            if self.results == 3:
                pausing.request_stop()

    directory = _train(spec, tmp_path, callbacks=[StopAfter()])
    paused = _table(directory)
    assert any(t["state"] == "paused" for t in paused.values()), paused
    pausing.set_limits({})  # a new run in this process: the stop request is spent
    _train(spec, tmp_path, resume=True)
    after = _table(directory)
    assert len(after) == parse_spec(spec).trials  # the trials not started before start now
    for trial_id, before in paused.items():
        if before["state"] == "paused":
            assert after[trial_id]["iterations"] > before["iterations"], (trial_id, after)
    for trial_id in after:
        iterations = [row[metrics.ITERATION] for row in _rows(directory, trial_id)]
        assert iterations == list(range(1, len(iterations) + 1)), (trial_id, iterations)
    assert {t["state"] for t in after.values()} <= {"finished", "stopped early"}, after


@pytest.mark.lifecycle
def test_pbt_trials_copy_the_best_and_train_with_their_perturbed_learning_rate(
    ray_local: None, tmp_path: Path
) -> None:
    spec = {
        "algorithm": "reinforce",
        "env": "CartPole-v1",
        "seed": 2,
        "stop": {"iterations": 5},
        "num_samples": 4,
        "resources": {"env_runners": 0},
        "search": {"lr": {"choice": [0.0001, 0.01]}},
        "scheduler": {
            "type": "pbt",
            "perturbation_interval": 2,
            "quantile_fraction": 0.5,
            "hyperparam_mutations": {"lr": {"loguniform": [0.00005, 0.02]}},
        },
    }
    directory = _train(spec, tmp_path)
    table = directory.read_trials() or {}
    steps = table["perturbations"]
    assert steps, "no trial copied another"
    ids = {row["trial_id"] for row in table["trials"]}
    for step in steps:
        assert step["copied"] in ids - {step["trial_id"]}
        # PBT copies the top trial's whole config, its sample's seed too, then mutates lr.
        assert "lr" in step["values"] and set(step["values"]) <= {"lr", "seed"}
        assert 0.00005 <= step["values"]["lr"] <= 0.02
    # After its last perturbation, a trial trains at the perturbed rate: the rate its learner's
    # optimizer took its last steps at, as the learner reports it (not the config Tune records).
    # (That the first step after a restore is at it too: tests/algorithms/test_all_algorithms.py.)
    last = {step["trial_id"]: step for step in steps}
    now = {row["trial_id"]: row["hyperparameters"]["lr"] for row in table["trials"]}
    for trial_id, step in last.items():
        assert now[trial_id] == pytest.approx(step["values"]["lr"])
        rows = _rows(directory, trial_id)
        rate = rows[-1][f"{metrics.LEARNER}/default_optimizer_{STEPPED}"]
        assert rate == pytest.approx(step["values"]["lr"]), (trial_id, rate, step)


@pytest.mark.lifecycle
@pytest.mark.parametrize("searcher", ["optuna", "hyperopt"])
def test_a_model_based_search_samples_each_trial(
    searcher: str, ray_local: None, tmp_path: Path
) -> None:
    spec = {**_sampled(searcher), "stop": {"iterations": 2}}
    trials = _table(_train(spec, tmp_path)).values()
    assert len(trials) == 3 and {t["state"] for t in trials} == {"finished"}
    values = [t["hyperparameters"]["epsilon"] for t in trials]
    assert len(set(values)) == 3 and all(0.01 <= v <= 1.0 for v in values)
