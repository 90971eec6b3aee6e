"""The book's Atari pipeline (book §6.1) built from Gymnasium and ale-py wrappers.

From the inside out (each wrapper sees what the ones listed before it produce):

1. `ALE/<Game>-v5` with `frameskip=1`, no sticky actions (the book's; `repeat_action_probability`
   sets Machado et al.'s 0.25, which ALE applies per raw frame), the minimal action set and a
   `TimeLimit` of `frame_skip * max_episode_steps` frames, i.e. `max_episode_steps` agent
   steps (the book's `BreakoutDeterministic-v4` stops at 100,000 agent steps).
2. `AtariPreprocessing`: repeat each action `frame_skip` times, grayscale, resize the whole
   210x160 frame (no crop) to `screen_size` squared with area averaging, uint8.
3. `FireOnLifeLoss`: the step after a life loss plays FIRE, relaunching the ball.
4. `FireStart`: 1 to `fire_starts` FIRE steps at each reset (the book's "no-op" start).
5. `ReportLifeLoss`: `info["life_lost"]`; optionally end the episode at a life loss and
   continue the same game at the next reset. It sits outside `FireStart` so that continuing
   after a lost life does not replay the FIRE start, as in the book.
6. `MapActions`: the book's 3 Breakout actions (FIRE, RIGHT, LEFT), if asked.
7. `RecordRawReward` + `ClipReward(-1, 1)`: clipped reward for learning, game score in
   `info["raw_reward"]`.
8. `FrameStackObservation`: the last `frame_stack` frames. It is outermost so that at every
   (re)start it repeats the frame reached *after* the FIRE start or the life loss, which is
   what the book's history holds.

Deviations from the book, and why:

- Observations are `(frame_stack, 84, 84)` uint8, channel-first with the **oldest frame
  first**; the book stacks channels-last with the newest frame in channel 0. Channel-first is
  what PyTorch convolutions take, and the order only permutes the first layer's weights.
- `AtariPreprocessing` takes the pixel-wise maximum of the last two raw frames of every
  step (only the book's A3C v1 does that; the others keep the last frame). It removes sprite
  flicker and changes nothing else.
- Grayscale is ALE's luminance and the resize OpenCV's area averaging, where the book used
  scikit-image (whose pixels differed between its own versions anyway).
- The step after a life loss plays FIRE, but the agent's own action is what RLlib records
  (the book stores action 0, FIRE).
"""

from __future__ import annotations

import difflib
from typing import Any

import ale_py
import gymnasium as gym
from gymnasium.wrappers import AtariPreprocessing, ClipReward, FrameStackObservation

from envs.wrappers import FireOnLifeLoss, FireStart, MapActions, RecordRawReward, ReportLifeLoss

# Register the ALE/* ids once, at import, so every process that imports envs can build them.
gym.register_envs(ale_py)
ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)  # no banner: it reads as trouble

BREAKOUT = "ALE/Breakout-v5"
# The book's Breakout agents: index 0 -> FIRE, 1 -> RIGHT, 2 -> LEFT (NOOP is never used).
BOOK_BREAKOUT_ACTIONS: tuple[str, ...] = ("FIRE", "RIGHT", "LEFT")


