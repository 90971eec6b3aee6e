"""What every algorithm's config shares: declared hyperparameters, their ranges, and presets.

An algorithm declares its hyperparameters once, as the keyword-only parameters of its
`<Algo>Config.training()`: a type whose `Annotated` bounds are the allowed range (the aliases
below), a `None` default ("not given"), and one line of meaning in the docstring's `Args:`.
Two small helpers do the rest:

- `set_given(config, name=value, ...)` sets the values that were given (the body of every
  `training()`);
- `check_declared(config)` checks every declared value against its type and range (the start
  of every `validate()`), with a message that names the value.

`declared()` reads the same signature for the job spec's validation and the API's schema, so
nothing is hand-copied. A `Preset` is data: settings the registry applies before a user's own
values (`algorithms.apply_preset`), so the user's values always win.
"""

from __future__ import annotations

import functools
import inspect
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from pydantic import Field, TypeAdapter, ValidationError

C = TypeVar("C")

# The ranges hyperparameters are declared with (the API's schema shows them to the form).
Probability = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=1)]


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
        envs: env ids this preset is the default for (the first preset listing an env wins).
        summary: one line for the form and `rldojo algorithms`.
    """

    values: dict[str, Any]
    stop: dict[str, int] = field(default_factory=dict)
    envs: tuple[str, ...] = ()
    summary: str = ""


def set_given(config: C, **values: Any) -> C:
    """Set each keyword that was given (not None) as an attribute of `config`; return it.

    Example:
        >>> class Settings: gamma = 0.9
        >>> set_given(Settings(), gamma=None).gamma, set_given(Settings(), gamma=0.5).gamma
        (0.9, 0.5)
    """
    for name, value in values.items():
        if value is not None:
            setattr(config, name, value)
    return config


def check_declared(config: Any) -> None:
    """Raise ValueError naming the first declared hyperparameter whose value is out of range."""
    for name, hyperparameter in declared(type(config)).items():
        value = getattr(config, name)
        try:
            TypeAdapter(hyperparameter.type).validate_python(value, strict=False)
        except ValidationError as error:
            raise ValueError(f"{name}={value!r}: {error.errors()[0]['msg']}") from None


@functools.cache
def declared(config_class: type) -> dict[str, Hyperparameter]:
    """The keyword-only parameters of `config_class.training()`, with their current defaults."""
    config = config_class()
    descriptions = _arg_descriptions(inspect.getdoc(config_class.training) or "")
    hints = typing.get_type_hints(config_class.training, include_extras=True)
    found: dict[str, Hyperparameter] = {}
    for parameter in inspect.signature(config_class.training).parameters.values():
        if parameter.kind is not inspect.Parameter.KEYWORD_ONLY:
            continue
        found[parameter.name] = Hyperparameter(
            name=parameter.name,
            type=_without_none(hints[parameter.name]),
            default=getattr(config, parameter.name),
            description=descriptions.get(parameter.name, ""),
        )
    return found


def _without_none(annotation: Any) -> Any:
    """`float | None` -> `float`: None only means "not given" in `training()`."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if isinstance(annotation, types.UnionType | typing._UnionGenericAlias) and args:  # type: ignore[attr-defined]
        return args[0] if len(args) == 1 else typing.Union[tuple(args)]  # noqa: UP007
    return annotation


def _arg_descriptions(docstring: str) -> dict[str, str]:
    """Parse a Google-style `Args:` section into {name: first line of its meaning}."""
    section = docstring.split("Args:", 1)[1] if "Args:" in docstring else ""
    section = re.split(r"\n\s*\n|\n(?:Returns|Raises|Example):", section)[0]
    return {
        match.group(1): match.group(2).strip()
        for match in re.finditer(r"^\s{4}(\w+):\s*(.+)$", section, flags=re.MULTILINE)
    }
