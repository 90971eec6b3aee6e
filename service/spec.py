"""The job spec: the one typed contract shared by the CLI, the HTTP API and the tests.

Its JSON form:

    {"algorithm": "q_learning", "env": "rldojo/GridWorld-v0", "env_config": {"size": 5},
     "config": {"gamma": 0.9}, "seed": 1,
     "stop": {"iterations": 100, "env_steps": 20000, "return_mean": 99.0, "seconds": 600},
     "resources": {"env_runners": 1, "learners": 0, "gpus_per_learner": 0, "placement": "SPREAD"},
     "checkpoint": {"every": 10, "keep": 3},
     "search": {"lr": {"grid": [0.001, 0.0005]}}, "num_samples": 1}

`config` and `search` keys are checked against the algorithm's own hyperparameters (read from its
`training()` signature by `algorithms.hyperparameters`), so a typo or a wrong type is rejected
with the field named, before anything runs.
"""

from __future__ import annotations

import inspect
from typing import Annotated, Any, Literal

import gymnasium as gym
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

import algorithms
import envs


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StopSpec(_Strict):
    """When to stop; training stops at the first criterion met. All optional."""

    iterations: Annotated[int, Field(ge=1)] | None = None
    env_steps: Annotated[int, Field(ge=1)] | None = None
    return_mean: float | None = None
    seconds: Annotated[float, Field(gt=0)] | None = None


class ResourcesSpec(_Strict):
    """Ray resources per trial; None keeps the algorithm's default.

    `placement` is how the trial's Ray bundles (its main process, EnvRunners, learners) go onto
    nodes: "SPREAD" over as many nodes as possible (a lost node takes fewer of them, and its
    EnvRunners are restarted elsewhere), or "PACK" onto as few as possible (RLlib's default).
    """

    env_runners: Annotated[int, Field(ge=0, le=256)] | None = None
    learners: Annotated[int, Field(ge=0, le=64)] | None = None
    gpus_per_learner: Annotated[float, Field(ge=0, le=8)] | None = None
    placement: Literal["PACK", "SPREAD"] | None = None


class CheckpointSpec(_Strict):
    """Checkpoint every `every` iterations (and at the end); keep the best `keep`."""

    every: Annotated[int, Field(ge=1)] = 10
    keep: Annotated[int, Field(ge=1)] = 3


class GridSearch(_Strict):
    grid: Annotated[list[Any], Field(min_length=1)]


class ChoiceSearch(_Strict):
    choice: Annotated[list[Any], Field(min_length=1)]


class UniformSearch(_Strict):
    uniform: Annotated[list[float], Field(min_length=2, max_length=2)]


class LogUniformSearch(_Strict):
    loguniform: Annotated[list[Annotated[float, Field(gt=0)]], Field(min_length=2, max_length=2)]


SearchDomain = GridSearch | ChoiceSearch | UniformSearch | LogUniformSearch


