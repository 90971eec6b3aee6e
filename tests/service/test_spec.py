"""The job spec: the issue's example parses, and every kind of bad input names its field."""

from __future__ import annotations

import pytest

from service.spec import JobSpec, SpecError, parse_spec
from service.training import param_space, stop_criteria

EXAMPLE = {
    "algorithm": "q_learning",
    "env": "rldojo/GridWorld-v0",
    "env_config": {"size": 5},
    "config": {"gamma": 0.9},
    "seed": 1,
    "stop": {"iterations": 100, "env_steps": 20000, "return_mean": 99.0, "seconds": 600},
    "resources": {"env_runners": 1, "learners": 0, "gpus_per_learner": 0, "placement": "SPREAD"},
    "checkpoint": {"every": 10, "keep": 3},
    "search": {"alpha": {"grid": [0.1, 0.01]}},
    "num_samples": 1,
}


def test_the_issue_example_parses_and_becomes_the_tune_param_space():
    spec = parse_spec(EXAMPLE)
    space = param_space(spec)
    assert space["env"] == "rldojo/GridWorld-v0"
    assert space["env_config"] == {"size": 5}
    assert space["gamma"] == 0.9
    assert space["seed"] == 1
    assert space["num_env_runners"] == 1
    assert space["placement_strategy"] == "SPREAD"
    assert space["alpha"] == {"grid_search": [0.1, 0.01]}
    assert stop_criteria(spec) == {
        "training_iteration": 100,
        "num_env_steps_sampled_lifetime": 20000,
        "env_runners/episode_return_mean": 99.0,
        "time_total_s": 600,
    }


def test_defaults_fill_in():
    spec = parse_spec({"algorithm": "value_iteration"})
    assert spec.env == "rldojo/PlanningGrid-v0"
    assert spec.stop.iterations == 50  # the algorithm's default stop: no job runs forever
    assert spec.hyperparameters()["gamma"] == 0.9
    assert JobSpec.model_validate_json(spec.model_dump_json()) == spec


@pytest.mark.parametrize(
    ("patch", "location", "message"),
    [
        ({"algorithm": "ppo9"}, ["algorithm"], "unknown algorithm"),
        ({"env": "Nope-v0"}, ["env"], "unknown env"),
        ({"config": {"gama": 0.9}}, ["config", "gama"], "unknown key"),
        ({"config": {"alpha": "fast"}}, ["config", "alpha"], "valid number"),
        ({"config": {"episodes_per_iteration": 2.5}}, ["config", "episodes_per_iteration"], "int"),
        ({"env_config": {"sise": 4}}, ["env_config", "sise"], "unknown key"),
        ({"stop": {"iterations": 0}}, ["stop", "iterations"], "greater than"),
        ({"stop": {"forever": True}}, ["stop", "forever"], "Extra inputs"),
        ({"search": {"alpha": {"grid": ["x"]}}}, ["search", "alpha"], "valid number"),
        ({"search": {"tau": {"grid": [1]}}}, ["search", "tau"], "unknown key"),
        ({"num_samples": 0}, ["num_samples"], "greater than"),
        ({"resources": {"placement": "STRICT"}}, ["resources", "placement"], "'PACK' or 'SPREAD'"),
        ({"extra": 1}, ["extra"], "Extra inputs"),
    ],
)
def test_bad_input_names_the_field(patch, location, message):
    with pytest.raises(SpecError) as caught:
        parse_spec({**EXAMPLE, **patch})
    (error,) = [e for e in caught.value.errors if e["loc"][: len(location)] == location]
    assert message in error["msg"]