def resolve_game(game: str) -> str:
    """The registered ALE id for `game`: an id ("ALE/Pong-v5") or a bare name ("Pong", "pong").

    Args:
        game: A Gymnasium id of an ALE game, or the game's name in any letter case.

    Returns:
        The Gymnasium id to build.

    Raises:
        ValueError: if no ALE game of that name is registered.

    Example:
        >>> resolve_game("pong")
        'ALE/Pong-v5'
    """
    spec = gym.registry.get(game)
    if spec is None:
        wanted = f"ALE/{game}-v5".lower()
        spec = next((s for s in gym.registry.values() if s.id.lower() == wanted), None)
    if spec is None or spec.entry_point != "ale_py.env:AtariEnv":
        close = difflib.get_close_matches(str(game).lower(), game_names(), n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ValueError(
            f"game={game!r} is not an ALE game; {hint}pass a name like 'Pong' or an id like "
            "'ALE/Pong-v5' (`rldojo envs --games` lists them)"
        )
    return spec.id


def game_names() -> list[str]:
    """The bare names of the registered ALE v5 games, in lower case ("pong", "breakout")."""
    return sorted(
        s.id.removeprefix("ALE/").removesuffix("-v5").lower()
        for s in gym.registry.values()
        if s.entry_point == "ale_py.env:AtariEnv" and s.id.endswith("-v5")
    )


def check_atari_arguments(**counts: Any) -> None:
    """Raise a ValueError naming the first count that is not an integer in range.

    Args:
        **counts: frame_skip, screen_size, frame_stack, max_episode_steps (>= 1),
            fire_starts (>= 0) and repeat_action_probability (in [0, 1]), as passed to
            `make_atari`.
    """
    for name, value in counts.items():
        if name == "repeat_action_probability":
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
            continue
        least = 0 if name == "fire_starts" else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")


def make_atari(
    game: str = BREAKOUT,
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
    render_mode: str | None = None,
) -> gym.Env:
    """Build the book's Atari pipeline (see the module docstring) for any ALE game.

    Args:
        game: An ALE id ("ALE/Pong-v5") or a game name ("Pong").
        frame_skip: Raw frames per agent step.
        screen_size: Side of the square grayscale frame.
        frame_stack: Frames per observation.
        fire_starts: Up to this many FIRE steps at reset (0: none).
        clip_rewards: Clip rewards to [-1, 1] (the raw reward stays in `info["raw_reward"]`).
        terminal_on_life_loss: End the episode at every life loss; the next reset continues the
            game (the book's DQN treats a life loss as terminal for its targets).
        fire_on_life_loss: Play FIRE on the step after a life loss (book v2, A3C v1).
        three_actions: Expose only (FIRE, RIGHT, LEFT) as the book does for Breakout. None
            means "the book's choice": True for Breakout, the minimal action set otherwise.
        max_episode_steps: Truncate the game after this many agent steps.
        repeat_action_probability: Sticky actions: at each raw frame the emulator repeats the
            previous frame's action with this probability (0.25 in the standard protocol).
        full_action_space: All 18 joystick actions instead of the game's minimal set.
        render_mode: None or "rgb_array" (`env.render()` gives the RGB screen).

    Returns:
        The wrapped environment; observations are uint8 `(frame_stack, screen_size,
        screen_size)`, oldest frame first.

    Raises:
        ValueError: for an unknown game or an out-of-range argument.

    Example:
        >>> env = make_atari("Pong")
        >>> env.observation_space.shape, env.action_space
        ((4, 84, 84), Discrete(6))
    """
    check_atari_arguments(
        frame_skip=frame_skip,
        screen_size=screen_size,
        frame_stack=frame_stack,
        fire_starts=fire_starts,
        max_episode_steps=max_episode_steps,
        repeat_action_probability=repeat_action_probability,
    )
    if render_mode not in (None, "rgb_array"):
        raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
    env_id = resolve_game(game)
    if three_actions is None:
        three_actions = env_id == BREAKOUT

    frames = frame_skip * max_episode_steps
    env: gym.Env = gym.make(
        env_id,
        frameskip=1,
        repeat_action_probability=float(repeat_action_probability),
        full_action_space=bool(full_action_space),
        # ALE's own frame cap (108,000 for v5) would cut games before the book's limit.
        max_num_frames_per_episode=frames,
        max_episode_steps=frames,
        render_mode=render_mode,
    )
    env = AtariPreprocessing(
        env,
        noop_max=0,  # the book starts with FIRE steps, not NOOPs: see FireStart
        frame_skip=frame_skip,
        screen_size=screen_size,
        terminal_on_life_loss=False,  # it would reset the game; ReportLifeLoss does not
        grayscale_obs=True,
        scale_obs=False,
    )
    if fire_on_life_loss:
        env = FireOnLifeLoss(env)
    if fire_starts > 0:
        env = FireStart(env, max_fires=fire_starts)
    env = ReportLifeLoss(env, terminal_on_life_loss=terminal_on_life_loss)
    if three_actions:
        env = MapActions(env, BOOK_BREAKOUT_ACTIONS)
    env = RecordRawReward(env)
    if clip_rewards:
        env = ClipReward(env, -1.0, 1.0)
    return FrameStackObservation(env, stack_size=frame_stack)


def is_ale_id(env_id: str) -> bool:
    """An id of an ALE game's screen (`ALE/Pong-v5`, `PongNoFrameskip-v4`; not its RAM)."""
    spec = gym.registry.get(env_id)
    return (
        spec is not None
        and spec.entry_point == "ale_py.env:AtariEnv"
        and spec.kwargs.get("obs_type", "rgb") == "rgb"
    )


def ale_id_settings(env_id: str) -> dict[str, Any]:
    """The book's pipeline arguments an ALE id's own settings mean.

    Sticky actions, the full action set and the episode's frame cap are the id's. Its frame
    skip is the pipeline's when it is a number above 1 (v5's 4); an id that skips nothing
    itself (`NoFrameskip-v4`) or at random (`-v4`'s 2 to 5) leaves it to the pipeline's 4, as
    DQN's preprocessing has always done.

    Example:
        >>> ale_id_settings("ALE/Pong-v5")["repeat_action_probability"]
        0.25
    """
    kwargs = gym.registry[env_id].kwargs
    skip = kwargs.get("frameskip", 4)
    frame_skip = skip if isinstance(skip, int) and skip > 1 else 4
    return {
        "game": env_id,
        "frame_skip": frame_skip,
        "repeat_action_probability": float(kwargs.get("repeat_action_probability", 0.0)),
        "full_action_space": bool(kwargs.get("full_action_space", False)),
        "max_episode_steps": int(kwargs.get("max_num_frames_per_episode", 108_000)) // frame_skip,
        "three_actions": False,
    }


def make_breakout(**kwargs: Any) -> gym.Env:
    """The book's Breakout: `make_atari("ALE/Breakout-v5", three_actions=True, ...)`.

    Args:
        **kwargs: Any keyword argument of `make_atari` except `game`.

    Returns:
        The wrapped Breakout environment with `Discrete(3)` actions (FIRE, RIGHT, LEFT).

    Raises:
        ValueError: if `game` is passed (use `rldojo/Atari-v0` for other games).

    Example:
        >>> env = make_breakout()
        >>> env.observation_space.shape, env.observation_space.dtype, env.action_space
        ((4, 84, 84), dtype('uint8'), Discrete(3))
    """
    if "game" in kwargs:
        raise ValueError("make_breakout always plays Breakout; use make_atari for other games")
    kwargs.setdefault("three_actions", True)
    return make_atari(BREAKOUT, **kwargs)
