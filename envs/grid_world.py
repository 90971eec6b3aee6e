"""The book's two 5x5 tabular grid worlds (RLCode sections 2.1 and 2.2).

Both are the same deterministic grid with a different reward table, so one class serves both:
`PlanningGridEnv` is the dynamic-programming grid (+1/-1, only the goal is terminal) and
`GridWorldEnv` is the episodic grid of Monte Carlo, SARSA and Q-learning (+100/-100, traps end
the episode). Each exposes its whole transition model, so planning algorithms never step it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

Cell = tuple[int, int]  # (row, col), row 0 at the top

# Action index -> (row offset, col offset): 0 up, 1 down, 2 left, 3 right (book sections 2.1, 2.2).
MOVES: tuple[Cell, ...] = ((-1, 0), (1, 0), (0, -1), (0, 1))
ACTION_NAMES: tuple[str, ...] = ("up", "down", "left", "right")

CELL_PIXELS = 32
# The largest grid: its tables and transition model stay small (a 50x50 grid has 2,500 states).
MAX_SIZE = 50
_COLOURS = {
    "floor": (245, 245, 245),
    "line": (180, 180, 180),
    "goal": (60, 110, 220),
    "trap": (60, 170, 80),
    "agent": (220, 50, 50),
}


@dataclass(frozen=True)
class TabularModel:
    """A deterministic tabular MDP: everything dynamic programming needs.

    Attributes:
        next_state: (S, A) int array, the state each action leads to.
        reward: (S, A) float array, the reward for taking that action (the entered cell's reward).
        terminal: (S,) bool array, states whose episode has ended (their value is pinned to 0).
    """

    next_state: np.ndarray
    reward: np.ndarray
    terminal: np.ndarray

    @property
    def num_states(self) -> int:
        return int(self.next_state.shape[0])

    @property
    def num_actions(self) -> int:
        return int(self.next_state.shape[1])


class GridWorldEnv(gym.Env[np.int64, np.int64]):
    """The episodic grid world of Monte Carlo, SARSA and Q-learning (book section 2.2).

    ## Description
    A `size` x `size` grid. The agent starts in `start`; entering `goal` pays `goal_reward` and
    ends the episode, entering a trap pays `trap_reward` (and ends it when `traps_terminal`).
    With the defaults this is the book's grid (rows top to bottom, `A` agent, `T` trap, `G` goal):

        A . . . .
        . . T . .
        . T G . .
        . . . . .
        . . . . .

    ## Action Space
    `Discrete(4)`: 0 up, 1 down, 2 left, 3 right. A move into the wall leaves the agent in place.

    ## Observation Space
    `Discrete(size * size)`: the cell index `row * size + col`. `info["cell"]` gives `(row, col)`.

    ## Rewards
    The reward of the entered cell: goal +100, trap -100, anything else 0 (no step penalty).

    ## Starting State
    Always `start`, (0, 0) by default.

    ## Episode End
    Termination on entering the goal or a trap. `rldojo/GridWorld-v0` truncates at 100 steps.

    ## Arguments
    `size`, `start`, `goal`, `traps` (cells as `(row, col)`), `render_mode` (`"rgb_array"`).

    ## Deviations from the book
    - Cells are `(row, col)` in arguments and in `info`; the book writes states as `[x, y]` =
      `[col, row]`. The default layout is symmetric, so the book's traps `[2,1]`, `[1,2]` are the
      same cells either way.
    - The observation is the cell index instead of the book's `[x, y]` list, which is what a
      table is indexed by.
    - The registered id has a 100-step limit the book lacks, so that evaluating a greedy table
      that walks in circles still ends.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    goal_reward: float = 100.0
    trap_reward: float = -100.0
    traps_terminal: bool = True

    def __init__(
        self,
        size: int = 5,
        start: Sequence[int] = (0, 0),
        goal: Sequence[int] = (2, 2),
        traps: Sequence[Sequence[int]] = ((1, 2), (2, 1)),
        render_mode: str | None = None,
    ) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or not 2 <= size <= MAX_SIZE:
            raise ValueError(f"size must be an integer from 2 to {MAX_SIZE}, got {size!r}")
        self.size = size
        self.start = self._cell("start", start)
        self.goal = self._cell("goal", goal)
        self.traps = tuple(self._cell("traps", trap) for trap in traps)
        if self.start == self.goal or self.start in self.traps:
            raise ValueError(f"start {self.start} must not be the goal or a trap")
        if self.goal in self.traps:
            raise ValueError(f"goal {self.goal} must not also be a trap")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}")
        self.render_mode = render_mode

        self.observation_space = spaces.Discrete(size * size)
        self.action_space = spaces.Discrete(len(MOVES))
        self._model = self._build_model()
        self._state = self.index(self.start)

    # ---- the model ---------------------------------------------------------------------------

    def index(self, cell: Cell) -> int:
        """The state index of a `(row, col)` cell."""
        return cell[0] * self.size + cell[1]

    def cell(self, state: int) -> Cell:
        """The `(row, col)` cell of a state index."""
        return divmod(int(state), self.size)

    def transition_model(self) -> TabularModel:
        """The full deterministic model: next state, reward and terminal flags for every state."""
        return self._model

    def _build_model(self) -> TabularModel:
        num_states, num_actions = self.size * self.size, len(MOVES)
        next_state = np.zeros((num_states, num_actions), dtype=np.int64)
        reward = np.zeros((num_states, num_actions), dtype=np.float64)
        cell_reward = np.zeros(num_states)
        cell_reward[self.index(self.goal)] = self.goal_reward
        for trap in self.traps:
            cell_reward[self.index(trap)] = self.trap_reward
        for state in range(num_states):
            row, col = self.cell(state)
            for action, (d_row, d_col) in enumerate(MOVES):
                # Clamp at the border: a move into the wall stays in place.
                entered = (
                    min(max(row + d_row, 0), self.size - 1),
                    min(max(col + d_col, 0), self.size - 1),
                )
                next_state[state, action] = self.index(entered)
                reward[state, action] = cell_reward[self.index(entered)]
        terminal = np.zeros(num_states, dtype=bool)
        terminal[self.index(self.goal)] = True
        if self.traps_terminal:
            for trap in self.traps:
                terminal[self.index(trap)] = True
        return TabularModel(next_state=next_state, reward=reward, terminal=terminal)

    def _cell(self, name: str, value: Sequence[int]) -> Cell:
        if len(value) != 2 or not all(isinstance(v, int | np.integer) for v in value):
            raise ValueError(f"{name} must be a (row, col) pair of integers, got {value!r}")
        row, col = int(value[0]), int(value[1])
        if not (0 <= row < self.size and 0 <= col < self.size):
            raise ValueError(f"{name} {value!r} is off the {self.size}x{self.size} grid")
        return row, col

    # ---- the Gymnasium API -------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.int64, dict[str, Any]]:
        super().reset(seed=seed)
        self._state = self.index(self.start)
        return np.int64(self._state), {"cell": self.start}

    def step(self, action: np.int64) -> tuple[np.int64, float, bool, bool, dict[str, Any]]:
        if not self.action_space.contains(action):
            raise ValueError(f"action must be in {self.action_space}, got {action!r}")
        if self._model.terminal[self._state]:
            raise RuntimeError("step() called after the episode terminated; call reset() first")
        reward = float(self._model.reward[self._state, action])
        self._state = int(self._model.next_state[self._state, action])
        terminated = bool(self._model.terminal[self._state])
        return np.int64(self._state), reward, terminated, False, {"cell": self.cell(self._state)}

    def render(self) -> np.ndarray | None:  # type: ignore[override]
        if self.render_mode != "rgb_array":
            return None
        return self._draw()

    def _draw(self) -> np.ndarray:
        side = self.size * CELL_PIXELS
        frame = np.full((side, side, 3), _COLOURS["floor"], dtype=np.uint8)
        for trap in self.traps:
            self._fill_triangle(frame, trap, _COLOURS["trap"])
        self._fill_circle(frame, self.goal, _COLOURS["goal"])
        self._fill_square(frame, self.cell(self._state), _COLOURS["agent"])
        frame[::CELL_PIXELS, :] = _COLOURS["line"]
        frame[:, ::CELL_PIXELS] = _COLOURS["line"]
        return frame

    @staticmethod
    def _cell_pixels(cell: Cell) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (y, x) of one cell, relative to its centre, in [-0.5, 0.5]."""
        offsets = (np.arange(CELL_PIXELS) + 0.5) / CELL_PIXELS - 0.5
        return np.meshgrid(offsets, offsets, indexing="ij")

    def _paint(self, frame: np.ndarray, cell: Cell, mask: np.ndarray, colour: tuple) -> None:
        top, left = cell[0] * CELL_PIXELS, cell[1] * CELL_PIXELS
        block = frame[top : top + CELL_PIXELS, left : left + CELL_PIXELS]
        block[mask] = colour

    def _fill_circle(self, frame: np.ndarray, cell: Cell, colour: tuple) -> None:
        y, x = self._cell_pixels(cell)
        self._paint(frame, cell, x**2 + y**2 <= 0.35**2, colour)

    def _fill_square(self, frame: np.ndarray, cell: Cell, colour: tuple) -> None:
        y, x = self._cell_pixels(cell)
        self._paint(frame, cell, (abs(x) <= 0.3) & (abs(y) <= 0.3), colour)

    def _fill_triangle(self, frame: np.ndarray, cell: Cell, colour: tuple) -> None:
        y, x = self._cell_pixels(cell)
        self._paint(frame, cell, (y <= 0.35) & (y >= -0.35) & (abs(x) <= (y + 0.35) / 2), colour)


class PlanningGridEnv(GridWorldEnv):
    """The 5x5 planning grid of policy and value iteration (book section 2.1).

    ## Description
    The grid of `GridWorldEnv` with the book's planning rewards: entering the goal (the blue
    circle, (2, 2)) pays +1, entering a triangle ((1, 2) or (2, 1)) pays -1, anything else 0.
    Only the goal is terminal; triangles are not. Dynamic programming reads the whole model from
    `transition_model()` and never steps the environment; stepping it is for watching the policy.

    ## Action Space
    `Discrete(4)`: 0 up, 1 down, 2 left, 3 right, moves into the wall are clamped.

    ## Observation Space
    `Discrete(size * size)`, the cell index `row * size + col`.

    ## Episode End
    Termination on entering the goal. `rldojo/PlanningGrid-v0` truncates at 100 steps.

    ## Arguments
    As `GridWorldEnv`; `traps` are the triangles.
    """

    goal_reward = 1.0
    trap_reward = -1.0
    traps_terminal = False
