"""The five tabular algorithms: update rules on hand-worked episodes, the book's DP fixed point,
learning on the book's grid and on another layout, seeding, and checkpoint round trips."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import TypeAdapter, ValidationError
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.env.single_agent_episode import SingleAgentEpisode

import algorithms
import envs
from algorithms.evaluation import evaluate

TABULAR = ["policy_iteration", "value_iteration", "monte_carlo", "sarsa", "q_learning"]

# Book section 3.2: the value-iteration fixed point of the planning grid (rows top to bottom).
BOOK_VALUES = np.array(
    [
        [0.590, 0.656, 0.729, 0.810, 0.729],
        [0.656, 0.590, 1.000, 0.900, 0.810],
        [0.729, 1.000, 0.000, 1.000, 0.900],
        [0.810, 0.900, 1.000, 0.900, 0.810],
        [0.729, 0.810, 0.900, 0.810, 0.729],
    ]
)
U, D, L, R = 0, 1, 2, 3
# Book section 3.2: the greedy optimal actions, ties listed; the goal (2, 2) has none.
BOOK_ACTIONS = {
    (0, 0): {D, R}, (0, 1): {R}, (0, 2): {R}, (0, 3): {D}, (0, 4): {D, L},
    (1, 0): {D}, (1, 1): {U, L}, (1, 2): {D}, (1, 3): {D}, (1, 4): {D, L},
    (2, 0): {D}, (2, 1): {R}, (2, 3): {L}, (2, 4): {L},
    (3, 0): {R}, (3, 1): {R}, (3, 2): {U}, (3, 3): {U, L}, (3, 4): {U, L},
    (4, 0): {U, R}, (4, 1): {U, R}, (4, 2): {U}, (4, 3): {U, L}, (4, 4): {U, L},
}  # fmt: skip


def learner_for(name: str, env_id: str = "rldojo/GridWorld-v0", **training):
    config = algorithms.get(name).config_class().environment(env_id).training(**training)
    return config.build_learner(env=envs.make(env_id))


def episode(states: list[int], actions: list[int], rewards: list[float], terminated: bool):
    return SingleAgentEpisode(
        observations=states,
        actions=actions,
        rewards=rewards,
        terminated=terminated,
        len_lookback_buffer=0,
    )


def train(name: str, iterations: int, env_id: str | None = None, **overrides) -> Algorithm:
    config = algorithms.default_config(name).debugging(seed=1).training(**overrides)
    if env_id is not None:
        config.environment(env_id, env_config=overrides.pop("env_config", {}))
    algo = config.build_algo()
    for _ in range(iterations):
        algo.train()
    return algo


# ---- (a) the update rules on hand-worked episodes ---------------------------------------------


def test_q_learning_update_matches_hand_computation():
    learner = learner_for("q_learning", alpha=0.5, gamma=0.9)
    q = learner.table.action_values
    q[1] = torch.tensor([0.0, 2.0, 0.0, 4.0])
    # 0 -right-> 1 (r=0), 1 -down-> 6 (r=0): two transitions, not terminal.
    learner.learn_from_episode(episode([0, 1, 6], [R, D], [0.0, 0.0], terminated=False))
    # Q(0,R) = 0 + 0.5 * (0 + 0.9 * max Q(1) - 0) = 0.5 * 3.6 = 1.8
    assert q[0, R].item() == pytest.approx(1.8)
    # Q(1,D) = 2 + 0.5 * (0 + 0.9 * max Q(6) - 2) = 2 - 1 = 1
    assert q[1, D].item() == pytest.approx(1.0)


def test_q_learning_terminal_transition_does_not_bootstrap():
    learner = learner_for("q_learning", alpha=0.5, gamma=0.9)
    q = learner.table.action_values
    q[12] = 50.0  # the goal's row; a terminal state's value must not be used
    learner.learn_from_episode(episode([7, 12], [D], [100.0], terminated=True))
    assert q[7, D].item() == pytest.approx(0.5 * (100.0 + 0.9 * 50.0))  # book: Q(goal) stays 0
    q[12] = 0.0
    q[7, D] = 0.0
    learner.learn_from_episode(episode([7, 12], [D], [100.0], terminated=True))
    assert q[7, D].item() == pytest.approx(50.0)


def test_sarsa_uses_the_next_action_taken():
    learner = learner_for("sarsa", alpha=0.5, gamma=0.9)
    q = learner.table.action_values
    q[1] = torch.tensor([0.0, 2.0, 0.0, 4.0])
    learner.learn_from_episode(episode([0, 1, 6], [R, D], [0.0, 0.0], terminated=False))
    # Q(0,R) bootstraps from Q(1, D) = 2 (taken), not max Q(1) = 4: 0.5 * 0.9 * 2 = 0.9
    assert q[0, R].item() == pytest.approx(0.9)
    # The last transition of a truncated episode has no next action: left unchanged.
    assert q[1, D].item() == pytest.approx(2.0)


def test_monte_carlo_updates_each_state_once_from_the_back():
    learner = learner_for("monte_carlo", alpha=0.5, gamma=0.9)
    v = learner.table.state_values
    # 0 -> 1 -> 0 -> 5 ... a revisit of state 0 is skipped: only its last visit counts.
    learner.learn_from_episode(episode([0, 1, 0, 5], [R, L, D], [0.0, 0.0, 10.0], terminated=True))
    # Backwards: G(5) = 10, G(0) = 0 + 0.9 * 10 = 9, G(1) = 0 + 0.9 * 9 = 8.1
    assert v[5].item() == pytest.approx(5.0)
    assert v[0].item() == pytest.approx(4.5)
    assert v[1].item() == pytest.approx(4.05)
    # Acting greedily uses V of the cell each move enters: Q(0, R) = V(1), Q(0, D) = V(5).
    q = learner.table.action_values
    assert q[0, R].item() == pytest.approx(4.05)
    assert q[0, D].item() == pytest.approx(5.0)
    assert q[0, U].item() == pytest.approx(4.5)  # into the wall: stays in 0


# ---- (b) configs ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", TABULAR)
def test_config_defaults_are_the_books(name):
    config = algorithms.default_config(name)
    assert config.gamma == 0.9
    assert algorithms.hyperparameters(name)["gamma"].default == 0.9


def test_q_learning_explores_ten_percent_not_the_books_ninety():
    assert algorithms.default_config("q_learning").epsilon == 0.1


@pytest.mark.parametrize(
    ("name", "overrides", "message"),
    [
        ("q_learning", {"alpha": 0.0}, "alpha=0.0"),
        ("sarsa", {"epsilon": 1.5}, "epsilon=1.5"),
        ("monte_carlo", {"gamma": 2.0}, "gamma=2.0"),
        ("value_iteration", {"sweeps_per_iteration": 0}, "sweeps_per_iteration=0"),
    ],
)
def test_training_and_validate_name_the_bad_value(name, overrides, message):
    with pytest.raises(ValueError, match=message):
        algorithms.default_config(name).training(**overrides)
    config = algorithms.default_config(name)
    for key, value in overrides.items():
        setattr(config, key, value)  # as RLlib's `update_from_dict` sets them
    with pytest.raises(ValueError, match=message):
        config.validate()


def test_training_round_trip_and_hyperparameter_schema():
    config = algorithms.default_config("sarsa").training(alpha=0.2, episodes_per_iteration=3)
    assert (config.alpha, config.episodes_per_iteration) == (0.2, 3)
    params = algorithms.hyperparameters("value_iteration")
    # The declared types carry their ranges: what the spec checks and the form shows.
    tolerance, sweeps = (TypeAdapter(params[k].type) for k in ("tolerance", "sweeps_per_iteration"))
    assert tolerance.validate_python(0.5) == 0.5 and sweeps.validate_python(3) == 3
    assert tolerance.json_schema()["type"] == "number" and sweeps.json_schema()["type"] == "integer"
    for adapter, bad in ((tolerance, -1.0), (tolerance, float("nan")), (sweeps, 0)):
        with pytest.raises(ValidationError):
            adapter.validate_python(bad)
    assert params["sweeps_per_iteration"].description.startswith("Most synchronous")


# ---- DP reproduces the book -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["value_iteration", "policy_iteration"])
def test_dp_reproduces_the_books_fixed_point_and_greedy_actions(ray_local, name):
    algo = train(name, iterations=8)
    learner = learner_from_checkpoint(algo)
    values = learner.table.state_values.reshape(5, 5).numpy()
    np.testing.assert_allclose(values, BOOK_VALUES, atol=5e-4)
    model = envs.make("rldojo/PlanningGrid-v0").unwrapped.transition_model()
    lookahead = model.reward + 0.9 * values.reshape(-1)[model.next_state]
    for (row, col), best in BOOK_ACTIONS.items():
        q = lookahead[row * 5 + col]
        assert set(np.flatnonzero(np.isclose(q, q.max(), atol=1e-6))) == best, (row, col)
    result = algo.train()
    assert result["env_runners"]["episode_return_mean"] == pytest.approx(1.0)
    algo.stop()


def test_value_iteration_reaches_the_fixed_point_in_six_sweeps(ray_local):
    algo = train("value_iteration", iterations=6)
    values = learner_from_checkpoint(algo).table.state_values.reshape(5, 5).numpy()
    np.testing.assert_allclose(values, BOOK_VALUES, atol=5e-4)
    algo.stop()


def learner_from_checkpoint(algo: Algorithm, tmp=None):
    """The learned tables, read back through RLlib's public checkpoint API."""
    import tempfile

    from ray.rllib.core.rl_module.rl_module import RLModule

    path = algo.save_to_path(tempfile.mkdtemp())
    module = RLModule.from_checkpoint(f"{path}/learner_group/learner/rl_module/default_policy")

    class Tables:
        table = module

    return Tables


