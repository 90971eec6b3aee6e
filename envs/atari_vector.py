"""The book's Atari pipeline for many games at once, on ale-py's C++ `AtariVectorEnv` (book §6.1).

`envs.atari.make_atari` builds one game from Gymnasium wrappers in Python; it stays the reference.
`AtariVector` steps `num_envs` games in ale-py's C++ threads, which do the emulation, the frame
skip with max-pool over the last two frames, grayscale and the area resize, and adds in numpy
what the book needs on top, with the same observations, actions, rewards and terminals:

- observations `(frame_stack, screen_size, screen_size)` uint8, oldest frame first, a new
  episode's stack filled with copies of its first frame (ale-py would pad with zeros);
- the book's three Breakout actions (FIRE, RIGHT, LEFT) mapped onto the minimal action set;
- `info["life_lost"]`, and FIRE played on the step after a life loss (`fire_on_life_loss`);
- rewards clipped to [-1, 1], the game's score in `info["raw_reward"]`;
- `terminated` at game over (and at a life loss with `terminal_on_life_loss`), `truncated` after
  `max_episode_steps` agent steps.

Autoreset follows Gymnasium's default (`AutoresetMode.NEXT_STEP`), which RLlib's EnvRunners
expect: the step after an episode's end ignores that env's action and returns its reset
observation with reward 0.

Deviations from the reference pipeline, and why:

- The random start is ale-py's: one FIRE frame, then up to `fire_starts - 1` NOOP frames, where
  the book plays 1 to `fire_starts` FIRE agent steps (`FireStart`). Both start each game at a
  random point and launch the ball; the C++ start costs no Python steps.
- With `terminal_on_life_loss`, the reset step after a life-loss end plays the FIRE that
  `FireOnLifeLoss` would play on the first step of the next episode (every game in a vector
  steps together, so no game can sit out a step); the new episode starts after it.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from ale_py.vector_env import AtariVectorEnv
from gymnasium.vector import AutoresetMode

from envs.atari import BOOK_BREAKOUT_ACTIONS, BREAKOUT, check_atari_arguments, resolve_game


class AtariVector(gym.vector.VectorEnv):
    """`num_envs` games of the book's Atari pipeline, stepped in ale-py's C++ threads.

    Example:
        >>> env = AtariVector("Breakout", num_envs=2)
        >>> obs, info = env.reset(seed=0)
        >>> obs.shape, obs.dtype, env.single_action_space
        ((2, 4, 84, 84), dtype('uint8'), Discrete(3))
        >>> obs, reward, terminated, truncated, info = env.step(np.array([0, 1]))
        >>> sorted(info)
        ['life_lost', 'lives', 'raw_reward']
        >>> env.close()
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        game: str = BREAKOUT,
        num_envs: int = 1,
        *,
        frame_skip: int = 4,
        screen_size: int = 84,
        frame_stack: int = 4,
        fire_starts: int = 30,
        clip_rewards: bool = True,
        terminal_on_life_loss: bool = False,
        fire_on_life_loss: bool = True,
        three_actions: bool | None = None,
        max_episode_steps: int = 100_000,
        repeat_action_probability: float = 0.0,
        full_action_space: bool = False,
        num_threads: int = 1,
        render_mode: str | None = None,
    ) -> None:
        """Start `num_envs` games of `envs.atari.make_atari(game, **the other arguments)`.

        Args:
            game: An ALE id ("ALE/Pong-v5") or a game name ("Pong").
            num_envs: Games stepped together.
            num_threads: C++ threads stepping the games (one per CPU the process may use).
            render_mode: Only None: render through the Gymnasium pipeline (`make_atari`).
            **the others**: As `make_atari`; `fire_starts` bounds ale-py's random start (one
                FIRE, then up to `fire_starts - 1` NOOP frames).

        Raises:
            ValueError: for an unknown game or an out-of-range argument.
        """
        check_atari_arguments(
            frame_skip=frame_skip,
            screen_size=screen_size,
            frame_stack=frame_stack,
            fire_starts=fire_starts,
            max_episode_steps=max_episode_steps,
            repeat_action_probability=repeat_action_probability,
        )
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be an integer >= 1, got {num_envs!r}")
        if render_mode is not None:
            raise ValueError(
                f"render_mode={render_mode!r}: the vector env does not render; use the "
                "Gymnasium pipeline (gym_env_vectorize_mode='sync')"
            )
        env_id = resolve_game(game)
        if three_actions is None:
            three_actions = env_id == BREAKOUT
        self.ale = AtariVectorEnv(
            gym.registry[env_id].kwargs["game"],
            num_envs,
            num_threads=max(1, num_threads),
            frameskip=frame_skip,
            img_height=screen_size,
            img_width=screen_size,
            stack_num=1,  # the stack is kept here, padded as the reference pads it
            grayscale=True,
            maxpool=True,
            noop_max=fire_starts,
            use_fire_reset=fire_starts > 0,
            episodic_life=False,  # ale-py would restart the game; the book's goes on
            reward_clipping=False,  # clipped here, the raw score kept for `info`
            max_num_frames_per_episode=frame_skip * max_episode_steps,
            # ale-py's vector defaults to 0.0 whatever the env_config: pass it on.
            repeat_action_probability=float(repeat_action_probability),
            full_action_space=bool(full_action_space),
            autoreset_mode=AutoresetMode.NEXT_STEP,
        )
        meanings = [action.name for action in self.ale.ale.get_action_set()]
        names = BOOK_BREAKOUT_ACTIONS if three_actions else tuple(meanings)
        self.actions = np.array([meanings.index(name) for name in names], dtype=np.int32)
        self.fire = meanings.index("FIRE") if "FIRE" in meanings else None
        self.clip_rewards = clip_rewards
        self.terminal_on_life_loss = terminal_on_life_loss
        self.fire_on_life_loss = fire_on_life_loss and self.fire is not None

        self.num_envs = num_envs
        self.single_observation_space = gym.spaces.Box(
            0, 255, (frame_stack, screen_size, screen_size), np.uint8
        )
        self.single_action_space = gym.spaces.Discrete(len(names))
        self.observation_space = gym.vector.utils.batch_space(
            self.single_observation_space, num_envs
        )
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, num_envs)

        self._stacks = np.zeros((num_envs, *self.single_observation_space.shape), np.uint8)
        self._lives = np.zeros(num_envs, dtype=np.int32)
        self._restarts = np.zeros(num_envs, dtype=bool)  # ale-py resets these at the next step
        self._resumes = np.zeros(num_envs, dtype=bool)  # life-loss ends: next step starts anew
        self._fire_next = np.zeros(num_envs, dtype=bool)

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start new games in every env (consecutive seeds from an int seed)."""
        if seed is not None and not isinstance(seed, int):
            seed = np.asarray(seed, dtype=np.int64)  # type: ignore[assignment]
        frames, info = self.ale.reset(seed=seed)
        self._stacks[:] = frames  # (N, 1, H, W) broadcast: the first frame, repeated
        self._lives[:] = info["lives"]
        self._restarts[:] = self._resumes[:] = self._fire_next[:] = False
        zeros = np.zeros(self.num_envs, dtype=bool)
        return self._stacks.copy(), {
            "lives": info["lives"].copy(),
            "life_lost": zeros,
            "raw_reward": np.zeros(self.num_envs, dtype=np.float32),
        }

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every game; envs whose episode ended last step return their reset instead."""
        game_actions = self.actions[np.asarray(actions, dtype=np.int64)]
        if self.fire is not None:
            game_actions[self._fire_next | self._resumes] = self.fire
        frames, scores, game_over, time_up, info = self.ale.step(game_actions)
        starts = self._restarts | self._resumes  # first observations of new episodes

        self._stacks[:, :-1] = self._stacks[:, 1:]
        self._stacks[:, -1] = frames[:, 0]
        self._stacks[starts] = frames[starts]  # (K, 1, H, W) broadcast over the stack

        lives = info["lives"]
        life_lost = (lives < self._lives) & ~starts
        self._lives[:] = lives
        raw = scores.astype(np.float32)
        raw[starts] = 0.0
        rewards = np.clip(raw, -1.0, 1.0) if self.clip_rewards else raw.copy()
        terminated, truncated = game_over.copy(), time_up.copy()
        life_end = life_lost & ~(terminated | truncated) if self.terminal_on_life_loss else None
        if life_end is not None:
            terminated |= life_end
        self._restarts = game_over | time_up
        self._resumes = life_end if life_end is not None else np.zeros_like(life_lost)
        self._fire_next = life_lost & self.fire_on_life_loss
        return (
            self._stacks.copy(),
            rewards,
            terminated,
            truncated,
            {"lives": lives, "life_lost": life_lost, "raw_reward": raw},
        )

    def close_extras(self, **kwargs: Any) -> None:
        if hasattr(self, "ale"):  # not when the constructor refused its arguments
            self.ale.close()


def make_atari_vector(num_envs: int = 1, **kwargs: Any) -> AtariVector:
    """`gym.make_vec("rldojo/Atari-v0", num_envs, vectorization_mode="vector_entry_point")`."""
    kwargs.setdefault("three_actions", False)
    return AtariVector(num_envs=num_envs, **kwargs)


def make_breakout_vector(num_envs: int = 1, **kwargs: Any) -> AtariVector:
    """The book's Breakout, `num_envs` at once (the vector entry point of `rldojo/Breakout-v0`).

    Raises:
        ValueError: if `game` is passed (use `rldojo/Atari-v0` for other games).
    """
    if "game" in kwargs:
        raise ValueError("make_breakout_vector always plays Breakout; use make_atari_vector")
    kwargs.setdefault("three_actions", True)
    return AtariVector(BREAKOUT, num_envs=num_envs, **kwargs)
