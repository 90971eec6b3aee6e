"""The RLlib config of an algorithm whose hyperparameters are one typed record.

`HyperparameterConfig` is an `AlgorithmConfig` that reads its class's `HYPERPARAMETERS` record
(`algorithms/common/config.py`):

- `__init__` sets every field's default as an attribute of the same name;
- `training(**values)` sets the record's fields, each checked against its type and range (a
  ValueError names a bad value), and passes RLlib's own `training()` keys (`model`,
  `optimizer`, `num_epochs`, ...) on to RLlib; any other key is a ValueError naming it;
- `validate()` checks every field's current value (it may have been set as an attribute, e.g.
  by `update_from_dict`), then RLlib's own checks. Subclasses add only checks that span
  several values.

Example:
    >>> from algorithms.dqn import DQNConfig
    >>> DQNConfig().training(n_step=3, num_epochs=1).n_step
    3
    >>> DQNConfig().training(n_step=0)
    Traceback (most recent call last):
    ...
    ValueError: n_step=0: Input should be greater than or equal to 1
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar, Self

from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided

from algorithms.common.config import Hyperparameters

# The keywords RLlib's own `AlgorithmConfig.training()` takes (its code paths call ours so).
RLLIB_TRAINING_KEYS = frozenset(inspect.signature(AlgorithmConfig.training).parameters) - {"self"}


class HyperparameterConfig(AlgorithmConfig):
    """An `AlgorithmConfig` whose hyperparameters are the fields of `HYPERPARAMETERS`."""

    HYPERPARAMETERS: ClassVar[type[Hyperparameters]] = Hyperparameters

    def __init__(self, algo_class: type[Algorithm] | None = None) -> None:
        super().__init__(algo_class=algo_class)
        for name, value in self.HYPERPARAMETERS.defaults().items():
            setattr(self, name, value)

    def training(self, **values: Any) -> Self:
        """Set hyperparameters (the record's fields) and RLlib's own `training()` keys.

        Raises:
            ValueError: a key is neither, or a value is not of its field's type and range.
        """
        record = self.HYPERPARAMETERS
        ours = {k: v for k, v in values.items() if k in record.model_fields}
        rllib = {k: v for k, v in values.items() if k not in ours}
        unknown = sorted(set(rllib) - RLLIB_TRAINING_KEYS)
        if unknown:
            known = ", ".join(sorted(record.model_fields))
            raise ValueError(
                f"{unknown[0]}: not a hyperparameter of {type(self).__name__}; known: {known}"
            )
        checked = {k: record.checked(k, v) for k, v in ours.items() if v is not NotProvided}
        super().training(**rllib)
        for name, value in checked.items():
            setattr(self, name, value)
        return self

    def validate(self) -> None:
        """Every hyperparameter in its range (a ValueError names the first that is not)."""
        self.HYPERPARAMETERS.check({name: getattr(self, name) for name in self.hyperparameters()})
        super().validate()

    @classmethod
    def hyperparameters(cls) -> tuple[str, ...]:
        """The names of the hyperparameters (the record's fields)."""
        return tuple(cls.HYPERPARAMETERS.model_fields)
