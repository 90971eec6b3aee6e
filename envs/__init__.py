"""The book's environments, registered as Gymnasium ids on `import envs`.

- `rldojo/PlanningGrid-v0`: book 2.1, dynamic programming; Discrete(25) states, 4 actions,
  and its transition model.
- `rldojo/GridWorld-v0`: book 2.2, Monte Carlo / SARSA / Q-learning; Discrete(25), 4 actions.
- `rldojo/MovingObstacles-v0`: book 2.3, deep SARSA / REINFORCE; Box(15,), 5 actions.
- `rldojo/ContinuousCartPole-v0`: book 5.4, continuous actor-critic; Box(4,), Box(1,) in [-3, 3].
- `rldojo/Breakout-v0`: book 6.1, DQN / A3C; uint8 (4, 84, 84), 3 actions (FIRE, RIGHT, LEFT).
- `rldojo/Atari-v0`: book 6.1's pipeline for any ALE game (`game="ALE/Pong-v5"`), minimal actions.

`CartPole-v1` is used as Gymnasium ships it.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import gymnasium as gym

from envs.spaces import ENCODING_KEY, ONE_HOT, EnvKind, UnsupportedSpaceError, encode, kind_of

# One place that names every environment rldojo offers, for the CLI, the API and the tests.
RLDOJO_ENV_IDS: tuple[str, ...] = (
    "rldojo/PlanningGrid-v0",
    "rldojo/GridWorld-v0",
    "rldojo/MovingObstacles-v0",
    "rldojo/ContinuousCartPole-v0",
    "rldojo/Breakout-v0",
    "rldojo/Atari-v0",
)
ENV_IDS: tuple[str, ...] = (*RLDOJO_ENV_IDS, "CartPole-v1")


KINDS: dict[str, EnvKind] = {  # the book's ids, known without building them
    "rldojo/PlanningGrid-v0": EnvKind("discrete", "discrete", model=True),
    "rldojo/GridWorld-v0": EnvKind("discrete", "discrete", model=True),
    "rldojo/MovingObstacles-v0": EnvKind("vector", "discrete"),
    "rldojo/ContinuousCartPole-v0": EnvKind("vector", "continuous"),
    "rldojo/Breakout-v0": EnvKind("image", "discrete"),
    "rldojo/Atari-v0": EnvKind("image", "discrete"),
    "CartPole-v1": EnvKind("vector", "discrete"),
}
ATARI = EnvKind("image", "discrete")  # every ALE game through the book's pipeline


def _register(env_id: str, entry_point: str, **kwargs: Any) -> None:
    if env_id not in gym.registry:
        gym.register(id=env_id, entry_point=entry_point, **kwargs)


# A step limit the book does not have: an untrained greedy table can walk in circles forever,
# and evaluation must end. 100 steps is 12x the longest shortest path on a 5x5 grid.
_register("rldojo/PlanningGrid-v0", "envs.grid_world:PlanningGridEnv", max_episode_steps=100)
_register(
    "rldojo/GridWorld-v0",
    "envs.grid_world:GridWorldEnv",
    max_episode_steps=100,
    reward_threshold=100.0,
)
_register(
    "rldojo/MovingObstacles-v0",
    "envs.moving_grid_world:MovingObstaclesEnv",
    max_episode_steps=500,
    reward_threshold=1.0,
)
_register(
    "rldojo/ContinuousCartPole-v0",
    "envs.continuous_cartpole:ContinuousCartPoleEnv",
    max_episode_steps=500,
    reward_threshold=475.0,
)
# Atari ids also have a vector entry point: `gym.make_vec(id, num_envs,
# vectorization_mode="vector_entry_point")` steps the games in ale-py's C++ threads.
_register(
    "rldojo/Breakout-v0",
    "envs.atari:make_breakout",
    vector_entry_point="envs.atari_vector:make_breakout_vector",
)
_register(
    "rldojo/Atari-v0",
    "envs.atari:make_atari",
    vector_entry_point="envs.atari_vector:make_atari_vector",
    kwargs={"three_actions": False},
)


def registered(env_id: str) -> bool:
    """Whether this Python can name `env_id`: the book's ids, Gymnasium's, every ALE game's."""
    _register_ale()
    return env_id in gym.registry


def is_ale(env_id: str) -> bool:
    """An ALE game's id (`ALE/Pong-v5`): it trains through the book's Atari pipeline."""
    _register_ale()
    from envs.atari import is_ale_id

    return is_ale_id(env_id)


