"""An env's kind, read from its spaces, and the encoders that make a space trainable.

Runs wherever an env is built: the API (at submit, to check a spec), the driver, the workers.

An algorithm handles some kinds of observations ("discrete": a cell index, "vector": a flat
Box, "image": a (channels, height, width) Box) and of actions ("discrete", "continuous": a
flat Box). Any other space is made one of those by a standard encoder, where one is the right
answer, or refused with the space named:

- Dict and Tuple observations (and Box observations of 2 dimensions, MultiBinary and
  MultiDiscrete) are flattened into one float32 vector, when it stays small
  (`MAX_FLAT_SIZE`), with Gymnasium's `FlattenObservation`;
- Discrete observations stay indices for the tables; a deep algorithm gets them one-hot
  (`ONE_HOT`, asked for in the env's config by `algorithms.build`);
- vectors of another dtype (an ALE RAM's bytes, float64) become float32, the networks' own;
- anything else (Text, Graph, Sequence, images inside a Dict, MultiDiscrete or Dict actions)
  is an `UnsupportedSpaceError` that names the space.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.wrappers import DtypeObservation, FlattenObservation

# The env_config key that asks `envs.make` for one-hot observations of a Discrete space: an
# rldojo key, taken out before the env's own constructor sees the rest.
ENCODING_KEY = "observation_encoding"
ONE_HOT = "one_hot"
MAX_FLAT_SIZE = 4096  # beyond this a flattened observation is an image or a mistake
# Images are channel-first stacks, as the convolutions take them: (frames, 84, 84) for Atari.
MAX_CHANNELS = 16
MIN_SIDE = 36  # the smallest side the Nature DQN's three convolutions still fit


class UnsupportedSpaceError(ValueError):
    """A space no algorithm here can train on; the message names it."""


@dataclass(frozen=True)
class EnvKind:
    """What an env gives and takes, which is what an algorithm must handle to train on it.

    `observation`: "discrete" (a cell index), "vector" (a flat Box, maybe flattened from a
    structured space) or "image" (a Box of three dimensions); `action`: "discrete" or
    "continuous"; `model`: it offers its transition model (`transition_model()`) to plan on.
    """

    observation: str
    action: str
    model: bool = False


def observation_kind(space: gym.Space[Any]) -> str:
    """The kind of observations `space` gives once encoded; raises for what cannot be."""
    if isinstance(space, spaces.Discrete):
        return "discrete"
    if isinstance(space, spaces.Box) and len(space.shape) == 3:
        channels, height, width = space.shape
        if channels > MAX_CHANNELS or min(height, width) < MIN_SIDE:
            raise UnsupportedSpaceError(
                f"observation space {space} is not a channel-first image: the networks take "
                f"(channels <= {MAX_CHANNELS}, height, width >= {MIN_SIDE}), as the Atari "
                "pipeline's (4, 84, 84)"
            )
        return "image"
    if isinstance(space, spaces.Box) and len(space.shape) == 1:
        return "vector"
    if needs_flattening(space):
        return "vector"
    raise UnsupportedSpaceError(f"observation space {space} cannot be trained on: {_why(space)}")


def action_kind(space: gym.Space[Any]) -> str:
    """ "discrete" or "continuous"; raises for any other action space."""
    if isinstance(space, spaces.Discrete):
        return "discrete"
    if isinstance(space, spaces.Box) and len(space.shape) == 1:
        return "continuous"
    raise UnsupportedSpaceError(
        f"action space {space} is not supported: the algorithms act in one Discrete or "
        "a one-dimensional Box"
    )


def kind_of(env: gym.Env[Any, Any]) -> EnvKind:
    """An env's kind, read from its spaces (as an algorithm would meet them)."""
    return EnvKind(
        observation_kind(env.observation_space),
        action_kind(env.action_space),
        model=hasattr(env.unwrapped, "transition_model"),
    )


def needs_flattening(space: gym.Space[Any]) -> bool:
    """A structured or multi-dimensional observation that flattens into a small vector."""
    if isinstance(space, spaces.Box) and len(space.shape) == 1:
        return False
    if isinstance(space, spaces.Discrete):
        return False
    if isinstance(space, spaces.Box) and len(space.shape) == 3:
        return False  # an image: the CNN takes it as it is
    return _flattenable(space) and spaces.flatdim(space) <= MAX_FLAT_SIZE


def encode(env: gym.Env[Any, Any], encoding: str | None) -> gym.Env[Any, Any]:
    """`env` with its observations made trainable: structured ones flattened, Discrete ones
    one-hot when `encoding` is `ONE_HOT`; always float32 when encoded."""
    space = env.observation_space
    one_hot = encoding == ONE_HOT and isinstance(space, spaces.Discrete)
    if one_hot or needs_flattening(space):
        return DtypeObservation(FlattenObservation(env), np.float32)
    if isinstance(space, spaces.Box) and len(space.shape) == 1 and space.dtype != np.float32:
        return DtypeObservation(env, np.float32)  # a RAM's bytes, float64 physics: the MLP's
    return env


def _flattenable(space: gym.Space[Any]) -> bool:
    if isinstance(space, spaces.Dict):
        return all(_flattenable(part) for part in space.spaces.values())
    if isinstance(space, spaces.Tuple):
        return all(_flattenable(part) for part in space.spaces)
    if isinstance(space, spaces.Box):
        return len(space.shape) <= 2  # an image inside a structure is not flattened
    return isinstance(space, spaces.Discrete | spaces.MultiBinary | spaces.MultiDiscrete)


def _why(space: gym.Space[Any]) -> str:
    if isinstance(space, spaces.Text | spaces.Graph | spaces.Sequence | spaces.OneOf):
        return f"{type(space).__name__} spaces have no fixed-size encoding"
    if _flattenable(space):
        return f"it flattens to {spaces.flatdim(space)} numbers, more than {MAX_FLAT_SIZE}"
    return "it holds an image or a space without a fixed-size encoding inside a structure"


def describe(space: gym.Space[Any]) -> str:
    """A space in a few characters: "Box(4,) float32", "Discrete(2)" (bounds left out)."""
    if isinstance(space, spaces.Box):
        return f"Box{tuple(space.shape)} {space.dtype}"
    return str(space)
