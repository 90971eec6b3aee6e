"""What this Python can train on: every registered env id that builds, with its kind.

Runs in the API (`GET /v1/envs`) and on a laptop (`rldojo envs`). Each id is built once per
process to read its spaces; the ALE games are listed without building each one, since the
book's Atari pipeline gives them all the same kind of spaces. Ids whose package is missing
(MuJoCo without `mujoco`, the JAX ids without `jax`) or whose spaces no algorithm handles are
listed apart, with the reason.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cache

import gymnasium as gym

import envs
from envs.spaces import EnvKind, describe, kind_of

# The book's pipeline: (frames, 84, 84) uint8 screens and the game's own action set.
ATARI_OBSERVATION = "Box(4, 84, 84) uint8"
ATARI_ACTIONS = "Discrete(the game's minimal action set)"


@dataclass(frozen=True)
class EnvEntry:
    """One env id: its spaces and kind when it builds here, else why not (`problem`)."""

    id: str
    kind: EnvKind | None
    observation_space: str
    action_space: str
    problem: str | None = None


@cache
def catalog() -> tuple[EnvEntry, ...]:
    """Every registered id: the book's first, then Gymnasium's and other packages', then the
    ALE games (`ALE/<Game>-v5`)."""
    envs.registered("CartPole-v1")  # registers the ALE ids too
    book = list(envs.ENV_IDS)
    ale = sorted(i for i in gym.registry if envs.is_ale(i) and i.startswith("ALE/"))
    others = sorted(
        i for i in gym.registry if i not in book and not envs.is_ale(i) and not _shim(i)
    )
    return (
        *(_built(env_id) for env_id in (*book, *others)),
        *(EnvEntry(env_id, envs.ATARI, ATARI_OBSERVATION, ATARI_ACTIONS) for env_id in ale),
    )


def trainable() -> list[EnvEntry]:
    """The ids that build here and have a kind some algorithm handles."""
    return [entry for entry in catalog() if entry.kind is not None]


def _built(env_id: str) -> EnvEntry:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # old versions' deprecation notices
            env = envs.make(env_id)
    except Exception as error:  # noqa: BLE001 - a listing survives any one broken package
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        return EnvEntry(env_id, None, "", "", problem=f"{type(error).__name__}: {message}")
    with env:
        observation, action = describe(env.observation_space), describe(env.action_space)
        try:
            return EnvEntry(env_id, kind_of(env), observation, action)
        except envs.UnsupportedSpaceError as error:
            return EnvEntry(env_id, None, observation, action, problem=str(error))


def _shim(env_id: str) -> bool:
    """Gymnasium's adapters for old Gym envs, which build nothing by themselves."""
    return env_id.startswith("GymV2")