class JobSpec(_Strict):
    """One training job: an algorithm on an env, its overrides, stop criteria and resources."""

    algorithm: str
    env: str | None = Field(default=None, description="Env id; the algorithm's default if null.")
    env_config: dict[str, Any] = Field(default_factory=dict)
    config: dict[str, Any] = Field(default_factory=dict)
    seed: int | None = None
    stop: StopSpec = Field(default_factory=StopSpec)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    checkpoint: CheckpointSpec = Field(default_factory=CheckpointSpec)
    search: dict[str, SearchDomain] = Field(default_factory=dict)
    num_samples: Annotated[int, Field(ge=1, le=100)] = 1

    @field_validator("algorithm")
    @classmethod
    def _known_algorithm(cls, name: str) -> str:
        if name not in algorithms.ALGORITHMS:
            known = ", ".join(sorted(algorithms.ALGORITHMS))
            raise PydanticCustomError("unknown_algorithm", f"unknown algorithm; known: {known}")
        return name

    @field_validator("env")
    @classmethod
    def _known_env(cls, env_id: str | None) -> str | None:
        if env_id is not None and env_id not in envs.ENV_IDS:
            known = ", ".join(envs.ENV_IDS)
            raise PydanticCustomError("unknown_env", f"unknown env; known: {known}")
        return env_id

    @model_validator(mode="after")
    def _fill_and_check(self) -> JobSpec:
        if self.env is None:
            self.env = algorithms.get(self.algorithm).default_env
        self._check_env_config()
        self._check_config()
        return self

    @property
    def env_id(self) -> str:
        """The env id, resolved to the algorithm's default when the spec left it out."""
        return self.env or algorithms.get(self.algorithm).default_env

    def _check_env_config(self) -> None:
        """Reject env_config keys the env's constructor does not take."""
        accepted = _env_arguments(self.env_id)
        if accepted is None:
            return
        for key in self.env_config:
            if key not in accepted:
                raise _field_error(
                    ("env_config", key), f"unknown key for {self.env_id}; accepted: {accepted}"
                )

    def _check_config(self) -> None:
        """Each config/search key must be a hyperparameter of the algorithm, of its type."""
        known = algorithms.hyperparameters(self.algorithm)
        for section, overrides in (("config", self.config), ("search", self.search)):
            for key, value in overrides.items():
                if key not in known:
                    names = ", ".join(sorted(known))
                    raise _field_error((section, key), f"unknown key; known: {names}")
                if section == "config":
                    self.config[key] = _typed(known[key].type, value, (section, key))
                else:
                    for candidate in _search_values(value):
                        _typed(known[key].type, candidate, (section, key))

    def hyperparameters(self) -> dict[str, Any]:
        """The resolved config overrides (the algorithm's defaults plus this spec's `config`)."""
        values = {
            name: hp.default for name, hp in algorithms.hyperparameters(self.algorithm).items()
        }
        values.update(self.config)
        return values


def _env_arguments(env_id: str) -> list[str] | None:
    """The keyword arguments an env id's constructor accepts; None when any are accepted."""
    entry_point = gym.spec(env_id).entry_point
    if isinstance(entry_point, str):
        module_name, attr = entry_point.split(":")
        entry_point = getattr(__import__(module_name, fromlist=[attr]), attr)
    parameters = inspect.signature(entry_point).parameters.values()  # type: ignore[arg-type]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return [p.name for p in parameters if p.name != "render_mode"]


def _search_values(domain: SearchDomain) -> list[Any]:
    if isinstance(domain, GridSearch):
        return domain.grid
    if isinstance(domain, ChoiceSearch):
        return domain.choice
    if isinstance(domain, UniformSearch):
        return domain.uniform
    return domain.loguniform


def _typed(annotation: Any, value: Any, location: tuple[str, ...]) -> Any:
    try:
        return TypeAdapter(annotation).validate_python(value, strict=False)
    except ValidationError as error:
        message = error.errors()[0]["msg"]
        raise _field_error(location, message) from None


class SpecFieldError(ValueError):
    """A spec error at a known location, turned into a pydantic error that names the field."""

    def __init__(self, location: tuple[str, ...], message: str) -> None:
        super().__init__(f"{'.'.join(location)}: {message}")
        self.location = location
        self.message = message


def _field_error(location: tuple[str, ...], message: str) -> SpecFieldError:
    return SpecFieldError(location, message)


def parse_spec(data: dict[str, Any]) -> JobSpec:
    """Validate a JSON-like dict into a `JobSpec`, raising `SpecError` that names the field."""
    try:
        return JobSpec.model_validate(data)
    except ValidationError as error:
        raise SpecError.from_pydantic(error) from None


class SpecError(ValueError):
    """An invalid job spec: `errors` is a list of {"loc": [...], "msg": ...}, one per field."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors))

    @classmethod
    def from_pydantic(cls, error: ValidationError) -> SpecError:
        found = []
        for item in error.errors():
            context = item.get("ctx", {}).get("error")
            if isinstance(context, SpecFieldError):
                found.append({"loc": list(context.location), "msg": context.message})
            else:
                found.append({"loc": [str(part) for part in item["loc"]], "msg": item["msg"]})
        return cls(found)
