"""The few Atari wrappers the book needs and Gymnasium 1.x lacks (book §6.1).

Each wrapper does one thing. Gymnasium already provides frame skipping, grayscale, resizing
(`AtariPreprocessing`), frame stacking (`FrameStackObservation`) and reward clipping
(`ClipReward`); `envs.atari.make_atari` composes those with the wrappers below.

All of them read the game's action meanings and lives from an ALE (`ale_py`) environment.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces


def action_index(env: gym.Env, meaning: str) -> int | None:
    """The index of an action (e.g. "FIRE") in an ALE env's action set, or None if it has none.

    Args:
        env: An ALE environment, possibly wrapped.
        meaning: An ALE action name such as "FIRE", "RIGHT" or "LEFT".

    Example:
        >>> import ale_py, gymnasium as gym
        >>> gym.register_envs(ale_py)
        >>> action_index(gym.make("ALE/Breakout-v5"), "FIRE")
        1
    """
    meanings = env.unwrapped.get_action_meanings()  # type: ignore[attr-defined]
    return meanings.index(meaning) if meaning in meanings else None


class FireStart(gym.Wrapper[np.ndarray, int, np.ndarray, int], gym.utils.RecordConstructorArgs):
    """Press FIRE a random number of times (1 to `max_fires`) after every reset.

    The book's "no-op start": its Breakout agents begin each game with 1-30 FIRE steps
    (uniform) rather than NOOPs, which also launches the ball. The count is drawn from the
    environment's `np_random`, so `reset(seed=...)` makes it reproducible. Rewards of these steps
    are dropped, as in the book. Games without a FIRE action are left untouched.

    Example:
        >>> import ale_py, gymnasium as gym
        >>> gym.register_envs(ale_py)
        >>> env = FireStart(gym.make("ALE/Breakout-v5"), max_fires=30)
        >>> obs, info = env.reset(seed=0)
        >>> info["episode_frame_number"] > 0  # the FIRE steps have been played
        True
    """

    def __init__(self, env: gym.Env[np.ndarray, int], max_fires: int = 30) -> None:
        """Wrap `env`.

        Args:
            env: An ALE environment, possibly wrapped.
            max_fires: The most FIRE steps after a reset (at least 1).

        Raises:
            ValueError: if `max_fires` < 1.
        """
        if max_fires < 1:
            raise ValueError(f"max_fires must be >= 1, got {max_fires}")
        gym.utils.RecordConstructorArgs.__init__(self, max_fires=max_fires)
        gym.Wrapper.__init__(self, env)
        self.max_fires = max_fires
        self.fire = action_index(env, "FIRE")

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset, then play 1 to `max_fires` FIRE steps (drawn after the seed is applied)."""
        obs, info = self.env.reset(seed=seed, options=options)
        if self.fire is None:
            return obs, info
        for _ in range(int(self.np_random.integers(1, self.max_fires + 1))):
            obs, _, terminated, truncated, step_info = self.env.step(self.fire)
            info = {**info, **step_info}
            if terminated or truncated:
                # Only a tiny step limit gets here; start over rather than return a dead game.
                obs, info = self.env.reset()
        return obs, info


