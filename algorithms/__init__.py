"""The algorithm registry: name -> config class, read by the CLI, the service and the tests.

Adding or writing an algorithm? Read CONTRIBUTING.md first (config signature, metrics, tests, git).

Each algorithm declares its hyperparameters once, as the fields of a typed record (its
`<Algo>Config.HYPERPARAMETERS`: type with its range, default, one line of meaning; see
`algorithms/common/config.py`). `hyperparameters(name)` reads them from there, so the job
spec's validation and the API's JSON schema are derived from the algorithm itself and never
hand-copied. Each entry also says which kinds of observations and actions the algorithm
handles; whether it trains on an env is read from the env's spaces (`envs.kind`), so a mismatch
(Q-learning on CartPole's vectors) is refused at submit with the reason, and a network gets a
Discrete observation one-hot. An algorithm's `PRESETS` (settings
per env family, as data) are applied before a user's own values: `build(name, env, values)`.

Example:
    >>> import algorithms
    >>> sorted(algorithms.hyperparameters("q_learning"))[:3]
    ['alpha', 'epsilon', 'episodes_per_iteration']
    >>> algorithms.get("q_learning").envs
    ('rldojo/PlanningGrid-v0', 'rldojo/GridWorld-v0')
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import envs
from algorithms.common.config import Hyperparameter, Preset
from envs.spaces import EnvKind

if TYPE_CHECKING:  # the registry itself loads no RLlib: the CLI's listing commands stay fast
    from ray.rllib.algorithms.algorithm_config import AlgorithmConfig

    from algorithms.common.hyperparameter_config import HyperparameterConfig

AUTO = "auto"  # the preset a spec gets by default: the one its env belongs to


@dataclass(frozen=True)
class AlgorithmEntry:
    """One registered algorithm.

    Attributes:
        name: the registry name used everywhere (`rldojo train NAME`, the job spec).
        config_path: "module:ConfigClass" of its `AlgorithmConfig` subclass.
        default_env: the environment the book trains it on.
        observations: the observation kinds it handles ("discrete", "vector", "image").
        actions: the action kinds it handles ("discrete", "continuous").
        summary: one line for listings.
        book_section: where the book describes it (`../shared/book.md`).
        default_stop: the job spec's `stop` when it gives no criterion that bounds the run and
            no preset says otherwise: enough for the book's envs to be learned.
        needs_model: it plans on the env's transition model instead of sampling it.
        presets_path: "module:PRESETS" of its named presets, or None.
        gpu_learner: its learner takes a GPU when the cluster has one and the spec names no
            number (`algorithms.common.devices.learner_gpus`).
    """

    name: str
    config_path: str
    default_env: str
    observations: tuple[str, ...]
    actions: tuple[str, ...]
    summary: str
    book_section: str
    default_stop: dict[str, float] = field(default_factory=lambda: {"iterations": 50})
    needs_model: bool = False
    presets_path: str | None = None
    gpu_learner: bool = False

    @property
    def config_class(self) -> type[HyperparameterConfig]:
        module_name, class_name = self.config_path.split(":")
        cls: type[HyperparameterConfig] = getattr(importlib.import_module(module_name), class_name)
        return cls

    @property
    def presets(self) -> dict[str, Preset]:
        if self.presets_path is None:
            return {}
        module_name, name = self.presets_path.split(":")
        found: dict[str, Preset] = getattr(importlib.import_module(module_name), name)
        return found

    @property
    def envs(self) -> tuple[str, ...]:
        """The env ids whose observations and actions it handles (its default env first)."""
        usable = [env_id for env_id in envs.ENV_IDS if self.refuses(env_id) is None]
        return tuple(sorted(usable, key=lambda env_id: env_id != self.default_env))

    def refuses(self, env_id: str, env_config: dict[str, Any] | None = None) -> str | None:
        """Why this algorithm cannot train on `env_id` (with `env_config`), or None when it
        can. The env's kind is read from its spaces (`envs.kind`)."""
        try:
            kind = envs.kind(env_id, env_config)
        except envs.UnsupportedSpaceError as error:
            return f"{env_id}: {error}"
        for what, handled, given in (
            ("observations", self.observations, kind.observation),
            ("actions", self.actions, kind.action),
        ):
            if given not in handled and not (given == "discrete" and self.one_hot(kind)):
                return f"{self.name} needs {' or '.join(handled)} {what}; {env_id}'s are {given}"
        if self.needs_model and not kind.model:
            return f"{self.name} plans on a transition model, which {env_id} does not have"
        return None

    def one_hot(self, kind: EnvKind) -> bool:
        """A network's input for a Discrete observation: one-hot (the tables take the index)."""
        return (
            kind.observation == "discrete"
            and "discrete" not in self.observations
            and "vector" in self.observations
        )

    def preset_for(self, env_id: str, env_config: dict[str, Any] | None = None) -> str | None:
        """The preset an env gets by default: the first that lists its id, else the first
        that lists its family (`family_of`), else none."""
        for wanted in (env_id, *family_of(env_id, env_config)):
            found = next((name for name, p in self.presets.items() if wanted in p.envs), None)
            if found is not None:
                return found
        return None