# ---- learning on the grid world ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "iterations", "shortest"),
    [("q_learning", 40, True), ("sarsa", 100, False), ("monte_carlo", 40, False)],
)
def test_learns_to_reach_the_goal_greedily(ray_local, tmp_path, name, iterations, shortest):
    overrides = {"alpha": 0.1} if name == "sarsa" else {}
    algo = train(name, iterations=iterations, **overrides)
    result = evaluate(algo.save_to_path(tmp_path / name), episodes=5, seed=3)
    algo.stop()
    assert result.returns == [100.0] * 5
    if shortest:
        assert result.lengths == [6] * 5  # Q-learning finds the shortest safe path


def test_another_layout_is_solved_by_value_iteration_and_q_learning(ray_local, tmp_path):
    layout = {"size": 6, "start": [5, 0], "goal": [0, 5], "traps": [[2, 2], [3, 3], [1, 4]]}
    for name, iterations in (("value_iteration", 20), ("q_learning", 80)):
        config = algorithms.default_config(name).debugging(seed=2)
        config.environment("rldojo/GridWorld-v0", env_config=layout)
        algo = config.build_algo()
        for _ in range(iterations):
            algo.train()
        result = evaluate(algo.save_to_path(tmp_path / name), episodes=3)
        algo.stop()
        assert result.returns == [100.0] * 3, name
        assert result.lengths == [10] * 3, name  # 5 up + 5 right, around the traps


# ---- seeding and checkpoints ------------------------------------------------------------------


def test_same_seed_gives_the_same_learning(ray_local):
    tables = []
    for _ in range(2):
        algo = train("q_learning", iterations=3)
        tables.append(learner_from_checkpoint(algo).table.action_values.clone())
        algo.stop()
    assert torch.equal(tables[0], tables[1])
    assert tables[0].abs().sum() > 0


@pytest.mark.parametrize("name", TABULAR)
def test_checkpoint_restores_and_evaluates_the_same(ray_local, tmp_path, name):
    algo = train(name, iterations=5)
    path = algo.save_to_path(tmp_path / "ckpt")
    before = evaluate(path, episodes=3, seed=7)
    state = algo.get_module().get_state()
    algo.stop()
    restored = Algorithm.from_checkpoint(path)
    for key, value in restored.get_module().get_state().items():
        np.testing.assert_array_equal(value, state[key])
    assert restored.training_iteration == 5
    restored.train()  # and it trains on from there
    assert restored.training_iteration == 6
    after = evaluate(restored.save_to_path(tmp_path / "again"), episodes=3, seed=7)
    restored.stop()
    assert before.returns == evaluate(path, episodes=3, seed=7).returns
    assert after.episodes == 3