class ReportLifeLoss(
    gym.Wrapper[np.ndarray, int, np.ndarray, int], gym.utils.RecordConstructorArgs
):
    """Set `info["life_lost"]` on the step where the ALE lives counter drops.

    With `terminal_on_life_loss=True` that step also ends the episode (`terminated=True`), but
    the next `reset()` continues the same game from the current frame instead of starting a new
    one (like Stable-Baselines3's `EpisodicLifeEnv`). This is how the book's DQN treats a life
    loss: a terminal transition for the targets while the game goes on. The game really resets
    when it was over (or truncated), when `reset` is given a seed, or on a second `reset()` in a
    row (only the first one after a life loss continues). Episode returns are then per life: read
    a whole game's score from `info["raw_reward"]` summed until `lives` reaches 0.

    Example:
        >>> import ale_py, gymnasium as gym
        >>> gym.register_envs(ale_py)
        >>> env = ReportLifeLoss(gym.make("ALE/Breakout-v5"), terminal_on_life_loss=True)
        >>> obs, info = env.reset(seed=0)
        >>> _ = env.step(1)  # FIRE launches the ball; then let it fall past the paddle
        >>> while not (step := env.step(0))[4]["life_lost"]:
        ...     pass
        >>> step[2], step[4]["lives"]  # terminated, lives left
        (True, 4)
        >>> obs, info = env.reset()  # the same game goes on
        >>> info["lives"]
        4
    """

    def __init__(self, env: gym.Env[np.ndarray, int], terminal_on_life_loss: bool = False) -> None:
        """Wrap `env`.

        Args:
            env: An ALE environment, possibly wrapped, whose info holds "lives".
            terminal_on_life_loss: End the episode at each life loss and continue the game at
                the next reset.
        """
        gym.utils.RecordConstructorArgs.__init__(self, terminal_on_life_loss=terminal_on_life_loss)
        gym.Wrapper.__init__(self, env)
        self.terminal_on_life_loss = terminal_on_life_loss
        self._lives = 0
        # (obs, info) to resume from after a life-loss episode end; None means "really reset".
        self._resume: tuple[np.ndarray, dict[str, Any]] | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Continue the game after a life-loss episode end, otherwise reset it."""
        if self._resume is not None and seed is None:
            obs, info = self._resume
            self._resume = None
            return obs, {**info, "life_lost": False}
        self._resume = None
        obs, info = self.env.reset(seed=seed, options=options)
        self._lives = info["lives"]
        return obs, {**info, "life_lost": False}

    def step(self, action: int) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step and report whether this step cost a life."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        life_lost = info["lives"] < self._lives
        self._lives = info["lives"]
        info = {**info, "life_lost": life_lost}
        if self.terminal_on_life_loss and life_lost and not (terminated or truncated):
            # Copy: the frame must survive whatever the caller does with the returned array.
            self._resume = (np.copy(obs), info)
            terminated = True
        return obs, reward, terminated, truncated, info


class FireOnLifeLoss(
    gym.Wrapper[np.ndarray, int, np.ndarray, int], gym.utils.RecordConstructorArgs
):
    """Replace the action of the step after a life loss by FIRE, which relaunches the ball.

    The book's A3C and its revised DQN do this; without it an agent that never learned to press
    FIRE can stall a Breakout game until the step limit. Games without FIRE are left untouched.

    Example:
        >>> import ale_py, gymnasium as gym
        >>> gym.register_envs(ale_py)
        >>> env = FireOnLifeLoss(gym.make("ALE/Breakout-v5"))
        >>> env.fire  # index of FIRE in Breakout's minimal action set
        1
    """

    def __init__(self, env: gym.Env[np.ndarray, int]) -> None:
        """Wrap `env`.

        Args:
            env: An ALE environment, possibly wrapped, whose info holds "lives".
        """
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)
        self.fire = action_index(env, "FIRE")
        self._lives = 0
        self._fire_next = False

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset the game and forget any pending FIRE."""
        obs, info = self.env.reset(seed=seed, options=options)
        self._lives = info["lives"]
        self._fire_next = False
        return obs, info

    def step(self, action: int) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step with `action`, or with FIRE if the previous step lost a life."""
        if self._fire_next and self.fire is not None:
            action = self.fire
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._fire_next = info["lives"] < self._lives
        self._lives = info["lives"]
        return obs, reward, terminated, truncated, info


class MapActions(gym.ActionWrapper[np.ndarray, int, int], gym.utils.RecordConstructorArgs):
    """Expose only the named actions, as `Discrete(len(actions))`, in the order given.

    The book's Breakout agents use three actions: 0 -> FIRE, 1 -> RIGHT, 2 -> LEFT.

    Example:
        >>> import ale_py, gymnasium as gym
        >>> gym.register_envs(ale_py)
        >>> env = MapActions(gym.make("ALE/Breakout-v5"), ("FIRE", "RIGHT", "LEFT"))
        >>> env.action_space, env.action(1)  # agent action 1 is ALE minimal-set index 2 (RIGHT)
        (Discrete(3), 2)
    """

    def __init__(self, env: gym.Env[np.ndarray, int], actions: Sequence[str]) -> None:
        """Wrap `env`.

        Args:
            env: An ALE environment, possibly wrapped.
            actions: ALE action names; the agent's action i plays `actions[i]`.

        Raises:
            ValueError: if the game has no action of one of these names.
        """
        gym.utils.RecordConstructorArgs.__init__(self, actions=tuple(actions))
        gym.ActionWrapper.__init__(self, env)
        indices = [action_index(env, name) for name in actions]
        missing = [name for name, index in zip(actions, indices, strict=True) if index is None]
        if missing or not indices:
            meanings = env.unwrapped.get_action_meanings()  # type: ignore[attr-defined]
            raise ValueError(f"actions {list(actions)}: {missing} not among this game's {meanings}")
        self.indices: tuple[int, ...] = tuple(i for i in indices if i is not None)
        self.action_space = spaces.Discrete(len(self.indices))

    def action(self, action: int) -> int:
        """The inner env's action index for agent action `action`."""
        return self.indices[int(action)]


class RecordRawReward(
    gym.Wrapper[np.ndarray, int, np.ndarray, int], gym.utils.RecordConstructorArgs
):
    """Copy each step's reward into `info["raw_reward"]` before a later wrapper clips it.

    Learning uses clipped rewards while evaluation reports the game score; the book's A3C and
    revised DQN log the raw score this way.

    Example:
        >>> import ale_py, gymnasium as gym
        >>> gym.register_envs(ale_py)
        >>> env = gym.wrappers.ClipReward(RecordRawReward(gym.make("ALE/Breakout-v5")), -1, 1)
        >>> _ = env.reset(seed=0)
        >>> _, reward, _, _, info = env.step(0)
        >>> float(reward), info["raw_reward"]
        (0.0, 0.0)
    """

    def __init__(self, env: gym.Env[np.ndarray, int]) -> None:
        """Wrap `env`.

        Args:
            env: Any environment.
        """
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)

    def step(self, action: int) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step and record the reward in the info dict."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, {**info, "raw_reward": float(reward)}
