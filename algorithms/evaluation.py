"""Evaluation: one pure function that the CLI, the API and bench all call (style principle 12).

`evaluate(checkpoint)` rebuilds the policy from an RLlib checkpoint on disk (never from live
training state), plays greedy episodes on the env the checkpoint was trained on, and returns the
score; with `video=` it also writes an H.264 MP4 of the first episode.

A `protocol` says how the episodes are played:

- `book`: the env exactly as the job trained on it (today's default);
- `standard` (Machado et al., "Revisiting the Arcade Learning Environment", JAIR 2018; the ALE
  v5 defaults): on ALE games sticky actions 0.25, frame skip 4, episodes capped at 108,000
  frames, whole games (a lost life never ends an episode), the raw unclipped score, and an
  epsilon of 0.05 unless one is given (0.0 is greedy). ALE games also get their
  human-normalized score (`envs.atari_scores`). Other envs play as `book` under either name.

Example:
    >>> result = evaluate("results/run/QLearning_x/checkpoint_000009")  # doctest: +SKIP
    >>> result.return_mean  # doctest: +SKIP
    100.0
"""

from __future__ import annotations

import dataclasses
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModule

import envs
from envs.atari_scores import game_of, human_normalized

MODULE_PATH = Path("learner_group", "learner", "rl_module", "default_policy")


@dataclass(frozen=True)
class Protocol:
    """How evaluation episodes are played on an ALE game (None: as the job trained)."""

    name: str
    repeat_action_probability: float | None = None  # sticky actions, per raw frame
    frame_skip: int | None = None
    max_frames: int | None = None  # raw frames per episode, the cap
    whole_games: bool = False  # a lost life never ends an episode
    epsilon: float = 0.0  # the random-action rate when the caller gives none

    def settings(self) -> dict[str, Any]:
        """The protocol's values, as a result records them."""
        return dataclasses.asdict(self)


BOOK = Protocol("book")
STANDARD = Protocol(
    "standard",
    repeat_action_probability=0.25,
    frame_skip=4,
    max_frames=108_000,
    whole_games=True,
    epsilon=0.05,
)
PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (BOOK, STANDARD)}


class EvalResult(BaseModel):
    """The score of a policy over `episodes` episodes, and how they were played."""

    episodes: int
    return_mean: float
    return_std: float
    length_mean: float
    returns: list[float]
    lengths: list[int]
    env: str
    video: str | None = None
    protocol: str = "book"
    protocol_settings: dict[str, Any] = {}
    epsilon: float = 0.0
    seeds: list[int] = []
    game: str | None = None
    human_normalized: float | None = None  # of return_mean, for ALE games with a reference


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


def resolve_protocol(protocol: str | Protocol) -> Protocol:
    """A protocol by name ("book", "standard") or as given.

    Raises:
        ValueError: naming `protocol` for an unknown name.
    """
    if isinstance(protocol, Protocol):
        return protocol
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    return PROTOCOLS[protocol]


def protocol_env_config(
    env_id: str, env_config: dict[str, Any] | None, protocol: str | Protocol
) -> dict[str, Any]:
    """The env_config to evaluate with: the job's, with the protocol's settings on ALE games.

    The keys are the Atari pipeline's (`envs.atari.make_atari`), which `rldojo/Breakout-v0`,
    `rldojo/Atari-v0` and the ALE ids take; a protocol never changes a non-ALE env.

    Example:
        >>> config = protocol_env_config("rldojo/Atari-v0", {"game": "Pong"}, "standard")
        >>> config["repeat_action_probability"], config["max_episode_steps"]
        (0.25, 27000)
    """
    chosen = resolve_protocol(protocol)
    config = dict(env_config or {})
    if game_of(env_id, config) is None:
        return config
    if chosen.repeat_action_probability is not None:
        config["repeat_action_probability"] = chosen.repeat_action_probability
    if chosen.frame_skip is not None:
        config["frame_skip"] = chosen.frame_skip
    if chosen.max_frames is not None:
        skip = int(config.get("frame_skip", 4))
        config["max_episode_steps"] = max(1, chosen.max_frames // skip)
    if chosen.whole_games:
        config["terminal_on_life_loss"] = False
    return config


def evaluate(
    checkpoint: str | Path,
    *,
    episodes: int = 10,
    seed: int = 0,
    epsilon: float | None = None,
    protocol: str | Protocol = "book",
    video: str | Path | None = None,
) -> EvalResult:
    """Play the checkpoint's policy under `protocol` and report its score.

    Args:
        checkpoint: An algorithm checkpoint directory (as written by Tune or `save_to_path`).
        episodes: How many episodes to play.
        seed: Seeds the env (episode i uses seed + i) and torch, so results are repeatable.
        epsilon: Probability of a uniformly random action instead of the greedy one; None
            takes the protocol's (book 0.0, standard 0.05).
        protocol: "book", "standard" or a `Protocol` (see the module docstring).
        video: Where to write an MP4 of the first episode; None for no video.

    Returns:
        The per-episode returns and lengths, their summary, the protocol and, on ALE games,
        the human-normalized score of the mean.

    Raises:
        CheckpointError: `checkpoint` is not an algorithm checkpoint.
        ValueError: `episodes`, `epsilon` or `protocol` is out of range.
    """
    chosen = resolve_protocol(protocol)
    rate = chosen.epsilon if epsilon is None else float(epsilon)
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
    # RLlib reads the module through pyarrow, which takes a relative path for a URI and fails.
    checkpoint = Path(checkpoint).resolve()
    config = checkpoint_config(checkpoint)
    module = RLModule.from_checkpoint(str(checkpoint / MODULE_PATH))
    env_id, env_config = config["env"], config.get("env_config") or {}
    _headless_rendering()
    env = envs.make(
        env_id, protocol_env_config(env_id, env_config, chosen), render_mode="rgb_array"
    )
    env.action_space.seed(seed)  # epsilon's random actions repeat too
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    seeds = [seed + index for index in range(episodes)]
    returns, lengths, frames = [], [], []
    for index, episode_seed in enumerate(seeds):
        record = video is not None and index == 0
        episode_return, length = _play(
            env, module, episode_seed, rate, rng, frames if record else None
        )
        returns.append(episode_return)
        lengths.append(length)
    env.close()
    if video is not None:
        write_video(frames, Path(video))
    game = game_of(env_id, env_config)
    mean = float(np.mean(returns))
    return EvalResult(
        episodes=episodes,
        return_mean=mean,
        return_std=float(np.std(returns)),
        length_mean=float(np.mean(lengths)),
        returns=returns,
        lengths=lengths,
        env=env_id,
        video=str(video) if video is not None else None,
        protocol=chosen.name,
        protocol_settings=chosen.settings(),
        epsilon=rate,
        seeds=seeds,
        game=game,
        human_normalized=human_normalized(game, mean),
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


def _headless_rendering() -> None:
    """Pygame (Gymnasium's classic-control renderer) draws off-screen here: SDL without a
    display or a sound card, so it prints no XDG_RUNTIME_DIR error and no ALSA lines."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")


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
