"""What every algorithm's config shares: one typed record of its hyperparameters, and presets.

An algorithm declares its hyperparameters once, as the fields of a `Hyperparameters` record
(pydantic): a type whose bounds are the allowed range (the aliases below, or a `Literal`), a
default, and one line of meaning. An algorithm that extends another extends its record and
changes only the defaults that differ (`with_defaults`), so no key is declared twice.

Everything else reads that record: the RLlib config takes its defaults from it and checks
`training()`'s values against it (`algorithms/common/hyperparameter_config.py`), and
`describe()` lists it for the job spec's validation, the API's JSON schema and the form.
A `Preset` is data: settings the registry applies before a user's own values
(`algorithms.build`), so the user's values always win.

This module imports no RLlib: the registry (and the CLI's listings) stay fast.

Example:
    >>> class Settings(Hyperparameters):
    ...     gamma: Probability = Field(0.9, description="Discount factor.")
    >>> Settings.checked("gamma", 0.5), Settings.with_defaults(gamma=0.99)().gamma
    (0.5, 0.99)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model
from pydantic.fields import FieldInfo

# The ranges hyperparameters are declared with (the API's schema shows them to the form).
Probability = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
# Upper bounds, far above every setting of the book and the presets (a 1M-step replay, 1M decay
# steps, 64 episodes an iteration), so that no value is a run that never ends, an iteration
# that never ends, or a size nothing can allocate: the API refuses more, naming the key.
MAX_COUNT = 100_000_000
MAX_PER_ITERATION = 100_000  # episodes, sweeps, gradients or env steps in one iteration
Count = Annotated[int, Field(ge=1, le=MAX_COUNT)]
Steps = Annotated[int, Field(ge=0, le=MAX_COUNT)]  # a number of env steps that may be 0
PerIteration = Annotated[int, Field(ge=1, le=MAX_PER_ITERATION)]  # the work of one iteration


@dataclass(frozen=True)
class Hyperparameter:
    """One overridable config key: its type (with its range), default and one-line meaning."""

    name: str
    type: Any
    default: Any
    description: str


@dataclass(frozen=True)
class Preset:
    """Named settings of an algorithm: `values` for `training()`, applied before the user's.

    Attributes:
        values: training() keywords and their values.
        stop: the job's stop when its spec bounds nothing (enough to learn on these envs).
        envs: env ids this preset is the default for (the first preset listing an env wins),
            and env families ("family:atari": any ALE game; "family:<observations>-<actions>",
            e.g. "family:vector-discrete"), which an env with no preset of its own falls to.
        summary: one line for the form and `rldojo algorithms`.
    """

    values: dict[str, Any]
    stop: dict[str, int] = field(default_factory=dict)
    envs: tuple[str, ...] = ()
    summary: str = ""


class Hyperparameters(BaseModel):
    """The base of every algorithm's record: one field per user-settable hyperparameter.

    Each field is `name: Type = Field(default, description="...")`, the type carrying its
    range. The record is only a declaration: the values live on the RLlib config.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def with_defaults(cls, **defaults: Any) -> type[Hyperparameters]:
        """This record with other defaults for some of its fields (types and meanings kept).

        Raises:
            ValueError: a name is not one of its fields, or a default is out of its range.
        """
        unknown = sorted(set(defaults) - set(cls.model_fields))
        if unknown:
            raise ValueError(f"{cls.__name__} has no field {unknown[0]!r}")
        fields: dict[str, Any] = {
            name: (
                cls.model_fields[name].annotation,
                FieldInfo.merge_field_infos(cls.model_fields[name], default=cls.checked(name, v)),
            )
            for name, v in defaults.items()
        }
        record: type[Hyperparameters] = create_model(cls.__name__, __base__=cls, **fields)
        return record

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Each field's default (fresh copies, so lists are never shared between configs)."""
        return cls().model_dump()

    @classmethod
    def describe(cls) -> dict[str, Hyperparameter]:
        """Each field as a `Hyperparameter` (the registry's `algorithms.hyperparameters`)."""
        defaults = cls.defaults()
        return {
            name: Hyperparameter(
                name=name,
                type=field_type(info),
                default=defaults[name],
                description=info.description or "",
            )
            for name, info in cls.model_fields.items()
        }

    @classmethod
    def checked(cls, name: str, value: Any) -> Any:
        """`value` as field `name`'s type, or a ValueError naming the value and its range."""
        try:
            return _adapter(cls, name).validate_python(value)
        except ValidationError as error:
            raise ValueError(f"{name}={value!r}: {error.errors()[0]['msg']}") from None

    @classmethod
    def check(cls, values: dict[str, Any]) -> None:
        """Raise ValueError naming the first of `values` (every field's) out of its range."""
        for name in cls.model_fields:
            cls.checked(name, values[name])


def field_type(info: FieldInfo) -> Any:
    """A field's type with its constraints, e.g. `Annotated[float, Ge(0), Le(1)]`."""
    return Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation


@functools.cache
def _adapter(record: type[Hyperparameters], name: str) -> TypeAdapter[Any]:
    return TypeAdapter(field_type(record.model_fields[name]))
