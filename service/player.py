"""Play an exported policy with onnxruntime, gymnasium and numpy only: no Ray, no torch.

`play("policy.onnx", episodes=10, seed=0)` plays the greedy policy the way
`algorithms.evaluation.evaluate` plays the checkpoint it came from: the same env (the env id and
env_config in `policy.json`, built by `envs.make` with `render_mode="rgb_array"`), episode i
seeded with seed + i, the game score (`info["raw_reward"]`) summed where the env clips rewards,
and a tabular policy's ties broken with the generator torch's CPU `rand` uses, seeded once with
`seed`. So its returns are `evaluate`'s, episode for episode.

Example:
    >>> result = play("policy.onnx", episodes=3)  # doctest: +SKIP
    >>> result.returns  # doctest: +SKIP
    [500.0, 500.0, 500.0]
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import envs
from service.policy_format import INPUT_NAME, POLICY_SCHEMA, SUFFIXES, same_space


class PolicyError(ValueError):
    """The file is not an exported policy this player can run (one line for the user)."""


@dataclass
class PlayResult:
    """The score of a policy over `episodes` episodes (the fields of `evaluate`'s result)."""

    episodes: int
    return_mean: float
    return_std: float
    length_mean: float
    returns: list[float]
    lengths: list[int]
    env: str
    video: str | None = None
    actions: list[list[Any]] = field(default_factory=list)  # per episode, when asked for


def read_spec(path: str | Path) -> tuple[dict[str, Any], Path]:
    """A policy's JSON and its model file, from either of the two paths."""
    path = Path(path)
    spec_path = path if path.suffix == ".json" else path.with_suffix(".json")
    if not spec_path.is_file():
        raise PolicyError(f"no {spec_path} beside the model (rldojo export writes it)")
    try:
        spec = json.loads(spec_path.read_text())
    except json.JSONDecodeError as error:
        raise PolicyError(f"{spec_path} is not valid JSON: {error}") from None
    if not isinstance(spec, dict) or spec.get("schema") != POLICY_SCHEMA:
        raise PolicyError(f"{spec_path} is not an rldojo policy description (schema 1)")
    model = path if path.suffix != ".json" else spec_path.with_name(str(spec.get("file")))
    if spec.get("format") == "torchscript":
        raise PolicyError(f"{model} is TorchScript, which needs torch: export --format onnx")
    if not model.is_file():
        raise PolicyError(f"no such model file: {model}")
    return spec, model


class Policy:
    """An exported greedy policy: `act(observation)` is the action `evaluate` would take."""

    def __init__(self, path: str | Path, seed: int = 0) -> None:
        self.spec, self.model = read_spec(path)
        self.output: str = self.spec["output"]["name"]
        self.network_input: str = self.spec["preprocessing"]["network_input"]
        # The tie-breaking generator: `np.random.RandomState(seed)`'s raw 32-bit draws are the
        # Mersenne Twister torch's CPU generator seeds and draws the same way.
        self.ties = np.random.RandomState(seed)
        if self.spec["format"] == "table":
            self.table = np.load(self.model, allow_pickle=False)
            self.session = None
        elif self.spec["format"] == "onnx" and self.model.suffix == SUFFIXES["onnx"]:
            import onnxruntime

            self.session = onnxruntime.InferenceSession(
                str(self.model), providers=["CPUExecutionProvider"]
            )
        else:
            raise PolicyError(f"{self.model}: cannot play format {self.spec['format']!r}")

    def network_input_of(self, observation: Any) -> np.ndarray:
        """The model's input (a batch of one) for one env observation."""
        if self.network_input == "one_hot":
            size = int(self.spec["preprocessing"]["network_space"]["shape"][0])
            return np.eye(size, dtype=np.float32)[int(observation)][None]
        dtype = np.dtype(self.spec["input"]["dtype"])
        return np.asarray(observation, dtype=dtype)[None]

    def outputs(self, observation: Any) -> np.ndarray:
        """The raw output row (Q-values, logits, mean or the table's row) for one observation."""
        if self.session is None:
            row: np.ndarray = self.table[int(observation)]
            return row
        (result,) = self.session.run(None, {INPUT_NAME: self.network_input_of(observation)})
        return np.asarray(result)[0]

    def act(self, observation: Any) -> Any:
        """The greedy action for one observation."""
        values = self.outputs(observation)
        if self.output == "table":
            is_best = (values == values.max()).astype(np.float32)
            raw = self.ties.randint(0, 2**32, size=values.shape, dtype=np.uint32)
            uniform = (raw & np.uint32(0xFFFFFF)).astype(np.float32) * np.float32(2.0**-24)
            return int(np.argmax(uniform * is_best))
        if self.output == "action_mean":
            space = self.spec["action_space"]
            low = _bound_array(space["low"], -np.inf)
            high = _bound_array(space["high"], np.inf)
            return np.clip(values, low, high).astype(np.float32)
        return int(np.argmax(values))


def _bound_array(bound: Any, unbounded: float) -> np.ndarray:
    """A bound from the JSON as an array; None (JSON's null) is an unbounded side."""
    values = np.array(bound, dtype=np.float64)  # None becomes NaN
    return np.where(np.isnan(values), unbounded, values)


def play(
    path: str | Path,
    *,
    env: str | None = None,
    env_config: dict[str, Any] | None = None,
    episodes: int = 10,
    seed: int = 0,
    video: str | Path | None = None,
    keep_actions: bool = False,
) -> PlayResult:
    """Play an exported policy's greedy actions and report its score.

    Args:
        path: The model file (`policy.onnx`, `policy.npy`) or its `policy.json`.
        env: Another env id to play on (its spaces must be the policy's); None: the policy's.
        env_config: Values that replace the policy's env_config ones.
        episodes: How many episodes to play.
        seed: Episode i is seeded with seed + i (and a table's ties with seed), as `evaluate`.
        video: Where to write an MP4 of the first episode; None for no video.
        keep_actions: Also return every action taken, per episode.

    Returns:
        The per-episode returns and lengths and their summary.

    Raises:
        PolicyError: the file is not a policy this player runs, or `env` does not fit it.
    """
    if episodes < 1:
        raise PolicyError(f"episodes must be >= 1, got {episodes}")
    policy = Policy(path, seed)
    env_id = env or policy.spec["env"]
    config = {**(policy.spec.get("env_config") or {}), **(env_config or {})}
    game = envs.make(env_id, config, render_mode="rgb_array")
    for what, space in (("observation", game.observation_space), ("action", game.action_space)):
        if not same_space(policy.spec[f"{what}_space"], space):
            game.close()
            raise PolicyError(f"{env_id}'s {what} space {space} is not the policy's")
    returns: list[float] = []
    lengths: list[int] = []
    frames: list[np.ndarray] = []
    actions: list[list[Any]] = []
    for index in range(episodes):
        record = video is not None and index == 0
        episode_return, taken = _episode(game, policy, seed + index, frames if record else None)
        returns.append(episode_return)
        lengths.append(len(taken))
        if keep_actions:
            actions.append(taken)
    game.close()
    if video is not None:
        write_video(frames, Path(video))
    return PlayResult(
        episodes=episodes,
        return_mean=float(np.mean(returns)),
        return_std=float(np.std(returns)),
        length_mean=float(np.mean(lengths)),
        returns=returns,
        lengths=lengths,
        env=env_id,
        video=str(video) if video is not None else None,
        actions=actions,
    )


def _episode(
    env: Any, policy: Policy, seed: int, frames: list[np.ndarray] | None
) -> tuple[float, list[Any]]:
    """One episode, scored as `evaluate` scores it (the game score where rewards are clipped)."""
    observation, _ = env.reset(seed=seed)
    total, taken, done = 0.0, [], False
    while not done:
        if frames is not None:
            frames.append(env.render())
        action = policy.act(observation)
        taken.append(action)
        observation, reward, terminated, truncated, info = env.step(action)
        total += float(info.get("raw_reward", reward))
        done = terminated or truncated
    if frames is not None:
        frames.append(env.render())
    return total, taken


def write_video(frames: list[np.ndarray], path: Path, fps: int = 15) -> Path:
    """Write RGB frames as an H.264 MP4, as `algorithms.evaluation.write_video` does (repeated
    here because that module imports torch)."""
    import imageio.v2 as imageio

    path.parent.mkdir(parents=True, exist_ok=True)
    scale = max(1, 320 // max(frames[0].shape[:2]))  # small grids grow by whole pixels
    writer: Any
    with imageio.get_writer(
        path, fps=fps, codec="libx264", pixelformat="yuv420p", macro_block_size=2
    ) as writer:
        for frame in frames:
            writer.append_data(frame.repeat(scale, axis=0).repeat(scale, axis=1))
    return path
