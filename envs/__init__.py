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

from dataclasses import dataclass
from typing import Any

import gymnasium as gym

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


@dataclass(frozen=True)
class EnvKind:
    """What an env gives and takes, which is what an algorithm must handle to train on it.

    `observation`: "discrete" (a cell index), "vector" (a Box of one dimension) or "image" (a
    Box of three); `action`: "discrete" or "continuous"; `model`: it offers its transition model
    (`transition_model()`) to plan on. tests/envs check these against the real spaces.
    """

    observation: str
    action: str
    model: bool = False


KINDS: dict[str, EnvKind] = {
    "rldojo/PlanningGrid-v0": EnvKind("discrete", "discrete", model=True),
    "rldojo/GridWorld-v0": EnvKind("discrete", "discrete", model=True),
    "rldojo/MovingObstacles-v0": EnvKind("vector", "discrete"),
    "rldojo/ContinuousCartPole-v0": EnvKind("vector", "continuous"),
    "rldojo/Breakout-v0": EnvKind("image", "discrete"),
    "rldojo/Atari-v0": EnvKind("image", "discrete"),
    "CartPole-v1": EnvKind("vector", "discrete"),
}


def kind_of(env: gym.Env) -> EnvKind:
    """An env's kind, read from its spaces (what `KINDS` declares for each id)."""
    observation, action = env.observation_space, env.action_space
    if isinstance(observation, gym.spaces.Discrete):
        seen = "discrete"
    else:
        seen = "image" if len(observation.shape or ()) == 3 else "vector"
    acted = "discrete" if isinstance(action, gym.spaces.Discrete) else "continuous"
    return EnvKind(seen, acted, model=hasattr(env.unwrapped, "transition_model"))


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


def make(env_id: str, env_config: dict[str, Any] | None = None, **kwargs: Any) -> gym.Env:
    """Build any id rldojo knows with its `env_config` (the job spec's field) as keyword args.

    Example:
        >>> import envs
        >>> env = envs.make("rldojo/GridWorld-v0", {"size": 5})
        >>> env.observation_space
        Discrete(25)
    """
    return gym.make(env_id, **(env_config or {}), **kwargs)


def make_for_rllib(env_id: str, env_context: dict[str, Any]) -> gym.Env | gym.vector.VectorEnv:
    """RLlib's env creator: EnvRunner processes import `envs` here, so the ids exist there too.

    With `gym_env_vectorize_mode="vector_entry_point"` RLlib adds `num_envs` to the context and
    wants the whole vector: the id's own vector entry point where it has one (the Atari ids),
    else Gymnasium's synchronous vector of single envs.
    """
    config = dict(env_context)
    if "num_envs" not in config:
        return make(env_id, config)
    num_envs = config.pop("num_envs")
    mode = "vector_entry_point" if gym.registry[env_id].vector_entry_point else "sync"
    return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=mode, **config)


def register_with_ray() -> None:
    """Make every id buildable inside RLlib's EnvRunners (separate processes, maybe other nodes)."""
    from functools import partial

    from ray.tune.registry import register_env

    for env_id in ENV_IDS:
        register_env(env_id, partial(make_for_rllib, env_id))
