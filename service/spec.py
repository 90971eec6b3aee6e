"""The job spec's checks against the algorithm registry; its schema is `service/spec_model.py`.

`parse_spec` is the server's (and `rldojo train`'s) one way in: the schema's own checks, then
the registry's, then the algorithm's defaults filled in; `service.compiler.compile_job` turns
the spec it returns into the compiled job. Its JSON form:

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
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
from pydantic import TypeAdapter, ValidationError

import algorithms
import envs
from service.spec_model import (
    MAX_SEED,
    AshaSpec,
    CheckpointSpec,
    ChoiceSearch,
    GridSearch,
    JobSpec,
    LogUniformSearch,
    Priority,
    ResourcesSpec,
    SearchDomain,
    StopSpec,
    Tag,
    UniformSearch,
)
from service.text import REFUSED_MESSAGE, control_in

MAX_TRIALS = 100  # trials one job may run (grid points x num_samples)

__all__ = [
    "MAX_SEED",
    "MAX_TRIALS",
    "CheckpointSpec",
    "ChoiceSearch",
    "GridSearch",
    "JobSpec",
    "LogUniformSearch",
    "Priority",
    "ResourcesSpec",
    "SearchDomain",
    "SpecError",
    "StopSpec",
    "Tag",
    "UniformSearch",
    "hyperparameters",
    "parse_spec",
]


# ---- the checks that need more than one field: each returns (location, message) pairs --------

Problem = tuple[tuple[str, ...], str]


def _registry_problems(data: dict[str, Any]) -> list[Problem]:
    """A known algorithm, and a known env when one is named (the registry's own lists)."""
    problems: list[Problem] = []
    algorithm, env_id = data.get("algorithm"), data.get("env")
    if isinstance(algorithm, str) and algorithm not in algorithms.ALGORITHMS:
        known = ", ".join(sorted(algorithms.ALGORITHMS))
        problems.append((("algorithm",), f"unknown algorithm; known: {known}"))
    if isinstance(env_id, str) and not envs.registered(env_id):
        problems.append(
            (
                ("env",),
                "unknown env: no env of this id is registered here; `rldojo envs` (GET /v1/envs) "
                f"lists the ones this cluster can make, e.g. {', '.join(envs.ENV_IDS[:3])}",
            )
        )
    return problems


def _with_defaults(spec: JobSpec) -> JobSpec:
    """The algorithm's default env, and its default stop when none bounds the run."""
    env_id = spec.env or algorithms.get(spec.algorithm).default_env
    stop = spec.stop
    if not stop.bounded:
        default = algorithms.default_stop(spec.algorithm, env_id, spec.config, spec.env_config)
        given = stop.model_dump(exclude_none=True)  # a return_mean stays, as asked
        stop = stop.model_copy(update={**default, **given})
    return spec.model_copy(update={"env": env_id, "stop": stop})


def hyperparameters(spec: JobSpec) -> dict[str, Any]:
    """The resolved config overrides (the algorithm's defaults plus the spec's `config`)."""
    values = {name: hp.default for name, hp in algorithms.hyperparameters(spec.algorithm).items()}
    values.update(spec.config)
    return values


REPLAY_SETTING = "checkpoint_replay"  # the hyperparameter of an algorithm with a replay memory


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


def _domain_problems(
    algorithm: str, domains: Mapping[str, SearchDomain], section: tuple[str, ...]
) -> list[Problem]:
    """Each key a hyperparameter of the algorithm, each of its domain's values of its type
    (the `search` domains, PBT's `hyperparam_mutations`)."""
    known = algorithms.hyperparameters(algorithm)
    problems: list[Problem] = []
    for key, domain in domains.items():
        location = (*section, key)
        if key not in known:
            problems.append((location, f"unknown key; known: {', '.join(sorted(known))}"))
            continue
        for candidate in _search_values(domain):
            try:
                _typed(known[key].type, candidate, location)
            except SpecFieldError as error:
                problems.append((error.location, error.message))
                break
    return problems


def _search_problems(algorithm: str, search: dict[str, Any], trials: int) -> list[Problem]:
    problems = _domain_problems(algorithm, search, ("search",))
    if trials > MAX_TRIALS:
        problems.append(
            (("search",), f"{trials} trials (grid points x num_samples); at most {MAX_TRIALS}")
        )
    return problems


def _env_arguments(env_id: str) -> list[str] | None:
    """The keyword arguments an env id's constructor accepts; None when any are accepted."""
    # An ALE game's id is built by the book's Atari pipeline, which takes the arguments.
    entry_point = gym.spec("rldojo/Atari-v0" if envs.is_ale(env_id) else env_id).entry_point
    if isinstance(entry_point, str):
        module_name, attr = entry_point.split(":")
        entry_point = getattr(__import__(module_name, fromlist=[attr]), attr)
    parameters = inspect.signature(entry_point).parameters.values()  # type: ignore[arg-type]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return [p.name for p in parameters if p.name != "render_mode"] + [envs.ENCODING_KEY]


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
    unknown = _registry_problems(data)
    try:
        spec: JobSpec | None = JobSpec.model_validate(data)
        found: list[dict[str, Any]] = []
    except ValidationError as error:
        spec, found = None, SpecError.from_pydantic(error).errors
    found = [{"loc": list(location), "msg": message} for location, message in unknown] + found
    spec = _with_defaults(spec) if spec is not None and not unknown else None
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
    if isinstance(env_id, str) and envs.registered(env_id) and ("env",) not in reported:
        if usable["env_config"]:
            problems += _env_config_problems(env_id, env_config)
        if problems:  # an env that cannot be built so has no spaces to check: its defaults do
            env_config = {}
        refused = algorithms.get(algorithm).refuses(env_id, env_config)
        if refused is not None:
            return [*problems, (("env",), refused)], {}
        if usable["config"]:
            config_problems, typed = _config_problems(
                algorithm, env_id, env_config, data.get("config", {})
            )
            problems += config_problems
    if usable["search"] and spec is not None:
        problems += _search_problems(algorithm, spec.search, spec.trials)
        problems += _scheduler_problems(algorithm, spec)
        problems += _searcher_problems(spec)
    if spec is not None and spec.from_checkpoint is not None:
        problems += _from_checkpoint_problems(spec)
    return problems, typed


def _from_checkpoint_problems(spec: JobSpec) -> list[Problem]:
    """What the spec alone says against its warm start (the job it names is checked at submit,
    `service.warm_starts`): only an algorithm with a replay memory can keep one."""
    assert spec.from_checkpoint is not None
    if spec.from_checkpoint.keep_replay and REPLAY_SETTING not in hyperparameters(spec):
        message = f"{spec.algorithm} has no replay memory to keep (DQN has)"
        return [(("from_checkpoint", "keep_replay"), message)]
    return []


def _scheduler_problems(algorithm: str, spec: JobSpec) -> list[Problem]:
    """A scheduler ranks trials against each other (so needs two), ASHA its rungs within the
    run, and PBT's mutations are hyperparameters of the algorithm, of their type."""
    scheduler = spec.scheduler
    if scheduler is None:
        return []
    problems: list[Problem] = []
    if spec.trials < 2:
        problems.append(
            (
                ("scheduler",),
                f"{scheduler.type} compares trials: the job runs {spec.trials}; "
                "give num_samples or a grid in search for two or more",
            )
        )
    if isinstance(scheduler, AshaSpec):
        max_t = scheduler.max_t or spec.stop.iterations
        if max_t is None:
            problems.append((("scheduler", "max_t"), "required when the stop has no iterations"))
        elif scheduler.grace_period > max_t:
            problems.append(
                (("scheduler", "grace_period"), f"above max_t ({max_t}): no rung to stop at")
            )
        return problems
    mutations = dict(scheduler.hyperparam_mutations)
    return problems + _domain_problems(algorithm, mutations, ("scheduler", "hyperparam_mutations"))


def _searcher_problems(spec: JobSpec) -> list[Problem]:
    """A model-based searcher samples each trial's values: it has domains to sample, no grid."""
    if spec.searcher is None or spec.searcher.type == "random":
        return []
    problems: list[Problem] = []
    if not spec.search:
        problems.append(
            (("searcher",), f"{spec.searcher.type} samples the search domains: give some")
        )
    for key, domain in spec.search.items():
        if isinstance(domain, GridSearch):
            problems.append(
                (
                    ("search", key),
                    f"{spec.searcher.type} samples each trial's values and "
                    "takes no grid; give a choice (or the random searcher)",
                )
            )
    return problems


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
        found: list[dict[str, Any]] = []
        for item in error.errors():
            context = item.get("ctx", {}).get("error")
            if isinstance(context, SpecFieldError):
                found.append({"loc": list(context.location), "msg": context.message})
                continue
            location = _user_location([str(part) for part in item["loc"]])
            if location is None:  # one of a domain union's tries: said once, below
                location = _domain_location([str(part) for part in item["loc"]])
                entry = {"loc": location, "msg": _DOMAIN_MESSAGE}
                if entry not in found:
                    found.append(entry)
                continue
            found.append({"loc": location, "msg": item["msg"]})
        return cls(found)


# A search domain that matches none of its forms fails each form's model: one error instead.
_DOMAIN_FORMS = ("GridSearch", "ChoiceSearch", "UniformSearch", "LogUniformSearch")
_DOMAIN_MESSAGE = (
    'a domain is one of {"grid": [...]}, {"choice": [...]}, {"uniform": [low, high]}, '
    '{"loguniform": [low, high]} (PBT\'s mutations: no grid)'
)


def _user_location(location: list[str]) -> list[str] | None:
    """The field as the user wrote it: without the scheduler's tag pydantic puts in; None for
    one form's error of a search domain."""
    if location[:1] == ["scheduler"] and location[1:2] in (["asha"], ["pbt"]):
        location = location[:1] + location[2:]
    if any(part in _DOMAIN_FORMS for part in location):
        return None
    return location


def _domain_location(location: list[str]) -> list[str]:
    cut = next(index for index, part in enumerate(location) if part in _DOMAIN_FORMS)
    return _user_location(location[:cut]) or location[:cut]