def family_of(env_id: str, env_config: dict[str, Any] | None = None) -> tuple[str, ...]:
    """The env families a preset may name, most specific first: "family:atari" (any ALE
    game), then "family:<observations>-<actions>" (e.g. "family:vector-discrete")."""
    try:
        kind = envs.kind(env_id, env_config)
    except Exception:  # noqa: BLE001 - no family; the spec's env checks report why
        return ()
    atari = ("family:atari",) if env_id == "rldojo/Atari-v0" or envs.is_ale(env_id) else ()
    return (*atari, f"family:{kind.observation}-{kind.action}")


_DISCRETE = ("discrete",)  # tabular methods: a table indexed by discrete states and actions

ALGORITHMS: dict[str, AlgorithmEntry] = {
    entry.name: entry
    for entry in (
        AlgorithmEntry(
            "policy_iteration",
            "algorithms.policy_iteration:PolicyIterationConfig",
            "rldojo/PlanningGrid-v0",
            summary="Policy iteration on the env's transition model",
            book_section="3.1",
            needs_model=True,
            observations=_DISCRETE,
            actions=_DISCRETE,
        ),
        AlgorithmEntry(
            "value_iteration",
            "algorithms.value_iteration:ValueIterationConfig",
            "rldojo/PlanningGrid-v0",
            summary="Value iteration on the env's transition model",
            book_section="3.2",
            needs_model=True,
            observations=_DISCRETE,
            actions=_DISCRETE,
        ),
        AlgorithmEntry(
            "monte_carlo",
            "algorithms.monte_carlo:MonteCarloConfig",
            "rldojo/GridWorld-v0",
            summary="Every-episode Monte Carlo control of a state-value table",
            book_section="3.3",
            needs_model=True,  # it acts greedily on V of the next cell, which the model gives
            observations=_DISCRETE,
            actions=_DISCRETE,
        ),
        AlgorithmEntry(
            "sarsa",
            "algorithms.sarsa:SarsaConfig",
            "rldojo/GridWorld-v0",
            summary="On-policy TD control of a Q-table",
            book_section="3.4",
            observations=_DISCRETE,
            actions=_DISCRETE,
        ),
        AlgorithmEntry(
            "q_learning",
            "algorithms.q_learning:QLearningConfig",
            "rldojo/GridWorld-v0",
            summary="Off-policy TD control of a Q-table",
            book_section="3.5",
            observations=_DISCRETE,
            actions=_DISCRETE,
        ),
        AlgorithmEntry(
            "deep_sarsa",
            "algorithms.deep_sarsa:DeepSarsaConfig",
            "rldojo/MovingObstacles-v0",
            observations=("vector", "image"),
            actions=("discrete",),
            summary="Online on-policy SARSA with a neural Q-function",
            book_section="4.1",
            default_stop={"env_steps": 50_000},
        ),
        AlgorithmEntry(
            "reinforce",
            "algorithms.reinforce:ReinforceConfig",
            "rldojo/MovingObstacles-v0",
            observations=("vector",),
            actions=("discrete",),
            summary="Monte Carlo policy gradient with normalised returns",
            book_section="4.2",
            default_stop={"env_steps": 50_000},
        ),
        AlgorithmEntry(
            "dqn",
            "algorithms.dqn:DQNConfig",
            "CartPole-v1",
            observations=("vector", "image"),
            actions=("discrete",),
            summary="Deep Q-network with a shared replay actor and a target network",
            book_section="5.2, 6.2",
            default_stop={"env_steps": 200_000},
            presets_path="algorithms.dqn:PRESETS",
            gpu_learner=True,
        ),
        AlgorithmEntry(
            "actor_critic",
            "algorithms.actor_critic:ActorCriticConfig",
            "CartPole-v1",
            observations=("vector", "image"),
            actions=("discrete", "continuous"),
            summary="Advantage actor-critic: one-step (the book), n-step/GAE, parallel (A2C)",
            book_section="5.3, 5.4",
            default_stop={"env_steps": 300_000},
            presets_path="algorithms.actor_critic:PRESETS",
        ),
        AlgorithmEntry(
            "a3c",
            "algorithms.a3c:A3CConfig",
            "rldojo/Breakout-v0",
            observations=("vector", "image"),
            actions=("discrete",),
            summary="Asynchronous advantage actor-critic: workers send gradients, no barrier",
            book_section="6.3",
            default_stop={"env_steps": 2_000_000},
            presets_path="algorithms.a3c:PRESETS",
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


def hyperparameters(name: str) -> dict[str, Hyperparameter]:
    """The keys a job spec's `config` may set for `name`: the fields of its hyperparameter
    record, and `preset` when it has presets."""
    entry = get(name)
    found = entry.config_class.HYPERPARAMETERS.describe()
    if entry.presets:
        choices = (AUTO, *entry.presets)
        found["preset"] = Hyperparameter(
            name="preset",
            type=Literal[choices],
            default=AUTO,
            description="Named settings applied before your own values; auto: the env's. "
            + "; ".join(f"{n}: {p.summary}" for n, p in entry.presets.items() if p.summary),
        )
    return found


def chosen_preset(
    name: str, env_id: str, values: dict[str, Any], env_config: dict[str, Any] | None = None
) -> str | None:
    """The preset a config of `name` on `env_id` gets: the one `values` names, else the env's."""
    asked = values.get("preset", AUTO)
    return get(name).preset_for(env_id, env_config) if asked in (None, AUTO) else str(asked)


def build(
    name: str, env_id: str, values: dict[str, Any] | None = None, **env: Any
) -> AlgorithmConfig:
    """A config of `name` on `env_id`: its defaults, then its preset's values, then `values`
    (a job spec's `config`; `preset` picks the preset), so the user's values always win.

    Example:
        >>> algorithms.build("a3c", "CartPole-v1").lr  # doctest: +SKIP
        0.001
    """
    entry = get(name)
    values = dict(values or {})
    env_config = dict(env.pop("env_config", None) or {})
    preset = chosen_preset(name, env_id, values, env_config)
    values.pop("preset", None)
    if entry.one_hot(envs.kind(env_id, env_config)):
        env_config[envs.ENCODING_KEY] = envs.ONE_HOT
    config = entry.config_class().environment(env_id, env_config=env_config, **env)
    if preset is not None:
        config.training(**entry.presets[preset].values)
    config.training(**values)
    return config


def default_stop(
    name: str,
    env_id: str,
    values: dict[str, Any] | None = None,
    env_config: dict[str, Any] | None = None,
) -> dict[str, float]:
    """The stop a job gets when its spec bounds nothing: its preset's, else the algorithm's."""
    entry = get(name)
    preset = chosen_preset(name, env_id, values or {}, env_config)
    if preset is not None and entry.presets[preset].stop:
        return dict(entry.presets[preset].stop)
    return dict(entry.default_stop)


def default_config(name: str) -> AlgorithmConfig:
    """A fresh config of `name` on its default env, with that env's preset."""
    return build(name, get(name).default_env)


__all__ = [
    "ALGORITHMS",
    "AUTO",
    "AlgorithmEntry",
    "Hyperparameter",
    "Preset",
    "UnknownAlgorithmError",
    "build",
    "chosen_preset",
    "default_config",
    "default_stop",
    "family_of",
    "get",
    "hyperparameters",
]
