"""Evaluation: one pure function that the CLI, the API and bench all call (style principle 12).

`evaluate(checkpoint)` rebuilds the policy from an RLlib checkpoint on disk (never from live
training state), plays greedy episodes on the env the checkpoint was trained on, and returns the
score; with `video=` it also writes an H.264 MP4 of the first episode.

Example:
    >>> result = evaluate("results/run/QLearning_x/checkpoint_000009")  # doctest: +SKIP
    >>> result.return_mean  # doctest: +SKIP
    100.0
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModule

import envs

MODULE_PATH = Path("learner_group", "learner", "rl_module", "default_policy")


class EvalResult(BaseModel):
    """The score of a greedy policy over `episodes` episodes."""

    episodes: int
    return_mean: float
    return_std: float
    length_mean: float
    returns: list[float]
    lengths: list[int]
    env: str
    video: str | None = None


class CheckpointError(ValueError):
    """The path is not an rldojo/RLlib algorithm checkpoint."""


def checkpoint_config(checkpoint: str | Path) -> dict[str, Any]:
    """The algorithm config (as a dict) stored in a checkpoint: env id, env_config, seed, ..."""
    path = Path(checkpoint)
    ctor_file = path / "class_and_ctor_args.pkl"
    if not (path / MODULE_PATH).is_dir() or not ctor_file.is_file():
        raise CheckpointError(f"{path} is not an algorithm checkpoint (no {MODULE_PATH})")
    with ctor_file.open("rb") as handle:
        ctor = pickle.load(handle)
    config: dict[str, Any] = ctor["ctor_args_and_kwargs"][0][0]
    return config


def evaluate(
    checkpoint: str | Path,
    *,
    episodes: int = 10,
    seed: int = 0,
    epsilon: float = 0.0,
    video: str | Path | None = None,
) -> EvalResult:
    """Play the checkpoint's greedy policy and report its score.

    Args:
        checkpoint: An algorithm checkpoint directory (as written by Tune or `save_to_path`).
        episodes: How many episodes to play.
        seed: Seeds the env (episode i uses seed + i) and torch, so results are repeatable.
        epsilon: Probability of a uniformly random action instead of the greedy one.
        video: Where to write an MP4 of the first episode; None for no video.

    Returns:
        The per-episode returns and lengths and their summary.

    Raises:
        CheckpointError: `checkpoint` is not an algorithm checkpoint.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    # RLlib reads the module through pyarrow, which takes a relative path for a URI and fails.
    checkpoint = Path(checkpoint).resolve()
    config = checkpoint_config(checkpoint)
    module = RLModule.from_checkpoint(str(checkpoint / MODULE_PATH))
    env = envs.make(config["env"], config.get("env_config") or {}, render_mode="rgb_array")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    returns, lengths, frames = [], [], []
    for index in range(episodes):
        record = video is not None and index == 0
        episode_return, length = _play(
            env, module, seed + index, epsilon, rng, frames if record else None
        )
        returns.append(episode_return)
        lengths.append(length)
    env.close()
    if video is not None:
        write_video(frames, Path(video))
    return EvalResult(
        episodes=episodes,
        return_mean=float(np.mean(returns)),
        return_std=float(np.std(returns)),
        length_mean=float(np.mean(lengths)),
        returns=returns,
        lengths=lengths,
        env=config["env"],
        video=str(video) if video is not None else None,
    )


def _play(
    env: Any,
    module: RLModule,
    seed: int,
    epsilon: float,
    rng: np.random.Generator,
    frames: list[np.ndarray] | None,
) -> tuple[float, int]:
    """One episode; the raw game score counts where an Atari env clips rewards for learning."""
    observation, _ = env.reset(seed=seed)
    total, length, done = 0.0, 0, False
    while not done:
        if frames is not None:
            frames.append(env.render())
        action = greedy_action(module, observation)
        if rng.random() < epsilon:
            action = env.action_space.sample()
        observation, reward, terminated, truncated, info = env.step(action)
        total += float(info.get("raw_reward", reward))
        length += 1
        done = terminated or truncated
    if frames is not None:
        frames.append(env.render())
    return total, length


def greedy_action(module: RLModule, observation: Any) -> Any:
    """The module's deterministic action for one observation."""
    batch = {Columns.OBS: torch.as_tensor(np.asarray(observation)[None])}
    with torch.no_grad():
        output = module.forward_inference(batch)
    if Columns.ACTIONS in output:
        action = output[Columns.ACTIONS][0]
    else:
        distribution = module.get_inference_action_dist_cls().from_logits(
            output[Columns.ACTION_DIST_INPUTS]
        )
        action = distribution.to_deterministic().sample()[0]
    return action.numpy() if action.ndim else action.item()


def write_video(frames: list[np.ndarray], path: Path, fps: int = 15) -> Path:
    """Write RGB frames as an H.264 MP4 (yuv420p, so browsers play it)."""
    import imageio.v2 as imageio

    path.parent.mkdir(parents=True, exist_ok=True)
    # Small frames (the 160-pixel grid worlds) are enlarged by whole pixels, so cells stay
    # sharp; H.264 with yuv420p needs even sides, which imageio ensures (macro_block_size=2).
    scale = max(1, 320 // max(frames[0].shape[:2]))
    with imageio.get_writer(
        path, fps=fps, codec="libx264", pixelformat="yuv420p", macro_block_size=2
    ) as writer:
        for frame in frames:
            writer.append_data(frame.repeat(scale, axis=0).repeat(scale, axis=1))
    return path
