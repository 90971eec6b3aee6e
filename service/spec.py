"""The job spec: the one typed contract shared by the CLI, the HTTP API and the tests.

Its JSON form:

    {"algorithm": "q_learning", "env": "rldojo/GridWorld-v0", "env_config": {"size": 5},
     "config": {"gamma": 0.9}, "seed": 1,
     "stop": {"iterations": 100, "env_steps": 20000, "return_mean": 99.0, "seconds": 600},
     "resources": {"env_runners": 1, "learners": 0, "gpus_per_learner": 0, "placement": "SPREAD"},
     "checkpoint": {"every": 10, "keep": 3},
     "search": {"lr": {"grid": [0.001, 0.0005]}}, "num_samples": 1}

Everything that can be checked is checked here, before anything runs, and an error names the
field: `config` and `search` keys against the algorithm's own hyperparameters (read from its
`training()` signature by `algorithms.hyperparameters`) and its `validate()`; `env_config` by
building the env with it (the env's own validation); NaN and infinities anywhere; at least one
stop criterion that bounds the run (`iterations`, `env_steps` or `seconds`: the algorithm's
default stop fills in when none is given); at most `MAX_TRIALS` trials per job.
"""

from __future__ import annotations

import inspect
import math
import re
from typing import Annotated, Any

import gymnasium as gym
from pydantic import (
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

import algorithms
import envs
from service.spec_parts import (
    MAX_SEED,
    CheckpointSpec,
    ChoiceSearch,
    GridSearch,
    Priority,
    ResourcesSpec,
    SearchDomain,
    StopSpec,
    StrictModel,
    Tag,
    UniformSearch,
)
from service.text import REFUSED_MESSAGE, PlainText, control_in

MAX_TRIALS = 100  # trials one job may run (grid points x num_samples)


class JobSpec(StrictModel):
    """One training job: an algorithm on an env, its overrides, stop criteria and resources."""

    algorithm: PlainText
    env: PlainText | None = Field(
        default=None, description="Env id; the algorithm's default if null."
    )
    env_config: dict[str, Any] = Field(default_factory=dict)
    config: dict[str, Any] = Field(default_factory=dict)
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] | None = None
    stop: StopSpec = Field(default_factory=StopSpec)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    checkpoint: CheckpointSpec = Field(default_factory=CheckpointSpec)
    search: dict[str, SearchDomain] = Field(default_factory=dict)
    num_samples: Annotated[int, Field(ge=1, le=100)] = 1
    priority: Priority = Field(
        default="normal", description="The queue's order: high jobs start first (and preempt)."
    )
    name: Annotated[PlainText, Field(min_length=1, max_length=128)] | None = None
    tags: Annotated[list[Tag], Field(max_length=20)] = Field(default_factory=list)
    shared: bool = Field(
        default=False,
        description="Readable by every user: listed, compared, on the leaderboard, pullable.",
    )

    @property
    def trials(self) -> int:
        """How many trials the job runs: grid points times `num_samples`."""
        count = self.num_samples
        for domain in self.search.values():
            if isinstance(domain, GridSearch):
                count *= len(domain.grid)
        return count

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
    def _fill_defaults(self) -> JobSpec:
        """The algorithm's default env, and its default stop when none bounds the run."""
        entry = algorithms.get(self.algorithm)
        if self.env is None:
            self.env = entry.default_env
        if not self.stop.bounded:
            default = algorithms.default_stop(self.algorithm, self.env, self.config)
            given = self.stop.model_dump(exclude_none=True)  # a return_mean stays, as asked
            self.stop = self.stop.model_copy(update={**default, **given})
        return self

    @property
    def env_id(self) -> str:
        """The env id, resolved to the algorithm's default when the spec left it out."""
        return self.env or algorithms.get(self.algorithm).default_env

    def hyperparameters(self) -> dict[str, Any]:
        """The resolved config overrides (the algorithm's defaults plus this spec's `config`)."""
        values = {
            name: hp.default for name, hp in algorithms.hyperparameters(self.algorithm).items()
        }
        values.update(self.config)
        return values


# ---- the checks that need more than one field: each returns (location, message) pairs --------

Problem = tuple[tuple[str, ...], str]


def _env_config_problems(env_id: str, env_config: dict[str, Any]) -> list[Problem]:
    """Keys the env's constructor does not take; then the env built with it: its own checks
    (a grid's size, cells on the grid, a known game)."""
    accepted = _env_arguments(env_id)
    unknown = [key for key in env_config if accepted is not None and key not in accepted]
    if unknown:
        return [
            (("env_config", key), f"unknown key for {env_id}; accepted: {accepted}")
            for key in unknown
        ]
    try:
        envs.make(env_id, env_config).close()
    except (ValueError, TypeError, gym.error.Error) as error:
        return [(_named("env_config", env_config, error), str(error))]
    return []


