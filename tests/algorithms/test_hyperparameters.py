"""Hyperparameters declared once: a typed record per algorithm drives its config and registry."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter

import algorithms
from algorithms.a3c import A3CConfig
from algorithms.actor_critic import ActorCriticConfig, SharedActorCriticHyperparameters
from algorithms.common.config import Hyperparameters
from algorithms.dqn import DQNConfig


@pytest.mark.parametrize("name", list(algorithms.ALGORITHMS))
def test_the_config_and_the_registry_read_the_record(name: str) -> None:
    config_class = algorithms.get(name).config_class
    record = config_class.HYPERPARAMETERS
    config = config_class()
    described = algorithms.hyperparameters(name)
    assert set(described) - {"preset"} == set(record.model_fields)
    for key, hyperparameter in described.items():
        if key == "preset":
            continue
        assert getattr(config, key) == hyperparameter.default == record().model_dump()[key]
        assert hyperparameter.description
        TypeAdapter(hyperparameter.type).validate_python(hyperparameter.default)


def test_training_takes_exactly_the_record_and_rllibs_own_keys() -> None:
    config = DQNConfig().training(n_step=3, hidden_sizes=(16,), num_epochs=2, model={"x": 1})
    assert (config.n_step, config.hidden_sizes, config.num_epochs) == (3, [16], 2)
    assert config.model["x"] == 1  # RLlib's own keys reach RLlib's `training()`
    with pytest.raises(ValueError, match="rollout_length: not a hyperparameter of DQNConfig"):
        DQNConfig().training(rollout_length=8)
    with pytest.raises(ValueError, match="n_step=0"):
        DQNConfig().training(n_step=0)
    with pytest.raises(ValueError, match="lr=None"):
        DQNConfig().training(lr=None)
    with pytest.raises(ValueError, match="loss='l1'"):
        DQNConfig().training(loss="l1")


def test_validate_checks_values_set_as_attributes() -> None:
    config = DQNConfig().environment("CartPole-v1")
    config.update_from_dict({"gamma": 1.5})  # RLlib sets attributes, bypassing `training()`
    with pytest.raises(ValueError, match="gamma=1.5"):
        config.validate()


def test_a3c_extends_actor_critics_record_without_declaring_its_keys_again() -> None:
    a3c, actor_critic = A3CConfig.HYPERPARAMETERS, ActorCriticConfig.HYPERPARAMETERS
    assert issubclass(a3c, SharedActorCriticHyperparameters)
    assert issubclass(actor_critic, SharedActorCriticHyperparameters)
    own = set(a3c.model_fields) - set(SharedActorCriticHyperparameters.model_fields)
    assert own == {"t_max", "gradients_per_iteration"}
    assert "rollout_length" not in a3c.model_fields  # actor-critic's synchronous rollouts
    assert (a3c().lr, actor_critic().lr) == (1e-4, 1e-3)  # only the defaults differ
    shared = SharedActorCriticHyperparameters.model_fields
    assert a3c.model_fields["lr"].metadata == shared["lr"].metadata
    assert a3c.model_fields["lr"].description == shared["lr"].description


def test_other_defaults_are_checked_against_the_record() -> None:
    with pytest.raises(ValueError, match="no field 'learning_rate'"):
        SharedActorCriticHyperparameters.with_defaults(learning_rate=0.1)
    with pytest.raises(ValueError, match="lr=-1"):
        SharedActorCriticHyperparameters.with_defaults(lr=-1)
    assert issubclass(SharedActorCriticHyperparameters.with_defaults(lr=0.5), Hyperparameters)
