"""The job spec: the issue's example parses, and every kind of bad input names its field."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import algorithms
from algorithms.common.devices import learner_gpus
from service.compiler import build_config, compile_job, stop_criteria
from service.driver.run import param_space
from service.spec import JobSpec, SpecError, hyperparameters, parse_spec

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
    space = param_space(compile_job(spec))
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


def test_repeated_samples_of_a_seeded_spec_each_get_their_own_seed():
    repeated = compile_job(parse_spec({**EXAMPLE, "seed": 7, "num_samples": 3}))
    assert repeated.sample_seeds == [7, 8, 9]
    space = param_space(repeated)
    assert space["seed"] == {"grid_search": [7, 8, 9]}  # x the alpha grid: 6 trials
    assert space["alpha"] == {"grid_search": [0.1, 0.01]}
    at_the_top = compile_job(parse_spec({**EXAMPLE, "seed": 2**32 - 1, "num_samples": 2}))
    assert at_the_top.sample_seeds == [2**32 - 1, 0]
    # One sample, no seed, or a model-based searcher (which takes no grid): one seed for all.
    assert compile_job(parse_spec(EXAMPLE)).sample_seeds is None
    assert compile_job(parse_spec({**EXAMPLE, "seed": None, "num_samples": 3})).sample_seeds is None
    sampled = {**EXAMPLE, "num_samples": 3, "search": {"alpha": {"uniform": [0.01, 0.1]}}}
    optuna = compile_job(parse_spec({**sampled, "searcher": {"type": "optuna"}}))
    assert optuna.sample_seeds is None and param_space(optuna)["seed"] == 1


def test_defaults_fill_in():
    spec = parse_spec({"algorithm": "value_iteration"})
    assert spec.env == "rldojo/PlanningGrid-v0"
    assert spec.stop.iterations == 50  # the algorithm's default stop: no job runs forever
    assert hyperparameters(spec)["gamma"] == 0.9
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


@pytest.mark.parametrize(
    ("spec", "location", "message"),
    [
        ({"algorithm": "dqn", "env": "Pendulum-v1"}, ["env"], "needs discrete actions"),
        ({"algorithm": "reinforce", "env": "rldojo/Breakout-v0"}, ["env"], "needs vector obs"),
        ({"algorithm": "dqn", "env": "CarRacing-v3"}, ["env"], "not a channel-first image"),
        ({"algorithm": "q_learning", "env": "CartPole-v1"}, ["env"], "needs discrete"),
        ({"algorithm": "monte_carlo", "env": "CartPole-v1"}, ["env"], "needs discrete"),
        ({"algorithm": "a3c", "env": "rldojo/ContinuousCartPole-v0"}, ["env"], "discrete actions"),
        ({"algorithm": "dqn", "config": {"preset": "fast"}}, ["config", "preset"], "'auto'"),
        ({"algorithm": "dqn", "config": {"lr": -1}}, ["config", "lr"], "greater than 0"),
        ({"algorithm": "dqn", "config": {"hidden_sizes": [0]}}, ["config", "hidden_sizes"], ""),
        (
            {"algorithm": "dqn", "env": "rldojo/Atari-v0", "env_config": {"game": "Breakot"}},
            ["env_config", "game"],
            "did you mean breakout",
        ),
    ],
)
def test_what_cannot_train_is_refused_with_the_reason(spec, location, message):
    with pytest.raises(SpecError) as caught:
        parse_spec({**spec, "stop": {"iterations": 1}})
    errors = [e for e in caught.value.errors if e["loc"][: len(location)] == location]
    assert errors and message in errors[0]["msg"], caught.value.errors


def test_settings_follow_the_env_and_the_users_values_win():
    a3c_cartpole = build_config(parse_spec({"algorithm": "a3c", "env": "CartPole-v1"}))
    a3c_breakout = build_config(parse_spec({"algorithm": "a3c"}))
    assert (a3c_cartpole.lr, a3c_breakout.lr) == (1e-3, 1e-4)  # book 6.3 v2 on Breakout
    assert parse_spec({"algorithm": "a3c", "env": "CartPole-v1"}).stop.return_mean == 475.0
    mine = parse_spec({"algorithm": "dqn", "env": "rldojo/Breakout-v0", "config": {"lr": 3e-4}})
    config = build_config(mine)
    assert (config.lr, config.replay_capacity) == (3e-4, 100_000)  # the user's lr, the book's rest
    assert compile_job(mine).resolved_config["preset"] == "book_breakout"
    # The number of GPUs per learner is a number: the cluster's (none here) unless asked for.
    assert config.num_gpus_per_learner == learner_gpus() == 0
    asked = parse_spec({"algorithm": "dqn", "resources": {"gpus_per_learner": 0}})
    assert build_config(asked).num_gpus_per_learner == 0


class ScreenAndScore(gym.Env):
    """A Dict observation with an image inside: nothing flattens or convolves that."""

    observation_space = gym.spaces.Dict(
        {
            "screen": gym.spaces.Box(0, 255, (4, 84, 84), np.uint8),
            "score": gym.spaces.Discrete(10),
        }
    )
    action_space = gym.spaces.Discrete(2)


def test_an_env_whose_observations_no_algorithm_takes_is_refused_with_the_space_named():
    gym.register("tests/ScreenAndScore-v0", entry_point=ScreenAndScore)
    try:
        with pytest.raises(SpecError) as caught:
            parse_spec({"algorithm": "dqn", "env": "tests/ScreenAndScore-v0"})
    finally:
        gym.registry.pop("tests/ScreenAndScore-v0")
    (error,) = caught.value.errors
    assert error["loc"] == ["env"] and "observation space Dict(" in error["msg"], error


def test_any_registered_id_is_a_jobs_env():
    assert parse_spec({"algorithm": "dqn", "env": "Acrobot-v1"}).env == "Acrobot-v1"
    pong = parse_spec({"algorithm": "dqn", "env": "ALE/Pong-v5"})
    assert pong.stop.env_steps == 10_000_000  # the Atari family's preset, as for Breakout
    lake = parse_spec({"algorithm": "q_learning", "env": "FrozenLake-v1"})
    assert lake.env == "FrozenLake-v1"


@pytest.mark.parametrize(
    "body",
    [{"algorithm": []}, {"algorithm": {}}, {"algorithm": 3}, {}, ["q_learning"], "q_learning"],
)
def test_a_mistyped_algorithm_is_a_field_error_not_a_crash(body):
    with pytest.raises(SpecError) as refused:
        parse_spec(body)
    assert refused.value.errors[0]["loc"] in (["algorithm"], [])


# Any JSON at all, at the spec's own keys: parse_spec answers a spec or a SpecError, nothing else.
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
_fields = ["env", "env_config", "config", "seed", "stop", "resources", "checkpoint", "search"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    algorithm=st.sampled_from(["q_learning", "dqn"]) | _json,
    rest=st.dictionaries(st.sampled_from(_fields + ["num_samples", "name", "tags"]), _json),
)
def test_any_json_is_a_spec_or_a_spec_error(algorithm, rest):
    try:
        parse_spec({"algorithm": algorithm, **rest})
    except SpecError as error:
        assert all(isinstance(item["loc"], list) and item["msg"] for item in error.errors)


@pytest.mark.parametrize(
    ("patch", "location"),
    [
        ({"config": {"episodes_per_iteration": 10**12}}, ["config", "episodes_per_iteration"]),
        ({"checkpoint": {"every": 10**29}}, ["checkpoint", "every"]),
        ({"checkpoint": {"keep": 10**9}}, ["checkpoint", "keep"]),
        ({"stop": {"iterations": 10**18}}, ["stop", "iterations"]),
        ({"stop": {"env_steps": 10**15}}, ["stop", "env_steps"]),
        (
            {"search": {"episodes_per_iteration": {"grid": [1, 10**9]}}},
            ["search", "episodes_per_iteration"],
        ),
        (
            {"algorithm": "value_iteration", "config": {"sweeps_per_iteration": 10**7}},
            ["config", "sweeps_per_iteration"],
        ),
        (
            {"algorithm": "a3c", "config": {"gradients_per_iteration": 10**7}},
            ["config", "gradients_per_iteration"],
        ),
        (
            {"algorithm": "dqn", "config": {"updates_per_env_step": 1e9}},
            ["config", "updates_per_env_step"],
        ),
        (
            {"algorithm": "dqn", "config": {"replay_capacity": 10**12}},
            ["config", "replay_capacity"],
        ),
    ],
)
def test_work_without_end_is_refused_naming_the_field(patch, location):
    with pytest.raises(SpecError) as refused:
        parse_spec({"algorithm": "q_learning", **patch})
    assert location in [error["loc"] for error in refused.value.errors]
    assert "less than or equal" in str(refused.value)


def test_the_bounds_leave_every_preset_valid():
    for name in algorithms.ALGORITHMS:
        for env_id in algorithms.get(name).envs:
            parse_spec({"algorithm": name, "env": env_id})