def make(env_id: str, env_config: dict[str, Any] | None = None, **kwargs: Any) -> gym.Env:
    """Build any registered id with its `env_config` (the job spec's field) as keyword args,
    its observations encoded as an algorithm takes them (see `envs.spaces`).

    An ALE game's id builds the book's Atari pipeline with the id's own settings (sticky
    actions, frame skip, action set, frame cap); `env_config` overrides them.

    Example:
        >>> import envs
        >>> env = envs.make("rldojo/GridWorld-v0", {"size": 5})
        >>> env.observation_space
        Discrete(25)
    """
    config = dict(env_config or {})
    encoding = config.pop(ENCODING_KEY, None)
    if is_ale(env_id):
        from envs.atari import ale_id_settings

        env = gym.make("rldojo/Atari-v0", **{**ale_id_settings(env_id), **config}, **kwargs)
    else:
        env = gym.make(env_id, **config, **kwargs)
    return encode(env, encoding)


@cache
def _kind_of_built(env_id: str, config_json: str) -> EnvKind:
    with make(env_id, json.loads(config_json)) as env:
        return kind_of(env)


def kind(env_id: str, env_config: dict[str, Any] | None = None) -> EnvKind:
    """The kind of env `env_id` with `env_config` is, read from its spaces (built once per
    process and config; the book's ids and ALE games are known without building).

    Raises:
        UnsupportedSpaceError: a space no algorithm can train on, named.
        gymnasium.error.Error, ValueError, TypeError: the env cannot be built so.
    """
    config = {k: v for k, v in (env_config or {}).items() if k != ENCODING_KEY}
    if env_id in KINDS and env_id != "rldojo/Atari-v0" and not config:
        return KINDS[env_id]
    if env_id == "rldojo/Atari-v0" or is_ale(env_id):
        return ATARI
    return _kind_of_built(env_id, json.dumps(config, sort_keys=True, default=str))


def spaces(env_id: str, env_config: dict[str, Any] | None = None) -> tuple[gym.Space, gym.Space]:
    """The observation and action spaces of `env_id` with `env_config`, as an algorithm sees
    them (encoded, see `make`); built once per process and config.

    Raises:
        gymnasium.error.Error, ValueError, TypeError: the env cannot be built so.
    """
    return _spaces_of_built(env_id, json.dumps(env_config or {}, sort_keys=True, default=str))


@cache
def _spaces_of_built(env_id: str, config_json: str) -> tuple[gym.Space, gym.Space]:
    with make(env_id, json.loads(config_json)) as env:
        return env.observation_space, env.action_space


def make_for_rllib(env_id: str, env_context: dict[str, Any]) -> gym.Env | gym.vector.VectorEnv:
    """RLlib's env creator: EnvRunner processes import `envs` here, so the ids exist there too.

    With `gym_env_vectorize_mode="vector_entry_point"` RLlib adds `num_envs` to the context and
    wants the whole vector: the id's own vector entry point where it has one (the Atari ids,
    and so every ALE game), else Gymnasium's synchronous vector of single (encoded) envs.
    """
    config = dict(env_context)
    if "num_envs" not in config:
        return make(env_id, config)
    num_envs = config.pop("num_envs")
    if is_ale(env_id):
        from envs.atari import ale_id_settings

        env_id, config = "rldojo/Atari-v0", {**ale_id_settings(env_id), **config}
    spec = gym.registry[env_id]
    if spec.vector_entry_point:
        config.pop(ENCODING_KEY, None)  # images: nothing to encode
        return gym.make_vec(env_id, num_envs, vectorization_mode="vector_entry_point", **config)
    return gym.vector.SyncVectorEnv([lambda: make(env_id, config) for _ in range(num_envs)])


def register_with_ray(*env_ids: str) -> None:
    """Make every book id, and `env_ids` (a job's own), buildable inside RLlib's EnvRunners
    (separate processes, maybe other nodes)."""
    from functools import partial

    from ray.tune.registry import register_env

    # A name only Ray knows (a creator registered with `register_env`) keeps its creator.
    extra = [env_id for env_id in env_ids if env_id not in ENV_IDS and registered(env_id)]
    for env_id in (*ENV_IDS, *extra):
        register_env(env_id, partial(make_for_rllib, env_id))


@cache
def _register_ale() -> None:
    import ale_py

    gym.register_envs(ale_py)
    # ALE's banner and notices on stderr read as trouble in a listing or a log; errors stay.
    ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)


__all__ = [
    "ATARI",
    "ENCODING_KEY",
    "ENV_IDS",
    "KINDS",
    "ONE_HOT",
    "RLDOJO_ENV_IDS",
    "EnvKind",
    "UnsupportedSpaceError",
    "is_ale",
    "kind",
    "kind_of",
    "make",
    "make_for_rllib",
    "register_with_ray",
    "registered",
]
