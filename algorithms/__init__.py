"""The algorithm registry: name -> config class, read by the CLI, the service and the tests.

Adding or writing an algorithm? Read CONTRIBUTING.md first (config signature, metrics, tests, git).

Each algorithm's `<Algo>Config.training()` declares its hyperparameters once, as keyword-only
typed parameters that default to `None` ("leave as is"), with one line of meaning each in its
docstring. `hyperparameters(name)` reads them from there, so the job spec's validation and the
API's JSON schema are derived from the algorithm itself and never hand-copied.

Example:
    >>> import algorithms
    >>> sorted(algorithms.hyperparameters("q_learning"))[:3]
    ['alpha', 'epsilon', 'episodes_per_iteration']
"""

from __future__ import annotations

import importlib
import inspect
import re
import types
import typing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the registry itself loads no RLlib: the CLI's listing commands stay fast
    from ray.rllib.algorithms.algorithm_config import AlgorithmConfig


@dataclass(frozen=True)
class AlgorithmEntry:
    """One registered algorithm.

    Attributes:
        name: the registry name used everywhere (`rldojo train NAME`, the job spec).
        config_path: "module:ConfigClass" of its `AlgorithmConfig` subclass.
        default_env: the environment the book trains it on.
        envs: the environment ids it can train on.
        summary: one line for listings.
        book_section: where the book describes it (`../shared/book.md`).
        default_stop: the job spec's `stop` when it gives no criterion that bounds the run
            (iterations, env steps or seconds): enough for the book's envs to be learned.
    """

    name: str
    config_path: str
    default_env: str
    envs: tuple[str, ...]
    summary: str
    book_section: str
    default_stop: dict[str, int] = field(default_factory=lambda: {"iterations": 50})

    @property
    def config_class(self) -> type[AlgorithmConfig]:
        module_name, class_name = self.config_path.split(":")
        cls: type[AlgorithmConfig] = getattr(importlib.import_module(module_name), class_name)
        return cls


_TABULAR_ENVS = ("rldojo/GridWorld-v0", "rldojo/PlanningGrid-v0")
_PLANNING_ENVS = ("rldojo/PlanningGrid-v0", "rldojo/GridWorld-v0")

ALGORITHMS: dict[str, AlgorithmEntry] = {
    entry.name: entry
    for entry in (
        AlgorithmEntry(
            "policy_iteration",
            "algorithms.policy_iteration:PolicyIterationConfig",
            "rldojo/PlanningGrid-v0",
            _PLANNING_ENVS,
            "Policy iteration on the env's transition model",
            "3.1",
        ),
        AlgorithmEntry(
            "value_iteration",
            "algorithms.value_iteration:ValueIterationConfig",
            "rldojo/PlanningGrid-v0",
            _PLANNING_ENVS,
            "Value iteration on the env's transition model",
            "3.2",
        ),
        AlgorithmEntry(
            "monte_carlo",
            "algorithms.monte_carlo:MonteCarloConfig",
            "rldojo/GridWorld-v0",
            _TABULAR_ENVS,
            "Every-episode Monte Carlo control of a state-value table",
            "3.3",
        ),
        AlgorithmEntry(
            "sarsa",
            "algorithms.sarsa:SarsaConfig",
            "rldojo/GridWorld-v0",
            _TABULAR_ENVS,
            "On-policy TD control of a Q-table",
            "3.4",
        ),
        AlgorithmEntry(
            "q_learning",
            "algorithms.q_learning:QLearningConfig",
            "rldojo/GridWorld-v0",
            _TABULAR_ENVS,
            "Off-policy TD control of a Q-table",
            "3.5",
        ),
        AlgorithmEntry(
            "deep_sarsa",
            "algorithms.deep_sarsa:DeepSarsaConfig",
            "rldojo/MovingObstacles-v0",
            ("rldojo/MovingObstacles-v0", "CartPole-v1"),
            "Online on-policy SARSA with a neural Q-function",
            "4.1",
            {"env_steps": 50_000},
        ),
        AlgorithmEntry(
            "reinforce",
            "algorithms.reinforce:ReinforceConfig",
            "rldojo/MovingObstacles-v0",
            ("rldojo/MovingObstacles-v0", "CartPole-v1"),
            "Monte Carlo policy gradient with normalised returns",
            "4.2",
            {"env_steps": 50_000},
        ),
        AlgorithmEntry(
            "dqn",
            "algorithms.dqn:DQNConfig",
            "CartPole-v1",
            ("CartPole-v1", "rldojo/Breakout-v0", "rldojo/Atari-v0", "rldojo/MovingObstacles-v0"),
            "Deep Q-network with a shared replay actor and a target network",
            "5.2, 6.2",
            {"env_steps": 200_000},
        ),
        AlgorithmEntry(
            "actor_critic",
            "algorithms.actor_critic:ActorCriticConfig",
            "CartPole-v1",
            ("CartPole-v1", "rldojo/ContinuousCartPole-v0", "rldojo/MovingObstacles-v0"),
            "Advantage actor-critic: one-step (the book), n-step/GAE, parallel runners (A2C)",
            "5.3, 5.4",
            {"env_steps": 300_000},
        ),
        AlgorithmEntry(
            "a3c",
            "algorithms.a3c:A3CConfig",
            "rldojo/Breakout-v0",
            ("rldojo/Breakout-v0", "rldojo/Atari-v0", "CartPole-v1"),
            "Asynchronous advantage actor-critic: workers send gradients, no barrier",
            "6.3",
            {"env_steps": 2_000_000},
        ),
    )
}


class UnknownAlgorithmError(KeyError):
    """Raised for a name that is not in the registry; its message lists the known names."""

    def __str__(self) -> str:
        return str(self.args[0])


def get(name: str) -> AlgorithmEntry:
    """The registry entry of `name`, or an `UnknownAlgorithmError` that lists the known names."""
    try:
        return ALGORITHMS[name]
    except KeyError:
        known = ", ".join(sorted(ALGORITHMS))
        raise UnknownAlgorithmError(f"unknown algorithm {name!r}; known: {known}") from None


def default_config(name: str) -> AlgorithmConfig:
    """A fresh config of `name` with the book's defaults and its default env."""
    entry = get(name)
    return entry.config_class().environment(entry.default_env)


@dataclass(frozen=True)
class Hyperparameter:
    """One overridable config key: its type, its default and its one-line meaning."""

    name: str
    type: Any
    default: Any
    description: str


def hyperparameters(name: str) -> dict[str, Hyperparameter]:
    """The keys a job spec's `config` may set for `name`, read from its `training()` signature."""
    config_class = get(name).config_class
    config = config_class()
    descriptions = _arg_descriptions(inspect.getdoc(config_class.training) or "")
    hints = typing.get_type_hints(config_class.training)
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