def _config_problems(
    algorithm: str, env_id: str, env_config: dict[str, Any], config: dict[str, Any]
) -> tuple[list[Problem], dict[str, Any]]:
    """Each key a hyperparameter of the algorithm, of its type and range; then the config they
    make through the algorithm's own `validate()`. Returns the problems and the typed values."""
    known = algorithms.hyperparameters(algorithm)
    problems: list[Problem] = []
    typed: dict[str, Any] = {}
    for key, value in config.items():
        if key not in known:
            problems.append((("config", key), f"unknown key; known: {', '.join(sorted(known))}"))
            continue
        try:
            typed[key] = _typed(known[key].type, value, ("config", key))
        except SpecFieldError as error:
            problems.append((error.location, error.message))
    if problems:
        return problems, typed
    try:
        algorithms.build(algorithm, env_id, typed, env_config=dict(env_config)).validate()
    except (ValueError, TypeError) as error:
        problems.append((_named("config", config, error), str(error)))
    return problems, typed


def _search_problems(algorithm: str, search: dict[str, Any], trials: int) -> list[Problem]:
    known = algorithms.hyperparameters(algorithm)
    problems: list[Problem] = []
    for key, domain in search.items():
        if key not in known:
            problems.append((("search", key), f"unknown key; known: {', '.join(sorted(known))}"))
            continue
        for candidate in _search_values(domain):
            try:
                _typed(known[key].type, candidate, ("search", key))
            except SpecFieldError as error:
                problems.append((error.location, error.message))
                break
    if trials > MAX_TRIALS:
        problems.append(
            (("search",), f"{trials} trials (grid points x num_samples); at most {MAX_TRIALS}")
        )
    return problems


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


def _named(section: str, given: dict[str, Any], error: Exception) -> tuple[str, ...]:
    """The field an error message is about: the given key it starts with, else the section."""
    for key in given:
        if re.match(rf"^\W*{re.escape(key)}\b", str(error)):
            return (section, key)
    return (section,)


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


def parse_spec(data: Any) -> JobSpec:
    """Validate a JSON-like dict into a `JobSpec`, or raise `SpecError` naming every bad field.

    All problems are reported at once: the fields' own (types, ranges, unknown keys) and those
    that need several fields (config against the algorithm and env, env_config against the env,
    the stop criteria, the number of trials), so a form can show them together.
    """
    if not isinstance(data, dict):
        raise SpecError([{"loc": [], "msg": "a job spec is a JSON object"}])
    # Before anything reads the values: a control character is refused wherever it is (nothing
    # of such a spec may reach storage), and NaN or infinity where a number is.
    unusable = [{"loc": list(location), "msg": REFUSED_MESSAGE} for location in control_in(data)]
    bad = _non_finite(data)
    if bad is not None:
        unusable.append({"loc": list(bad), "msg": "NaN and infinities are not numbers here"})
    if unusable:
        raise SpecError(unusable)
    try:
        spec: JobSpec | None = JobSpec.model_validate(data)
        found: list[dict[str, Any]] = []
    except ValidationError as error:
        spec, found = None, SpecError.from_pydantic(error).errors
    reported = {tuple(item["loc"][:1]) for item in found}
    problems, typed = _cross_field_problems(data, spec, reported)
    found += [{"loc": list(location), "msg": message} for location, message in problems]
    if found:
        raise SpecError(found)
    assert spec is not None
    spec.config.update(typed)
    return spec


def _cross_field_problems(
    data: dict[str, Any], spec: JobSpec | None, reported: set[tuple[str, ...]]
) -> tuple[list[Problem], dict[str, Any]]:
    """The checks that need several fields, run on whatever fields are themselves valid: each
    field's own type and range are checked first (`reported` holds the fields that failed), so
    nothing here meets a list where a name should be."""
    if ("algorithm",) in reported:
        return [], {}
    algorithm: str = data["algorithm"]
    env_id = spec.env_id if spec else algorithms.get(algorithm).default_env
    if ("env",) not in reported and spec is None:
        env_id = data.get("env") or env_id
    usable = {
        field: isinstance(data.get(field, {}), dict) and (field,) not in reported
        for field in ("env_config", "config", "search")
    }
    env_config = data.get("env_config", {}) if usable["env_config"] else {}
    problems: list[Problem] = []
    typed: dict[str, Any] = {}
    if env_id in envs.ENV_IDS and ("env",) not in reported:
        refused = algorithms.get(algorithm).refuses(env_id)
        if refused is not None:
            return [(("env",), refused)], {}
        if usable["env_config"]:
            problems += _env_config_problems(env_id, env_config)
        if usable["config"]:
            config_problems, typed = _config_problems(
                algorithm, env_id, env_config, data.get("config", {})
            )
            problems += config_problems
    if usable["search"] and spec is not None:
        problems += _search_problems(algorithm, spec.search, spec.trials)
    return problems, typed


def _non_finite(value: Any, location: tuple[str, ...] = ()) -> tuple[str, ...] | None:
    """Where the first NaN or infinity is in a JSON-like value (Python's JSON reads them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return location
    items: Any = ()
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    for key, item in items:
        found = _non_finite(item, (*location, str(key)))
        if found is not None:
            return found
    return None


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
