"""The portable-policy format that `algorithms/export.py` writes and `service/player.py` reads.

Imports only the standard library, numpy and gymnasium (ale-py for an Atari pipeline), so that
both sides share it and playing a policy never loads Ray or torch.

A policy is a model file (`policy.onnx`, `policy.pt` or a `policy.npy` Q-table) and `policy.json`
beside it:

    schema, rldojo_version, format, file, algorithm, env, env_config, seed,
    observation_space, action_space, action_meanings,
    preprocessing {network_input: as_is | one_hot | index, network_space, atari, note},
    input {name, shape, dtype}, output {name, meaning, greedy}
"""

from __future__ import annotations

import inspect
from importlib import metadata
from typing import Any

import gymnasium as gym
import numpy as np

POLICY_SCHEMA = 1  # bump when a field changes meaning
FORMATS = ("onnx", "torchscript", "table")
SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt", "table": ".npy"}
INPUT_NAME = "obs"
# What each kind of output holds and how the greedy action is taken from it.
OUTPUTS: dict[str, dict[str, str]] = {
    "q_values": {
        "meaning": "Q(s, a) for each action, shape (batch, actions)",
        "greedy": "argmax",
    },
    "logits": {
        "meaning": "the categorical policy's unnormalised log-probabilities, (batch, actions)",
        "greedy": "argmax",
    },
    "action_mean": {
        "meaning": "the Gaussian policy's mean action, (batch, action dims); its std is left out",
        "greedy": "clip(mean, action_space.low, action_space.high)",
    },
    "table": {
        "meaning": "the Q-table, float32 (states, actions): row s holds Q(s, .)",
        "greedy": "argmax; ties broken uniformly at random (argmax of u * is_best, u drawn "
        "float32 from a Mersenne Twister seeded with the play seed, as torch's CPU rand)",
    },
}
ATARI_ENTRY_POINTS = ("envs.atari:make_atari", "envs.atari:make_breakout")


def rldojo_version() -> str:
    """The installed rldojo package's version ("unknown" when run from a bare checkout)."""
    try:
        return metadata.version("rldojo")
    except metadata.PackageNotFoundError:
        return "unknown"


def _bound(values: np.ndarray) -> Any:
    """A space bound as JSON: one number when all are equal, None for an unbounded side."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    as_json = [float(v) if np.isfinite(v) else None for v in flat]
    if all(v == as_json[0] for v in as_json):
        return as_json[0]
    return np.asarray(as_json, dtype=object).reshape(np.shape(values)).tolist()


def space_json(space: gym.Space) -> dict[str, Any]:
    """A Discrete or Box space as JSON: `{"type": "Discrete", "n": 4}` or its shape, dtype, bounds.

    Example:
        >>> space_json(gym.spaces.Discrete(4))
        {'type': 'Discrete', 'n': 4}
    """
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n)}
    if isinstance(space, gym.spaces.Box):
        return {
            "type": "Box",
            "shape": list(space.shape),
            "dtype": str(space.dtype),
            "low": _bound(space.low),
            "high": _bound(space.high),
        }
    return {"type": type(space).__name__, "repr": str(space)}


def same_space(described: dict[str, Any], space: gym.Space) -> bool:
    """Whether an env's space is the one a policy was exported for (bounds aside)."""
    given = space_json(space)
    keys = ("type", "n") if described.get("type") == "Discrete" else ("type", "shape", "dtype")
    return all(described.get(key) == given.get(key) for key in keys)


def atari_pipeline(env_id: str, env_config: dict[str, Any]) -> dict[str, Any] | None:
    """The book's Atari pipeline settings an env id with `env_config` builds, None if not Atari.

    Every argument of `envs.atari.make_atari` with its resolved value (the game's ALE id, its
    frame skip, 84x84 grayscale, 4-frame stack, ...), so a reader can rebuild it elsewhere.
    """
    spec = gym.registry.get(env_id)
    if spec is None or spec.entry_point not in ATARI_ENTRY_POINTS:
        return None
    from envs.atari import BOOK_BREAKOUT_ACTIONS, BREAKOUT, make_atari, resolve_game

    values = {
        name: parameter.default
        for name, parameter in inspect.signature(make_atari).parameters.items()
        if parameter.default is not inspect.Parameter.empty and name != "render_mode"
    }
    values.update(spec.kwargs or {})
    if spec.entry_point == "envs.atari:make_breakout":
        values.update(game=BREAKOUT, three_actions=True)
    values.update(env_config)
    values["game"] = resolve_game(str(values["game"]))
    if values.get("three_actions") is None:
        values["three_actions"] = values["game"] == BREAKOUT
    values["grayscale"] = True
    values["layout"] = "uint8 (frame_stack, screen_size, screen_size), oldest frame first"
    values["steps"] = [
        f"{values['game']} with frameskip=1, no sticky actions, the minimal action set",
        "AtariPreprocessing: repeat each action frame_skip times, max of the last two frames, "
        "grayscale, resize to screen_size squared (area averaging), uint8",
        "FireOnLifeLoss (if fire_on_life_loss), FireStart (1..fire_starts FIRE steps at reset)",
        "ReportLifeLoss, MapActions "
        + (str(list(BOOK_BREAKOUT_ACTIONS)) if values["three_actions"] else "(none)"),
        "RecordRawReward + ClipReward(-1, 1) if clip_rewards (the score is info['raw_reward'])",
        "FrameStackObservation(frame_stack)",
    ]
    return values
