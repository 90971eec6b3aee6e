"""The book's dynamic grid with moving obstacles, for deep SARSA and REINFORCE (book §2.3)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, SupportsFloat, SupportsInt

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.grid_world import MAX_SIZE

# Agent moves as (dx, dy); y grows downwards (row 0 is the top row). Actions 2/3 are RIGHT/LEFT,
# the reverse of the tabular grid of §2.2: the book's code does it this way.
_AGENT_MOVES: tuple[tuple[int, int], ...] = ((0, -1), (0, 1), (1, 0), (-1, 0), (0, 0))

# The book's direction flag: -1 moves an obstacle right, +1 moves it left.
_RIGHTWARDS = -1
_LEFTWARDS = 1

_CELL_PX = 50
_WHITE = (255, 255, 255)
_GRID_LINE = (0, 0, 0)
_AGENT_RED = (220, 30, 30)
_GOAL_BLUE = (30, 80, 220)
_OBSTACLE_GREEN = (30, 160, 60)


def _cell(value: Any, name: str, size: int) -> tuple[int, int]:
    """Validate an (x, y) cell on a `size` x `size` grid, naming the argument on failure."""
    try:
        x, y = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an (x, y) pair of integers, got {value!r}") from None
    if not (0 <= x < size and 0 <= y < size):
        raise ValueError(f"{name}={value!r} is off the {size}x{size} grid")
    return x, y


class MovingObstaclesEnv(gym.Env[np.ndarray, int]):
    """A 5x5 grid whose three obstacles sweep their rows while the agent walks to the goal.

    ## Description

    The dynamic grid world of the RLCode book (§2.3), used by deep SARSA and REINFORCE.
    Cells are addressed as `(x, y)` = (column, row), row 0 at the top. With the defaults:

    ```
          x=0  x=1  x=2  x=3  x=4
    y=0    A    .    .    .    .        A  agent start (0, 0)
    y=1    T>   .    .    .    .        T> obstacle (value -1), moving right at first
    y=2    .    T>   .    .    .
    y=3    .    .    T>   .    .
    y=4    .    .    .    .    G        G  goal (value +1), never moves
    ```

    Each obstacle moves one cell horizontally per move and bounces between column 0 and the
    last column. It carries the book's direction flag: -1 (moving right) at reset; before each
    move the flag becomes +1 if the obstacle is in the last column and -1 if it is in column 0,
    then -1 moves it right and +1 moves it left. Every obstacle thus sweeps its row with period 8
    moves on a 5-wide grid.

    A step counter is incremented at every step; on steps where it is odd the obstacles move
    **before** the agent. The book never resets this counter between episodes, so the phase
    carries over (`global_obstacle_phase=True`); `reset(seed=...)` restarts it (see below).

    ## Action Space

    `Discrete(5)`: 0 up (y - 1), 1 down (y + 1), 2 **right** (x + 1), 3 **left** (x - 1),
    4 stay. A move into the wall leaves the agent in place. Actions 2 and 3 are reversed with
    respect to the tabular grid world, as in the book.

    ## Observation Space

    `Box(-(size - 1), size - 1, shape=(4 * len(obstacles) + 3,), float32)`, 15 floats by
    default, in the book's order. For each obstacle, in the order given:
    `(obstacle x - agent x, obstacle y - agent y, -1, direction flag)`; then for the goal:
    `(goal x - agent x, goal y - agent y, +1)`. The flag is the stored one (-1 = moving right,
    +1 = moving left), updated only when the obstacle moves, exactly as the book reads it.

    ## Rewards

    The sum of the values of everything in the agent's new cell: -1 per obstacle there, +1 for
    the goal. A collision counts only if agent and obstacle end the step in the same cell, so they
    can swap cells without penalty, and it does not end the episode. `step_penalty` is subtracted
    on every step (0.1 reproduces REINFORCE v1's -0.1 per step).

    ## Starting State

    The agent at `start`, every obstacle at its starting cell with its flag at -1 (moving right).
    Nothing is random: the environment is deterministic.

    ## Episode End

    - Termination: the agent enters the goal.
    - Truncation: `rldojo/MovingObstacles-v0` adds a 500-step `TimeLimit`.

    ## Arguments

    - `size` (int, 5): width and height of the grid.
    - `start` ((x, y), (0, 0)): the agent's cell at every reset.
    - `goal` ((x, y), (4, 4)): the goal cell.
    - `obstacles` (sequence of (x, y), ((0, 1), (1, 2), (2, 3))): the obstacles' starting cells.
    - `global_obstacle_phase` (bool, True): keep the step counter across unseeded resets, as
      the book does; False restarts it at every reset (the 2026 PyTorch rewrite's behaviour).
    - `step_penalty` (float, 0.0): subtracted from every step's reward.
    - `render_mode` (None or "rgb_array"): "rgb_array" draws 50-pixel cells with numpy.

    ## Deviations from the book

    - The registered id has a 500-step `TimeLimit`; the book has no limit, but evaluation of an
      untrained policy must end.
    - `reset(seed=...)` restarts the obstacle phase counter even when `global_obstacle_phase` is
      True: a seeded reset promises a reproducible episode. RLlib seeds only the first reset of
      each env, so training still sees the book's carried-over phase.

    Example:
        >>> env = MovingObstaclesEnv()
        >>> obs, info = env.reset(seed=0)
        >>> obs.tolist()[:4], obs.tolist()[-3:]
        ([0.0, 1.0, -1.0, -1.0], [4.0, 4.0, 1.0])
        >>> obs, reward, terminated, truncated, info = env.step(4)  # stay: obstacles move first
        >>> info["obstacles"]
        ((1, 1), (2, 2), (3, 3))
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(
        self,
        size: int = 5,
        start: Sequence[int] = (0, 0),
        goal: Sequence[int] = (4, 4),
        obstacles: Sequence[Sequence[int]] = ((0, 1), (1, 2), (2, 3)),
        global_obstacle_phase: bool = True,
        step_penalty: float = 0.0,
        render_mode: str | None = None,
    ) -> None:
        """Build the grid; see the class docstring for the meaning of every argument.

        Raises:
            ValueError: if an argument is out of range (the message names it).
        """
        if (
            isinstance(size, bool)
            or not isinstance(size, int | np.integer)
            or not 2 <= size <= MAX_SIZE
        ):
            raise ValueError(f"size must be an integer from 2 to {MAX_SIZE}, got {size!r}")
        self.size = int(size)
        self.start = _cell(start, "start", self.size)
        self.goal = _cell(goal, "goal", self.size)
        if self.start == self.goal:
            raise ValueError(f"start and goal must differ, both are {self.start}")
        if isinstance(obstacles, str) or not isinstance(obstacles, Sequence):
            raise ValueError(f"obstacles must be a sequence of (x, y) pairs, got {obstacles!r}")
        self.obstacle_starts = tuple(
            _cell(cell, f"obstacles[{i}]", self.size) for i, cell in enumerate(obstacles)
        )
        self.global_obstacle_phase = bool(global_obstacle_phase)
        self.step_penalty = float(step_penalty)
        if not np.isfinite(self.step_penalty) or self.step_penalty < 0:
            raise ValueError(f"step_penalty must be finite and >= 0, got {step_penalty!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be None or one of {self.metadata['render_modes']}, "
                f"got {render_mode!r}"
            )
        self.render_mode = render_mode

        bound = float(self.size - 1)
        self.observation_space = spaces.Box(
            low=-bound, high=bound, shape=(4 * len(self.obstacle_starts) + 3,), dtype=np.float32
        )
        self.action_space = spaces.Discrete(len(_AGENT_MOVES))

        # The book's step counter lives on the env object, not on the episode.
        self._step_count = 0
        self._agent = self.start
        self._obstacles = list(self.obstacle_starts)
        self._directions = [_RIGHTWARDS] * len(self.obstacle_starts)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Put the agent and the obstacles back on their starting cells.

        Args:
            seed: Seeds `self.np_random` (unused: the grid is deterministic) and restarts the
                obstacle phase counter.
            options: Unused.

        Returns:
            The observation and an info dict with the `agent` and `obstacles` cells.
        """
        super().reset(seed=seed)
        if seed is not None or not self.global_obstacle_phase:
            self._step_count = 0
        self._agent = self.start
        self._obstacles = list(self.obstacle_starts)
        self._directions = [_RIGHTWARDS] * len(self.obstacle_starts)
        return self._observation(), self._info()

    def step(
        self, action: SupportsInt
    ) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        """Move the obstacles (on odd counter values), then the agent, and score the new cell.

        Args:
            action: 0 up, 1 down, 2 right, 3 left, 4 stay.

        Returns:
            observation, reward, terminated (goal reached), truncated (always False), info.
        """
        action = int(action)
        if not 0 <= action < len(_AGENT_MOVES):
            raise ValueError(f"action must be in [0, {len(_AGENT_MOVES) - 1}], got {action}")

        self._step_count += 1
        if self._step_count % 2 == 1:
            self._move_obstacles()

        dx, dy = _AGENT_MOVES[action]
        last = self.size - 1
        self._agent = (
            min(max(self._agent[0] + dx, 0), last),
            min(max(self._agent[1] + dy, 0), last),
        )

        at_goal = self._agent == self.goal
        hits = sum(cell == self._agent for cell in self._obstacles)
        reward = float(at_goal) - hits - self.step_penalty
        return self._observation(), reward, at_goal, False, self._info()

    def render(self) -> np.ndarray | None:  # type: ignore[override]
        """Draw the grid: red square agent, blue circle goal, green triangle obstacles.

        Returns:
            An `(50 * size, 50 * size, 3)` uint8 frame in "rgb_array" mode, else None.
        """
        if self.render_mode != "rgb_array":
            return None
        side = self.size * _CELL_PX
        frame = np.full((side, side, 3), _WHITE, dtype=np.uint8)
        frame[::_CELL_PX, :] = _GRID_LINE
        frame[:, ::_CELL_PX] = _GRID_LINE
        frame[-1, :] = _GRID_LINE
        frame[:, -1] = _GRID_LINE

        # Pixel centres of one cell, relative to the cell's centre, in units of half a cell.
        offsets = (np.arange(_CELL_PX) + 0.5 - _CELL_PX / 2) / (_CELL_PX / 2)
        v, u = np.meshgrid(offsets, offsets, indexing="ij")  # v grows down, u grows right
        circle = u**2 + v**2 <= 0.7**2
        triangle = (v <= 0.6) & (np.abs(u) <= (v + 0.7) / 1.3 * 0.7)  # apex up
        triangle &= v >= -0.7
        square = (np.abs(u) <= 0.55) & (np.abs(v) <= 0.55)

        def paint(cell: tuple[int, int], mask: np.ndarray, colour: tuple[int, int, int]) -> None:
            x, y = cell
            frame[y * _CELL_PX : (y + 1) * _CELL_PX, x * _CELL_PX : (x + 1) * _CELL_PX][mask] = (
                colour
            )

        paint(self.goal, circle, _GOAL_BLUE)
        for cell in self._obstacles:
            paint(cell, triangle, _OBSTACLE_GREEN)
        paint(self._agent, square, _AGENT_RED)
        return frame

    def _move_obstacles(self) -> None:
        """The book's sweep: flip the flag at the walls, then step one cell along it."""
        last = self.size - 1
        for i, (x, y) in enumerate(self._obstacles):
            if x == last:
                self._directions[i] = _LEFTWARDS
            elif x == 0:
                self._directions[i] = _RIGHTWARDS
            x += 1 if self._directions[i] == _RIGHTWARDS else -1
            self._obstacles[i] = (x, y)

    def _observation(self) -> np.ndarray:
        ax, ay = self._agent
        features: list[float] = []
        for (x, y), direction in zip(self._obstacles, self._directions, strict=True):
            features += [x - ax, y - ay, -1.0, direction]
        features += [self.goal[0] - ax, self.goal[1] - ay, 1.0]
        return np.asarray(features, dtype=np.float32)

    def _info(self) -> dict[str, Any]:
        return {"agent": self._agent, "obstacles": tuple(self._obstacles)}
